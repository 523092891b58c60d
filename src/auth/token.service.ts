// What an admin may do with API tokens, in the service's terms: lifetimes become expiry instants on the
// injected clock, and callers only ever see views (the token value once, at creation).
import type { Role } from '../model/schemas.ts';
import { type ApiTokens, type ApiTokenView, toTokenView } from './api-tokens.ts';

/** The longest lifetime an admin may give a token. */
export const MAX_TOKEN_LIFETIME_SECONDS = 366 * 24 * 3600;

export interface NewToken {
  name: string;
  role: Role;
  expiresInSeconds?: number | undefined;
  actor: string;
}

export function createTokenService(deps: { tokens: ApiTokens; clock: () => Date }) {
  return {
    /** The new token's view and, this once, its value. */
    async create(input: NewToken): Promise<ApiTokenView & { token: string }> {
      const expiresAt = input.expiresInSeconds
        ? new Date(deps.clock().getTime() + input.expiresInSeconds * 1000)
        : undefined;
      const { token, row } = await deps.tokens.create({
        name: input.name,
        role: input.role,
        actor: input.actor,
        ...(expiresAt ? { expiresAt } : {}),
      });
      return { ...toTokenView(row), token };
    },

    /** Every token, revoked and expired ones too, newest first. */
    async list(): Promise<ApiTokenView[]> {
      return (await deps.tokens.list()).map(toTokenView);
    },

    /** The token named by id or name, now revoked; undefined when there is no such token. */
    async revoke(idOrName: string, actor: string): Promise<ApiTokenView | undefined> {
      const row = await deps.tokens.revoke(idOrName, actor);
      return row && toTokenView(row);
    },
  };
}

export type TokenService = ReturnType<typeof createTokenService>;
