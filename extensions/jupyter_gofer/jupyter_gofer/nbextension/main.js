/*
 * The classic Notebook (6.x) Submit button: saves the notebook, asks the jupyter_gofer server
 * extension to send the saved file to Gofer, then shows its status until it is graded.
 */
define(['jquery', 'base/js/namespace', 'base/js/dialog', 'base/js/utils', './view'], function ($, Jupyter, dialog, utils, view) {
  'use strict';

  function api(path) {
    return utils.url_path_join(Jupyter.notebook.base_url, 'gofer', path);
  }

  function errorSentence(xhr) {
    var body = xhr && xhr.responseJSON;
    if (body && body.error) return body.error;
    return 'The Submit button could not reach your Jupyter server (' + (xhr ? xhr.status : '?') + '). Save your work, reload the page and submit again.';
  }

  function saved(nb) {
    return new Promise(function (resolve, reject) {
      nb.events.one('notebook_saved.Notebook', function () { resolve(); });
      nb.events.one('notebook_save_failed.Notebook', function () { reject(new Error('save failed')); });
      nb.save_checkpoint();
    });
  }

  function submit() {
    var nb = Jupyter.notebook;
    var body = $('<div class="gofer-dialog" aria-live="polite"/>');
    body.append($('<p/>').text('Saving and submitting ' + nb.notebook_name + '…'));
    dialog.modal({ title: 'Submit to Gofer', body: body, buttons: { Close: {} }, notebook: nb, keyboard_manager: nb.keyboard_manager });
    var el = body[0];
    var timer;
    body.closest('.modal').on('hidden.bs.modal', function () { clearTimeout(timer); });
    saved(nb)
      .then(function () {
        return utils.ajax(api('submit'), { type: 'POST', dataType: 'json', contentType: 'application/json', data: JSON.stringify({ path: nb.notebook_path }) });
      }, function () {
        throw { sentence: 'Your notebook could not be saved, so it was not submitted. Fix what the notebook says about saving and submit again.' };
      })
      .then(function (receipt) {
        var poll = function () {
          utils.ajax(api('submissions/' + receipt.id), { type: 'GET', dataType: 'json' }).then(
            function (s) {
              var d = view.describe(s, Date.now());
              view.render(document, el, d);
              if (!d.done) timer = setTimeout(poll, view.POLL_MS);
            },
            function (xhr) { view.renderError(document, el, errorSentence(xhr)); }
          );
        };
        poll();
      })
      .catch(function (err) {
        view.renderError(document, el, err && err.sentence ? err.sentence : errorSentence(err));
      });
  }

  function load_ipython_extension() {
    var action = Jupyter.actions.register({ icon: 'fa-paper-plane', help: 'Submit this notebook to Gofer for grading', help_index: 'zz', handler: submit }, 'submit', 'gofer');
    var group = Jupyter.toolbar.add_buttons_group([{ action: action, label: 'Submit' }]);
    group.find('button').attr('id', 'gofer-submit');
  }

  return { load_ipython_extension: load_ipython_extension };
});
