// Shared by the Vault stand-in tests: how a node-vault call failed.
import { expect } from 'vitest';

export type VaultFailure = { status: number; body: { errors: string[] }; message: string };

export async function vaultFailure(call: Promise<unknown>): Promise<VaultFailure> {
  const error = (await call.then(
    () => expect.fail('expected the call to fail'),
    (reason: unknown) => reason,
  )) as { message: string; response?: { statusCode: number; body: { errors: string[] } } };
  expect(error.response, `no HTTP answer: ${error.message}`).toBeDefined();
  return { status: error.response!.statusCode, body: error.response!.body, message: error.message };
}

/** `permission denied` as Vault answers a token it does not know (expired, revoked or never issued). */
export const INVALID_TOKEN = { errors: ['2 errors occurred:\n\t* permission denied\n\t* invalid token\n\n'] };
