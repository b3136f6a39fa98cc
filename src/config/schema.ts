import { z } from 'zod';

export const POLICIES = ['gofer', 'otter'] as const;
export type Policy = (typeof POLICIES)[number];

/** Limits and defaults for one grading container. Every field has a sensible default. */
export const gradingSchema = z
  .object({
    image: z.string().min(1).default('gofer/grader:latest'),
    policy: z.enum(POLICIES).default('gofer'),
    /** Budget for running the notebook; the tests get the same budget again. */
    timeoutSeconds: z.number().positive().max(3600).default(120),
    memoryMb: z.number().int().min(64).max(65536).default(1024),
    cpus: z.number().positive().max(64).default(1),
    pids: z.number().int().min(16).max(32768).default(256),
    /** Size of the writable /tmp inside the container (counts against memoryMb). */
    tmpfsMb: z.number().int().min(16).max(16384).default(256),
    /** The container's stdout is cut beyond this (the result line is small). */
    outputLimitKb: z.number().int().min(64).max(65536).default(1024),
  })
  .strict();

export const configSchema = z
  .object({
    log: z
      .object({
        level: z.enum(['error', 'warn', 'info', 'http', 'verbose', 'debug']).default('info'),
        format: z.enum(['text', 'json']).default('text'),
      })
      .strict()
      .default({}),
    docker: z
      .object({
        /** Unix socket of the engine; when absent, DOCKER_HOST or /var/run/docker.sock. */
        socketPath: z.string().optional(),
      })
      .strict()
      .default({}),
    grading: gradingSchema.default({}),
  })
  .strict();

export type Config = z.infer<typeof configSchema>;
export type GradingLimits = z.infer<typeof gradingSchema>;
