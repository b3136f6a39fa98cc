import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import type { RouteEntry } from '../lib/routes.js';

/** One LTI component (an `lti_consumer` block) as a course team configures it in Studio. */
export interface DevComponent {
  /** e.g. 'block-v1:GoferX+DEMO+2026+type@lti_consumer+block@lab01'; the resource link id. */
  usageKey: string;
  /** uuid-ish; appears in the token and keyset URLs. */
  configId: string;
  /** Components sharing a client id share a platform key, like an edX "passport". */
  clientId: string;
  name: string;
  /** Points the component counts for; also the declarative line item's scoreMaximum (truncated). */
  weight: number;
  /** Studio's "This activity is graded"; off means scores are stored but never published. */
  graded: boolean;
  due?: Date;
  /** Default true, as in Studio. */
  acceptGradesPastDue: boolean;
  /** Studio's custom parameters, `key=value` strings, e.g. ['assignment=lab01']. */
  custom: string[];
  agsMode: 'declarative' | 'programmatic';
  deepLinking?: boolean;
  tool: {
    loginUrl: string;
    launchUrl: string;
    keysetUrl: string;
    /** When given, these replace the defaults (launch URL and deep-linking launch URL), as in edX. */
    redirectUris?: string[];
    deepLinkLaunchUrl?: string;
  };
}

export type DevRole = 'learner' | 'staff' | 'admin' | 'moderator';

export interface DevUser {
  username: string;
  /** The opaque anonymous id edX sends as `sub` and expects back as the AGS `userId`. */
  sub: string;
  name: string;
  email: string;
  role: DevRole;
  /** The course shares PII with tools: `name`, `email` and `preferred_username` appear in launches. */
  sharePii?: boolean;
}

/** A course run: `course-v1:ORG+COURSE+RUN` and its title. */
export interface DevCourseRun {
  key: string;
  title: string;
}

export interface DevPlatformOptions {
  /** 0 (the default) picks a free port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** e.g. 'course-v1:GoferX+DEMO+2026' */
  courseKey: string;
  courseTitle: string;
  /** More course runs on the same LMS (one issuer); a component is in the run its usage key names. */
  runs?: DevCourseRun[];
  components: DevComponent[];
  users: DevUser[];
  clock?: Clock;
  /** Where the platform explains what it refused or did not publish; silent by default. */
  log?: Logger;
}

export interface DevFaults {
  /** The next N token/AGS requests answer 429 with Retry-After. */
  rateLimit: number;
  retryAfterSeconds: number;
  /** The next N token/AGS requests answer 500. */
  serverErrors: number;
  /** Added before every token/AGS answer. */
  latencyMs: number;
  /** Token/AGS requests get their connection closed without an answer. */
  down: boolean;
}

/** A score as edX stores it: one row per (line item, user), replaced by each accepted POST. */
export interface StoredScore {
  userId: string;
  /** As edX echoes it: ISO 8601 in UTC, microseconds when non-zero. */
  timestamp: string;
  /** Epoch microseconds: edX compares timestamps at database (microsecond) precision. */
  timestampMicros: number;
  scoreGiven: number | null;
  scoreMaximum: number | null;
  comment: string | null;
  activityProgress: string;
  gradingProgress: string;
}

export interface LineItem {
  /** The line item URL (what AGS calls its id). */
  id: string;
  /** Database key, the last segment of `id`. */
  pk: number;
  /** The component configuration this line item belongs to. */
  configId: string;
  scoreMaximum: number;
  label: string;
  resourceId: string;
  tag: string;
  resourceLinkId: string | null;
  startDateTime: string | null;
  endDateTime: string | null;
  scores: StoredScore[];
}

export interface DeepLinkRecord {
  usageKey: string;
  items: Array<Record<string, unknown>>;
}

export interface GradebookEntry {
  username: string;
  usageKey: string;
  /** Weight-scaled, as edX publishes it; null when nothing was ever published. */
  published: number | null;
}

export interface DevPlatform {
  /** The LMS base URL, which is also the issuer. */
  url: string;
  issuer: string;
  /** What a course team copies into the tool's registration. */
  endpoints(c: DevComponent): { authUrl: string; tokenUrl: string; keysetUrl: string };
  faults: DevFaults;
  /** New platform signing key (and kid) for every client id; tokens signed before become invalid. */
  rotateKey(): Promise<void>;
  tokenRequests: number;
  scoresReceived: number;
  lineItems(): LineItem[];
  gradebook(): GradebookEntry[];
  deepLinks(): DeepLinkRecord[];
  /** Every route the platform answers (method and path pattern). */
  routes(): RouteEntry[];
  /** The URL a browser opens to start the OIDC login flow for this user and component. */
  launchUrl(username: string, usageKey: string, kind?: 'resource' | 'deep-link'): string;
  stop(): Promise<void>;
}
