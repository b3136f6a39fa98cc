/**
 * The first look at a learner's notebook, before any container starts: is it JSON, is it
 * nbformat 4, does it have cells. A notebook that fails is a result (`invalid_notebook`),
 * not an error: the learner can fix it and submit again.
 */
export type NotebookCheck = { ok: true; notebook: Notebook } | { ok: false; message: string };

export interface Notebook {
  nbformat: number;
  nbformat_minor?: number;
  metadata: Record<string, unknown>;
  cells: Array<{ cell_type: string; source: string | string[] }>;
}

export function checkNotebook(bytes: Buffer | string): NotebookCheck {
  let data: unknown;
  try {
    data = JSON.parse(typeof bytes === 'string' ? bytes : bytes.toString('utf8'));
  } catch (err) {
    return { ok: false, message: `The notebook is not valid JSON (${(err as Error).message}). Save it again from Jupyter and resubmit.` };
  }
  return checkNotebookData(data);
}

/** The same checks on a notebook already parsed (a JSON request body). */
export function checkNotebookData(data: unknown): NotebookCheck {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    return { ok: false, message: 'The notebook is not a Jupyter notebook: its JSON is not an object.' };
  }
  const nb = data as Record<string, unknown>;
  if (nb.nbformat !== 4) {
    const seen = nb.nbformat === undefined ? 'has no nbformat version' : `is nbformat ${JSON.stringify(nb.nbformat)}`;
    return { ok: false, message: `The notebook ${seen}; Gofer grades nbformat 4 notebooks (Jupyter 4 or later).` };
  }
  if (!Array.isArray(nb.cells)) {
    return { ok: false, message: 'The notebook has no list of cells.' };
  }
  for (const [i, cell] of nb.cells.entries()) {
    const c = cell as Record<string, unknown> | null;
    const sourceOk = c && (typeof c.source === 'string' || (Array.isArray(c.source) && c.source.every((s) => typeof s === 'string')));
    if (!c || typeof c.cell_type !== 'string' || !sourceOk) {
      return { ok: false, message: `Cell ${i + 1} of the notebook is malformed (it needs a cell_type and a source).` };
    }
  }
  const metadata = typeof nb.metadata === 'object' && nb.metadata !== null ? (nb.metadata as Record<string, unknown>) : {};
  return { ok: true, notebook: { ...(nb as unknown as Notebook), metadata } };
}
