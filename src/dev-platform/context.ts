import { randomBytes } from 'node:crypto';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/logger.js';
import type { AgsStore } from './ags-store.js';
import type { PlatformKeys } from './keys.js';
import type { DeepLinkRecord, DevComponent, DevCourseRun, DevFaults, DevUser } from './types.js';

/** The run whose blocks' usage keys start with `block-v1:ORG+COURSE+RUN+type@`. */
export function runOf(runs: DevCourseRun[], usageKey: string): DevCourseRun | undefined {
  return runs.find((r) => usageKey.startsWith(`block-v1:${r.key.slice('course-v1:'.length)}+type@`));
}

/** What edX keeps in its cache between the login initiation and the auth request. */
export interface LaunchHint {
  configId: string;
  sub: string;
  kind: 'resource' | 'deep-link';
  expiresAt: number;
}

/** edX caches launch data for 10 minutes; the hint can be used any number of times until then. */
export const HINT_LIFETIME_MS = 10 * 60_000;

/** Everything the routers share: configuration, keys, stores, counters, faults. */
export class PlatformContext {
  readonly hints = new Map<string, LaunchHint>();
  readonly deepLinks = new Map<string, DeepLinkRecord>();
  tokenRequests = 0;

  constructor(
    readonly issuer: string,
    /** The course runs: the first is the main one (the course page's). */
    readonly runs: DevCourseRun[],
    readonly components: DevComponent[],
    readonly users: DevUser[],
    readonly keys: PlatformKeys,
    readonly store: AgsStore,
    readonly faults: DevFaults,
    readonly clock: Clock,
    readonly log: Logger,
  ) {}

  /** The main course run (the course page and gradebook titles). */
  get course(): DevCourseRun {
    return this.runs[0]!;
  }

  /** The course run a component is in (its usage key names it). */
  runOf(c: DevComponent): DevCourseRun {
    return runOf(this.runs, c.usageKey)!;
  }

  byConfig(configId: string): DevComponent | undefined {
    return this.components.find((c) => c.configId === configId);
  }

  byUsageKey(usageKey: string): DevComponent | undefined {
    return this.components.find((c) => c.usageKey === usageKey);
  }

  userByName(username: string): DevUser | undefined {
    return this.users.find((u) => u.username === username);
  }

  userBySub(sub: string): DevUser | undefined {
    return this.users.find((u) => u.sub === sub);
  }

  issueHint(hint: Omit<LaunchHint, 'expiresAt'>): string {
    const now = this.clock.now();
    for (const [k, v] of this.hints) if (v.expiresAt <= now) this.hints.delete(k);
    const id = randomBytes(24).toString('base64url');
    this.hints.set(id, { ...hint, expiresAt: now + HINT_LIFETIME_MS });
    return id;
  }

  hint(id: string): LaunchHint | undefined {
    const h = this.hints.get(id);
    return h && h.expiresAt > this.clock.now() ? h : undefined;
  }

  /** Where edX would let the auth response go: the redirect URIs if listed, else the launch URLs. */
  redirectUris(c: DevComponent): string[] {
    if (c.tool.redirectUris && c.tool.redirectUris.length > 0) return c.tool.redirectUris;
    return [c.tool.launchUrl, ...(c.deepLinking && c.tool.deepLinkLaunchUrl ? [c.tool.deepLinkLaunchUrl] : [])];
  }

  endpoints(c: DevComponent): { authUrl: string; tokenUrl: string; keysetUrl: string } {
    return {
      authUrl: `${this.issuer}/api/lti_consumer/v1/launch/`,
      tokenUrl: `${this.issuer}/api/lti_consumer/v1/token/${c.configId}`,
      keysetUrl: `${this.issuer}/api/lti_consumer/v1/public_keysets/${c.configId}`,
    };
  }

  launchStartUrl(username: string, usageKey: string, kind: 'resource' | 'deep-link'): string {
    const q = new URLSearchParams({ user: username, block: usageKey, kind });
    return `${this.issuer}/dev/launch?${q.toString()}`;
  }
}
