// Input rules for key requests that JSON schema alone cannot express. Every refusal is a 400
// that says what is wrong, before anything is written or any host is called.
import { RefusalError } from '../errors.ts';

const GITHUB_OWNER = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$/;
const GITHUB_NAME = /^[A-Za-z0-9._-]{1,100}$/;
// Gitea/Forgejo user and organisation names: letters, digits, `-`, `_`, `.` (40 at most); repository
// names the same, 100 at most.
const GITEA_OWNER = /^[A-Za-z0-9_.-]{1,40}$/;
const GITEA_NAME = /^[A-Za-z0-9_.-]{1,100}$/;
const GITLAB_SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}$/;
const MAX_GITLAB_DEPTH = 21;

function invalidRepository(repository: string, why: string): RefusalError {
  return new RefusalError('invalid-repository', `repository "${printable(repository)}" ${why}`);
}

/** The value as it may be echoed back: control characters escaped, length bounded. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]/g;

function printable(value: string): string {
  const escaped = value.replace(
    CONTROL_CHARACTERS,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
  return escaped.length > 80 ? `${escaped.slice(0, 80)}…` : escaped;
}

export function validateRepository(hostType: 'github' | 'gitlab' | 'gitea', repository: string): void {
  if (repository.replace(CONTROL_CHARACTERS, '') !== repository)
    throw invalidRepository(repository, 'contains control characters');
  if (repository.includes('%')) throw invalidRepository(repository, 'must not be URL-encoded');
  if (repository.includes('\\')) throw invalidRepository(repository, 'must not contain backslashes');
  const segments = repository.split('/');
  if (segments.some((segment) => segment === '..' || segment === '.')) {
    throw invalidRepository(repository, 'must not contain "." or ".." segments');
  }
  if (segments.some((segment) => segment.endsWith('.git'))) {
    throw invalidRepository(repository, 'must name the repository without ".git"');
  }
  if (hostType === 'github') {
    const [owner, name, ...rest] = segments;
    if (rest.length > 0 || !owner || !name || !GITHUB_OWNER.test(owner) || !GITHUB_NAME.test(name)) {
      throw invalidRepository(repository, 'must be "owner/name"');
    }
    return;
  }
  if (hostType === 'gitea') {
    const [owner, name, ...rest] = segments;
    if (rest.length > 0 || !owner || !name || !GITEA_OWNER.test(owner) || !GITEA_NAME.test(name)) {
      throw invalidRepository(repository, 'must be "owner/name"');
    }
    return;
  }
  if (
    segments.length < 2 ||
    segments.length > MAX_GITLAB_DEPTH ||
    !segments.every((s) => GITLAB_SEGMENT.test(s))
  ) {
    throw invalidRepository(repository, 'must be a GitLab project path such as "group/subgroup/project"');
  }
}

export interface TtlBounds {
  minTtlSeconds: number;
  maxTtlSeconds: number;
  defaultTtlSeconds: number;
}

export function resolveTtl(requested: number | undefined, bounds: TtlBounds): number {
  const ttl = requested ?? bounds.defaultTtlSeconds;
  if (!Number.isInteger(ttl) || ttl < bounds.minTtlSeconds || ttl > bounds.maxTtlSeconds) {
    throw new RefusalError(
      'invalid-ttl',
      `ttlSeconds must be an integer from ${bounds.minTtlSeconds} to ${bounds.maxTtlSeconds}`,
      { extra: { minTtlSeconds: bounds.minTtlSeconds, maxTtlSeconds: bounds.maxTtlSeconds } },
    );
  }
  return ttl;
}
