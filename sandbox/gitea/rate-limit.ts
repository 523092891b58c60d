// A per-client request limit answering 429 with `Retry-After`, as Gitea's opt-in `[security.network]`
// guard (RATE_LIMIT_ENABLED, off by default) or a reverse proxy in front of Gitea answers. Released
// Gitea and Forgejo have no API rate limit of their own. The guard counts every request of a client
// IP before routing or authentication; a window opens at a client's first request.

export interface GiteaRateLimitOptions {
  /** Requests per client and window (RATE_LIMIT_REQUESTS, Gitea's default 300). */
  requests: number;
  /** RATE_LIMIT_WINDOW in seconds (Gitea's default 60). */
  windowSeconds?: number;
}

export interface GiteaRateLimiter {
  configure(options: GiteaRateLimitOptions | undefined): void;
  /** Seconds to wait when this request is over the limit, else `undefined`. */
  retryAfter(client: string, now?: number): number | undefined;
}

// Gitea answers with `http.Error`, which sends this text with a newline as text/plain.
export const RATE_LIMITED_TEXT = 'Rate limit exceeded, please try again later\n';

export function createGiteaRateLimiter(initial?: GiteaRateLimitOptions): GiteaRateLimiter {
  let options = initial;
  let windows = new Map<string, { startedAt: number; count: number }>();

  return {
    configure(next) {
      options = next;
      windows = new Map();
    },
    retryAfter(client, now = Date.now()) {
      if (!options || !(options.requests > 0)) return undefined;
      const windowMs = (options.windowSeconds ?? 60) * 1000;
      let window = windows.get(client);
      if (!window || now >= window.startedAt + windowMs) {
        window = { startedAt: now, count: 0 };
        windows.set(client, window);
      }
      if (window.count < options.requests) {
        window.count += 1;
        return undefined;
      }
      return Math.max(1, Math.ceil((window.startedAt + windowMs - now) / 1000));
    },
  };
}
