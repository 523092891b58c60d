// A host's credentials (one, or a pool of GitHub Apps and tokens), each with its own transport and
// its own write budget: GitHub counts its secondary limits per identity, so two Apps can write twice
// as fast as one. A write goes to the credential that can start it soonest among those that can see
// the repository; a credential the host turned away (repository not visible to it, a rate limit)
// hands the call on to the next.
import type { HostConfig } from '../config.ts';
import type { Logger } from '../log.ts';
import { watchHostBudget } from '../metrics.ts';
import { HostError } from './git-host.ts';
import { createHostFetch } from './host-fetch.ts';
import { DEFAULT_REQUEST_TIMEOUT_MS, type HostAdapterDeps, instrumentedFetch } from './host-http.ts';
import { createHostScheduler, type HostBudget, type HostLane, type HostScheduler } from './host-scheduler.ts';
import type { HostPace, HostTransport, HostTransportFactory } from './host-transport.ts';

export interface PoolMember {
  /** The configured name; `default` for a host with a single `auth`. */
  name: string;
  transport: HostTransport;
  scheduler: HostScheduler;
}

// Name of the one credential of a host configured with a single `auth`.
const SINGLE = 'default';

/**
 * One member per configured credential. A host with a single `auth` keeps its budget's Redis key and
 * unlabelled queue metrics; a pool's members each get their own key and a `credential` label.
 */
export function createPoolMembers(
  config: HostConfig,
  createTransport: HostTransportFactory,
  deps: HostAdapterDeps,
  logger: Logger,
  budgetFor: (pace: HostPace) => HostBudget,
): PoolMember[] {
  const pooled = config.pool !== undefined;
  const entries = config.pool
    ? config.pool.map(({ name, token, credential }) => ({ name, config: { ...config, token, credential } }))
    : [{ name: SINGLE, config }];
  // One set of kept-alive connections per host, whichever credential a request goes out with.
  const send = createHostFetch();
  return entries.map(({ name, config: memberConfig }) => {
    const memberLogger = pooled ? logger.child({ credential: name }) : logger;
    const transport: HostTransport = createTransport({
      config: memberConfig,
      logger: memberLogger,
      clock: deps.clock,
      fetch: instrumentedFetch({
        metrics: deps.metrics,
        hostId: config.id,
        timeoutMs: deps.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
        onAnswer: (status, headers) => scheduler.observe(status, headers),
        send,
      }),
    });
    const scheduler: HostScheduler = createHostScheduler({
      hostId: config.id,
      ...(pooled ? { credential: name } : {}),
      budget: budgetFor(transport.writePace),
      logger: memberLogger,
      metrics: deps.metrics,
      clock: deps.clock,
      timers: deps.timers,
      ...(deps.sharedPacing ? { shared: deps.sharedPacing } : {}),
    });
    watchHostBudget(deps.metrics, { provider: config.id, credential: name }, scheduler.budgetLeft);
    return { name, transport, scheduler };
  });
}

/** Whether another credential may succeed where this one was turned away. */
function handsOn(error: unknown): boolean {
  if (!(error instanceof HostError)) return false;
  // A rate limit of our own scheduler is handed on too: a write queued on a credential the host then
  // paused is refused there, while another credential may still have room.
  return ['rate-limited', 'not-found', 'forbidden', 'unauthorized'].includes(error.kind);
}

export interface CredentialPool {
  readonly members: PoolMember[];
  /**
   * The members that can act on the repository (an App installed on its owner; a token always);
   * with none, the first member's refusal (`app-not-installed`).
   */
  reaching(repository: string, check: (member: PoolMember) => Promise<void>): Promise<PoolMember[]>;
  /** The members in the order a write in this lane should try them: soonest start first. */
  forWrite(members: PoolMember[], lane: HostLane): PoolMember[];
  /** The members in the order a read should try them: the least held first. */
  forRead(members: PoolMember[]): PoolMember[];
  /** Runs `call` on each member in turn until one is not turned away; the last one's error else. */
  firstAccepting<T>(members: PoolMember[], call: (member: PoolMember) => Promise<T>): Promise<T>;
  /** The refusal a new issue of this caller would meet on every member, or undefined. */
  refusal(lane: HostLane): HostError | undefined;
}

export function createCredentialPool(members: PoolMember[], logger: Logger): CredentialPool {
  // Members whose waits are equal take writes in turn, so an idle pool spreads a burst from its start.
  let turn = 0;
  const rotated = (list: PoolMember[]) => {
    const from = turn % list.length;
    turn += 1;
    return [...list.slice(from), ...list.slice(0, from)];
  };

  return {
    members,

    async reaching(repository, check) {
      const checks = await Promise.allSettled(members.map(check));
      const reach = members.filter((_, index) => checks[index]?.status === 'fulfilled');
      if (reach.length > 0) return reach;
      const first = checks[0] as PromiseRejectedResult;
      logger.debug({ repository }, 'no credential of the host can act on the repository');
      throw first.reason;
    },

    forWrite: (list, lane) =>
      rotated(list)
        .map((member) => ({ member, waitMs: member.scheduler.waitMs(lane) }))
        .sort((a, b) => a.waitMs - b.waitMs)
        .map(({ member }) => member),

    forRead: (list) => [...list].sort((a, b) => a.scheduler.heldForMs() - b.scheduler.heldForMs()),

    async firstAccepting(list, call) {
      // A 404 says only that this credential cannot see the repository or key; when another was
      // turned away otherwise (a rate limit), that answer is the one that counts, or a revoke would
      // take a key that is still there for one already gone.
      let otherThanNotFound: unknown;
      for (const [index, member] of list.entries()) {
        try {
          return await call(member);
        } catch (error) {
          if (!handsOn(error)) throw error;
          // The first member tried had the soonest turn, so its refusal has the soonest retry time.
          if ((error as HostError).kind !== 'not-found') otherThanNotFound ??= error;
          if (index === list.length - 1) throw otherThanNotFound ?? error;
          logger.debug(
            { credential: member.name, err: (error as HostError).code },
            'credential turned away; handing the call on to the next',
          );
        }
      }
      throw new Error('a host has no credentials');
    },

    refusal(lane) {
      const [soonest] = members
        .map((member) => ({ member, waitMs: member.scheduler.waitMs(lane) }))
        .sort((a, b) => a.waitMs - b.waitMs);
      return soonest?.member.scheduler.refusal(lane);
    },
  };
}
