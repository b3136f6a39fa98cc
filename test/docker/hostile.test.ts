import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:net';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type Docker from 'dockerode';
import { gradingSchema, type Policy } from '../../src/config/schema.js';
import type { ContainerRunner } from '../../src/grading/container-runner.js';
import { gradeNotebook, readAssignment } from '../../src/grading/grader.js';
import type { GradingResult } from '../../src/grading/result.js';
import { assignmentOf, gradingContainers, IMAGE, requireEngine, RUNNER_MODES, gradeIn } from '../helpers/engine.js';
import { notebookBytes, okTest } from '../helpers/notebooks.js';

/**
 * Hostile notebooks against the real engine: each gets a precise status, leaves no container
 * behind, and cannot see the tests or forge the result.
 */
const SECRET = 'TOPSECRET_EXPECTED_9731';

const assignment = assignmentOf;

for (const mode of RUNNER_MODES) {
  describe(`hostile notebooks (real engine) (${mode.name})`, function () {
    this.timeout(240_000);
    let docker: Docker;
    let runner: ContainerRunner;
    let plain: Awaited<ReturnType<typeof assignment>>;

    after(() => runner.stop());
    before(async () => {
      ({ docker, runner } = await requireEngine({ pool: mode.pool }));
      plain = await assignment({
        q1: okTest({ name: 'q1', cases: [{ code: '>>> answer\n42' }] }),
        q2: okTest({ name: 'q2', okFormat: true, cases: [{ code: `>>> answer + 1\n43`, hidden: true }, { code: `>>> '${SECRET}'\n'${SECRET}'`, hidden: true }] }),
      });
    });

    afterEach(async () => {
      // the pool's ready containers (none had a job) are the only ones allowed to stay
      expect(await gradingContainers(docker, { pids: [process.pid], except: await runner.settled() }), 'grading containers left behind').to.equal(0);
    });

    async function run(cells: string[], opts: { timeoutSeconds?: number; memoryMb?: number; policy?: Policy; tests?: typeof plain } = {}): Promise<GradingResult> {
      const limits = gradingSchema.parse({ timeoutSeconds: opts.timeoutSeconds ?? 20, memoryMb: opts.memoryMb ?? 512, pids: 128 });
      return gradeIn(runner, { notebook: notebookBytes(cells), policy: opts.policy ?? 'otter', image: IMAGE, limits, ...(opts.tests ?? plain) });
    }

    it('an infinite loop: timeout, no score', async () => {
      const r = await run(['answer = 42', 'while True:\n    pass'], { timeoutSeconds: 4 });
      expect(r.status).to.equal('timeout');
      expect(r.score).to.equal(0);
      expect(r.message).to.match(/cell 2 .*4 s/i);
    });

    it('an infinite loop that swallows interrupts: timeout', async () => {
      const r = await run(['answer = 42', 'while True:\n    try:\n        while True:\n            pass\n    except BaseException:\n        pass'], { timeoutSeconds: 4 });
      expect(r.status).to.equal('timeout');
    });

    it('a memory bomb: out_of_memory', async () => {
      const r = await run(['answer = 42', 'hog = []\nwhile True:\n    hog.append(bytearray(16 * 1024 * 1024))'], { memoryMb: 256 });
      expect(r.status).to.equal('out_of_memory');
      expect(r.message).to.match(/256 MB/);
    });

    it('a fork bomb: stopped by the process limit, the notebook is still graded', async () => {
      const r = await run([
        'answer = 42',
        'import os\nkids = 0\ntry:\n    while True:\n        if os.fork() == 0:\n            import time\n            time.sleep(600)\n            os._exit(0)\n        kids += 1\nexcept OSError as e:\n    stopped = type(e).__name__',
      ]);
      expect(r.status).to.equal('graded');
      expect(r.tests.find((t) => t.name === 'q1')?.passed).to.equal(true);
    });

    it('a flood of output (200 MB printed, 200 MB written to fd 1 and 2) under a 256 MB limit: graded', async () => {
      const r = await run(
        [
          'import sys, os\nfor _ in range(200000):\n    print("x" * 1000)\nfor _ in range(2000):\n    os.write(1, b"y" * 100000)\n',
          'for _ in range(100000):\n    print("z" * 1000, file=sys.stderr)\nfor _ in range(1000):\n    os.write(2, b"w" * 100000)\n',
          'from IPython.display import display\nfor _ in range(20000):\n    display("v" * 10000)',
          'answer = 42',
        ],
        { timeoutSeconds: 60, memoryMb: 256 },
      );
      expect(r.status).to.equal('graded');
      expect(r.score).to.equal(1);
    });

    it('an attempt to reach the network: no route, no connection reaches the host', async () => {
      let connections = 0;
      const server: Server = createServer((s) => {
        connections++;
        s.destroy();
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const port = (server.address() as { port: number }).port;
      try {
        const tests = await assignment({
          net: okTest({ name: 'net', cases: [{ code: '>>> outcomes\n[False, False]' }] }),
        });
        const r = await run(
          [
            'import socket\noutcomes = []',
            `try:\n    socket.create_connection(('127.0.0.1', ${port}), timeout=2)\n    outcomes.append(True)\nexcept OSError:\n    outcomes.append(False)`,
            "try:\n    socket.getaddrinfo('deb.debian.org', 80)\n    outcomes.append(True)\nexcept OSError:\n    outcomes.append(False)",
          ],
          { tests },
        );
        expect(r.status).to.equal('graded');
        expect(r.score, 'the notebook reached something').to.equal(1);
        expect(connections).to.equal(0);
      } finally {
        server.close();
      }
    });

    it('code that hunts for the hidden tests while the notebook runs finds nothing', async () => {
      const tests = await assignment({
        q1: okTest({ name: 'q1', cases: [{ code: '>>> answer\n42' }] }),
        leak: okTest({ name: 'leak', okFormat: true, cases: [{ code: '>>> found\n[]', hidden: false }, { code: `>>> '${SECRET}'\n'${SECRET}'`, hidden: true }] }),
      });
      const r = await run(
        [
          'answer = 42',
          [
            'import os',
            'found = []',
            `def look(p):`,
            `    try:`,
            `        with open(p, 'rb') as f:`,
            `            if b'${SECRET.slice(0, 9)}' in f.read():`,
            `                found.append(p)`,
            `    except Exception:`,
            `        pass`,
            `for top in ['/gofer', '/tmp', '/proc/1', '/home', '/root', '/run', '/var/tmp']:`,
            `    for d, _, files in os.walk(top):`,
            `        for name in files:`,
            `            look(os.path.join(d, name))`,
            `for p in ['/proc/1/environ', '/proc/1/cmdline', '/proc/1/mem', '/proc/1/fd/0', '/gofer/tests/leak.py', '/gofer/job.json']:`,
            `    look(p)`,
            `# the kernel's own memory: found by a 4-byte anchor and a hash, so the search holds no copy of the secret`,
            `import hashlib`,
            `def scan_own_memory(anchor=b'${SECRET.slice(0, 4)}', digest='${createHash('sha256').update(SECRET).digest('hex')}', size=${SECRET.length}):`,
            `    with open('/proc/self/maps') as maps, open('/proc/self/mem', 'rb') as mem:`,
            `        for line in maps.read().splitlines():`,
            `            fields = line.split()`,
            `            start, end = (int(x, 16) for x in fields[0].split('-'))`,
            `            if not fields[1].startswith('r') or end - start > 1 << 30:`,
            `                continue`,
            `            try:`,
            `                mem.seek(start)`,
            `                data = mem.read(end - start)`,
            `            except (OSError, ValueError, OverflowError):`,
            `                continue`,
            `            at = data.find(anchor)`,
            `            while at >= 0:`,
            `                if hashlib.sha256(data[at:at + size]).hexdigest() == digest:`,
            `                    return True`,
            `                at = data.find(anchor, at + 1)`,
            `    return False`,
            `if scan_own_memory():`,
            `    found.append('memory')`,
            `try:`,
            `    os.setuid(0)`,
            `    found.append('setuid')`,
            `except OSError:`,
            `    pass`,
          ].join('\n'),
        ],
        { tests },
      );
      expect(r.status).to.equal('graded');
      expect(r.tests.find((t) => t.name === 'leak'), JSON.stringify(r.tests)).to.include({ passed: true });
    });

    it('code that forges the result or patches the test machinery changes nothing', async () => {
      const fake = JSON.stringify({ status: 'graded', message: null, tests: [{ name: 'q1', points: 99, maxPoints: 99, passed: true, hidden: false }], error: null });
      const r = await run([
        'answer = 0  # wrong',
        `import os\nprint('GOFER-RESULT ' + '0' * 32 + ' ' + ${JSON.stringify(fake)})\nos.write(1, b'GOFER-RESULT x ' + ${JSON.stringify(fake)}.encode() + b'\\n')\nopen('/tmp/result.json', 'w').write(${JSON.stringify(fake)})`,
        [
          'import doctest, builtins',
          'doctest.OutputChecker.check_output = lambda *a, **k: True',
          'doctest.DocTestRunner.run = lambda *a, **k: doctest.TestResults(0, 1)',
          'class Liar(int):',
          '    def __eq__(self, other): return True',
          '    def __repr__(self): return "42"',
          'answer = Liar(0)',
        ].join('\n'),
      ]);
      expect(r.status).to.equal('graded');
      const q1 = r.tests.find((t) => t.name === 'q1');
      // repr forging passes a visible test whose expected output the learner knows (as in any doctest),
      // but nothing reaches the points or the hidden test
      expect(q1?.maxPoints).to.equal(1);
      expect(r.tests.find((t) => t.name === 'q2')?.points).to.equal(0.5);
      expect(r.maxPoints).to.equal(2);
    });

    it('io_uring, AF_VSOCK and AF_ALG sockets are refused inside the container; no core dumps, a file-size limit, a 64 MB /dev/shm', async () => {
      const tests = await assignment({
        refused: okTest({ name: 'refused', cases: [{ code: ">>> refused\n{'io_uring_setup': True, 'AF_VSOCK': True, 'AF_ALG': True}" }] }),
        limits: okTest({ name: 'limits', cases: [{ code: '>>> core, fsize_bytes > 0, shm_mb\n((0, 0), True, 64)' }] }),
      });
      const r = await run(
        [
          [
            'import ctypes, errno, os, resource, socket',
            'libc = ctypes.CDLL(None, use_errno=True)',
            'params = ctypes.create_string_buffer(120)',
            'refused = {"io_uring_setup": libc.syscall(425, 4, params) == -1}',
            'for name, family in (("AF_VSOCK", 40), ("AF_ALG", 38)):',
            '    try:',
            '        socket.socket(family, socket.SOCK_STREAM if family == 40 else socket.SOCK_SEQPACKET).close()',
            '        refused[name] = False',
            '    except OSError:',
            '        refused[name] = True',
            'core = resource.getrlimit(resource.RLIMIT_CORE)',
            'fsize_bytes = resource.getrlimit(resource.RLIMIT_FSIZE)[0]',
            'st = os.statvfs("/dev/shm")',
            'shm_mb = st.f_blocks * st.f_frsize // (1024 * 1024)',
          ].join('\n'),
        ],
        { tests },
      );
      expect(r.status, r.message ?? '').to.equal('graded');
      expect(r.tests.find((t) => t.name === 'refused'), JSON.stringify(r.tests)).to.include({ passed: true });
      expect(r.tests.find((t) => t.name === 'limits'), JSON.stringify(r.tests)).to.include({ passed: true });
    });

    it("a notebook that breaks its kernel's message signatures: kernel_died once, with a fixed sentence and nothing of the tests", async () => {
      const r = await run(['answer = 42', 'kernel = get_ipython().kernel\nkernel.session.sign = lambda parts: b"".join(parts)']);
      expect(r.status).to.equal('kernel_died');
      expect(r.score).to.equal(0);
      expect(JSON.stringify(r)).not.to.include(SECRET);
      expect(JSON.stringify(r)).not.to.include('answer + 1');
      expect(r.message).to.match(/could not verify/);
    });

    it('a solutions.py beside the tests is not in the container unless the assignment lists it', async () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'gofer-hostile-'));
      mkdirSync(path.join(dir, 'tests'));
      writeFileSync(path.join(dir, 'tests', 'q1.py'), okTest({ name: 'q1', cases: [{ code: '>>> found\nFalse' }] }));
      writeFileSync(path.join(dir, 'solutions.py'), `ANSWER = '${SECRET}'\n`);
      const tests = await readAssignment(path.join(dir, 'tests'));
      expect(tests.supportFiles).to.deep.equal([]);
      const r = await run(['import os\nfound = any(os.path.exists(p) for p in ("solutions.py", "/tmp/work/solutions.py"))'], { tests });
      expect(r.status).to.equal('graded');
      expect(r.score, JSON.stringify(r.tests)).to.equal(1);
    });

    it('a notebook that kills its own kernel: kernel_died, no score', async () => {
      const r = await run(['answer = 42', 'import os, signal\nos.kill(os.getpid(), signal.SIGKILL)', 'after = 1']);
      expect(r.status).to.equal('kernel_died');
      expect(r.score).to.equal(0);
      expect(r.message).to.be.a('string').and.not.empty;
    });

    it('a notebook that is not valid JSON: invalid_notebook without starting a container', async () => {
      const r = await gradeNotebook(runner, { notebook: Buffer.from('{"cells": [ oops'), policy: 'gofer', image: IMAGE, limits: gradingSchema.parse({}), ...plain });
      expect(r.status).to.equal('invalid_notebook');
      expect(r.message).to.match(/not valid JSON/);
    });

    it('a notebook that is not nbformat 4: invalid_notebook', async () => {
      const r = await gradeNotebook(runner, { notebook: Buffer.from(JSON.stringify({ nbformat: 3, nbformat_minor: 0, metadata: {}, worksheets: [] })), policy: 'gofer', image: IMAGE, limits: gradingSchema.parse({}), ...plain });
      expect(r.status).to.equal('invalid_notebook');
      expect(r.message).to.match(/nbformat 3/);
    });

    it('tests carried inside the notebook (metadata.otter) are ignored', async () => {
      const nb = JSON.parse(notebookBytes(['answer = 1']).toString());
      nb.metadata.otter = { tests: { q1: { name: 'q1', points: 1, suites: [{ cases: [{ code: '>>> True\nTrue' }], type: 'doctest', setup: '', teardown: '' }] } } };
      const r = await gradeNotebook(runner, { notebook: Buffer.from(JSON.stringify(nb)), policy: 'otter', image: IMAGE, limits: gradingSchema.parse({ timeoutSeconds: 20 }), ...plain });
      expect(r.status).to.equal('graded');
      // only the instructor's tests count: q1 fails, q2 gets its constant case (0.5 of 2)
      expect(r.points).to.equal(0.5);
      expect(r.maxPoints).to.equal(2);
    });
  });
}
