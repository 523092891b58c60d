// The body of `POST /repos/{owner}/{repo}/keys` as Gitea binds it into `structs.CreateKeyOption`:
// Go's JSON decoder (null and unknown fields ignored, a wrong type refused), then go-chi/binding's
// `Required` on title and key (an empty string counts as missing). Failures answer 422 with
// "<field names>: <error>".

export interface CreateKeyOption {
  title: string;
  key: string;
  readOnly: boolean;
}

const FIELDS: Array<[json: string, goName: string, type: 'string' | 'bool']> = [
  ['title', 'Title', 'string'],
  ['key', 'Key', 'string'],
  ['read_only', 'ReadOnly', 'bool'],
];

function goKind(value: unknown): string {
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'boolean') return 'bool';
  return typeof value;
}

type Decoded = { fields: Record<string, unknown> } | { error: string };

function decodeJson(text: string): Decoded {
  if (text.trim() === '') return { fields: {} };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    // Go's decoder words its syntax errors differently; the status and the "[]:" prefix match.
    return { error: `[]: ${(error as Error).message}` };
  }
  if (value === null) return { fields: {} };
  if (typeof value !== 'object' || Array.isArray(value)) {
    return {
      error: `[]: json: cannot unmarshal ${goKind(value)} into Go value of type structs.CreateKeyOption`,
    };
  }
  return { fields: value as Record<string, unknown> };
}

/** Decodes the request body; only a JSON content type is read, as every Gitea client sends. */
export function decodeCreateKeyOption(
  contentType: string | undefined,
  body: string | undefined,
): CreateKeyOption | { error: string } {
  const decoded: Decoded = contentType?.includes('json') ? decodeJson(body ?? '') : { fields: {} };
  if ('error' in decoded) return decoded;
  const { fields } = decoded;
  for (const [json, , type] of FIELDS) {
    const value = fields[json];
    if (value === undefined || value === null) continue;
    if (goKind(value) !== type) {
      return {
        error: `[]: json: cannot unmarshal ${goKind(value)} into Go struct field CreateKeyOption.${json} of type ${type}`,
      };
    }
  }
  const option = {
    title: (fields.title as string | undefined | null) ?? '',
    key: (fields.key as string | undefined | null) ?? '',
    // Go's zero value: a key created without read_only can push.
    readOnly: (fields.read_only as boolean | undefined | null) ?? false,
  };
  for (const [json, goName] of FIELDS.slice(0, 2)) {
    if (option[json as 'title' | 'key'] === '') return { error: `[${goName}]: Required` };
  }
  return option;
}
