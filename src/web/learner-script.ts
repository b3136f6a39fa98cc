/**
 * The learner page's own script, served as a file (`learner.js` next to the page) so the page
 * needs no inline script. Without it the page is complete as the server rendered it; with it,
 * times read in the reader's local time (a course that sets its time zone keeps its own), the upload form posts in place with a notice, and the
 * submissions list follows the status endpoint (`data-status-url` on <main>) until every
 * submission has its result, and asks again when the learner comes back to the page. Each submission's markup comes from the server, already escaped:
 * the script inserts it and writes everything else as text.
 */
export const LEARNER_SCRIPT = String.raw`(() => {
  'use strict';
  const main = document.querySelector('main[data-status-url]');
  if (!main) return;
  const url = main.dataset.statusUrl;
  const every = Number(main.dataset.pollMs) || 1000;
  const live = document.getElementById('status');
  const list = document.getElementById('submissions');
  const none = document.getElementById('no-submissions');
  const total = document.getElementById('edx-total');
  const notice = document.getElementById('notice');
  const form = document.getElementById('upload');
  let done = main.dataset.done === 'true';
  let skew = 0;
  let timer;
  const seen = new Map();

  const local = (root) => {
    root.querySelectorAll('time[datetime]').forEach((t) => {
      const d = new Date(t.dateTime);
      if (isNaN(d.getTime()) || t.dataset.local) return;
      const reader = d.toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' });
      // a time in the course's own time zone stays as it is; the reader's local time is its title
      if (t.dataset.fixed) t.title = reader;
      else {
        t.title = t.textContent;
        t.textContent = reader;
      }
      t.dataset.local = '1';
    });
  };
  const clock = (s) => {
    s = Math.max(0, Math.floor(s));
    return Math.floor(s / 60) + ':' + String(s % 60).padStart(2, '0');
  };
  const tick = () => {
    document.querySelectorAll('.elapsed').forEach((e) => {
      const started = Date.parse(e.dataset.started || '');
      const limit = Number(e.dataset.limit);
      e.textContent = '(' + (isNaN(started) ? '' : clock((Date.now() + skew - started) / 1000) + ' elapsed, ') + 'limit ' + clock(limit) + ')';
    });
  };
  const say = (kind, text) => {
    if (!notice) return;
    notice.hidden = false;
    notice.className = 'notice notice-' + kind;
    notice.setAttribute('role', kind === 'rejected' ? 'alert' : 'status');
    notice.textContent = text;
  };
  const apply = (view) => {
    if (typeof view.now === 'string') skew = Date.parse(view.now) - Date.now();
    view.submissions.forEach((s, i) => {
      let node = list.querySelector('[data-submission="' + CSS.escape(s.id) + '"]');
      if (!node || seen.get(s.id) !== s.html) {
        const t = document.createElement('template');
        t.innerHTML = s.html;
        const fresh = t.content.firstElementChild;
        local(fresh);
        if (node) node.replaceWith(fresh);
        node = fresh;
        seen.set(s.id, s.html);
      }
      if (list.children[i] !== node) list.insertBefore(node, list.children[i] || null);
    });
    if (none) none.hidden = view.submissions.length > 0;
    if (live && live.textContent !== view.announce) live.textContent = view.announce;
    if (total && view.edxTotal && total.textContent !== view.edxTotal) total.textContent = view.edxTotal;
    done = view.done;
    tick();
  };
  const poll = async () => {
    clearTimeout(timer);
    try {
      const r = await fetch(url, { headers: { accept: 'application/json' }, credentials: 'same-origin', cache: 'no-store' });
      if (r.ok) apply(await r.json());
    } catch (e) {
      // the next poll tries again
    }
    if (!done) timer = setTimeout(poll, every);
  };

  if (form) {
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const input = form.querySelector('input[type=file]');
      const max = Number(form.dataset.maxBytes);
      if (!input.files || !input.files.length) return say('rejected', form.dataset.chooseFile);
      if (max && input.files[0].size > max) return say('rejected', form.dataset.tooLarge);
      const button = form.querySelector('button');
      button.disabled = true;
      try {
        const r = await fetch(form.action, { method: 'POST', body: new FormData(form), headers: { accept: 'application/json' }, credentials: 'same-origin' });
        const body = await r.json().catch(() => ({}));
        if (r.ok) {
          say(body.duplicate ? 'duplicate' : 'accepted', body.notice || 'Received.');
          form.reset();
          done = false;
          poll();
        } else {
          say('rejected', body.error || 'Gofer refused the upload (HTTP ' + r.status + ').');
        }
      } catch (e) {
        say('rejected', 'The upload did not reach Gofer: check your connection and submit again.');
      } finally {
        button.disabled = false;
      }
    });
  }
  local(document);
  list.querySelectorAll('[data-submission]').forEach((n) => seen.set(n.dataset.submission, null));
  tick();
  setInterval(tick, 1000);
  if (!done) timer = setTimeout(poll, every);
  // a notebook submitted from Jupyter meanwhile shows up when the learner comes back to the page
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) poll();
  });
  window.addEventListener('focus', () => poll());
})();
`;
