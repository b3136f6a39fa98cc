import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createDb } from '../../src/db/knex.js';
import { systemClock } from '../../src/lib/clock.js';
import { ApiTokenStore } from '../../src/submissions/identity.js';
import { notebook } from '../helpers/notebooks.js';
import { bodyOf, rawRequest, ServerReads } from '../helpers/raw-http.js';
import { startService } from '../helpers/service.js';

const MB = 1024 * 1024;
/** What a server reads of a body before it answers when it answers at once: what had arrived. */
const UNREAD_MARGIN = 2 * MB;
const MULTIPART = 'multipart/form-data; boundary=b';

function filePart(content: string): Buffer {
  return Buffer.from(`--b\r\nContent-Disposition: form-data; name="file"; filename="lab01.ipynb"\r\nContent-Type: application/json\r\n\r\n${content}`);
}

/**
 * The connections keep alive unless a test says otherwise: a server that answers early and
 * then reads the rest of a body to reuse the connection has still read the body.
 */
describe('intake: no body is read before the caller is known, and uploads are capped (SQLite)', function () {
  this.timeout(60_000);
  let svc: Awaited<ReturnType<typeof startService>>;
  let reads: ServerReads;
  let token: string;
  let probes = 0;

  before(async () => {
    svc = await startService(); // the default 25 MB notebook limit
    const db = createDb(svc.config);
    token = await new ApiTokenStore(db, systemClock).create('ada');
    await db.destroy();
    reads = new ServerReads();
  });
  after(async () => {
    reads?.close();
    await svc?.stop();
  });

  async function send(path: string, headers: Record<string, string>, body: ReturnType<typeof bodyOf>, chunked = false) {
    const probe = `p${++probes}`;
    const res = await rawRequest(svc.url, { method: 'POST', path, headers: { ...headers, 'x-probe': probe } }, { ...body, chunked });
    return { ...res, serverRead: reads.bytesReadBeforeAnswer(probe) };
  }

  const filler = Buffer.alloc(MB, 'x');
  const nb = JSON.stringify({ nb: notebook(['x = 1'], { section: '1', assignment: 'lab01' }) });
  for (const [what, path, type, body] of [
    ['the hub submit endpoint', '/services/gofer/', 'application/json', bodyOf([Buffer.from(`{"nb": {"padding": "`), ...Array(24).fill(filler), Buffer.from('"}}')])],
    ['the REST API, JSON', '/api/v1/submissions', 'application/json', bodyOf([Buffer.from(`{"nb": {"padding": "`), ...Array(24).fill(filler), Buffer.from('"}}')])],
    ['the REST API, a file upload', '/api/v1/submissions', MULTIPART, bodyOf([filePart(nb.slice(0, -1)), ...Array(24).fill(filler), Buffer.from('}\r\n--b--\r\n')])],
  ] as const) {
    it(`${what}: an anonymous 24 MB upload gets its 401 and the connection closes without the server reading it`, async () => {
      const res = await send(path, { 'content-type': type }, body);
      expect(res.status).to.equal(401);
      expect(res.response).to.match(/could not tell who you are/);
      expect(res.serverRead).to.be.below(UNREAD_MARGIN);
      expect(res.sent, 'the client stopped sending when the connection closed').to.be.below(body.length);
    });
  }

  it('a refused notebook of ordinary size is read and dropped, so a client that sends it all before reading (Python urllib) sees the answer', async () => {
    const script = [
      'import sys, urllib.request, urllib.error',
      'req = urllib.request.Request(sys.argv[1], data=sys.stdin.buffer.read(), headers={"content-type": "application/json"})',
      'try:',
      '    urllib.request.urlopen(req)',
      'except urllib.error.HTTPError as e:',
      '    print(e.code, e.read().decode())',
    ].join('\n');
    const child = promisify(execFile)('python3', ['-c', script, `${svc.url}/services/gofer/`]);
    child.child.stdin!.end(JSON.stringify({ nb: notebook(['x = 1'], { padding: 'z'.repeat(900 * 1024) }) }));
    const { stdout } = await child;
    expect(stdout).to.match(/^401 Gofer could not tell who you are/);
  });

  it('an upload to the LTI assignment page from a browser without its launch cookie gets its 403 page, and the connection closes without the server reading it', async () => {
    const lti = await startService({ overrides: { lti: { development: true, url: 'http://127.0.0.1:9' } } });
    try {
      const body = bodyOf([filePart(nb.slice(0, -1)), ...Array(24).fill(filler), Buffer.from('}\r\n--b--\r\n')]);
      const probe = `p${++probes}`;
      const res = await rawRequest(lti.url, { method: 'POST', path: '/app/submit?l=x&csrf=x', headers: { 'content-type': MULTIPART, 'x-probe': probe } }, body);
      expect(res.status).to.equal(403);
      expect(res.response).to.match(/text\/html/).and.match(/did not send Gofer its session cookie/);
      // kept alive, the connection would read (and drop) the rest of the body a browser keeps sending
      expect(res.response).to.match(/^Connection: close\r$/im);
      expect(reads.bytesReadBeforeAnswer(probe)).to.be.below(UNREAD_MARGIN);
      expect(res.sent, 'the client stopped sending when the connection closed').to.be.below(body.length);
    } finally {
      await lti.stop();
    }
  });

  it('a file upload whose Content-Length is over the cap gets its 413 unread', async () => {
    const res = await send('/api/v1/submissions', { 'content-type': MULTIPART, authorization: `token ${token}` }, bodyOf([filePart(''), ...Array(40).fill(filler), Buffer.from('\r\n--b--\r\n')]));
    expect(res.status).to.equal(413);
    expect(res.response).to.match(/larger than 25 MB/);
    expect(res.serverRead).to.be.below(UNREAD_MARGIN);
    expect(res.sent).to.be.below(40 * MB);
  });

  it('a chunked file upload that grows past the cap (a small notebook, then field after field) is cut off with a 413', async () => {
    const field = (i: number) => Buffer.from(`\r\n--b\r\nContent-Disposition: form-data; name="f${i}"\r\n\r\n${'y'.repeat(512 * 1024)}`);
    const body = bodyOf([filePart(JSON.stringify(notebook(['x = 1'], { section: '1', assignment: 'lab01' }))), ...Array.from({ length: 60 }, (_, i) => field(i)), Buffer.from('\r\n--b--\r\n')]);
    const res = await send('/api/v1/submissions', { 'content-type': MULTIPART, authorization: `token ${token}` }, body, true);
    expect(res.status).to.equal(413);
    expect(res.response).to.match(/larger than 25 MB/);
    expect(res.serverRead).to.be.below(25 * MB + UNREAD_MARGIN);
    // (how much of the rest the client managed to send depends on the machine's socket buffers:
    // up to several MB of a body 6 MB over the cap fit in them, so it is not asserted)
  });

  it("an identified learner's upload within the cap is read and stored", async () => {
    const body = bodyOf([filePart(JSON.stringify(notebook(['x = 2'], { section: '1', assignment: 'lab01' }))), Buffer.from('\r\n--b--\r\n')]);
    const res = await send('/api/v1/submissions', { 'content-type': MULTIPART, authorization: `token ${token}`, connection: 'close' }, body);
    expect(res.status).to.equal(202);
    expect(res.serverRead).to.be.above(body.length);
  });
});
