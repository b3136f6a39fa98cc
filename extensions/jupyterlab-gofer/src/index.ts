import type { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { Dialog, ToolbarButton } from '@jupyterlab/apputils';
import { NotebookPanel } from '@jupyterlab/notebook';
import { ServerConnection } from '@jupyterlab/services';
import { Widget } from '@lumino/widgets';
import { submitFlow, type Answer, type View } from './flow';

// the one view both buttons use (a UMD module in the Python package)
declare const require: (id: string) => unknown;
const view = require('../../jupyter_gofer/jupyter_gofer/nbextension/view.js') as View;

async function request(settings: ServerConnection.ISettings, path: string, init: { method: 'GET' | 'POST'; body?: string }): Promise<Answer> {
  const url = `${settings.baseUrl.replace(/\/$/, '')}/${path}`;
  let res: Response;
  try {
    res = await ServerConnection.makeRequest(url, { method: init.method, ...(init.body ? { body: init.body, headers: { 'Content-Type': 'application/json' } } : {}) }, settings);
  } catch {
    return { status: 0, body: undefined };
  }
  let body: Record<string, unknown> | undefined;
  try {
    body = (await res.json()) as Record<string, unknown>;
  } catch {
    body = undefined;
  }
  return { status: res.status, body };
}

/** Opens the dialog and runs the flow for one notebook. */
export function submit(panel: NotebookPanel, settings: ServerConnection.ISettings): Promise<unknown> {
  const body = new Widget();
  body.node.className = 'gofer-dialog';
  body.node.setAttribute('aria-live', 'polite');
  body.node.textContent = `Saving and submitting ${panel.context.path}…`;
  let open = true;
  const dialog = new Dialog({ title: 'Submit to Gofer', body, buttons: [Dialog.okButton({ label: 'Close' })] });
  void dialog.launch().then(() => (open = false));
  return submitFlow({
    save: () => panel.context.save(),
    path: panel.context.path,
    request: (path, init) => request(settings, path, init),
    show: ({ described, error }) => (described ? view.render(document, body.node, described) : view.renderError(document, body.node, error ?? '')),
    view,
    now: () => Date.now(),
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    open: () => open,
  });
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyterlab-gofer:submit',
  description: 'A Submit button on the notebook toolbar that sends the saved notebook to Gofer.',
  autoStart: true,
  activate: (app: JupyterFrontEnd) => {
    const settings = app.serviceManager.serverSettings;
    app.docRegistry.addWidgetExtension('Notebook', {
      createNew: (panel: NotebookPanel) => {
        const button = new ToolbarButton({
          className: 'gofer-submit',
          label: 'Submit',
          tooltip: 'Submit this notebook to Gofer for grading',
          onClick: () => void submit(panel, settings),
        });
        button.node.id = `gofer-submit-${panel.id}`;
        panel.toolbar.insertItem(10, 'gofer-submit', button);
        return button;
      },
    });
  },
};

export default plugin;
