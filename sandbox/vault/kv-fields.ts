// Request fields of the KV v2 engine that need more than a type check: version lists,
// custom_metadata limits (path_metadata.go) and the JSON merge patch used by PATCH.
import { badRequest, isObject } from './http.ts';

/** TypeCommaIntSlice: `[1, 2]` or `"1,2"`. */
export function versionList(value: unknown): number[] {
  const items = Array.isArray(value) ? value : typeof value === 'string' ? value.split(',') : [];
  return items.map((item) => Number(item)).filter((item) => Number.isInteger(item));
}

export function validateCustomMetadata(raw: unknown): Record<string, string> {
  const entries = Object.entries(isObject(raw) ? raw : {}).map(
    ([key, value]) => [key, String(value ?? '')] as const,
  );
  const prefix = 'custom_metadata validation failed';
  if (entries.length > 64)
    throw badRequest(`${prefix}: payload must contain at most 64 keys, provided ${entries.length}`);
  const problems: string[] = [];
  for (const [key, value] of entries) {
    if (key.length === 0 || key.length > 128) {
      problems.push(`${prefix}: length of key "${key}" is ${key.length} but must be 0 < len(key) <= 128`);
    }
    if (value.length === 0 || value.length > 512) {
      problems.push(
        `${prefix}: length of value for key "${key}" is ${value.length} but must be 0 < len(value) <= 512`,
      );
    }
  }
  if (problems.length === 1) throw badRequest(problems[0]!);
  if (problems.length > 1) {
    throw badRequest(`${problems.length} errors occurred:\n${problems.map((p) => `\t* ${p}\n`).join('')}\n`);
  }
  return Object.fromEntries(entries);
}

export function mergePatch(
  target: Record<string, unknown>,
  patch: Record<string, unknown>,
): Record<string, unknown> {
  const result: Record<string, unknown> = { ...target };
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else if (isObject(value)) result[key] = mergePatch(isObject(result[key]) ? result[key] : {}, value);
    else result[key] = value;
  }
  return result;
}
