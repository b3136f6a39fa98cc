import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { examine, ExaminerPool, notebookValue } from '../../src/submissions/examine.js';
import { InfrastructureError } from '../../src/lib/errors.js';
import { notebook } from '../helpers/notebooks.js';

const nb = notebook(['x = 1'], { assignment: 'lab01' });
const body = (value: unknown): Buffer => Buffer.from(JSON.stringify({ nb: value }));
const sha = (text: string): string => createHash('sha256').update(text).digest('hex');

describe('examining received notebooks', () => {
  it('keeps the notebook text exactly as sent in a {"nb": …} body, with its sha256 and metadata', () => {
    const text = JSON.stringify(nb, null, 2);
    const e = examine({ kind: 'json-body', bytes: Buffer.from(`{"nb": ${text}}`) });
    expect(e).to.deep.equal({ ok: true, metadata: nb.metadata, text, sha256: sha(text) });
  });

  it('stores the nb of a body with other members serialised again, and a file as uploaded', () => {
    const withExtra = examine({ kind: 'json-body', bytes: Buffer.from(JSON.stringify({ nb, note: 'hi' })) });
    expect(withExtra).to.include({ ok: true, text: JSON.stringify(nb) });
    const file = JSON.stringify(nb, null, 1);
    expect(examine({ kind: 'file', bytes: Buffer.from(file) })).to.include({ ok: true, text: file, sha256: sha(file) });
  });

  const bad: Array<[string, Buffer, 'input' | 'unprocessable', RegExp]> = [
    ['an empty body', Buffer.alloc(0), 'input', /not valid JSON/],
    ['a repeated nb whose last is no notebook', Buffer.from(`{"nb": ${JSON.stringify(nb)}, "nb": 3}`), 'unprocessable', /should be the notebook itself/],
    ['a JSON string', Buffer.from('"nb"'), 'unprocessable', /should be a JSON object/],
    ['no nb', body(undefined), 'unprocessable', /has no notebook/],
    ['nbformat 3', body({ nbformat: 3, worksheets: [] }), 'unprocessable', /nbformat 3/],
  ];
  for (const [what, bytes, kind, message] of bad) {
    it(`answers ${what} with a specific ${kind} message`, () => {
      const e = examine({ kind: 'json-body', bytes });
      expect(e.ok).to.equal(false);
      if (!e.ok) {
        expect(e.kind).to.equal(kind);
        expect(e.message).to.match(message);
      }
    });
  }
});

describe('ExaminerPool: notebooks examined on threads of their own', function () {
  this.timeout(30_000);
  let pool: ExaminerPool;
  beforeEach(() => {
    pool = new ExaminerPool(2);
  });
  afterEach(async () => pool.close());

  it('answers as examine does, for many notebooks at once', async () => {
    const bodies = Array.from({ length: 40 }, (_, i) => body(notebook([`x = ${i}`], { assignment: 'lab01' })));
    const expected = bodies.map((b) => examine({ kind: 'json-body', bytes: Buffer.from(b) }));
    const got = await Promise.all(bodies.map((bytes) => pool.examine({ kind: 'json-body', bytes })));
    expect(got).to.deep.equal(expected);
  });

  it('copies a small body that shares memory with other buffers, and moves a large one', async () => {
    const small = body(nb);
    const smallText = small.toString();
    expect(small.buffer.byteLength).to.be.greaterThan(small.byteLength); // a slice of Node's buffer pool
    await pool.examine({ kind: 'json-body', bytes: small });
    expect(small.toString()).to.equal(smallText);
    const large = body({ ...nb, metadata: { assignment: 'lab01', pad: 'x'.repeat(100_000) } });
    expect((await pool.examine({ kind: 'json-body', bytes: large })).ok).to.equal(true);
    expect(large.byteLength).to.equal(0); // moved to the examining thread
  });

  it('answers a notebook nested too deeply to serialise with a sentence, and keeps working', async () => {
    const deep = '['.repeat(200_000) + ']'.repeat(200_000);
    const bytes = Buffer.from(`{"nb": {"nbformat": 4, "cells": [], "metadata": {"d": ${deep}}}, "x": 1}`);
    const e = await pool.examine({ kind: 'json-body', bytes });
    expect(e.ok).to.equal(false);
    if (!e.ok) expect(e.message).to.match(/cannot read this notebook|nested|call stack/i);
    expect((await pool.examine({ kind: 'json-body', bytes: body(nb) })).ok).to.equal(true);
  });

  it('fails what a dying thread held as an infrastructure error, and replaces the thread', async () => {
    const huge = body({ ...nb, cells: Array.from({ length: 20_000 }, (_, i) => ({ cell_type: 'code', source: `x = ${i}`, metadata: {}, outputs: [] })) });
    const held = pool.examine({ kind: 'json-body', bytes: huge });
    const threads = (pool as unknown as { examiners: Array<{ worker: { terminate(): Promise<number> } }> }).examiners;
    await Promise.all(threads.map((t) => t.worker.terminate()));
    const err = await held.then(() => undefined, (e: unknown) => e);
    expect(err).to.be.instanceOf(InfrastructureError);
    expect((err as Error).message).to.match(/could not examine this notebook .*submit it again/);
    expect((await pool.examine({ kind: 'json-body', bytes: body(nb) })).ok).to.equal(true);
  });

  it('refuses work once closed', async () => {
    await pool.close();
    const err = await pool.examine({ kind: 'json-body', bytes: body(nb) }).then(() => undefined, (e: unknown) => e);
    expect(err).to.be.instanceOf(InfrastructureError);
  });
});

const cut = (body: string | Buffer): string | undefined => notebookValue(Buffer.isBuffer(body) ? body : Buffer.from(body))?.toString('utf8');

describe('notebookValue: the notebook\'s bytes in a {"nb": …} body', () => {
  it('cuts the value out of the compact body every submit button sends', () => {
    expect(cut('{"nb":{"cells":[],"nbformat":4}}')).to.equal('{"cells":[],"nbformat":4}');
  });

  it('leaves out the whitespace JSON allows around the member, and a byte-order mark', () => {
    expect(cut(' \n{ "nb" :\t{"a": 1}\r\n }\n')).to.equal('{"a": 1}');
    expect(cut(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"nb":{}}')]))).to.equal('{}');
  });

  it('keeps multi-byte text intact', () => {
    expect(cut('{"nb":{"source":"π ≈ 3.14 ✓"}}')).to.equal('{"source":"π ≈ 3.14 ✓"}');
  });

  it('declines bodies of another shape, which are parsed whole', () => {
    for (const body of ['{"other":{},"nb":{}}', '{"nbx":{}}', '{"\\u006eb":{}}', '[{"nb":{}}]', '{"nb":{}]', '', '{"nb"']) {
      expect(cut(body), body).to.equal(undefined);
    }
  });

  it('does not judge what it cut: a repeated key or a cut-short body yields text that is not one JSON value', () => {
    for (const body of ['{"nb":{"a":1}, "nb":{"b":2}}', '{"nb":{}']) expect(() => JSON.parse(cut(body)!), body).to.throw();
  });
});
