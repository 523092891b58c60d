import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseAst } from 'rolldown/parseAst';
import { describe, expect, it } from 'vitest';

const SRC = join(import.meta.dirname, '../../src');
const MAX_FILE_LINES = 300;
const MAX_FUNCTION_LINES = 80;
/** Files over the limit today, with the size they must not grow past; remove an entry once it is split. */
const KNOWN_LONG_FILES: Record<string, number> = {};
/** Functions over the limit today (`file:name`), with the size they must not grow past. */
const KNOWN_LONG_FUNCTIONS: Record<string, number> = {};

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return /\.(ts|js)$/.test(entry.name) ? [path] : [];
  });
}

function lineCount(text: string): number {
  return text.endsWith('\n') ? text.split('\n').length - 1 : text.split('\n').length;
}

interface AstNode {
  type: string;
  start: number;
  end: number;
  id?: { name?: string } | null;
  [field: string]: unknown;
}

const FUNCTION_TYPES = new Set(['FunctionDeclaration', 'FunctionExpression', 'ArrowFunctionExpression']);

function isNode(value: unknown): value is AstNode {
  return typeof value === 'object' && value !== null && typeof (value as AstNode).type === 'string';
}

function children(node: AstNode): AstNode[] {
  return Object.values(node).flatMap((value) =>
    Array.isArray(value) ? value.filter(isNode) : isNode(value) ? [value] : [],
  );
}

/** Every function in the file (TypeScript or JavaScript, parsed by oxc) with its length from first line to closing brace. */
function functionLengths(path: string): { name: string; lines: number }[] {
  const text = readFileSync(path, 'utf8');
  const lineAt = (offset: number) => text.slice(0, offset).split('\n').length;
  const found: { name: string; lines: number }[] = [];
  const visit = (node: AstNode, label: string) => {
    if (FUNCTION_TYPES.has(node.type)) {
      const lines = lineAt(node.end) - lineAt(node.start) + 1;
      found.push({ name: node.id?.name ?? `${label} (line ${lineAt(node.start)})`, lines });
    }
    for (const child of children(node)) {
      const key = child.key as { name?: string } | undefined;
      const id = child.id as { name?: string } | undefined | null;
      visit(child, id?.name ?? key?.name ?? label);
    }
  };
  visit(
    parseAst(text, { lang: path.endsWith('.js') ? 'js' : 'ts' }, path) as unknown as AstNode,
    'anonymous',
  );
  return found;
}

describe('code size in src/', () => {
  const files = sourceFiles(SRC);

  it('finds the sources it measures', () => {
    expect(files.length).toBeGreaterThan(50);
  });

  it(`keeps every file at ${MAX_FILE_LINES} lines or fewer`, () => {
    const over = files
      .map((path) => ({ file: relative(SRC, path), lines: lineCount(readFileSync(path, 'utf8')) }))
      .filter(({ file, lines }) => lines > (KNOWN_LONG_FILES[file] ?? MAX_FILE_LINES));
    expect(over).toEqual([]);
  });

  it(`keeps every function at ${MAX_FUNCTION_LINES} lines or fewer`, () => {
    const over = files.flatMap((path) =>
      functionLengths(path)
        .map(({ name, lines }) => ({ fn: `${relative(SRC, path)}:${name}`, lines }))
        .filter(({ fn, lines }) => lines > (KNOWN_LONG_FUNCTIONS[fn] ?? MAX_FUNCTION_LINES)),
    );
    expect(over).toEqual([]);
  });
});
