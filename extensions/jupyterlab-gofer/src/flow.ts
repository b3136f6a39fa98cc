/**
 * The Submit button's flow, without JupyterLab: save, ask the jupyter_gofer server extension to
 * send the saved file, then poll the submission's status until it is graded. The view (what the
 * dialog says) is the one the classic Notebook button uses.
 */

/** What `describe` makes of a status: see jupyter_gofer/nbextension/view.js. */
export interface Described {
  done: boolean;
  state: string;
  headline: string;
  sentences: string[];
  tests: Array<{ name: string; passed: boolean; text: string; detail?: string }>;
}

export interface View {
  describe(status: unknown, now: number): Described;
  render(doc: Document, el: HTMLElement, d: Described): void;
  renderError(doc: Document, el: HTMLElement, sentence: string): void;
  POLL_MS: number;
}

/** The server extension's answer: its status code and JSON body (or undefined when it is not JSON). */
export interface Answer {
  status: number;
  body: Record<string, unknown> | undefined;
}

export interface FlowDeps {
  /** Saves the notebook; rejects when it cannot be saved. */
  save(): Promise<void>;
  /** The notebook's path relative to the server's root. */
  path: string;
  /** A request to the server extension (`gofer/submit`, `gofer/submissions/ID`), with the server's XSRF and auth. */
  request(path: string, init: { method: 'GET' | 'POST'; body?: string }): Promise<Answer>;
  /** Called with each description (and each error sentence) as it comes. */
  show(update: { described?: Described; error?: string }): void;
  view: View;
  now(): number;
  sleep(ms: number): Promise<void>;
  /** False once the dialog is closed: polling stops. */
  open(): boolean;
}

export const SAVE_FAILED = 'Your notebook could not be saved, so it was not submitted. Fix what JupyterLab says about saving and submit again.';

export function unreachable(status: number): string {
  return `The Submit button could not reach your Jupyter server (${status || 'no answer'}). Save your work, reload the page and submit again.`;
}

function sentence(a: Answer): string {
  const e = a.body?.error;
  return typeof e === 'string' ? e : unreachable(a.status);
}

/** Runs one submission to its end; resolves with the last description, or the error sentence. */
export async function submitFlow(deps: FlowDeps): Promise<{ described?: Described; error?: string }> {
  const fail = (error: string) => {
    deps.show({ error });
    return { error };
  };
  try {
    await deps.save();
  } catch {
    return fail(SAVE_FAILED);
  }
  const receipt = await deps.request('gofer/submit', { method: 'POST', body: JSON.stringify({ path: deps.path }) });
  if (receipt.status !== 200 || typeof receipt.body?.id !== 'string') return fail(sentence(receipt));
  const id = receipt.body.id;
  for (;;) {
    const status = await deps.request(`gofer/submissions/${id}`, { method: 'GET' });
    if (status.status !== 200 || !status.body) return fail(sentence(status));
    const described = deps.view.describe(status.body, deps.now());
    deps.show({ described });
    if (described.done || !deps.open()) return { described };
    await deps.sleep(deps.view.POLL_MS);
  }
}
