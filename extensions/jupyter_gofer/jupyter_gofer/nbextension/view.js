/*
 * What the Submit buttons show, for the classic Notebook and for JupyterLab alike: a submission's
 * status (from the jupyter_gofer server extension, which relays Gofer's) as plain lines, then as
 * DOM. No framework; loaded by RequireJS in the classic Notebook, bundled in the JupyterLab one.
 */
(function (root, factory) {
  if (typeof define === 'function' && define.amd) define([], factory);
  else if (typeof module === 'object' && module.exports) module.exports = factory();
  else root.goferView = factory();
})(typeof self !== 'undefined' ? self : this, function () {
  'use strict';

  var UNFINISHED = ['queued', 'grading'];
  /** All a learner is told of hidden tests (the learner page says the same: src/web/learner-view.ts). */
  var HIDDEN_TESTS = 'The score also includes hidden tests; their results are not shown.';
  var ENDINGS = {
    timeout: 'Not graded: your notebook ran longer than the time limit.',
    out_of_memory: 'Not graded: your notebook used more memory than allowed.',
    invalid_notebook: 'Not graded: Gofer could not read this notebook.',
    kernel_died: 'Not graded: the Python kernel stopped while running your notebook.',
    failed: 'Not graded: Gofer could not grade it. Your course staff have been told; submit again later.',
  };

  function seconds(ms) {
    return Math.max(0, Math.round(ms / 1000));
  }

  function localTime(iso) {
    var d = new Date(iso);
    return isNaN(d.getTime()) ? '' : d.toLocaleTimeString();
  }

  /**
   * The submission as the dialog says it: `done` (stop polling), a headline, sentences, and one
   * line per test. `now` is the browser's clock in ms.
   */
  function describe(s, now) {
    var limit = s.timeLimitSeconds ? ' of the ' + s.timeLimitSeconds + ' s time limit' : '';
    var received = 'Received at ' + localTime(s.receivedAt) + '.';
    if (UNFINISHED.indexOf(s.status) >= 0) {
      var elapsed = seconds(now - new Date(s.receivedAt).getTime());
      return {
        done: false,
        state: 'received',
        headline: s.status === 'queued' ? 'Received: waiting for a grader' : 'Received: grading',
        sentences: [received, (s.status === 'queued' ? 'Waiting: ' : 'Grading: ') + elapsed + ' s' + limit + '.'],
        tests: [],
      };
    }
    var sentences = [received];
    if (s.status !== 'graded') {
      sentences.push(ENDINGS[s.status] || 'Not graded (' + s.status + ').');
      if (s.message) sentences.push(s.message);
    }
    if (s.standing && s.standing.sentence) sentences.push(s.standing.sentence);
    if (s.hiddenTests || (s.tests || []).some(function (t) { return t.hidden; })) sentences.push(HIDDEN_TESTS);
    // a hidden test's result is for staff: the dialog never shows one, even if an answer carried it
    var tests = (s.tests || []).filter(function (t) { return !t.hidden; }).map(function (t) {
      var weight = typeof t.maxPoints === 'number' ? ' (' + t.points + ' / ' + t.maxPoints + ')' : '';
      return { name: t.name, passed: !!t.passed, text: t.name + ': ' + (t.passed ? 'passed' : 'failed') + weight, detail: t.passed ? undefined : t.message };
    });
    return {
      done: true,
      state: s.status === 'graded' ? 'graded' : 'not graded',
      headline: s.status === 'graded' && s.grade ? 'Score: ' + s.grade.text : 'Not graded',
      sentences: sentences,
      tests: tests,
    };
  }

  /** Fills `el` (the dialog's body) with what `describe` says. */
  function render(doc, el, d) {
    while (el.firstChild) el.removeChild(el.firstChild);
    var h = doc.createElement('p');
    h.className = 'gofer-headline';
    h.setAttribute('data-gofer-state', d.state);
    var b = doc.createElement('strong');
    b.textContent = d.headline;
    h.appendChild(b);
    el.appendChild(h);
    d.sentences.forEach(function (s) {
      var p = doc.createElement('p');
      p.textContent = s;
      el.appendChild(p);
    });
    if (d.tests.length) {
      var ul = doc.createElement('ul');
      ul.className = 'gofer-tests';
      d.tests.forEach(function (t) {
        var li = doc.createElement('li');
        li.setAttribute('data-passed', String(t.passed));
        li.textContent = t.text;
        if (t.detail) {
          var pre = doc.createElement('pre');
          pre.textContent = t.detail;
          li.appendChild(pre);
        }
        ul.appendChild(li);
      });
      el.appendChild(ul);
    }
  }

  /** Shows an error sentence (from the server extension) in `el`. */
  function renderError(doc, el, sentence) {
    while (el.firstChild) el.removeChild(el.firstChild);
    var p = doc.createElement('p');
    p.className = 'gofer-error';
    p.setAttribute('data-gofer-state', 'error');
    p.textContent = sentence;
    el.appendChild(p);
  }

  return { describe: describe, render: render, renderError: renderError, POLL_MS: 1000, HIDDEN_TESTS: HIDDEN_TESTS };
});
