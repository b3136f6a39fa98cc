import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { requireEngine } from '../helpers/engine.js';
import { requireJupyterHub, startHub, type Hub } from '../helpers/hub.js';
import { EXAMPLE_TESTS, ROOT, writeConfig } from '../helpers/service.js';

/**
 * A real JupyterHub (the Debian 3.0 package here), its configurable-http-proxy, and Gofer as a
 * hub-managed service grading in the real Docker engine: nothing is a double. The submit request
 * is byte for byte what gofer_submit sends, plus the learner's hub token.
 */
const NOTEBOOK = JSON.parse(readFileSync(path.join(ROOT, 'config/example/lab01/lab01.ipynb'), 'utf8'));
const LEARNER = 'ada';
const UNFINISHED = ['queued', 'grading'];

interface SubmissionView {
  id: string;
  owner: string;
  course: string;
  assignment: string;
  status: string;
  score: number | null;
  points: number | null;
  maxPoints: number | null;
  message: string | null;
  tests: Array<{ name: string; passed?: boolean; points?: number; maxPoints?: number }>;
}

describe('JupyterHub end to end: Gofer as a hub-managed service (real hub, proxy and engine)', function () {
  this.timeout(90_000);
  let hub: Hub | undefined;
  let token: string;
  let submission: string | undefined;

  before(async function () {
    requireJupyterHub();
    await requireEngine();
    const { file, dir } = writeConfig({
      server: { host: '127.0.0.1', port: 0 },
      queue: { workers: 1, pollMs: 100 },
      courses: [
        {
          id: '8x',
          instructors: ['prof'],
          assignments: [{ id: 'lab01', aliases: ['1'], section: '1', tests: EXAMPLE_TESTS, files: ['data.csv'], policy: 'gofer', timeoutSeconds: 60 }],
        },
      ],
    });
    hub = await startHub({ dir, goferConfig: file, serviceName: 'gofer' });
    token = await hub.userWithToken(LEARNER);
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed' && hub) {
      process.stderr.write(`\n--- last lines of ${hub.logFile} ---\n${hub.tail(60)}\n`);
    }
  });

  after(async () => {
    const result = await hub?.stop();
    if (result?.leftovers.length) process.stderr.write(`killed after the hub stopped: ${result.leftovers.join(', ')}\n`);
  });

  const submit = (headers: Record<string, string>): Promise<Response> =>
    fetch(`${hub!.url}/services/gofer/`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...headers },
      body: JSON.stringify({ nb: NOTEBOOK }),
    });

  it('is a JupyterHub with roles and scopes (2 or later) that routes /services/gofer/ to Gofer', async () => {
    expect(Number(hub!.version.split('.')[0]), `hub version ${hub!.version}`).to.be.at.least(2);
    const res = await fetch(`${hub!.url}/services/gofer/`);
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.match(/^text\/plain/);
    expect(await res.text()).to.match(/ready to grade/);
  });

  it('answers 401 with a readable sentence when the request carries no identity (no cookie, no token)', async () => {
    const res = await submit({});
    expect(res.status).to.equal(401);
    expect(res.headers.get('content-type')).to.match(/^text\/plain/);
    expect(await res.text()).to.match(/could not tell who you are.*Authorization: token/s);
  });

  it('answers 401 when the hub does not know the token', async () => {
    const res = await submit({ Authorization: 'token 0123456789abcdef0123456789abcdef' });
    expect(res.status).to.equal(401);
    expect(await res.text()).to.match(/JupyterHub does not recognise your token/);
  });

  it('answers 403 with a sentence when the token may not reach services (no access:services scope)', async () => {
    const narrow = await hub!.userWithToken(LEARNER, [`read:users:name!user=${LEARNER}`]);
    const res = await submit({ Authorization: `token ${narrow}` });
    expect(res.status).to.equal(403);
    expect(await res.text()).to.match(/does not allow access to this service/);
  });

  it("accepts gofer_submit's request with the learner's hub token: 200 and a sentence naming the submission", async () => {
    const res = await submit({ Authorization: `token ${token}` });
    const text = await res.text();
    expect(res.status, text).to.equal(200);
    expect(res.headers.get('content-type')).to.match(/^text\/plain/);
    const m = /Your notebook for lab01 was received\b.*Submission ([0-9a-f-]{36})\./.exec(text);
    expect(m, text).to.not.equal(null);
    submission = m![1];
  });

  it("grades it in the engine: graded, score 1 (2 of 2), owned by the hub user; the REST API on Gofer's own port takes the same token", async () => {
    expect(submission, 'the submit test above did not get a submission id').to.be.a('string');
    const url = `${hub!.goferUrl}/api/v1/submissions/${submission}`;
    const until = Date.now() + 60_000;
    let view: SubmissionView | undefined;
    while (Date.now() < until) {
      const res = await fetch(url, { headers: { Authorization: `token ${token}` } });
      expect(res.status, await res.clone().text()).to.equal(200);
      view = (await res.json()) as SubmissionView;
      if (!UNFINISHED.includes(view.status)) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(view, 'no answer from the REST API').to.not.equal(undefined);
    expect(UNFINISHED, `still ${view!.status} after 60 s`).to.not.include(view!.status);
    expect(view!.status, `grading ended "${view!.status}": ${view!.message ?? ''}`).to.equal('graded');
    expect(view).to.include({ id: submission, owner: LEARNER, course: '8x', assignment: 'lab01', score: 1, points: 2, maxPoints: 2 });
    expect(view!.tests.map((t) => [t.name, t.passed])).to.deep.equal([
      ['q1', true],
      ['q2', true],
    ]);
  });

  it('stopping the hub stops its managed Gofer and the proxy: no process is left behind', async () => {
    const { exitedInMs, leftovers } = await hub!.stop();
    expect(leftovers, `still running ${exitedInMs} ms after SIGTERM to the hub`).to.deep.equal([]);
    const down = await fetch(`${hub!.goferUrl}/health`).then(
      () => 'answering',
      () => 'down',
    );
    expect(down).to.equal('down');
  });
});
