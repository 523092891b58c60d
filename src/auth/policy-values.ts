// Values that come from the caller (claims, the requested repository) as the access policy sees
// them. Anything ambiguous or malformed resolves to "absent", so a rule that depends on it fails
// closed instead of matching by accident.

// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL_CHARACTERS_ALL = /[\u0000-\u001f\u007f-\u009f]/g;
const MAX_REPOSITORY_LENGTH = 1024;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// Kubernetes puts its claims under a key that itself contains a dot (`kubernetes.io`), so a dot
// path such as `kubernetes.io.namespace` is tried against every way of splitting it.
function resolveAll(claims: Record<string, unknown>, path: string): unknown[] {
  const found: unknown[] = [];
  if (Object.hasOwn(claims, path)) found.push(claims[path]);
  for (let dot = path.indexOf('.'); dot > 0; dot = path.indexOf('.', dot + 1)) {
    const head = path.slice(0, dot);
    const inner = Object.hasOwn(claims, head) ? claims[head] : undefined;
    if (isRecord(inner)) found.push(...resolveAll(inner, path.slice(dot + 1)));
  }
  return found;
}

function scalarString(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'boolean') return String(value);
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return undefined;
}

/**
 * The claim at a dot path as a string. Absent when missing, not a scalar, or when two ways of
 * reading the path disagree.
 */
export function claimValue(claims: Record<string, unknown>, path: string): string | undefined {
  if (!isRecord(claims)) return undefined;
  const values = new Set(resolveAll(claims, path).map(scalarString));
  if (values.size !== 1) return undefined;
  return [...values][0];
}

function hasDotSegment(value: string): boolean {
  return value.split('/').some((segment) => segment === '.' || segment === '..');
}

/** Whether a claim value may be put into a repository pattern (as literal text). */
export function isSubstitutable(value: string): boolean {
  return value !== '' && !CONTROL_CHARACTERS.test(value) && !value.includes('/..') && !hasDotSegment(value);
}

/** Whether a requested repository is a plain `a/b[/c…]` path that a pattern may be tried against. */
export function isPlainRepositoryPath(repository: string): boolean {
  if (repository.length === 0 || repository.length > MAX_REPOSITORY_LENGTH) return false;
  if (CONTROL_CHARACTERS.test(repository) || repository.includes('\\')) return false;
  return repository.split('/').every((segment) => segment !== '' && segment !== '.' && segment !== '..');
}

/** A caller-supplied value as it may appear in a message: control characters escaped, length bounded. */
export function printable(value: string, max = 120): string {
  const escaped = value.replace(
    CONTROL_CHARACTERS_ALL,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
  return escaped.length > max ? `${escaped.slice(0, max)}…` : escaped;
}
