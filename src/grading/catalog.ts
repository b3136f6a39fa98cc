import { assignmentKey } from '../config/courses.js';
import type { AssignmentConfig, Config, GradingLimits, Policy } from '../config/schema.js';
import { ConfigError } from '../lib/errors.js';
import { readSupportFiles, readTests, type JobFile } from './assignment-files.js';
import type { ContainerSpec } from './container-runner.js';
import { poolKey } from './warm-pool.js';

export interface AssignmentGrading {
  assignment: AssignmentConfig;
  image: string;
  policy: Policy;
  limits: GradingLimits;
  tests: JobFile[];
  supportFiles: JobFile[];
}

/**
 * Every configured assignment's tests and support files, read from disk once at start (not per
 * submission), with its grading settings resolved against the defaults.
 */
/** This process's configuration has no such assignment (removed, or a stale configuration here). */
export class AssignmentMissingError extends ConfigError {}

export class AssignmentCatalog {
  private constructor(private readonly entries: Map<string, AssignmentGrading>) {}

  static async load(config: Pick<Config, 'courses' | 'grading'>): Promise<AssignmentCatalog> {
    const entries = new Map<string, AssignmentGrading>();
    for (const course of config.courses) {
      for (const a of course.assignments) {
        const directory = a.directory!;
        const [tests, supportFiles] = await Promise.all([readTests(a.tests), readSupportFiles(directory, a.tests, a.files)]);
        const limits: GradingLimits = {
          ...config.grading,
          ...(a.timeoutSeconds ? { timeoutSeconds: a.timeoutSeconds } : {}),
          ...(a.memoryMb ? { memoryMb: a.memoryMb } : {}),
        };
        entries.set(assignmentKey(course.id, a.id), {
          assignment: a,
          image: a.image ?? config.grading.image,
          policy: a.policy ?? config.grading.policy,
          limits,
          tests,
          supportFiles,
        });
      }
    }
    return new AssignmentCatalog(entries);
  }

  get(course: string, assignment: string): AssignmentGrading {
    const entry = this.entries.get(assignmentKey(course, assignment));
    if (!entry) throw new AssignmentMissingError(`Assignment "${assignment}" of course "${course}" is no longer in the configuration.`);
    return entry;
  }

  /** The distinct images and limits the assignments are graded with: one pool of pre-started containers each. */
  specs(): ContainerSpec[] {
    const seen = new Map<string, ContainerSpec>();
    for (const e of this.entries.values()) seen.set(poolKey(e), { image: e.image, limits: e.limits });
    return [...seen.values()];
  }

  images(): string[] {
    return [...new Set([...this.entries.values()].map((e) => e.image))];
  }
}
