import { z } from 'zod';
import { DEFAULT_TIME_ZONE, isTimeZone, parseDue } from '../lib/time-zone.js';

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

/** Ids that appear in URLs, tables and notebook metadata: plain words, never paths. */
const id = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'use letters, digits, "_", "." or "-" (at most 64), starting with a letter or digit');

/** Grading settings an assignment may override. */
const assignmentGradingSchema = gradingSchema.pick({ image: true, policy: true, timeoutSeconds: true, memoryMb: true }).partial();

export const LATE_POLICIES = ['accept', 'reject'] as const;
export const SCORE_SELECTIONS = ['latest', 'best'] as const;

export const assignmentSchema = z
  .object({
    id,
    /** Other names notebooks use for this assignment (gofer's `lab`, otter-service's `assignment`). */
    aliases: z.array(z.string().min(1).max(200)).default([]),
    /** Section recorded for the legacy gradebook when the notebook does not say. */
    section: z.string().max(200).optional(),
    /** Directory of OK-format tests, relative to the configuration file. */
    tests: z.string().min(1),
    /** Where the support files are; default: the parent of `tests`. */
    directory: z.string().min(1).optional(),
    /**
     * The support files (data the notebook opens by relative path) copied into the learner's
     * working directory: paths or globs (`*`, `?`, `**`) relative to `directory`. Nothing else of
     * the directory is copied: a solution kept beside the tests stays out of the learner's reach.
     */
    files: z.array(z.string().min(1).max(500)).default([]),
    /** Points the assignment is worth; scores are fractions of it. */
    points: z.number().positive().default(1),
    /**
     * With an offset or Z ("2026-12-10T23:59:00Z", "2026-12-10T23:59:00+01:00") that instant;
     * without one ("2026-12-10 23:59") on the wall clock of the course's `timeZone` (UTC by default).
     */
    due: z.union([z.string(), z.date()]).optional(),
    late: z.enum(LATE_POLICIES).default('accept'),
    /** Which submission's score counts: the latest, or the best so far. */
    select: z.enum(SCORE_SELECTIONS).default('latest'),
  })
  .merge(assignmentGradingSchema)
  .strict();

export const courseSchema = z
  .object({
    id,
    /** LTI context ids (edX course keys) that are this course. */
    contexts: z.array(z.string().min(1)).default([]),
    /** Hub users who see every learner's results in this course (the REST API, and the staff pages under the hub). */
    instructors: z.array(z.string().min(1)).default([]),
    /** Hub groups whose members are instructors of this course, as `instructors` (the hub names a user's groups). */
    instructorGroups: z.array(z.string().min(1)).default([]),
    assignments: z.array(assignmentSchema).min(1),
    /** The IANA time zone the course's pages and CSV show times in, and due dates without an offset are read in (default UTC). */
    timeZone: z
      .string()
      .refine(isTimeZone, (v) => ({ message: `"${v.slice(0, 64)}" is not a time zone name: use an IANA name such as Europe/Paris, America/New_York or UTC` }))
      .optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    c.assignments.forEach((a, i) => {
      if (a.due !== undefined && parseDue(a.due, zoneOf(c)) === undefined) {
        ctx.addIssue({ code: 'custom', path: ['assignments', i, 'due'], message: `"${String(a.due).slice(0, 64)}" is not a date: write 2026-12-10 23:59 (in the course's time zone, ${zoneOf(c)}) or 2026-12-10T23:59:00Z` });
      }
    });
  })
  .transform((c) => ({ ...c, assignments: c.assignments.map(({ due, ...a }) => ({ ...a, ...(due === undefined ? {} : { due: parseDue(due, zoneOf(c))! }) })) }));

/** The zone a course's times are shown in: its own, else UTC. */
export function zoneOf(course: { timeZone?: string | undefined }): string {
  return course.timeZone && isTimeZone(course.timeZone) ? course.timeZone : DEFAULT_TIME_ZONE;
}

const ltiClientSchema = z
  .object({
    clientId: z.string().min(1),
    /** edX gives each component its own token and keyset URLs; default: the platform's. */
    tokenUrl: z.string().url().optional(),
    keysetUrl: z.string().url().optional(),
  })
  .strict();

export const platformSchema = z
  .object({
    name: z.string().min(1).default('edX'),
    /** `iss`: the LMS base URL. */
    issuer: z.string().url(),
    authUrl: z.string().url(),
    tokenUrl: z.string().url().optional(),
    keysetUrl: z.string().url().optional(),
    deploymentIds: z.array(z.string().min(1)).default(['1']),
    clients: z.array(ltiClientSchema).min(1),
  })
  .strict()
  .superRefine((p, ctx) => {
    p.clients.forEach((c, i) => {
      if (!(c.tokenUrl ?? p.tokenUrl)) ctx.addIssue({ code: 'custom', path: ['clients', i, 'tokenUrl'], message: 'no tokenUrl here or on the platform' });
      if (!(c.keysetUrl ?? p.keysetUrl)) ctx.addIssue({ code: 'custom', path: ['clients', i, 'keysetUrl'], message: 'no keysetUrl here or on the platform' });
    });
  });

export const ltiSchema = z
  .object({
    /** Public base URL of Gofer as platforms and browsers reach it (login, launch, keyset URLs derive from it). */
    url: z.string().url().optional(),
    /** Encrypts ltijs's keys and tokens; default: $GOFER_LTI_KEY. Required unless `development`. */
    encryptionKey: z.string().min(16).optional(),
    /** Allows a generated encryption key and plain-HTTP cookies: never in production. */
    development: z.boolean().default(false),
    /**
     * Attributes of the cookies the launch and the framed pages need (ltijs's state and session
     * cookies, Gofer's page session). Default: `SameSite=None; Secure; Partitioned`, which edX's
     * iframe needs in browsers that block third-party cookies; in `development`, `SameSite=Lax`
     * without Secure (plain HTTP on any host, platform and Gofer on one site).
     */
    cookies: z
      .object({ secure: z.boolean().optional(), sameSite: z.enum(['None', 'Lax', 'Strict']).optional(), partitioned: z.boolean().optional() })
      .strict()
      .default({}),
    /** Origins allowed to frame Gofer's pages besides the platforms' issuers (e.g. edX's learning MFE, https://apps.example.edu). */
    frameAncestors: z.array(z.string().url()).default([]),
    /** When the hub logs users in with LTI too and names them after a claim (e.g. "sub"), link identities automatically. */
    hubUserClaim: z.string().optional(),
    /** The "Open in JupyterHub" link ({assignment} and {course} are filled in; a path is on hub.publicUrl); no link without it. */
    hubLink: z.string().optional(),
    platforms: z.array(platformSchema).default([]),
  })
  .strict()
  .superRefine((lti, ctx) => {
    const c = ltiCookies(lti);
    if ((c.sameSite === 'None' || c.partitioned) && !c.secure) {
      ctx.addIssue({ code: 'custom', path: ['cookies', 'secure'], message: 'browsers drop SameSite=None and Partitioned cookies that are not Secure: set secure: true' });
    }
  });

export interface CookieAttributes {
  secure: boolean;
  sameSite: 'None' | 'Lax' | 'Strict';
  partitioned: boolean;
}

/** The cookie attributes in force: what is configured, else the default for the mode. */
export function ltiCookies(lti: { development: boolean; cookies: Partial<CookieAttributes> }): CookieAttributes {
  const defaults: CookieAttributes = lti.development ? { secure: false, sameSite: 'Lax', partitioned: false } : { secure: true, sameSite: 'None', partitioned: true };
  return {
    secure: lti.cookies.secure ?? defaults.secure,
    sameSite: lti.cookies.sameSite ?? defaults.sameSite,
    partitioned: lti.cookies.partitioned ?? defaults.partitioned,
  };
}

export const passbackSchema = z
  .object({
    /** With the back-off doubling from retryDelaySeconds (capped at an hour), 12 attempts span about 5 hours of platform outage. */
    maxAttempts: z.number().int().min(1).default(12),
    retryDelaySeconds: z.number().min(0).default(15),
    requestTimeoutSeconds: z.number().positive().default(10),
    /** Scores sent at once by the dispatcher. */
    concurrency: z.number().int().min(1).max(64).default(8),
    pollMs: z.number().int().min(10).default(1000),
  })
  .strict();

export const configSchema = z
  .object({
    /** Where the SQLite database and other state live (relative to the working directory). */
    dataDir: z.string().default('data'),
    database: z
      .object({
        client: z.enum(['sqlite', 'pg']).default('sqlite'),
        /** SQLite file; default: <dataDir>/gofer.sqlite. */
        filename: z.string().optional(),
        /** PostgreSQL connection string (client pg); default: $DATABASE_URL. */
        url: z.string().optional(),
        pool: z.number().int().min(1).max(100).default(10),
      })
      .strict()
      .default({}),
    server: z
      .object({
        host: z.string().default('127.0.0.1'),
        port: z.number().int().min(0).max(65535).default(8080),
        /** Where the hub reaches Gofer's submit endpoint; default $JUPYTERHUB_SERVICE_PREFIX or /services/gofer/. */
        prefix: z.string().regex(/^\/.*\/$/, 'must start and end with "/"').optional(),
        /** Also answer the old buttons at /services/gofer_nb/ and /services/otter_grade/. */
        legacyPrefixes: z.boolean().default(true),
        maxNotebookMb: z.number().positive().max(1024).default(25),
        submissionsPerMinute: z.number().int().min(1).default(6),
        /** Identical notebooks from one learner within this window are one submission. */
        duplicateWindowSeconds: z.number().int().min(0).default(120),
        /** Secret for session cookies; default: $GOFER_SECRET, else generated in dataDir. */
        secret: z.string().min(16).optional(),
      })
      .strict()
      .default({}),
    hub: z
      .object({
        /** default: $JUPYTERHUB_API_URL */
        apiUrl: z.string().url().optional(),
        /** Public URL of the hub (its proxy), where browsers log in: needed for "Connect your JupyterHub account" from LTI pages. */
        publicUrl: z.string().url().optional(),
        cacheSeconds: z.number().min(0).default(60),
      })
      .strict()
      .default({}),
    queue: z
      .object({
        /** Grading workers in `gofer serve`; default: one per core. */
        workers: z.number().int().min(0).max(64).optional(),
        leaseSeconds: z.number().int().min(5).default(60),
        maxAttempts: z.number().int().min(1).default(5),
        /** Grading jobs one learner may have running at once, over all workers and processes. */
        maxRunningPerLearner: z.number().int().min(1).default(1),
        retryDelaySeconds: z.number().min(0).default(5),
        pollMs: z.number().int().min(10).default(500),
        /** On SIGTERM, running jobs get this long to finish before they are given back (a hub kills its services after 10 s). */
        shutdownGraceSeconds: z.number().min(0).default(8),
        /** A worker probes its engine before claiming; the answer is kept this long. */
        engineProbeMs: z.number().int().min(0).default(2000),
        /** How often each worker process records its heartbeat (shown by /health). */
        heartbeatSeconds: z.number().positive().default(5),
        /** Pre-started containers, per image and limits (docs/scaling.md); floor 0 turns them off. */
        pool: z
          .object({
            /** Ready containers kept at least; default: one per grading worker of the process. */
            floor: z.number().int().min(0).max(64).optional(),
            /** At most, however fast jobs arrive; default: two per grading worker (never below the floor). */
            ceiling: z.number().int().min(0).max(128).optional(),
            /** A ready container that waited this long is replaced. */
            maxIdleSeconds: z.number().int().min(10).default(900),
          })
          .strict()
          .default({}),
      })
      .strict()
      .default({}),
    /** `gofer worker`'s own HTTP listener, for GET /health; off unless a port is set. */
    worker: z
      .object({
        healthHost: z.string().default('127.0.0.1'),
        healthPort: z.number().int().min(0).max(65535).optional(),
      })
      .strict()
      .default({}),
    lti: ltiSchema.default({}),
    /** An edX-like platform started beside Gofer (`gofer serve`), for trying Gofer without edX. */
    devPlatform: z
      .object({
        enabled: z.boolean().default(false),
        host: z.string().default('127.0.0.1'),
        port: z.number().int().min(0).max(65535).default(8090),
      })
      .strict()
      .default({}),
    passback: passbackSchema.default({}),
    /** Course used when a notebook names none (gofer's default was "8x"). */
    defaultCourse: id.optional(),
    courses: z.array(courseSchema).default([]),
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
  .strict()
  .superRefine((config, ctx) => {
    const courses = new Set<string>();
    config.courses.forEach((course, ci) => {
      if (courses.has(course.id)) ctx.addIssue({ code: 'custom', path: ['courses', ci, 'id'], message: `course "${course.id}" is declared twice` });
      courses.add(course.id);
      const names = new Map<string, string>();
      course.assignments.forEach((a, ai) => {
        for (const name of [a.id, ...a.aliases]) {
          const owner = names.get(name);
          if (owner !== undefined) {
            ctx.addIssue({ code: 'custom', path: ['courses', ci, 'assignments', ai], message: `"${name}" already names assignment "${owner}" in course "${course.id}"` });
          }
          names.set(name, a.id);
        }
      });
    });
    if (config.defaultCourse && !courses.has(config.defaultCourse)) {
      ctx.addIssue({ code: 'custom', path: ['defaultCourse'], message: `no course "${config.defaultCourse}" is declared` });
    }
  });

export type Config = z.infer<typeof configSchema>;

/** LTI is on whatever the database holds: platforms in the file, a public URL, or the dev platform. */
export function ltiConfigured(config: Pick<Config, 'lti' | 'devPlatform'>): boolean {
  return config.lti.platforms.length > 0 || Boolean(config.lti.url) || config.devPlatform.enabled;
}
export type CourseConfig = z.infer<typeof courseSchema>;
export type PlatformConfig = z.infer<typeof platformSchema>;
export type LtiConfig = z.infer<typeof ltiSchema>;
export type AssignmentConfig = CourseConfig['assignments'][number];
export type GradingLimits = z.infer<typeof gradingSchema>;
