// Response bodies of the GitHub stand-in, shaped like api.github.com's (checked against GitHub's
// OpenAPI description in test/fixtures/github-rest.openapi.json and recorded responses).
import { randomBytes } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import sshpk from 'sshpk';
import { normalizeKeyBlob, type SandboxDeployKey } from '../shared/host-state.ts';

export const REST_DOCS = 'https://docs.github.com/rest';
const DEPLOY_KEY_DOCS = `${REST_DOCS}/deploy-keys/deploy-keys`;

export const docs = {
  list: `${DEPLOY_KEY_DOCS}#list-deploy-keys`,
  create: `${DEPLOY_KEY_DOCS}#create-a-deploy-key`,
  get: `${DEPLOY_KEY_DOCS}#get-a-deploy-key`,
  delete: `${DEPLOY_KEY_DOCS}#delete-a-deploy-key`,
  rateLimits: `${REST_DOCS}/overview/rate-limits-for-the-rest-api`,
  secondaryRateLimits:
    'https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits',
} as const;

export interface GithubError {
  message: string;
  documentation_url: string;
  status?: string;
  errors?: Array<{ resource?: string; field?: string; code: string; message?: string }>;
}

const MESSAGES: Record<number, string> = {
  400: 'Problems parsing JSON',
  401: 'Bad credentials',
  403: 'Forbidden',
  404: 'Not Found',
  422: 'Validation Failed',
  500: 'Server Error',
  502: 'Server Error',
};

// Current api.github.com error bodies carry the status as a string next to the message.
export function errorBody(status: number, message?: string, documentationUrl = REST_DOCS): GithubError {
  return {
    message: message ?? MESSAGES[status] ?? STATUS_CODES[status] ?? 'Error',
    documentation_url: documentationUrl,
    status: String(status),
  };
}

export function validationFailed(field: string, message: string, documentationUrl: string): GithubError {
  return {
    message: 'Validation Failed',
    errors: [{ resource: 'PublicKey', code: 'custom', field, message }],
    documentation_url: documentationUrl,
    status: '422',
  };
}

/** Shaped like `x-github-request-id`, e.g. `D24F:221686:28BC1:9F91F:69D56197`. */
export function requestId(): string {
  const hex = (bytes: number) => randomBytes(bytes).toString('hex').toUpperCase();
  return [hex(2), hex(3), hex(3), hex(3), hex(4)].join(':');
}

export function primaryLimitMessage(who: string, id: string): string {
  return `API rate limit exceeded for ${who}. If you reach out to GitHub Support for help, please include the request ID ${id} and timestamp ${new Date()
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, ' UTC')}.`;
}

export function secondaryLimitMessage(id: string): string {
  return `You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID ${id}.`;
}

const ACCEPTED_TYPES = new Set(['ed25519', 'rsa', 'ecdsa']);

/** `<type> <base64>` with the comment dropped, or `undefined` when it is no OpenSSH public key. */
export function parsePublicKey(text: string): string | undefined {
  try {
    const key = sshpk.parseKey(text.trim(), 'ssh');
    if (!ACCEPTED_TYPES.has(key.type)) return undefined;
    return normalizeKeyBlob(key.toString('ssh'));
  } catch {
    return undefined;
  }
}

/** GitHub writes timestamps in whole seconds: `2014-12-10T15:53:42Z`. */
export function githubTime(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function deployKeyBody(key: SandboxDeployKey, apiUrl: string, repositoryPath: string) {
  return {
    id: key.id,
    key: key.key,
    url: `${apiUrl}/repos/${repositoryPath}/keys/${key.id}`,
    title: key.title,
    verified: true,
    created_at: githubTime(key.createdAt),
    read_only: key.readOnly,
    added_by: SANDBOX_LOGIN,
    last_used: null,
    enabled: true,
  };
}

export const SANDBOX_LOGIN = 'sandbox-admin';

export interface Page {
  page: number;
  perPage: number;
}

export function readPage(query: Record<string, string | undefined>): Page {
  const perPage = Number.parseInt(query.per_page ?? '', 10);
  const page = Number.parseInt(query.page ?? '', 10);
  return {
    perPage: Number.isFinite(perPage) && perPage > 0 ? Math.min(perPage, 100) : 30,
    page: Number.isFinite(page) && page > 0 ? page : 1,
  };
}

// GitHub orders the relations prev, next, last, first, keeps the caller's other query parameters
// (per_page included) and only omits the header when everything fits on the one page asked for.
export function linkHeader(requestUrl: URL, page: Page, total: number): string | undefined {
  const lastPage = Math.max(1, Math.ceil(total / page.perPage));
  const to = (target: number) => {
    const url = new URL(requestUrl);
    url.searchParams.delete('page');
    url.searchParams.append('page', String(target));
    return `<${url.toString()}>`;
  };
  const links: string[] = [];
  if (page.page > 1) links.push(`${to(page.page - 1)}; rel="prev"`);
  if (page.page < lastPage) {
    links.push(`${to(page.page + 1)}; rel="next"`, `${to(lastPage)}; rel="last"`);
  }
  if (page.page > 1) links.push(`${to(1)}; rel="first"`);
  return links.length > 0 ? links.join(', ') : undefined;
}

const FINGERPRINT_NAMES: Record<string, string> = {
  rsa: 'SHA256_RSA',
  dsa: 'SHA256_DSA',
  ecdsa: 'SHA256_ECDSA',
  ed25519: 'SHA256_ED25519',
};

// `GET /meta` lists host keys as `<type> <base64>` and their SHA-256 fingerprints in unpadded base64
// without the `SHA256:` prefix that `ssh-keygen -l` prints.
export function metaBody(hostKeys: string[]) {
  const fingerprints: Record<string, string> = {};
  for (const hostKey of hostKeys) {
    const key = sshpk.parseKey(hostKey, 'ssh');
    const name = FINGERPRINT_NAMES[key.type];
    if (name)
      fingerprints[name] = key
        .fingerprint('sha256')
        .toString()
        .replace(/^SHA256:/, '');
  }
  const local = ['127.0.0.1/32'];
  return {
    verifiable_password_authentication: false,
    ssh_key_fingerprints: fingerprints,
    ssh_keys: hostKeys.map(normalizeKeyBlob),
    hooks: [],
    web: local,
    api: local,
    git: local,
    packages: [],
    pages: [],
    importer: [],
    actions: [],
    dependabot: [],
  };
}
