// What one host type must provide to the adapter core: single HTTP attempts through its client
// library, nothing else. Retries, pacing, rate limits, error mapping, read-only enforcement,
// pagination and known_hosts are the core's (host-adapter.ts), the same for every host type.
import type { HostConfig } from '../config.ts';
import type { Logger } from '../log.ts';
import type { Clock } from '../time.ts';
import type { FailedAnswer } from './error-mapping.ts';
import type { CiJobQuery, CiJobStatus, HostDeployKey } from './git-host.ts';
import type { HostBudget } from './host-scheduler.ts';
import type { GithubMeta } from './known-hosts.ts';

export interface TransportContext {
  config: HostConfig;
  logger: Logger;
  /** Times out each attempt, counts every answer and shows the core every rate-limit header. */
  fetch: typeof fetch;
  clock: Clock;
}

export interface NewDeployKey {
  title: string;
  publicKey: string;
  /** For hosts that expire keys themselves, a second safety net; others ignore it. */
  expiresAt: Date;
}

/** How fast a host type takes writes; how long a write may queue is the service's own bound. */
export type HostPace = Omit<HostBudget, 'maxQueueSeconds'>;

export interface DeployKeyPage {
  keys: HostDeployKey[];
  /** The page after this one, or undefined on the last. */
  nextPage: number | undefined;
}

export interface HostTransport {
  /** How the host names a repository, for refusals, e.g. `a GitHub repository (owner/name)`. */
  readonly repositoryShape: string;
  readonly maxPathSegments: number;
  /** Write pace of this host type, for every setting the configuration leaves out. */
  readonly writePace: HostPace;
  /** Matches the host's refusal of a key already on the repository (our own, when a lost answer made us send it again). */
  readonly alreadyRegistered?: RegExp;
  /** Fails when the service's credentials cannot act on the repository (an App not installed there). */
  checkAccess?(repository: string): Promise<void>;
  /** Registers the key read-only. */
  addKey(repository: string, key: NewDeployKey): Promise<HostDeployKey>;
  deleteKey(repository: string, hostKeyId: string): Promise<void>;
  /** One page of the repository's deploy keys, pages counted from 1. */
  listPage(repository: string, page: number): Promise<DeployKeyPage>;
  /** A CI job's status in one request; host types without CI of their own leave it out. */
  ciJobStatus?(query: CiJobQuery): Promise<CiJobStatus>;
  /** Reads the repository, failing with the host's 404 when our credentials cannot see it. */
  readRepository?(repository: string): Promise<void>;
  /** GitHub's `GET /meta`; a host type that publishes no SSH host keys through its API has none. */
  fetchMeta?: () => Promise<GithubMeta>;
  /** Status, headers and message of a failed request in the library's error; undefined when no answer came. */
  answerOf(error: unknown): FailedAnswer | undefined;
}

export type HostTransportFactory = (context: TransportContext) => HostTransport;
