// The GitLab API throttle (Rack::Attack as configured by `Gitlab::RackAttack`): a request counter
// per client and window, counted before authentication and routing, and the `RateLimit-*` headers.
// Rack::Attack aligns windows to the epoch; here a window opens at a client's first request so a
// test sees the same outcome whatever the wall clock says.

export interface RateLimitOptions {
  requestsPerSecond?: number;
}

export interface RateLimitDecision {
  throttled: boolean;
  headers: Record<string, string>;
}

export interface RateLimiter {
  configure(options: RateLimitOptions | undefined): void;
  /** `undefined` when throttling is off. */
  check(client: { authenticated: boolean; id: string }, now?: number): RateLimitDecision | undefined;
}

interface Window {
  startedAt: number;
  count: number;
}

export function createRateLimiter(initial?: RateLimitOptions): RateLimiter {
  let limit = 0;
  let periodMs = 0;
  let windows = new Map<string, Window>();

  const configure = (options: RateLimitOptions | undefined) => {
    const rate = options?.requestsPerSecond ?? 0;
    windows = new Map();
    if (!(rate > 0)) {
      limit = 0;
      return;
    }
    // A rate below one request per second becomes one request per 1/rate seconds.
    limit = rate >= 1 ? Math.floor(rate) : 1;
    periodMs = rate >= 1 ? 1000 : Math.round(1000 / rate);
  };
  configure(initial);

  return {
    configure,
    check(client, now = Date.now()) {
      if (limit === 0) return undefined;
      const name = client.authenticated ? 'throttle_authenticated_api' : 'throttle_unauthenticated_api';
      const key = `${name}:${client.id}`;
      let window = windows.get(key);
      if (!window || now >= window.startedAt + periodMs) {
        window = { startedAt: now, count: 0 };
        windows.set(key, window);
      }
      // Rack::Attack counts throttled requests too, so hammering keeps `RateLimit-Observed` rising.
      window.count += 1;
      const resetAtMs = window.startedAt + periodMs;
      const headers: Record<string, string> = {
        'RateLimit-Name': name,
        // Documented as the quota per 60 seconds, whatever the real period is.
        'RateLimit-Limit': String(Math.ceil((limit * 60_000) / periodMs)),
        'RateLimit-Observed': String(window.count),
        'RateLimit-Remaining': String(Math.max(limit - window.count, 0)),
        'RateLimit-Reset': String(Math.ceil(resetAtMs / 1000)),
      };
      const throttled = window.count > limit;
      if (throttled) {
        headers['RateLimit-ResetTime'] = new Date(Math.ceil(resetAtMs / 1000) * 1000).toUTCString();
        headers['Retry-After'] = String(Math.max(Math.ceil((resetAtMs - now) / 1000), 1));
      }
      return { throttled, headers };
    },
  };
}
