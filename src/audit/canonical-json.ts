export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

// Postgres refuses NUL in text and jsonb, and a lone surrogate cannot be encoded as UTF-8, so
// either would reach the database as something other than what was hashed (or not at all).
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching NUL is the point
const UNSTORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** The string as Postgres can store it: NUL and lone surrogates become U+FFFD. */
export function storableText(text: string): string {
  return text.replace(UNSTORABLE, '\ufffd');
}

/**
 * The one JSON form of `value` that is both hashed and stored: dates become ISO strings, undefined
 * members are dropped (in arrays they become null, as JSON.stringify writes them), non-finite
 * numbers become null, -0 becomes 0, bigints become decimal strings, and strings (keys too) are
 * made storable. Reading the stored jsonb back yields exactly this value.
 */
export function toJsonValue(value: unknown): JsonValue {
  switch (typeof value) {
    case 'string':
      return storableText(value);
    case 'number':
      return Number.isFinite(value) ? value + 0 : null;
    case 'boolean':
      return value;
    case 'bigint':
      return value.toString();
    case 'object':
      break;
    default:
      return null;
  }
  if (value === null) return null;
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  if (Array.isArray(value)) return Array.from(value, toJsonValue);
  const toJSON = (value as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === 'function') return toJsonValue(toJSON.call(value));
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, entry]) => entry !== undefined && typeof entry !== 'function' && typeof entry !== 'symbol')
    .map(([key, entry]): [string, JsonValue] => [storableText(key), toJsonValue(entry)]);
  // fromEntries defines own properties, so a "__proto__" member stays a member.
  return Object.fromEntries(entries);
}

/** JSON with object keys sorted at every depth, so the same event always hashes the same. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value ?? null);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, entry]) => entry !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([key, entry]) => `${JSON.stringify(key)}:${canonicalJson(entry)}`).join(',')}}`;
}
