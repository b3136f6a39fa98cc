import { expect } from 'chai';
import express from 'express';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { courseSchema, type Config } from '../../src/config/schema.js';
import type { Db } from '../../src/db/knex.js';
import { systemClock } from '../../src/lib/clock.js';
import { errorMiddleware } from '../../src/lib/error-middleware.js';
import { silentLogger } from '../../src/lib/logger.js';
import { PassbackOutbox } from '../../src/passback/outbox.js';
import { hubUserSchema, Signer, type Identity } from '../../src/submissions/identity.js';
import { SubmissionStore } from '../../src/submissions/store.js';
import { StaffActions } from '../../src/web/staff/actions-store.js';
import { hubStaffRouter } from '../../src/web/staff/hub.js';
import { CourseReport } from '../../src/web/staff/report.js';
import { freshDb } from '../helpers/databases.js';

const PREFIX = '/services/gofer/';

/**
 * The staff pages under the hub, who may open which course: the hub's /user answers (validated
 * with the schema Gofer reads them with) stand in for the logged-in browsers. A hub group named
 * in `instructorGroups` makes its members staff of that course only; a user of no such group,
 * or of another course's, gets 403 and nothing of the course; a browser without a hub session is
 * sent to the hub login.
 */
describe('Staff pages under the hub: instructors and instructor groups, course by course', () => {
  let db: Db;
  let drop: () => Promise<void>;
  let server: Server;
  let base: string;
  // the hub's answers for each browser, by a test header standing in for the session cookie
  const answers: Record<string, unknown> = {
    prof: { kind: 'user', name: 'prof', admin: false, groups: [] },
    tina: { kind: 'user', name: 'tina', admin: false, groups: ['ta-a'] },
    bea: { kind: 'user', name: 'bea', admin: false, groups: ['ta-b'] },
    ada: { kind: 'user', name: 'ada', admin: false, groups: ['learners'] },
    root: { kind: 'user', name: 'root', admin: true, groups: [] },
  };

  before(async () => {
    ({ db, drop } = await freshDb('sqlite'));
    const courses = [
      courseSchema.parse({ id: 'a', instructors: ['prof'], instructorGroups: ['ta-a'], assignments: [{ id: 'lab01', tests: 't', points: 3 }] }),
      courseSchema.parse({ id: 'b', instructorGroups: ['ta-b'], assignments: [{ id: 'lab01', tests: 't' }] }),
    ];
    const config = { courses, queue: { maxAttempts: 3 }, grading: { timeoutSeconds: 60 } } as unknown as Config;
    const submissions = new SubmissionStore(db);
    await submissions.create({ id: 's-ada', owner: 'ada', course: 'a', assignment: 'lab01', section: null, notebook: '{}', sha256: 'a'.repeat(64) }, { now: Date.now(), duplicateWindowMs: 0, perMinute: 10, maxAttempts: 3 });
    await submissions.create({ id: 's-bob', owner: 'bob', course: 'b', assignment: 'lab01', section: null, notebook: '{}', sha256: 'b'.repeat(64) }, { now: Date.now(), duplicateWindowMs: 0, perMinute: 10, maxAttempts: 3 });
    const identity = async (req: express.Request): Promise<Identity | undefined> => {
      const answer = answers[req.get('x-test-user') ?? ''];
      if (!answer) return undefined;
      const user = hubUserSchema.parse(answer);
      return { name: user.name, admin: Boolean(user.admin), groups: user.groups ?? [], via: 'hub-cookie' };
    };
    const app = express();
    app.use(
      PREFIX,
      hubStaffRouter({
        config,
        report: new CourseReport(db),
        submissions,
        clock: systemClock,
        actions: new StaffActions(db),
        outbox: new PassbackOutbox(db),
        notifyPassback: () => undefined,
        wakeGrading: () => undefined,
        resend: async () => false,
        signer: new Signer('s'.repeat(32)),
        identity,
        prefix: PREFIX,
      }),
    );
    app.use(errorMiddleware(silentLogger(), 1));
    server = await new Promise<Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}${PREFIX}`;
  });
  after(async () => {
    await new Promise((r) => server?.close(r));
    await drop?.();
  });

  const get = async (who: string | undefined, path: string) => {
    const res = await fetch(base + path, { headers: who ? { 'x-test-user': who } : {}, redirect: 'manual' });
    return { status: res.status, text: await res.text(), location: res.headers.get('location') };
  };

  it('lists the courses a user is instructor of: by name, by hub group, none', async () => {
    const list = (text: string) => [...text.matchAll(/href="staff\?l=([^"]+)"/g)].map((m) => m[1]);
    expect(list((await get('prof', 'staff')).text)).to.deep.equal(['a']);
    expect(list((await get('tina', 'staff')).text)).to.deep.equal(['a']);
    expect(list((await get('bea', 'staff')).text)).to.deep.equal(['b']);
    expect(list((await get('root', 'staff')).text), 'a hub admin').to.deep.equal(['a', 'b']);
    expect((await get('ada', 'staff')).text).to.include('You are not an instructor of any course graded here (ada).');
  });

  it("a group's member opens their course's pages; another group's member and a learner get 403 and nothing of it", async () => {
    const own = await get('tina', 'staff?l=a');
    expect(own.status).to.equal(200);
    expect(own.text).to.include('Course a: overview').and.include('ada');
    expect((await get('tina', 'staff/learner?l=a&owner=ada')).status).to.equal(200);
    for (const who of ['bea', 'ada']) {
      for (const path of ['staff?l=a', 'staff/learner?l=a&owner=ada', 'staff/notebook?l=a&submission=s-ada', 'staff/regrade-all?l=a&assignment=lab01']) {
        const r = await get(who, path);
        expect(r.status, `${who} ${path}`).to.equal(403);
        expect(r.text, `${who} ${path}`).to.include('Only course staff may open this page.').and.not.include('lab01');
      }
    }
    // a course that does not exist is answered the same way
    expect((await get('tina', 'staff?l=nowhere')).status).to.equal(403);
  });

  it('sends a browser without a hub session to the hub login, and back', async () => {
    const r = await get(undefined, 'staff/learner?l=a&owner=ada');
    expect(r.status).to.equal(302);
    expect(r.location).to.equal(`${PREFIX}login?next=${encodeURIComponent(`${PREFIX}staff/learner?l=a&owner=ada`)}`);
  });

  it("actions need the page's token, which is the user's own for that course", async () => {
    const page = (await get('tina', 'staff/learner?l=a&owner=ada')).text;
    const csrf = /name="csrf" value="([^"]+)"/.exec(page)![1]!;
    const post = (who: string, body: Record<string, string>) =>
      fetch(base + 'staff/regrade', { method: 'POST', headers: { 'x-test-user': who, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(body).toString(), redirect: 'manual' });
    expect((await post('tina', { l: 'a', csrf: 'forged', submission: 's-ada' })).status).to.equal(403);
    // prof is staff of a too, but tina's token is not his
    expect((await post('prof', { l: 'a', csrf, submission: 's-ada' })).status).to.equal(403);
    // a hub admin's token for course a does not act in course b
    const rootCsrf = /name="csrf" value="([^"]+)"/.exec((await get('root', 'staff/learner?l=a&owner=ada')).text)![1]!;
    expect((await post('root', { l: 'b', csrf: rootCsrf, submission: 's-bob' })).status).to.equal(403);
    expect(Number((await db('staff_actions').count({ n: '*' }).first())!.n)).to.equal(0);
    const done = await post('tina', { l: 'a', csrf, submission: 's-ada' });
    expect(done.status).to.equal(303);
    expect(await db('staff_actions').select('course', 'kind', 'actor_sub', 'actor_name')).to.deep.equal([{ course: 'a', kind: 'regrade', actor_sub: 'hub:tina', actor_name: 'tina' }]);
  });
});
