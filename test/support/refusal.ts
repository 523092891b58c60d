import { expect } from 'vitest';
import { RefusalError } from '../../src/errors.ts';

/** The RefusalError `run` throws; fails the test when it throws anything else or nothing. */
export function refusalOf(run: () => unknown): RefusalError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(RefusalError);
    return error as RefusalError;
  }
  throw new Error('expected a refusal');
}
