// The README's configuration reference stays in step with the one config schema.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { EnvSchema, FileSchema } from '../../src/config.ts';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const section = readme.slice(readme.indexOf('### Configuration'), readme.indexOf('### Metrics'));

describe('README configuration reference', () => {
  it('documents every environment variable the service reads', () => {
    const missing = Object.keys(EnvSchema.properties).filter((name) => !section.includes(`\`${name}\``));
    expect(missing).toEqual([]);
  });

  it('shows every section and setting of the config file', () => {
    const missing: string[] = [];
    for (const [name, schema] of Object.entries(FileSchema.properties)) {
      if (!new RegExp(`^${name}:`, 'm').test(section)) missing.push(name);
      const nested = (schema as { properties?: Record<string, unknown> }).properties ?? {};
      for (const setting of Object.keys(nested)) {
        if (!section.includes(setting)) missing.push(`${name}.${setting}`);
      }
    }
    expect(missing).toEqual([]);
  });
});
