import type { Environment } from './config/load.js';
import { ltiConfigured, type Config } from './config/schema.js';
import { databaseUrl } from './db/knex.js';
import { readAssignment } from './grading/grader.js';
import { GoferError } from './lib/errors.js';
import { ltiEncryptionKey } from './lti/provider.js';
import { hubSettings } from './root/http.js';
import { LTI_PORT_PROBLEM } from './root/lti.js';

/** A problem at a path of the configuration (`['courses', 0, 'assignments', 1, 'tests']`). */
export interface PreflightProblem {
  where: Array<string | number>;
  message: string;
}

/**
 * What `serve` and `worker` would refuse, or a submission would trip on, found before they run:
 * the checks they make at start, and each assignment's tests and support files read as grading
 * reads them. Nothing is written and no service is contacted.
 */
export async function preflight(config: Config, env: Environment): Promise<PreflightProblem[]> {
  const problems: PreflightProblem[] = [];
  const check = async (where: PreflightProblem['where'], fn: () => unknown): Promise<void> => {
    try {
      await fn();
    } catch (err) {
      if (!(err instanceof GoferError)) throw err;
      problems.push({ where, message: err.message });
    }
  };
  if (config.database.client === 'pg') await check(['database', 'url'], () => databaseUrl(config, env));
  if (ltiConfigured(config)) {
    if (!config.lti.development) await check(['lti', 'encryptionKey'], () => ltiEncryptionKey(config, env));
    if (!config.lti.url && hubSettings(config, env).port === 0) {
      problems.push({ where: ['server', 'port'], message: LTI_PORT_PROBLEM });
    }
  }
  for (const [ci, course] of config.courses.entries()) {
    for (const [ai, a] of course.assignments.entries()) {
      await check(['courses', ci, 'assignments', ai, 'tests'], () => readAssignment(a.tests, { directory: a.directory!, files: a.files }));
    }
  }
  return problems;
}
