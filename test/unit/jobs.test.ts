import { describe, expect, it } from 'vitest';
import { REVOKE_JOB_OPTIONS, revokeBackoffMs, revokeJobId } from '../../src/queue/jobs.ts';

const BASE_MS = 1_000;
const CAP_MS = 5 * 60_000;
const lowest = () => 0;
const highest = () => 0.999_999_999;

describe('revokeBackoffMs', () => {
  it('doubles the ceiling with every attempt', () => {
    for (let attempt = 1; attempt <= 8; attempt += 1) {
      const ceiling = BASE_MS * 2 ** (attempt - 1);
      expect(revokeBackoffMs(attempt, undefined, highest)).toBe(ceiling);
      expect(revokeBackoffMs(attempt + 1, undefined, highest)).toBe(Math.min(CAP_MS, 2 * ceiling));
    }
  });

  it('jitters between half the ceiling and the ceiling', () => {
    for (let attempt = 1; attempt <= 12; attempt += 1) {
      const ceiling = Math.min(CAP_MS, BASE_MS * 2 ** (attempt - 1));
      expect(revokeBackoffMs(attempt, undefined, lowest)).toBe(ceiling / 2);
      for (let sample = 0; sample < 200; sample += 1) {
        const wait = revokeBackoffMs(attempt);
        expect(wait).toBeGreaterThanOrEqual(ceiling / 2);
        expect(wait).toBeLessThanOrEqual(ceiling);
      }
    }
  });

  it('spreads retries of many keys rather than firing them together', () => {
    const waits = new Set(Array.from({ length: 100 }, () => revokeBackoffMs(6)));
    expect(waits.size).toBeGreaterThan(50);
  });

  it('never waits longer than five minutes, however many attempts were made', () => {
    for (const attempt of [10, 20, 50, 1_000, 1_000_000]) {
      expect(revokeBackoffMs(attempt, undefined, highest)).toBe(CAP_MS);
      expect(revokeBackoffMs(attempt, undefined, lowest)).toBe(CAP_MS / 2);
    }
  });

  it('treats a first or unknown attempt count as the first attempt', () => {
    for (const attempt of [0, -1]) {
      expect(revokeBackoffMs(attempt, undefined, highest)).toBe(BASE_MS);
      expect(revokeBackoffMs(attempt, undefined, lowest)).toBe(BASE_MS / 2);
    }
  });

  it("never retries sooner than the host's retry-after", () => {
    expect(revokeBackoffMs(1, 30, highest)).toBe(30_000);
    expect(revokeBackoffMs(3, 2.5, lowest)).toBe(2_500);
    // Beyond the cap too: a host that asks for ten minutes gets ten minutes.
    expect(revokeBackoffMs(20, 600, highest)).toBe(600_000);
    for (let attempt = 1; attempt <= 12; attempt += 1) {
      for (const retryAfter of [0, 1, 7, 61, 400]) {
        expect(revokeBackoffMs(attempt, retryAfter)).toBeGreaterThanOrEqual(retryAfter * 1_000);
      }
    }
  });

  it('keeps its own backoff when retry-after asks for less', () => {
    expect(revokeBackoffMs(5, 1, highest)).toBe(16_000);
    expect(revokeBackoffMs(5, 0, lowest)).toBe(8_000);
  });
});

describe('revoke job catalog', () => {
  it('names one job per key, with no character BullMQ refuses in a custom id', () => {
    const keyId = '0b6f5c1e-2d3a-4f5b-8c9d-0e1f2a3b4c5d';
    expect(revokeJobId(keyId)).toBe(`revoke-${keyId}`);
    expect(revokeJobId(keyId)).not.toContain(':');
  });

  it('keeps spent revoke jobs so the reconciler can restart them', () => {
    expect(REVOKE_JOB_OPTIONS.attempts).toBeGreaterThan(1);
    expect(REVOKE_JOB_OPTIONS.removeOnFail).not.toBe(true);
  });
});
