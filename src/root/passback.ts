import { KnexLtiPlugin } from '../lti/knex-plugin.js';
import { ltiEncryptionKey } from '../lti/provider.js';
import type { LtiStore } from '../lti/store.js';
import { PassbackActions } from '../passback/actions.js';
import { AgsClient } from '../passback/ags-client.js';
import { LtijsToolKeys } from '../lti/tool-keys.js';
import { Dispatcher } from '../passback/dispatcher.js';
import type { PassbackOutbox } from '../passback/outbox.js';
import type { PolicyLookup } from '../passback/policy.js';
import type { RootDeps } from './deps.js';
import { processName } from './grading.js';

export interface Passback {
  dispatcher: Dispatcher;
  ags: AgsClient;
  /** What the pages may do with passback (states, resend). */
  actions: PassbackActions;
  stop(): Promise<void>;
}

/** The sending side: the AGS client and the dispatcher (started) over the outbox. */
export function createPassback(deps: RootDeps & { outbox: PassbackOutbox; policy: PolicyLookup; lti: LtiStore }): Passback {
  const { config, clock, log, metrics } = deps;
  const ags = new AgsClient({
    keys: new LtijsToolKeys(new KnexLtiPlugin(deps.db, clock, log), ltiEncryptionKey(config, deps.env)),
    clock,
    log,
    requestTimeoutMs: config.passback.requestTimeoutSeconds * 1000,
  });
  const dispatcher = new Dispatcher({
    outbox: deps.outbox,
    ags,
    lti: deps.lti,
    policy: deps.policy,
    clock,
    log,
    name: processName(),
    concurrency: config.passback.concurrency,
    pollMs: config.passback.pollMs,
    maxAttempts: config.passback.maxAttempts,
    retryDelayMs: config.passback.retryDelaySeconds * 1000,
    // a lease outlives the few requests one send makes, each with its own timeout
    leaseMs: Math.max(120_000, 12 * config.passback.requestTimeoutSeconds * 1000),
    metrics,
  });
  metrics.collectFrom({ tokenCache: () => ags.tokenCache() });
  dispatcher.start();
  const actions = new PassbackActions({ outbox: deps.outbox, policy: deps.policy, clock, onRequeued: () => dispatcher.notify() });
  return { dispatcher, ags, actions, stop: () => dispatcher.stop(config.queue.shutdownGraceSeconds * 1000) };
}
