import { describe, expect, it } from 'vitest';
import { resolveTtl, validateRepository } from '../../src/keys/policy.ts';
import { JOB_ID_PATTERN } from '../../src/model/values.ts';
import { refusalOf as refusal } from '../support/refusal.ts';

describe('validateRepository', () => {
  it.each([
    ['github', 'acme/models'],
    ['github', 'A-b/repo.name_with-dots'],
    ['github', `${'o'.repeat(39)}/${'n'.repeat(100)}`],
    ['gitlab', 'group/project'],
    ['gitlab', 'group/sub/sub2/project.name'],
    ['gitlab', `${Array.from({ length: 20 }, (_, i) => `g${i}`).join('/')}/project`],
    ['gitea', 'acme/models'],
    ['gitea', 'first.last/repo_name-2'],
  ] as const)('accepts %s repository %s', (host, repository) => {
    expect(() => validateRepository(host, repository)).not.toThrow();
  });

  it.each([
    ['acme/../models', /"\." or "\.\." segments/],
    ['../acme/models', /"\." or "\.\." segments/],
    ['acme/./models', /"\." or "\.\." segments/],
    ['acme%2Fmodels', /URL-encoded/],
    ['acme/models%00', /URL-encoded/],
    ['acme\\models', /backslashes/],
    ['acme/models\u0000', /control characters/],
    ['acme/mod\nels', /control characters/],
    ['acme/models\u007f', /control characters/],
    ['acme/models.git', /without "\.git"/],
  ])('refuses %j on either host: %s', (repository, why) => {
    for (const host of ['github', 'gitlab', 'gitea'] as const) {
      const error = refusal(() => validateRepository(host, repository));
      expect(error).toMatchObject({ code: 'invalid-repository' });
      expect(error.message).toMatch(why);
    }
  });

  it.each([
    'acme',
    'acme/models/extra',
    '/models',
    'acme/',
    '-acme/models',
    `${'o'.repeat(40)}/models`,
    `acme/${'n'.repeat(101)}`,
    'ac me/models',
  ])('refuses %j as a GitHub owner/name', (repository) => {
    const error = refusal(() => validateRepository('github', repository));
    expect(error.message).toMatch(/must be "owner\/name"/);
  });

  it.each([
    'project',
    'group//project',
    '.hidden/project',
    'group/-project',
    `${Array.from({ length: 21 }, (_, i) => `g${i}`).join('/')}/project`,
  ])('refuses %j as a GitLab project path', (repository) => {
    const error = refusal(() => validateRepository('gitlab', repository));
    expect(error.message).toMatch(/GitLab project path/);
  });

  it.each([
    'acme',
    'acme/models/extra',
    'acme/',
    `${'o'.repeat(41)}/models`,
    `acme/${'n'.repeat(101)}`,
    'ac me/models',
  ])('refuses %j as a Gitea owner/name', (repository) => {
    const error = refusal(() => validateRepository('gitea', repository));
    expect(error.message).toMatch(/must be "owner\/name"/);
  });

  it('echoes the value back with control characters escaped, so the answer stays one printable line', () => {
    const error = refusal(() => validateRepository('github', 'acme/mo\u0001dels'));
    expect(error.message).toContain('"acme/mo\\u0001dels"');
    expect(error.message).not.toContain('\u0001');
  });

  it('bounds how much of an over-long value it echoes', () => {
    const error = refusal(() => validateRepository('github', `acme/${'x'.repeat(600)}`));
    expect(error.message.length).toBeLessThan(160);
    expect(error.message).toContain('…');
  });
});

describe('resolveTtl', () => {
  const bounds = { minTtlSeconds: 60, maxTtlSeconds: 86_400, defaultTtlSeconds: 3_600 };

  it('uses the default when none is asked for, and the asked value within bounds', () => {
    expect(resolveTtl(undefined, bounds)).toBe(3_600);
    expect(resolveTtl(60, bounds)).toBe(60);
    expect(resolveTtl(86_400, bounds)).toBe(86_400);
  });

  it.each([0, -1, 59, 1.5, 86_401, Number.NaN, Number.POSITIVE_INFINITY])(
    'refuses %d, stating the allowed range',
    (ttl) => {
      const error = refusal(() => resolveTtl(ttl, bounds));
      expect(error).toMatchObject({ code: 'invalid-ttl' });
      expect(error.message).toBe('ttlSeconds must be an integer from 60 to 86400');
      expect(error.extra).toEqual({ minTtlSeconds: 60, maxTtlSeconds: 86_400 });
    },
  );
});

describe('JOB_ID_PATTERN', () => {
  const jobId = new RegExp(JOB_ID_PATTERN);

  it('admits CI and Kubernetes job ids', () => {
    for (const id of ['build-42', 'gha:run.123:attempt-1', 'a', 'x'.repeat(128)])
      expect(jobId.test(id)).toBe(true);
  });

  it('refuses spaces, slashes, other characters and over-long ids', () => {
    for (const id of ['', 'a b', 'a/b', 'a\nb', 'ü', 'x'.repeat(129)]) expect(jobId.test(id)).toBe(false);
  });
});
