// GitHub's primary and secondary REST rate limits, as documented in "Rate limits for the REST API"
// (docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api).

export interface GithubRateLimitOptions {
  /** Requests per window for an accepted token; GitHub's default for a personal access token is 5000. */
  limit?: number;
  windowSeconds?: number;
  /** Writes (POST/PUT/PATCH/DELETE) per second per token before a secondary limit; off when omitted. */
  secondary?: { writesPerSecond: number; retryAfterSeconds?: number };
}

export interface RateLimitSnapshot {
  limit: number;
  remaining: number;
  used: number;
  /** UTC epoch seconds. */
  reset: number;
}

export type RateLimitOutcome =
  | { kind: 'ok'; snapshot: RateLimitSnapshot }
  | { kind: 'primary'; snapshot: RateLimitSnapshot }
  | { kind: 'secondary'; retryAfterSeconds: number };

export interface GithubRateLimiter {
  /** Count one request of `credential` (a token, or `null` for an unauthenticated caller). */
  take(credential: string | null, write: boolean): RateLimitOutcome;
  /** The primary-limit standing of `credential` without counting a request. */
  peek(credential: string | null): RateLimitSnapshot;
  configure(options: GithubRateLimitOptions | undefined): void;
}

// The documented primary limit for unauthenticated requests.
const UNAUTHENTICATED_LIMIT = 60;
const DEFAULT_LIMIT = 5000;
const DEFAULT_WINDOW_SECONDS = 3600;

interface Bucket {
  windowStartedMs: number;
  used: number;
  writes: number[];
}

export function rateLimitHeaders(snapshot: RateLimitSnapshot): Record<string, string> {
  return {
    'x-ratelimit-limit': String(snapshot.limit),
    'x-ratelimit-remaining': String(snapshot.remaining),
    'x-ratelimit-used': String(snapshot.used),
    'x-ratelimit-reset': String(snapshot.reset),
    'x-ratelimit-resource': 'core',
  };
}

export function createGithubRateLimiter(
  initial: GithubRateLimitOptions | undefined,
  now: () => number = () => Date.now(),
): GithubRateLimiter {
  let options: GithubRateLimitOptions = initial ?? {};
  let buckets = new Map<string, Bucket>();

  const windowMs = () => (options.windowSeconds ?? DEFAULT_WINDOW_SECONDS) * 1000;

  const bucketFor = (key: string, nowMs: number) => {
    let bucket = buckets.get(key);
    if (!bucket || nowMs >= bucket.windowStartedMs + windowMs()) {
      bucket = { windowStartedMs: nowMs, used: 0, writes: bucket?.writes ?? [] };
      buckets.set(key, bucket);
    }
    return bucket;
  };

  const snapshot = (bucket: Bucket, limit: number): RateLimitSnapshot => ({
    limit,
    remaining: Math.max(0, limit - bucket.used),
    used: bucket.used,
    reset: Math.ceil((bucket.windowStartedMs + windowMs()) / 1000),
  });

  const limitFor = (credential: string | null) =>
    credential === null ? UNAUTHENTICATED_LIMIT : (options.limit ?? DEFAULT_LIMIT);

  return {
    peek: (credential) => snapshot(bucketFor(credential ?? '', now()), limitFor(credential)),
    take(credential, write) {
      const nowMs = now();
      const limit = limitFor(credential);
      const bucket = bucketFor(credential ?? '', nowMs);
      if (bucket.used >= limit) return { kind: 'primary', snapshot: snapshot(bucket, limit) };

      const secondary = options.secondary;
      if (write && secondary && credential !== null) {
        bucket.writes = bucket.writes.filter((at) => at > nowMs - 1000);
        if (bucket.writes.length >= secondary.writesPerSecond) {
          const freeAtMs = (bucket.writes[0] ?? nowMs) + 1000;
          const retryAfterSeconds =
            secondary.retryAfterSeconds ?? Math.max(1, Math.ceil((freeAtMs - nowMs) / 1000));
          return { kind: 'secondary', retryAfterSeconds };
        }
        bucket.writes.push(nowMs);
      }

      bucket.used += 1;
      return { kind: 'ok', snapshot: snapshot(bucket, limit) };
    },
    configure(next) {
      options = next ?? {};
      buckets = new Map();
    },
  };
}
