/** Builds nbformat-4 notebooks for tests: each string is one code cell. */
export function notebook(cells: string[], metadata: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: { kernelspec: { name: 'python3', display_name: 'Python 3', language: 'python' }, ...metadata },
    cells: cells.map((source, i) => ({ cell_type: 'code', id: `cell${i}`, metadata: {}, execution_count: null, outputs: [], source })),
  };
}

export function notebookBytes(cells: string[], metadata: Record<string, unknown> = {}): Buffer {
  return Buffer.from(JSON.stringify(notebook(cells, metadata)));
}

/** An OK-format test file. `okFormat` adds otter's leading `OK_FORMAT = True`. */
export function okTest(spec: {
  name: string;
  points?: number | number[];
  allOrNothing?: boolean;
  okFormat?: boolean;
  setup?: string;
  teardown?: string;
  cases: Array<{ code: string; hidden?: boolean; points?: number; failure_message?: string }>;
}): string {
  const py = (v: unknown): string =>
    v === true ? 'True' : v === false ? 'False' : Array.isArray(v) ? `[${v.map(py).join(', ')}]` : JSON.stringify(v);
  const cases = spec.cases
    .map((c) => {
      const fields = [`'code': ${py(c.code)}`];
      if (c.hidden !== undefined) fields.push(`'hidden': ${py(c.hidden)}`);
      if (c.points !== undefined) fields.push(`'points': ${py(c.points)}`);
      if (c.failure_message !== undefined) fields.push(`'failure_message': ${py(c.failure_message)}`);
      return `        {${fields.join(', ')}, 'locked': False}`;
    })
    .join(',\n');
  return [
    spec.okFormat ? 'OK_FORMAT = True\n' : '',
    'test = {',
    `    'name': ${py(spec.name)},`,
    spec.points !== undefined ? `    'points': ${py(spec.points)},` : '',
    spec.allOrNothing ? `    'all_or_nothing': True,` : '',
    `    'suites': [{'cases': [\n${cases}\n    ], 'scored': True, 'setup': ${py(spec.setup ?? '')}, 'teardown': ${py(spec.teardown ?? '')}, 'type': 'doctest'}],`,
    '}',
    '',
  ]
    .filter((l) => l !== '')
    .join('\n');
}
