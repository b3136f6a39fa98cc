import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { configPath, formatProblems, inspectConfig, loadConfig, readEnvironment, type Environment } from './config/load.js';
import { preflight } from './preflight.js';
import { POLICIES, type Config, type PlatformConfig, type Policy } from './config/schema.js';
import { ContainerRunner } from './grading/container-runner.js';
import { createDocker } from './grading/docker.js';
import { formatResult } from './grading/format.js';
import { suspiciousFiles } from './grading/assignment-files.js';
import { gradeNotebook, readAssignment } from './grading/grader.js';
import { gradeView } from './grading/scale.js';
import { buildImage, LOCAL_BASE } from './grading/image.js';
import { createDb, migrate, type Db } from './db/knex.js';
import { gradeRows, gradesCsv, legacyCsv, peopleOf } from './gradebook/export.js';
import { ResultStore } from './grading/result-store.js';
import { systemClock } from './lib/clock.js';
import { stringify as stringifyYaml } from 'yaml';
import { demoPlatformOptions, devPlatformConfig } from './dev-platform/demo.js';
import { startDevPlatform, type DevPlatform } from './dev-platform/index.js';
import { createProvider, ltiBaseUrl } from './lti/provider.js';
import { KnexLtiPlugin } from './lti/knex-plugin.js';
import { LtiStore } from './lti/store.js';
import { hubSettings, run } from './server.js';
import { ApiTokenStore, userNameProblem } from './submissions/identity.js';
import { SubmissionStore } from './submissions/store.js';
import { ConfigError, GoferError, InputError } from './lib/errors.js';
import { globMatcher } from './lib/globs.js';
import { createLogger, type Logger } from './lib/logger.js';

interface GlobalOptions {
  config?: string;
  logFormat?: 'text' | 'json';
}

/** Runs the `gofer` command; resolves to the process exit status. */
export async function main(argv: string[]): Promise<number> {
  let exitCode = 0;
  const program = new Command('gofer')
    .description('Grades Jupyter notebooks in Docker containers and sends the scores to edX (LTI 1.3).')
    .option('-c, --config <file>', 'configuration file (YAML); default: $GOFER_CONFIG, else built-in defaults')
    .addOption(new Option('--log-format <format>', 'log format on stderr').choices(['text', 'json']))
    .showHelpAfterError()
    .exitOverride();

  // the environment is read here, once, and handed to whatever needs it
  const env = readEnvironment();
  const setup = (): { config: Config; log: Logger } => {
    const opts = program.opts<GlobalOptions>();
    const config = loadConfig(configPath(opts.config, env), env);
    const log = createLogger({ level: config.log.level, format: opts.logFormat ?? config.log.format });
    return { config, log };
  };
  /** Runs `fn` with the migrated database of the configuration, and closes it. */
  const withDb = async <T>(fn: (db: Db, config: Config, log: Logger) => Promise<T>): Promise<T> => {
    const { config, log } = setup();
    const db = createDb(config, env);
    try {
      const applied = await migrate(db);
      if (applied.length) log.info(`applied ${applied.join(', ')}`);
      return await fn(db, config, log);
    } finally {
      await db.destroy();
    }
  };
  const runService = async (http: boolean, workers: number | undefined): Promise<void> => {
    const { config, log } = setup();
    const dev = http && config.devPlatform.enabled ? await startBesideGofer(config, env, log) : undefined;
    try {
      const running = await run({ config, log, env, http, ...(workers !== undefined ? { workers } : {}), ...(dev ? { platforms: [dev.entry], devPlatform: dev.platform } : {}) });
      await runUntilSignal({
        stop: async () => {
          await running.stop();
          await dev?.platform.stop();
        },
        hurry: () => running.hurry(),
      });
    } catch (err) {
      await dev?.platform.stop();
      throw err;
    }
  };

  program
    .command('grade')
    .description('grade one notebook against a directory of OK-format tests, in a container')
    .argument('<notebook>', 'the .ipynb file to grade')
    .requiredOption('--tests <dir>', 'directory of OK-format test files (q1.py, ...)')
    .option('--dir <dir>', 'assignment directory with support files (default: the parent of --tests)')
    .option('--files <pattern...>', 'support files to copy into the working directory: paths or globs under --dir (default: none)')
    .addOption(new Option('--policy <policy>', 'scoring policy').choices([...POLICIES]))
    .option('--image <image>', 'grader image (default: from the configuration)')
    .option('--timeout <seconds>', 'time limit for the notebook (and again for the tests)', positiveNumber)
    .option('--memory <mb>', 'memory limit in MB', positiveNumber)
    .option('--points <points>', "the assignment's points: the grade is out of these (default 1, as in the configuration)", positiveNumber)
    .option('--json', 'print exactly one JSON object on stdout')
    .action(async (notebookPath: string, opts: { tests: string; dir?: string; files?: string[]; policy?: Policy; image?: string; timeout?: number; memory?: number; points?: number; json?: boolean }) => {
      const { config, log } = setup();
      const limits = {
        ...config.grading,
        ...(opts.timeout ? { timeoutSeconds: opts.timeout } : {}),
        ...(opts.memory ? { memoryMb: Math.round(opts.memory) } : {}),
      };
      const image = opts.image ?? config.grading.image;
      let notebook: Buffer;
      try {
        notebook = await readFile(notebookPath);
      } catch (err) {
        throw new InputError(`Cannot read the notebook ${notebookPath}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
      const assignment = await readAssignment(opts.tests, { ...(opts.dir ? { directory: opts.dir } : {}), files: opts.files ?? [] });
      const runner = new ContainerRunner(createDocker(config), log);
      await runner.checkReady(image);
      log.info('grading', { notebook: notebookPath, tests: assignment.tests.length, image });
      const result = await gradeNotebook(runner, { notebook, image, policy: opts.policy ?? config.grading.policy, limits, ...assignment });
      if (opts.json) {
        const { timing: _timing, ...plain } = result;
        const graded = result.status === 'graded';
        const grade = graded ? gradeView(result.score, opts.points ?? 1) : null;
        const json = { ...plain, score: graded ? plain.score : null, points: graded ? plain.points : null, grade, tests: plain.tests.map(({ message: _m, ...t }) => t) };
        process.stdout.write(JSON.stringify(json) + '\n');
      } else {
        process.stdout.write(formatResult(result, opts.points ?? 1) + '\n');
      }
      // a file that is not a notebook is unusable input, though the result says why
      if (result.status === 'invalid_notebook') {
        process.stderr.write(`gofer: ${notebookPath} is not a notebook Gofer can grade${result.message ? `: ${result.message}` : ''}\n`);
        exitCode = 2;
      }
    });

  const image = program.command('image').description('manage the grader image');
  image
    .command('build')
    .description('build the grader image from docker/Dockerfile, showing progress')
    .option('--tag <image>', 'image name (default: grading.image from the configuration)')
    .option('--base <image>', `base image: ${LOCAL_BASE} (made from Debian packages here) or debian:bookworm-slim`, LOCAL_BASE)
    .action(async (opts: { tag?: string; base: string }) => {
      const { config, log } = setup();
      const tag = opts.tag ?? config.grading.image;
      const started = Date.now();
      await buildImage(createDocker(config), { tag, base: opts.base, onProgress: (line) => process.stderr.write(`  ${line}\n`) });
      log.info(`built ${tag}`, { seconds: Math.round((Date.now() - started) / 1000) });
    });

  program
    .command('serve')
    .description('run the HTTP service (hub submit endpoint and REST API) with grading workers')
    .option('--workers <n>', 'grading workers in this process (default: queue.workers, else one per core)', wholeNumber)
    .action((opts: { workers?: number }) => runService(true, opts.workers));

  program
    .command('worker')
    .description('run grading workers only (more machines can share one PostgreSQL database)')
    .option('--workers <n>', 'grading workers (default: queue.workers, else one per core)', wholeNumber)
    .action((opts: { workers?: number }) => runService(false, opts.workers));

  program
    .command('migrate')
    .description('apply pending database migrations')
    .action(() =>
      withDb(async (_db, _config, log) => {
        log.info('the database is up to date');
      }),
    );

  program
    .command('export')
    .description('export grades as CSV: one row per learner and assignment')
    .addOption(new Option('--format <format>', 'output format').choices(['csv']).default('csv'))
    .option('--course <id>', 'only this course')
    .option('--assignment <id>', 'only this assignment')
    .option('--legacy', "gofer's gradebook shape: userid,grade,section,lab,timestamp (every graded result)")
    .action(async (opts: { course?: string; assignment?: string; legacy?: boolean }) => {
      if (opts.legacy && opts.course) throw new InputError("--legacy writes gofer's gradebook shape, which has no course; filter with --assignment.");
      await withDb(async (db, config) => {
        const filter = { ...(opts.course ? { course: opts.course } : {}), ...(opts.assignment ? { assignment: opts.assignment } : {}) };
        const csv = opts.legacy ? await legacyCsv(new ResultStore(db), filter) : gradesCsv(await gradeRows(new SubmissionStore(db), config, filter), peopleOf(await new LtiStore(db).identities()));
        process.stdout.write(csv);
        if (csvRows(csv) === 0) {
          process.stderr.write(`gofer: warning: no grades match ${describeFilter(filter, config)}; the CSV has only its header\n`);
          exitCode = 1;
        }
      });
    });

  const token = program.command('token').description('API tokens, for submitting without a JupyterHub');
  token
    .command('create')
    .argument('<user>', 'the learner or instructor the token acts as')
    .option('--label <text>', 'a note to remember it by')
    .description('create a token and print it (it is stored hashed and cannot be shown again)')
    .action((user: string, opts: { label?: string }) => {
      const problem = userNameProblem(user);
      if (problem) throw new InputError(`${JSON.stringify(user)} ${problem}`);
      return withDb(async (db) => {
        process.stdout.write((await new ApiTokenStore(db, systemClock).create(user, opts.label)) + '\n');
      });
    });
  token
    .command('list')
    .description('list tokens: who they act as, their label and when they were made (never the tokens themselves)')
    .option('--user <user>', 'only the tokens of this user')
    .action((opts: { user?: string }) =>
      withDb(async (db) => {
        const tokens = await new ApiTokenStore(db, systemClock).list(opts.user);
        if (!tokens.length) process.stdout.write(opts.user ? `no tokens for ${opts.user}\n` : 'no tokens\n');
        for (const t of tokens) process.stdout.write(`${t.owner}\t${new Date(t.createdAt).toISOString()}\t${t.label ?? ''}\n`);
      }),
    );
  token
    .command('revoke')
    .argument('<user>')
    .description("revoke every token of a user")
    .action((user: string) =>
      withDb(async (db) => {
        process.stdout.write(`revoked ${await new ApiTokenStore(db, systemClock).revoke(user)} token(s) of ${user}\n`);
      }),
    );

  const platform = program.command('platform').description('LTI platforms (edX instances) Gofer accepts launches from');
  const withProvider = <T>(fn: (lti: Awaited<ReturnType<typeof createProvider>>, config: Config, db: Db) => Promise<T>): Promise<T> =>
    withDb(async (db, config, log) => fn(await createProvider({ config, db, clock: systemClock, log, env }), config, db));
  platform
    .command('add')
    .description('register a platform client (edX: one per LTI component); idempotent')
    .requiredOption('--issuer <url>', 'the LMS base URL (iss)')
    .requiredOption('--client-id <id>', "the component's client id")
    .requiredOption('--auth-url <url>', 'OIDC auth endpoint (edX: {LMS}/api/lti_consumer/v1/launch/)')
    .requiredOption('--token-url <url>', 'access token URL (edX: {LMS}/api/lti_consumer/v1/token/{config id})')
    .requiredOption('--keyset-url <url>', 'platform keyset URL (edX: {LMS}/api/lti_consumer/v1/public_keysets/{config id})')
    .option('--name <name>', 'a name for people', 'edX')
    .option('--deployment-id <id>', 'a deployment id launches may carry (repeatable; edX: "1")', (v: string, all: string[] | undefined) => [...(all ?? []), v])
    .action(async (opts: { issuer: string; clientId: string; authUrl: string; tokenUrl: string; keysetUrl: string; name: string; deploymentId?: string[] }) => {
      for (const [flag, value] of [['--issuer', opts.issuer], ['--auth-url', opts.authUrl], ['--token-url', opts.tokenUrl], ['--keyset-url', opts.keysetUrl]] as const) {
        if (!isHttpUrl(value)) throw new InputError(`${flag} ${value} is not an http(s) URL.`);
      }
      const deployments = opts.deploymentId ?? ['1'];
      await withProvider(async (lti, _config, db) => {
        await lti.registerPlatform({
          url: opts.issuer,
          name: opts.name,
          clientId: opts.clientId,
          authenticationEndpoint: opts.authUrl,
          accesstokenEndpoint: opts.tokenUrl,
          authorizationServer: opts.tokenUrl,
          authConfig: { method: 'JWK_SET', key: opts.keysetUrl },
        });
        await new LtiStore(db).addDeployments(opts.issuer, deployments);
        process.stdout.write(`registered ${opts.issuer} client ${opts.clientId} (deployments ${deployments.join(', ')})\n`);
      });
    });
  platform
    .command('list')
    .description('list registered platform clients and the URLs to enter in the platform')
    .action(async () => {
      await withProvider(async (_lti, config, db) => {
        const base = ltiBaseUrl(config);
        process.stdout.write(`Tool URLs for the platform: login ${base}/lti/login   launch ${base}/lti   keyset ${base}/lti/keys\n`);
        const rows = (await platformsOf(db).platforms()) as Array<Record<string, string>>;
        if (!rows.length) process.stdout.write('no platforms registered\n');
        for (const r of rows) process.stdout.write(`${r.platformName}\t${r.platformUrl}\tclient ${r.clientId}\ttoken ${r.accesstokenEndpoint}\n`);
      });
    });
  platform
    .command('remove')
    .description('remove a platform client and its keys')
    .requiredOption('--issuer <url>')
    .requiredOption('--client-id <id>')
    .action(async (opts: { issuer: string; clientId: string }) => {
      await withProvider(async (lti, _config, db) => {
        if (!(await platformsOf(db).hasPlatform(opts.issuer, opts.clientId))) throw new InputError(`No platform ${opts.issuer} with client ${opts.clientId} is registered.`);
        await lti.deletePlatform(opts.issuer, opts.clientId);
        process.stdout.write(`removed ${opts.issuer} client ${opts.clientId}\n`);
      });
    });

  program
    .command('dev-platform')
    .description('run the edX-like dev platform alone, pointed at the Gofer the configuration describes')
    .option('--port <port>', 'port (default: devPlatform.port)', wholeNumber)
    .action(async (opts: { port?: number }) => {
      const { config, log } = setup();
      const options = demoPlatformOptions({ ...config, devPlatform: { ...config.devPlatform, ...(opts.port !== undefined ? { port: opts.port } : {}) } }, ltiBaseUrl(config), log);
      const platform = await startDevPlatform(options);
      const entry = devPlatformConfig(platform, options.components);
      process.stdout.write(`dev platform at ${platform.url}/ (gradebook at ${platform.url}/gradebook)\n`);
      process.stdout.write(`Gofer's configuration for it (lti.platforms):\n${stringifyYaml([entry]).replace(/^/gm, '  ')}`);
      await runUntilSignal({ stop: () => platform.stop(), hurry: () => undefined });
    });

  program
    .command('check-config')
    .description('check the configuration as serve and worker would, and print every problem at once')
    .action(async () => {
      const opts = program.opts<GlobalOptions>();
      const found = inspectConfig(configPath(opts.config, env), env);
      const problems = found.config ? (await preflight(found.config, env)).map((p) => found.problem(p.where, p.message)) : found.problems;
      if (problems.length) throw new ConfigError(formatProblems(found.source, problems));
      const config = found.config!;
      const assignments = config.courses.reduce((n, c) => n + c.assignments.length, 0);
      process.stdout.write(`${found.source}: valid (${config.courses.length} course(s), ${assignments} assignment(s))\n`);
      for (const course of config.courses) {
        for (const a of course.assignments) {
          const listed = globMatcher(a.files);
          for (const name of await suspiciousFiles(a.directory!, a.tests)) {
            const where = `${course.id}/${a.id}: ${path.join(a.directory!, name)}`;
            process.stdout.write(
              listed(name)
                ? `warning: ${where} looks like a solution or a grader archive, and \`files\` sends it to every learner's container\n`
                : `warning: ${where} looks like a solution or a grader archive; it stays out of the container (not in \`files\`), but keep it elsewhere\n`,
            );
          }
        }
      }
    });

  try {
    await program.parseAsync(argv);
  } catch (err) {
    exitCode = report(err);
  }
  return exitCode;
}

function report(err: unknown): number {
  if (err instanceof CommanderError) {
    // help and version are "errors" that exit 0; commander already printed the message
    return err.exitCode === 0 ? 0 : 2;
  }
  if (err instanceof GoferError) {
    process.stderr.write(`gofer: ${err.message}\n`);
    return err.exitCode;
  }
  process.stderr.write(`gofer: unexpected failure: ${(err as Error)?.stack ?? String(err)}\n`);
  return 70;
}

/** Keeps the process up until SIGTERM or SIGINT, then stops cleanly; a second signal hurries it. */
async function runUntilSignal(running: { stop(): Promise<void>; hurry(): void }): Promise<void> {
  await new Promise<void>((resolve) => {
    let signalled = false;
    const onSignal = (): void => {
      if (signalled) {
        running.hurry();
        return;
      }
      signalled = true;
      running.stop().then(resolve, resolve);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}

/** Data rows of a CSV with a header line. */
function csvRows(csv: string): number {
  return Math.max(0, csv.split('\n').filter((l) => l.length > 0).length - 1);
}

function describeFilter(filter: { course?: string; assignment?: string }, config: Config): string {
  const parts: string[] = [];
  if (filter.course) parts.push(`course ${filter.course}${config.courses.some((c) => c.id === filter.course) ? '' : ' (not in the configuration)'}`);
  if (filter.assignment) parts.push(`assignment ${filter.assignment}`);
  return parts.length ? parts.join(' and ') : 'anything (nothing has been graded yet)';
}

function isHttpUrl(value: string): boolean {
  try {
    return ['http:', 'https:'].includes(new URL(value).protocol);
  } catch {
    return false;
  }
}

function wholeNumber(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a whole number');
  return n;
}

function positiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a positive number');
  return n;
}

/** The registered platforms, read through ltijs's store (their one owner). */
function platformsOf(db: Db): KnexLtiPlugin {
  return new KnexLtiPlugin(db, systemClock, createLogger({ level: 'error' }));
}

/** The dev platform `gofer serve` starts beside Gofer (devPlatform.enabled), as one more platform. */
async function startBesideGofer(config: Config, env: Environment, log: Logger): Promise<{ platform: DevPlatform; entry: PlatformConfig }> {
  const options = demoPlatformOptions(config, ltiBaseUrl(config, hubSettings(config, env)), log);
  const platform = await startDevPlatform(options);
  log.info(`dev platform: open ${platform.url}/ to launch as a learner or an instructor`);
  return { platform, entry: devPlatformConfig(platform, options.components) };
}
