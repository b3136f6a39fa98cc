import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createDb } from '../../src/db/knex.js';
import { JobQueue } from '../../src/submissions/job-queue.js';
import { systemClock } from '../../src/lib/clock.js';
import { ApiTokenStore } from '../../src/submissions/identity.js';
import { notebook } from '../helpers/notebooks.js';
import { ROOT, startService } from '../helpers/service.js';

const EXAMPLE = JSON.parse(readFileSync(path.join(ROOT, 'config/example/lab01/lab01.ipynb'), 'utf8'));
const lab = (meta: Record<string, unknown> = { section: '1', assignment: 'lab01' }) => notebook(['x = 1'], meta);

describe('intake: the hub submit endpoint and the REST API (SQLite)', function () {
  this.timeout(30_000);
  let svc: Awaited<ReturnType<typeof startService>>;
  let ada: string;
  let bob: string;
  let prof: string;

  before(async () => {
    svc = await startService({ overrides: { server: { host: '127.0.0.1', port: 0, maxNotebookMb: 0.5, submissionsPerMinute: 4 } } });
    const db = createDb(svc.config);
    const tokens = new ApiTokenStore(db, systemClock);
    [ada, bob, prof] = await Promise.all([tokens.create('ada'), tokens.create('bob'), tokens.create('prof')]);
    await db.destroy();
  });
  after(async () => svc?.stop());

  const post = (p: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(svc.url + p, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });

  it('answers GET on the hub prefixes with a short text', async () => {
    for (const p of ['/services/gofer/', '/services/gofer_nb/', '/services/otter_grade/']) {
      const res = await fetch(svc.url + p);
      expect(res.status, p).to.equal(200);
      expect(await res.text()).to.match(/ready to grade/);
    }
  });

  it('takes the exact request gofer_submit sends, answering a plain sentence; the same notebook again is the same submission', async () => {
    const res = await post('/services/gofer_nb/', { nb: EXAMPLE }, { authorization: `token ${ada}` });
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.match(/text\/plain/);
    const text = await res.text();
    expect(text).to.match(/Your notebook for lab01 was received\. It will be graded shortly\. Submission [0-9a-f-]{36}\./);
    const again = await post('/services/gofer/', { nb: EXAMPLE, extra: 'ignored' }, { authorization: `token ${ada}`, accept: 'application/json' });
    expect(again.status).to.equal(200);
    const body = await again.json();
    expect(body.duplicate).to.equal(true);
    expect(text).to.include(body.id);
  });

  it('stores the notebook byte for byte as the button sent it, pretty-printed or not, with its sha256', async () => {
    const pretty = JSON.stringify(notebook(['y = 2'], { section: '1', assignment: 'lab01' }), null, 1);
    const body = `{ "nb" :\n${pretty}\n}\n`;
    const res = await post('/services/gofer/', body, { authorization: `token ${ada}`, accept: 'application/json' });
    expect(res.status).to.equal(200);
    const { id } = await res.json();
    const db = createDb(svc.config);
    try {
      const stored = await db('submission_notebooks').join('submissions', 'submissions.id', 'submission_notebooks.submission_id').where({ id }).first();
      expect(stored.notebook).to.equal(pretty);
      expect(stored.sha256).to.equal(createHash('sha256').update(pretty).digest('hex'));
    } finally {
      await db.destroy();
    }
  });

  it('takes the notebook JSON itself keeps when "nb" is repeated, never the text between', async () => {
    const closed = JSON.stringify(lab({ section: '1', assignment: 'closed' }));
    const open = JSON.stringify(notebook(['z = 3'], { section: '1', assignment: 'lab01' }));
    const res = await post('/services/gofer/', `{"nb": ${closed}, "nb": ${open}}`, { authorization: `token ${bob}`, accept: 'application/json' });
    expect(res.status).to.equal(200);
    const { id } = await res.json();
    const db = createDb(svc.config);
    try {
      const stored = await db('submission_notebooks').where({ submission_id: id }).first();
      expect(JSON.parse(stored.notebook)).to.deep.equal(JSON.parse(open));
    } finally {
      await db.destroy();
    }
  });

  it('REST: accepts JSON and file uploads with 202 and the id; owners and instructors read it, other learners cannot', async () => {
    const res = await post('/api/v1/submissions', { nb: lab({ otter_service: { course: '8x', section: '2', assignment: 'lab01' } }) }, { authorization: `Bearer ${bob}` });
    expect(res.status).to.equal(202);
    const { id } = await res.json();
    const form = new FormData();
    form.append('file', new Blob([JSON.stringify(lab({ lab: '1', section: '3' }))]), 'lab01.ipynb');
    const up = await fetch(svc.url + '/api/v1/submissions', { method: 'POST', headers: { authorization: `token ${bob}` }, body: form });
    expect(up.status).to.equal(202);
    expect((await up.json()).id).to.not.equal(id);

    // a result with a hidden test, recorded as a worker would
    const db = createDb(svc.config);
    // bob's other submissions are claimed on the way, and stay running
    const queue = new JobQueue(db, { retryDelayMs: 1000, maxRunningPerLearner: 10 });
    let job = await queue.claim('w', Date.now(), 60_000);
    while (job && job.submissionId !== id) job = await queue.claim('w', Date.now(), 60_000);
    await queue.complete(job!.id, 'w', id, {
      status: 'graded', score: 0.5, points: 1, maxPoints: 2, durationMs: 10,
      tests: [{ name: 'q1', points: 1, maxPoints: 1, passed: true, hidden: false }, { name: 'q2', points: 0, maxPoints: 1, passed: false, hidden: true, message: 'secret detail' }],
    }, Date.now());
    await db.destroy();

    const own = await (await fetch(`${svc.url}/api/v1/submissions/${id}`, { headers: { authorization: `token ${bob}` } })).json();
    expect(own).to.include({ owner: 'bob', course: '8x', assignment: 'lab01', status: 'graded', score: 0.5 });
    // of a hidden test the learner learns only that the score includes hidden tests: no name, no pass or fail, no message
    expect(own.tests).to.deep.equal([{ name: 'q1', points: 1, maxPoints: 1, passed: true, hidden: false }]);
    expect(own.hiddenTests).to.equal(true);
    expect(JSON.stringify(own)).not.to.include('q2').and.not.include('secret detail');
    // the one scale: points out of the assignment's points (lab01 is worth the default 1), and which submission counts
    expect(own.grade).to.deep.equal({ given: 0.5, maximum: 1, text: '0.5 / 1 point (50%)' });
    expect(own).to.include({ assignmentPoints: 1, timeLimitSeconds: 120 });
    expect(own.standing).to.include({ counts: 'latest', countingSubmission: id });
    expect(own.standing.edx).to.deep.equal(own.grade);
    expect(own.standing.sentence).to.equal('Your latest graded submission counts. edX is sent this one: 0.5 / 1 point (50%).');
    const staff = await (await fetch(`${svc.url}/api/v1/submissions/${id}`, { headers: { authorization: `token ${prof}` } })).json();
    expect(staff.tests[1]).to.include({ passed: false, message: 'secret detail' });
    const other = await fetch(`${svc.url}/api/v1/submissions/${id}`, { headers: { authorization: `token ${ada}` } });
    expect(other.status).to.equal(404);
  });

  const big = JSON.stringify({ nb: { ...lab(), padding: 'x'.repeat(600 * 1024) } });
  const cases: Array<[string, () => Promise<Response>, number, RegExp]> = [
    ['no identity', () => post('/services/gofer/', { nb: lab() }), 401, /could not tell who you are/],
    ['a malformed Authorization header', () => post('/services/gofer/', { nb: lab() }, { authorization: 'Basic YWRhOng=' }), 401, /should be "token <token>"/],
    ['a revoked or made-up API token', () => post('/services/gofer/', { nb: lab() }, { authorization: 'token gofer_nope' }), 401, /API token is not valid/],
    ['a hub token with no hub connected', () => post('/services/gofer/', { nb: lab() }, { authorization: 'token 0123abcd' }), 401, /not connected to a JupyterHub/],
    ['a body that is not JSON', () => post('/services/gofer/', '{"nb": {', { authorization: `token ${ada}` }), 400, /not valid JSON/],
    ['a body of the wrong type', () => fetch(svc.url + '/services/gofer/', { method: 'POST', headers: { 'content-type': 'text/plain', authorization: `token ${ada}` }, body: 'nb' }), 415, /Content-Type: application\/json/],
    ['a body in another charset', () => post('/services/gofer/', { nb: lab() }, { authorization: `token ${ada}`, 'content-type': 'application/json; charset=latin1' }), 415, /must be UTF-8 JSON, not latin1/],
    ['a body compressed in an unknown way', () => post('/services/gofer/', { nb: lab() }, { authorization: `token ${ada}`, 'content-encoding': 'compress' }), 415, /compressed in a way Gofer does not read/],
    ['a notebook over the size limit', () => post('/services/gofer/', big, { authorization: `token ${ada}` }), 413, /larger than 0.5 MB, usually because of saved outputs.*Clear its outputs, save it, and submit again\./],
    ['a JSON list', () => post('/services/gofer/', [1], { authorization: `token ${ada}` }), 422, /should be a JSON object/],
    ['no notebook', () => post('/services/gofer/', { notebook: lab() }, { authorization: `token ${ada}` }), 422, /has no notebook: send \{"nb"/],
    ['a notebook given as text', () => post('/services/gofer/', { nb: 'print(1)' }, { authorization: `token ${ada}` }), 422, /should be the notebook itself/],
    ['an nbformat 3 notebook', () => post('/services/gofer/', { nb: { nbformat: 3, worksheets: [] } }, { authorization: `token ${ada}` }), 422, /nbformat 3; Gofer grades nbformat 4/],
    ['a notebook without cells', () => post('/services/gofer/', { nb: { nbformat: 4, metadata: {} } }, { authorization: `token ${ada}` }), 422, /no list of cells/],
    ['no assignment metadata', () => post('/services/gofer/', { nb: lab({}) }, { authorization: `token ${ada}` }), 422, /^This notebook does not say which assignment it is for\. Submit the notebook you were given for the assignment/],
    ['an unknown course', () => post('/services/gofer/', { nb: lab({ course: 'cs61a', assignment: 'lab01' }) }, { authorization: `token ${ada}` }), 422, /for the course "cs61a", which is not graded here/],
    ['an unknown assignment that looks like a path', () => post('/services/gofer/', { nb: lab({ assignment: '../../etc/passwd' }) }, { authorization: `token ${ada}` }), 422, /has no assignment "\.\.\/\.\.\/etc\/passwd"/],
    ['metadata of the wrong type', () => post('/services/gofer/', { nb: lab({ assignment: ['lab01'] }) }, { authorization: `token ${ada}` }), 422, /^This notebook's assignment details are damaged\. Submit the notebook you were given/],
    ['past the deadline under "reject late"', () => post('/services/gofer/', { nb: lab({ assignment: 'closed' }) }, { authorization: `token ${ada}` }), 403, /deadline for closed \(2020-01-01 00:00 UTC\) has passed/],
    ['an upload without a file', () => { const f = new FormData(); f.append('note', 'hi'); return fetch(svc.url + '/api/v1/submissions', { method: 'POST', headers: { authorization: `token ${ada}` }, body: f }); }, 422, /has no file/],
    ['the REST API with a text body', () => fetch(svc.url + '/api/v1/submissions', { method: 'POST', headers: { 'content-type': 'text/plain', authorization: `token ${ada}` }, body: 'x' }), 415, /Send JSON/],
    ['a submission that does not exist', () => fetch(svc.url + '/api/v1/submissions/nope', { headers: { authorization: `token ${ada}` } }), 404, /no submission nope of yours/],
    ['a method the submit endpoint does not take', () => fetch(svc.url + '/services/gofer/', { method: 'PUT', headers: { authorization: `token ${ada}` } }), 405, /PUT is not supported here/],
  ];
  for (const [what, send, status, message] of cases) {
    it(`bad request: ${what} → ${status} with a specific message`, async () => {
      const res = await send();
      expect(res.status).to.equal(status);
      expect(await res.text()).to.match(message);
    });
  }

  it('bad request: too many submissions in a minute → 429 with Retry-After', async () => {
    let last: Response | undefined;
    for (let i = 0; i < 5; i++) last = await post('/services/gofer/', { nb: notebook([`x = ${i}`], { section: '1', assignment: 'lab01' }) }, { authorization: `token ${prof}` });
    expect(last!.status).to.equal(429);
    expect(Number(last!.headers.get('retry-after'))).to.be.within(1, 60);
    expect(await last!.text()).to.match(/submitted 4 times in the last minute; wait \d+ s/);
  });

  it('bad requests lose nothing and store nothing', async () => {
    const db = createDb(svc.config);
    const owners = (await db('submissions').select('owner')).map((r) => r.owner);
    await db.destroy();
    expect(owners.sort()).to.deep.equal(['ada', 'ada', 'bob', 'bob', 'bob', 'prof', 'prof', 'prof', 'prof']);
  });
});
