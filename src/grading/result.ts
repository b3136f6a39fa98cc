import { z } from 'zod';

/** How grading a submission ended. Only `graded` produces a score that may be sent on. */
export const STATUSES = ['graded', 'timeout', 'out_of_memory', 'invalid_notebook', 'kernel_died'] as const;
export type GradingStatus = (typeof STATUSES)[number];

/** One instructor test file's outcome. */
export const testResultSchema = z.object({
  name: z.string().max(200),
  points: z.number().finite().min(0),
  maxPoints: z.number().finite().min(0),
  passed: z.boolean(),
  hidden: z.boolean(),
  message: z.string().max(4000).optional(),
});
export type TestResult = z.infer<typeof testResultSchema>;

/** What the harness prints, validated: it came out of a container that ran learner code. */
export const harnessOutputSchema = z.object({
  status: z.enum(STATUSES),
  message: z.string().max(4000).nullable().optional(),
  tests: z.array(testResultSchema).max(1000),
  timing: z
    .object({
      kernelStartMs: z.number(),
      notebookMs: z.number(),
      testsMs: z.number(),
      /** The container's CPU time (all its processes), from its cgroup: informational, never scored. */
      cpuMs: z.number().int().min(0),
    })
    .partial()
    .optional(),
  error: z
    .object({ kind: z.enum(['tests', 'internal']), message: z.string().max(4000) })
    .nullable()
    .optional(),
});
export type HarnessOutput = z.infer<typeof harnessOutputSchema>;

/** The result of grading one notebook, as the CLI prints it and the database keeps it. */
export interface GradingResult {
  status: GradingStatus;
  /** points / maxPoints, a fraction in [0, 1]; 0 when nothing could be scored. */
  score: number;
  points: number;
  maxPoints: number;
  tests: TestResult[];
  durationMs: number;
  message?: string;
  timing?: HarnessOutput['timing'];
}

export function summarise(status: GradingStatus, tests: TestResult[], durationMs: number, message?: string | null): GradingResult {
  const points = round(tests.reduce((s, t) => s + t.points, 0));
  const maxPoints = round(tests.reduce((s, t) => s + t.maxPoints, 0));
  const score = status === 'graded' && maxPoints > 0 ? round(points / maxPoints) : 0;
  return { status, score, points, maxPoints, tests, durationMs, ...(message ? { message } : {}) };
}

function round(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}
