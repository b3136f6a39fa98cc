import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { configPath, loadConfig } from './config/load.js';
import { POLICIES, type Config, type Policy } from './config/schema.js';
import { ContainerRunner } from './grading/container-runner.js';
import { createDocker } from './grading/docker.js';
import { formatResult } from './grading/format.js';
import { gradeNotebook, readAssignment } from './grading/grader.js';
import { buildImage, LOCAL_BASE } from './grading/image.js';
import { GoferError, InputError } from './lib/errors.js';
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

  const setup = (): { config: Config; log: Logger } => {
    const opts = program.opts<GlobalOptions>();
    const config = loadConfig(configPath(opts.config));
    const log = createLogger({ level: config.log.level, format: opts.logFormat ?? config.log.format });
    return { config, log };
  };

  program
    .command('grade')
    .description('grade one notebook against a directory of OK-format tests, in a container')
    .argument('<notebook>', 'the .ipynb file to grade')
    .requiredOption('--tests <dir>', 'directory of OK-format test files (q1.py, ...)')
    .option('--dir <dir>', 'assignment directory with support files (default: the parent of --tests)')
    .addOption(new Option('--policy <policy>', 'scoring policy').choices([...POLICIES]))
    .option('--image <image>', 'grader image (default: from the configuration)')
    .option('--timeout <seconds>', 'time limit for the notebook (and again for the tests)', positiveNumber)
    .option('--memory <mb>', 'memory limit in MB', positiveNumber)
    .option('--json', 'print exactly one JSON object on stdout')
    .action(async (notebookPath: string, opts: { tests: string; dir?: string; policy?: Policy; image?: string; timeout?: number; memory?: number; json?: boolean }) => {
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
      const assignment = await readAssignment(opts.tests, opts.dir ?? path.dirname(path.resolve(opts.tests)));
      const runner = new ContainerRunner(createDocker(config), log);
      await runner.checkReady(image);
      log.info('grading', { notebook: notebookPath, tests: assignment.tests.length, image });
      const result = await gradeNotebook(runner, { notebook, image, policy: opts.policy ?? config.grading.policy, limits, ...assignment });
      if (opts.json) {
        const { timing: _timing, ...plain } = result;
        process.stdout.write(JSON.stringify({ ...plain, tests: plain.tests.map(({ message: _m, ...t }) => t) }) + '\n');
      } else {
        process.stdout.write(formatResult(result) + '\n');
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
    .command('check-config')
    .description('validate the configuration file and print where it is wrong')
    .action(() => {
      const opts = program.opts<GlobalOptions>();
      const file = configPath(opts.config);
      loadConfig(file);
      process.stdout.write(`${file ?? 'built-in defaults'}: valid\n`);
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

function positiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a positive number');
  return n;
}
