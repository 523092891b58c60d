// @ts-check
// The console's only way to the service: same origin, the auditor token as a bearer header, errors
// read from problem+json.

const TOKEN_KEY = 'deploykey.auditToken';

// sessionStorage, not localStorage: the token leaves with the tab.
export const session = {
  get token() {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  set token(value) {
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
  },
};

export class ApiError extends Error {
  /** @param {number} status @param {string} message @param {string} [code] */
  constructor(status, message, code) {
    super(message);
    this.name = 'ApiError';
    /** @type {number} */
    this.status = status;
    /** @type {string | undefined} */
    this.code = code;
  }
}

/** @param {Response} response */
async function problemOf(response) {
  const type = response.headers.get('content-type') ?? '';
  if (type.includes('json')) {
    try {
      const body = await response.json();
      const text = body.detail || body.title;
      if (text) return new ApiError(response.status, String(text), body.code);
    } catch {}
  }
  return new ApiError(
    response.status,
    `the service answered ${response.status} ${response.statusText}`.trim(),
  );
}

/** @param {string} path @param {Record<string, string | number | boolean | undefined>} [query] */
export function withQuery(path, query = {}) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined && value !== '' && value !== false) params.set(name, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

/**
 * Sends one request with the stored token (or `token`, when signing in). Throws ApiError; a 401 has
 * `status === 401` so the caller can go back to the sign-in form.
 * @param {string} path
 * @param {{ token?: string | null, accept?: string, signal?: AbortSignal | undefined }} [options]
 * @returns {Promise<Response>}
 */
export async function request(path, { token = session.token, accept = 'application/json', signal } = {}) {
  let response;
  try {
    response = await fetch(path, {
      headers: { accept, ...(token ? { authorization: `Bearer ${token}` } : {}) },
      cache: 'no-store',
      credentials: 'omit',
      signal: signal ?? null,
    });
  } catch (error) {
    if (/** @type {Error | undefined} */ (error)?.name === 'AbortError') throw error;
    throw new ApiError(0, 'the service cannot be reached; check the connection');
  }
  if (!response.ok) throw await problemOf(response);
  return response;
}

/**
 * @param {string} path
 * @param {{ token?: string | null, signal?: AbortSignal | undefined }} [options]
 * @returns {Promise<any>}
 */
export async function getJson(path, options) {
  return (await request(path, options)).json();
}

/** Fetches `path` with the token and hands it to the browser as a download. @param {string} path @param {string} fallbackName */
export async function download(path, fallbackName) {
  const response = await request(path, { accept: '*/*' });
  const blob = await response.blob();
  const disposition = response.headers.get('content-disposition') ?? '';
  const named = /filename="?([^";]+)"?/i.exec(disposition)?.[1];
  const name = named && /^[\w.-]+$/.test(named) ? named : fallbackName;
  const url = URL.createObjectURL(blob);
  const link = document.createElement('a');
  link.href = url;
  link.download = name;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  // The click has started the download; the object URL is no longer needed after this turn.
  setTimeout(() => URL.revokeObjectURL(url), 0);
  return { name, bytes: blob.size };
}
