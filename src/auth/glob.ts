// Globs of the access policy: `*` and `?` stay inside one path segment, `**` crosses segments.
// A pattern is parsed once into parts; a `${claim}` part is filled in at match time as a literal
// part, never as pattern text, so a claim value cannot act as a wildcard and there is no escaping
// step that could be got wrong.
import { claimValue, isSubstitutable } from './policy-values.ts';

type Part =
  | { kind: 'literal'; text: string }
  | { kind: 'star' }
  | { kind: 'globstar' }
  | { kind: 'one' }
  | { kind: 'claim'; path: string };

type ResolvedPart = Exclude<Part, { kind: 'claim' }>;

export interface Glob {
  source: string;
  parts: Part[];
  /** Why the pattern is unusable; a pattern with problems matches nothing. */
  problems: string[];
}

export interface GlobOptions {
  /** Whether `${claim}` placeholders are expanded (repository patterns only). */
  templates: boolean;
}

export interface MatchOptions {
  /** ASCII-only folding: Git host paths ignore case, but no Unicode look-alike may fold into them. */
  caseInsensitive: boolean;
  claims?: Record<string, unknown>;
}

const CLAIM_PATH = /^[A-Za-z0-9_:/-]+(?:\.[A-Za-z0-9_:/-]+)*$/;

export function parseGlob(source: string, options: GlobOptions): Glob {
  const parts: Part[] = [];
  const problems = new Set<string>();
  if (source.length === 0) problems.add('is empty');
  let literal = '';
  const flush = () => {
    if (literal) parts.push({ kind: 'literal', text: literal });
    literal = '';
  };
  for (let i = 0; i < source.length; i++) {
    const c = source[i]!;
    if (c === '*') {
      let end = i;
      while (source[end + 1] === '*') end++;
      flush();
      parts.push({ kind: end > i ? 'globstar' : 'star' });
      i = end;
    } else if (c === '?') {
      flush();
      parts.push({ kind: 'one' });
    } else if (c === '[' || c === ']') {
      problems.add('uses [ ], but character classes are not supported');
      literal += c;
    } else if (c === '$' && source[i + 1] === '{' && options.templates) {
      const close = source.indexOf('}', i + 2);
      if (close < 0) {
        problems.add(`has a "\${" without its closing "}"`);
        literal += source.slice(i);
        break;
      }
      const path = source.slice(i + 2, close);
      if (!CLAIM_PATH.test(path)) problems.add(`has a placeholder "\${${path}}" that does not name a claim`);
      flush();
      parts.push({ kind: 'claim', path });
      i = close;
    } else if (c === '$' && source[i + 1] === '{') {
      problems.add(`uses "\${…}", but placeholders are only expanded in allow.repositories`);
      literal += c;
    } else if (options.templates && (c === '$' || c === '{' || c === '}')) {
      problems.add(`uses "${c}" outside a "\${claim}" placeholder`);
      literal += c;
    } else {
      literal += c;
    }
  }
  flush();
  return { source, parts, problems: [...problems] };
}

/** Whether the pattern consists of wildcards only, so it matches any value. */
export function isWildcardOnly(glob: Glob): boolean {
  return glob.parts.length > 0 && glob.parts.every((p) => p.kind === 'star' || p.kind === 'globstar');
}

/** The claim paths the pattern's placeholders name. */
export function placeholders(glob: Glob): string[] {
  return glob.parts.flatMap((p) => (p.kind === 'claim' ? [p.path] : []));
}

function resolve(glob: Glob, claims: Record<string, unknown>): ResolvedPart[] | undefined {
  const resolved: ResolvedPart[] = [];
  for (const part of glob.parts) {
    if (part.kind !== 'claim') {
      resolved.push(part);
      continue;
    }
    const value = claimValue(claims, part.path);
    if (value === undefined || !isSubstitutable(value)) return undefined;
    resolved.push({ kind: 'literal', text: value });
  }
  return resolved;
}

function foldAscii(text: string): string {
  return text.replace(/[A-Z]+/g, (run) => run.toLowerCase());
}

function escapeRegExp(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&');
}

function toRegExp(parts: ResolvedPart[], caseInsensitive: boolean): RegExp {
  let source = '';
  let dropLeadingSlash = false;
  parts.forEach((part, index) => {
    if (part.kind === 'literal') {
      const text = dropLeadingSlash ? part.text.slice(1) : part.text;
      dropLeadingSlash = false;
      source += escapeRegExp(caseInsensitive ? foldAscii(text) : text);
    } else if (part.kind === 'star') {
      source += '[^/]*';
    } else if (part.kind === 'one') {
      source += '[^/]';
    } else {
      const before = parts[index - 1];
      const after = parts[index + 1];
      const segmentStart = !before || (before.kind === 'literal' && before.text.endsWith('/'));
      // `a/**/b` also matches `a/b`: a whole-segment `**` stands for zero or more segments.
      if (segmentStart && after?.kind === 'literal' && after.text.startsWith('/')) {
        source += '(?:.*/)?';
        dropLeadingSlash = true;
      } else {
        source += '.*';
      }
    }
  });
  return new RegExp(`^${source}$`, 's');
}

export function globMatches(glob: Glob, value: string, options: MatchOptions): boolean {
  if (glob.problems.length > 0) return false;
  const parts = resolve(glob, options.claims ?? {});
  if (!parts) return false;
  const subject = options.caseInsensitive ? foldAscii(value) : value;
  return toRegExp(parts, options.caseInsensitive).test(subject);
}

/** The pattern with each placeholder filled in where the claim is usable, as written otherwise. */
export function describeGlob(glob: Glob, claims: Record<string, unknown>): string {
  return glob.parts
    .map((part) => {
      if (part.kind === 'literal') return part.text;
      if (part.kind === 'star') return '*';
      if (part.kind === 'globstar') return '**';
      if (part.kind === 'one') return '?';
      const value = claimValue(claims, part.path);
      return value !== undefined && isSubstitutable(value) ? value : `\${${part.path}}`;
    })
    .join('');
}

/** The placeholders of the pattern whose claim is missing or unusable, for explanations. */
export function unusablePlaceholders(glob: Glob, claims: Record<string, unknown>): string[] {
  return placeholders(glob).filter((path) => {
    const value = claimValue(claims, path);
    return value === undefined || !isSubstitutable(value);
  });
}
