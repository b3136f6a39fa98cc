import { expect } from 'chai';
import { notebookValue } from '../../src/submissions/examine.js';

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
