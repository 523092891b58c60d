import { describe, expect, it } from 'vitest';
import { exitCodeOf } from '../../src/cli/exit-codes.ts';
import { DomainError, RefusalError } from '../../src/errors.ts';
import { HostError } from '../../src/hosts/git-host.ts';

describe('the CLI exit code of a domain error', () => {
  it('tells a bad request (2), a refusal (3) and a missing thing (4) apart by code', () => {
    expect(exitCodeOf(new RefusalError('invalid-ttl', 'ttlSeconds must be an integer'))).toBe(2);
    expect(exitCodeOf(new RefusalError('forbidden-by-policy', 'no rule applies'))).toBe(3);
    expect(exitCodeOf(new RefusalError('key-not-found', 'no key k1'))).toBe(4);
  });

  it('exits 1 for a dependency failure or any error without a known code', () => {
    expect(exitCodeOf(new DomainError('vault-unavailable', 'down', { detail: 'Vault is unavailable' }))).toBe(
      1,
    );
    expect(exitCodeOf(new HostError('github', 'timeout', 'slow'))).toBe(1);
    expect(exitCodeOf(new Error('boom'))).toBe(1);
  });
});
