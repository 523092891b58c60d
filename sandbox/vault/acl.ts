// Vault ACL policies: the HCL (or JSON) subset policies are written in, and Vault's path matching —
// exact rules first, then the highest-priority glob (`*` suffix) or segment wildcard (`+`) rule.
import { isObject, type VaultOperation } from './http.ts';

const CAPABILITIES = [
  'create',
  'read',
  'update',
  'delete',
  'list',
  'sudo',
  'deny',
  'patch',
  'subscribe',
  'recover',
];
const LEGACY_POLICY: Record<string, string[]> = {
  deny: ['deny'],
  read: ['read', 'list'],
  write: ['read', 'list', 'create', 'update', 'delete'],
  sudo: ['read', 'list', 'create', 'update', 'delete', 'sudo'],
};
const PATH_KEYS = new Set([
  'comment',
  'policy',
  'capabilities',
  'allowed_parameters',
  'denied_parameters',
  'required_parameters',
  'min_wrapping_ttl',
  'max_wrapping_ttl',
  'mfa_methods',
  'control_group',
  'subscribe_event_types',
]);

export interface PathRule {
  path: string;
  capabilities: Set<string>;
}

type HclValue = string | number | boolean | HclValue[] | HclBody;
interface HclBody {
  entries: { key: string; labels: string[]; value: HclValue }[];
}

const TOKEN =
  /\s+|#[^\n]*|\/\/[^\n]*|\/\*[\s\S]*?\*\/|"((?:[^"\\]|\\.)*)"|(-?\d+(?:\.\d+)?)|([A-Za-z_][\w.-]*)|([{}[\]=,])/y;

function tokenize(text: string): { kind: 'str' | 'num' | 'ident' | 'punct'; value: string }[] {
  const tokens: { kind: 'str' | 'num' | 'ident' | 'punct'; value: string }[] = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < text.length) {
    const at = TOKEN.lastIndex;
    const match = TOKEN.exec(text);
    if (!match) {
      const line = text.slice(0, at).split('\n').length;
      throw new Error(`At ${line}:${at - text.lastIndexOf('\n', at - 1)}: illegal char`);
    }
    if (match[1] !== undefined) tokens.push({ kind: 'str', value: JSON.parse(`"${match[1]}"`) as string });
    else if (match[2] !== undefined) tokens.push({ kind: 'num', value: match[2] });
    else if (match[3] !== undefined) tokens.push({ kind: 'ident', value: match[3] });
    else if (match[4] !== undefined) tokens.push({ kind: 'punct', value: match[4] });
  }
  return tokens;
}

function parseHcl(text: string): HclBody {
  const tokens = tokenize(text);
  let index = 0;
  const peek = () => tokens[index];
  const expect = (value: string) => {
    const token = tokens[index++];
    if (token?.value !== value || token.kind !== 'punct') throw new Error(`expected '${value}'`);
  };

  const value = (): HclValue => {
    const token = tokens[index++];
    if (!token) throw new Error('unexpected end of input');
    if (token.kind === 'str') return token.value;
    if (token.kind === 'num') return Number(token.value);
    if (token.kind === 'ident' && (token.value === 'true' || token.value === 'false'))
      return token.value === 'true';
    if (token.value === '{') {
      const inner = body('}');
      expect('}');
      return inner;
    }
    if (token.value === '[') {
      const items: HclValue[] = [];
      while (peek()?.value !== ']') {
        items.push(value());
        if (peek()?.value === ',') index++;
        else break;
      }
      expect(']');
      return items;
    }
    throw new Error(`unexpected token '${token.value}'`);
  };

  const body = (end?: string): HclBody => {
    const entries: HclBody['entries'] = [];
    while (index < tokens.length && peek()?.value !== end) {
      const key = tokens[index++]!;
      if (key.kind !== 'ident' && key.kind !== 'str') throw new Error(`unexpected token '${key.value}'`);
      const labels: string[] = [];
      while (peek()?.kind === 'str') labels.push(tokens[index++]!.value);
      if (peek()?.value === '=') index++;
      else if (peek()?.value !== '{') throw new Error(`expected '=' or '{' after '${key.value}'`);
      entries.push({ key: key.value, labels, value: value() });
      if (peek()?.value === ',') index++;
    }
    return { entries };
  };

  return body();
}

function fromJson(value: unknown): HclValue {
  if (Array.isArray(value)) return value.map(fromJson);
  if (isObject(value)) {
    return {
      entries: Object.entries(value).map(([key, item]) => ({ key, labels: [], value: fromJson(item) })),
    };
  }
  return value as HclValue;
}

const isBody = (value: HclValue): value is HclBody => isObject(value) && Array.isArray(value.entries);

function pathBlocks(root: HclBody): { path: string; body: HclBody }[] {
  const blocks: { path: string; body: HclBody }[] = [];
  for (const entry of root.entries) {
    if (entry.key === 'name') continue;
    if (entry.key !== 'path') throw new Error(`invalid key "${entry.key}"`);
    if (!isBody(entry.value)) throw new Error('path must be a block');
    if (entry.labels.length > 0) {
      blocks.push({ path: entry.labels.join('/'), body: entry.value });
      continue;
    }
    // `path = { "a/*" = {...} }` and the JSON form nest the path as a key.
    for (const nested of entry.value.entries) {
      if (isBody(nested.value)) blocks.push({ path: nested.key, body: nested.value });
    }
  }
  return blocks;
}

/** ParseACLPolicy; throws with the message Vault puts after `failed to parse policy: `. */
export function parsePolicy(raw: string): PathRule[] {
  const root = raw.trim().startsWith('{') ? (fromJson(JSON.parse(raw)) as HclBody) : parseHcl(raw);
  return pathBlocks(root).map(({ path, body }) => {
    const capabilities = new Set<string>();
    for (const entry of body.entries) {
      if (!PATH_KEYS.has(entry.key)) throw new Error(`path "${path}": invalid key "${entry.key}"`);
      if (entry.key === 'policy') {
        const legacy = LEGACY_POLICY[String(entry.value)];
        if (!legacy) throw new Error(`path "${path}": invalid policy "${String(entry.value)}"`);
        for (const capability of legacy) capabilities.add(capability);
      }
      if (entry.key === 'capabilities') {
        const list = Array.isArray(entry.value) ? entry.value : [entry.value];
        for (const item of list) {
          const capability = String(item).toLowerCase();
          if (!CAPABILITIES.includes(capability)) {
            throw new Error(`path "${path}": invalid capability "${capability}"`);
          }
          capabilities.add(capability);
        }
      }
    }
    // An explicit deny overrides every other capability on the same path.
    return {
      path: path.replace(/^\/+/, ''),
      capabilities: capabilities.has('deny') ? new Set(['deny']) : capabilities,
    };
  });
}

export interface Acl {
  root: boolean;
  exact: Map<string, Set<string>>;
  prefix: Map<string, Set<string>>;
  segmentWildcard: Map<string, Set<string>>;
}

function merge(into: Map<string, Set<string>>, key: string, capabilities: Set<string>): void {
  const existing = into.get(key);
  if (!existing) into.set(key, new Set(capabilities));
  else if (existing.has('deny')) return;
  else if (capabilities.has('deny')) into.set(key, new Set(['deny']));
  else for (const capability of capabilities) existing.add(capability);
}

export function compileAcl(policies: { name: string; rules: PathRule[] }[]): Acl {
  const acl: Acl = { root: false, exact: new Map(), prefix: new Map(), segmentWildcard: new Map() };
  for (const policy of policies) {
    if (policy.name === 'root') acl.root = true;
    for (const rule of policy.rules) {
      if (rule.path.includes('+')) merge(acl.segmentWildcard, rule.path, rule.capabilities);
      else if (rule.path.endsWith('*')) merge(acl.prefix, rule.path.slice(0, -1), rule.capabilities);
      else merge(acl.exact, rule.path, rule.capabilities);
    }
  }
  return acl;
}

interface Candidate {
  firstWildcard: number;
  isPrefix: boolean;
  wildcards: number;
  path: string;
  capabilities: Set<string>;
}

// vault/acl.go CheckAllowedFromNonExactPaths: the later a wildcard starts, the better; then
// non-prefix over prefix, fewer `+` segments, longer path, and lexical order as a last resort.
function lowerPriority(a: Candidate, b: Candidate): number {
  if (a.firstWildcard !== b.firstWildcard) return a.firstWildcard - b.firstWildcard;
  if (a.isPrefix !== b.isPrefix) return a.isPrefix ? -1 : 1;
  if (a.wildcards !== b.wildcards) return b.wildcards - a.wildcards;
  if (a.path.length !== b.path.length) return a.path.length - b.path.length;
  return a.path < b.path ? -1 : a.path > b.path ? 1 : 0;
}

function nonExactMatch(acl: Acl, path: string): Set<string> | undefined {
  const candidates: Candidate[] = [];
  let longest: string | undefined;
  for (const prefix of acl.prefix.keys()) {
    if (path.startsWith(prefix) && (longest === undefined || prefix.length > longest.length))
      longest = prefix;
  }
  if (longest !== undefined) {
    if (acl.segmentWildcard.size === 0) return acl.prefix.get(longest);
    const capabilities = acl.prefix.get(longest)!;
    candidates.push({
      firstWildcard: longest.length,
      isPrefix: true,
      wildcards: 0,
      path: longest,
      capabilities,
    });
  }
  const parts = path.split('/');
  for (const [full, capabilities] of acl.segmentWildcard) {
    const isPrefix = full.endsWith('*');
    const pattern = isPrefix ? full.slice(0, -1) : full;
    const segments = pattern.split('/');
    if (parts.length < segments.length || (!isPrefix && parts.length !== segments.length)) continue;
    let wildcards = 0;
    const matches = segments.every((segment, i) => {
      if (segment === '+') {
        wildcards += 1;
        return true;
      }
      if (segment === parts[i]) return true;
      return isPrefix && i === segments.length - 1 && parts[i]!.startsWith(segment);
    });
    if (matches)
      candidates.push({ firstWildcard: full.indexOf('+'), isPrefix, wildcards, path: pattern, capabilities });
  }
  return candidates.sort(lowerPriority).at(-1)?.capabilities;
}

/** ACL.AllowOperation for the operations the stand-in serves. */
export function isAllowed(acl: Acl, path: string, operation: VaultOperation): boolean {
  if (acl.root) return true;
  let capabilities = acl.exact.get(path);
  if (!capabilities && operation === 'list') capabilities = acl.exact.get(path.replace(/\/$/, ''));
  if (!capabilities && operation === 'list' && path.endsWith('/'))
    capabilities = nonExactMatch(acl, path.slice(0, -1));
  capabilities ??= nonExactMatch(acl, path);
  if (!capabilities || capabilities.has('deny')) return false;
  return capabilities.has(operation);
}
