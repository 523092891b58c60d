// `labelSelector` and `fieldSelector` as apimachinery parses them (pkg/labels, pkg/fields): the
// same operators, the same refusal of an unknown field label.
import type { KubeObject } from './objects.ts';
import type { ResourceType } from './resources.ts';
import { badRequest } from './status.ts';

export type Selector = (object: KubeObject) => boolean;

const everything: Selector = () => true;

// Splits on commas that are not inside a `(…)` value set.
function splitRequirements(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  for (const char of text) {
    if (char === '(') depth += 1;
    if (char === ')') depth -= 1;
    if (char === ',' && depth === 0) {
      parts.push(current);
      current = '';
    } else current += char;
  }
  parts.push(current);
  return parts.map((part) => part.trim());
}

const LABEL_KEY =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const SET = /^(\S+)\s+(in|notin)\s*\(([^)]*)\)$/;
const COMPARE = /^([^!=<>\s]+)\s*(==|=|!=|<|>)\s*(\S*)$/;

function labelRequirement(text: string): (labels: Record<string, string>) => boolean {
  const checkKey = (key: string) => {
    if (!LABEL_KEY.test(key)) throw badRequest(`unable to parse requirement: invalid label key "${key}"`);
    return key;
  };
  const set = SET.exec(text);
  if (set) {
    const key = checkKey(set[1]!);
    const values = new Set(set[3]!.split(',').map((value) => value.trim()));
    return set[2] === 'in'
      ? (labels) => key in labels && values.has(labels[key]!)
      : (labels) => !(key in labels) || !values.has(labels[key]!);
  }
  const compare = COMPARE.exec(text);
  if (compare) {
    const [, rawKey, operator, value] = compare as unknown as [string, string, string, string];
    const key = checkKey(rawKey);
    if (operator === '<' || operator === '>') {
      const bound = Number(value);
      if (!Number.isInteger(bound)) throw badRequest(`unable to parse requirement: invalid value "${value}"`);
      return (labels) =>
        key in labels && (operator === '<' ? Number(labels[key]) < bound : Number(labels[key]) > bound);
    }
    return operator === '!=' ? (labels) => labels[key] !== value : (labels) => labels[key] === value;
  }
  if (text.startsWith('!')) {
    const key = checkKey(text.slice(1).trim());
    return (labels) => !(key in labels);
  }
  const key = checkKey(text);
  return (labels) => key in labels;
}

export function parseLabelSelector(text: string | undefined): Selector {
  if (text === undefined || text.trim() === '') return everything;
  const requirements = splitRequirements(text).map((part) => {
    if (part === '') throw badRequest(`unable to parse requirement: found '', expected: identifier`);
    return labelRequirement(part);
  });
  return (object) => requirements.every((matches) => matches(object.metadata.labels ?? {}));
}

// Field selector values may escape `,`, `=` and `!` with a backslash.
function splitEscaped(text: string): string[] {
  const parts: string[] = [];
  let current = '';
  for (let index = 0; index < text.length; index += 1) {
    const char = text[index]!;
    if (char === '\\' && index + 1 < text.length) {
      current += char + text[index + 1];
      index += 1;
    } else if (char === ',') {
      parts.push(current);
      current = '';
    } else current += char;
  }
  parts.push(current);
  return parts;
}

const unescapeValue = (value: string) => value.replace(/\\(.)/g, '$1');

export function parseFieldSelector(text: string | undefined, type: ResourceType): Selector {
  if (text === undefined || text.trim() === '') return everything;
  const labels: Record<string, (object: KubeObject) => string> = {
    'metadata.name': (object) => object.metadata.name ?? '',
    'metadata.namespace': (object) => object.metadata.namespace ?? '',
    ...type.fieldLabels,
  };
  const requirements = splitEscaped(text).map((part) => {
    const match = /^(.*?)(!=|==|=)(.*)$/.exec(part);
    if (!match) throw badRequest(`invalid selector: '${text}'; can't understand '${part}'`);
    const [, field, operator, rawValue] = match as unknown as [string, string, string, string];
    const read = labels[field.trim()];
    if (!read) throw badRequest(`field label not supported: ${field.trim()}`);
    const value = unescapeValue(rawValue);
    return operator === '!=' ? (o: KubeObject) => read(o) !== value : (o: KubeObject) => read(o) === value;
  });
  return (object) => requirements.every((matches) => matches(object));
}
