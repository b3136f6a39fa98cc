import { expect } from 'chai';
import { checkNotebook } from '../../src/grading/notebook.js';
import { notebookBytes } from '../helpers/notebooks.js';

describe('checkNotebook', () => {
  it('accepts an nbformat 4 notebook and keeps its metadata', () => {
    const res = checkNotebook(notebookBytes(['x = 1'], { assignment: 'lab01' }));
    expect(res.ok).to.equal(true);
    if (res.ok) expect(res.notebook.metadata.assignment).to.equal('lab01');
  });

  const bad: Array<[string, string, RegExp]> = [
    ['truncated JSON', '{"nbformat": 4, "cells": [', /not valid JSON/],
    ['a JSON list', '[1, 2]', /not an object/],
    ['nbformat 3', JSON.stringify({ nbformat: 3, worksheets: [] }), /nbformat 3; Gofer grades nbformat 4/],
    ['no version', JSON.stringify({ cells: [] }), /has no nbformat version/],
    ['no cells', JSON.stringify({ nbformat: 4, metadata: {} }), /no list of cells/],
    ['a cell without source', JSON.stringify({ nbformat: 4, metadata: {}, cells: [{ cell_type: 'code' }] }), /Cell 1 .* malformed/],
    ['binary garbage', '\u0000\u0001PK\u0003', /not valid JSON/],
  ];
  for (const [what, text, message] of bad) {
    it(`rejects ${what} with a specific message`, () => {
      const res = checkNotebook(Buffer.from(text));
      expect(res.ok).to.equal(false);
      if (!res.ok) expect(res.message).to.match(message);
    });
  }
});
