// The token store (`auth/token/`): service tokens with policies, TTLs, use limits and parent/child
// revocation, and the lookups a client makes to inspect its own token.
import { randomUUID } from 'node:crypto';
import {
  badRequest,
  base62,
  goTime,
  isObject,
  stringList,
  type VaultAuth,
  type VaultRequest,
  type VaultRoute,
  vaultFailure,
} from './http.ts';
import { sanitizePolicies } from './policies.ts';
import { createRenewalRoutes, creationLifetime, type RenewalTerms } from './token-ttl.ts';

export interface TokenEntry {
  id: string;
  accessor: string;
  policies: string[];
  /** The token that created this one; undefined for an orphan. */
  parent?: string | undefined;
  meta: Record<string, string> | null;
  displayName: string;
  path: string;
  createdAt: number;
  /** Seconds the token was issued for; 0 = never expires (root tokens). */
  ttl: number;
  /** Undefined for a token that never expires. */
  expiresAt?: number | undefined;
  /** The TTL of its last renewal (or issue), the default for the next renewal. */
  leaseTtl: number;
  lastRenewalAt?: number;
  /** A periodic token's TTL on every renewal, with no max TTL; 0 = not periodic. */
  period: number;
  /** The issuing role's `token_max_ttl`; 0 = the system maximum. */
  maxTtl: number;
  explicitMaxTtl: number;
  /** A login token's auth method: its role's TTLs at renewal time. */
  renewal?: () => RenewalTerms;
  numUses: number;
  orphan: boolean;
  renewable: boolean;
  entityId: string;
}

export interface IssueOptions {
  policies: string[];
  ttl: number;
  parent?: TokenEntry | undefined;
  numUses?: number;
  meta?: Record<string, string> | null;
  displayName: string;
  path: string;
  renewable?: boolean;
  explicitMaxTtl?: number;
  period?: number;
  maxTtl?: number;
  renewal?: () => RenewalTerms;
  entityId?: string;
}

export interface TokenStore {
  issue(opts: IssueOptions): TokenEntry;
  /** The live entry for a token, or undefined when unknown, revoked, expired or used up. */
  lookup(id: string): TokenEntry | undefined;
  /** Counts one use; a token with a use limit is revoked once the limit is reached. */
  use(entry: TokenEntry): void;
  revoke(id: string): void;
  /** Every token issued and not revoked yet, expired ones included. */
  all(): TokenEntry[];
  auth(entry: TokenEntry): VaultAuth;
  routes: VaultRoute[];
}

export function createTokenStore(rootToken: string, now: () => number = Date.now): TokenStore {
  const tokens = new Map<string, TokenEntry>();

  const remaining = (entry: TokenEntry) =>
    entry.expiresAt === undefined ? 0 : Math.max(0, Math.ceil((entry.expiresAt - now()) / 1000));

  const lookup = (id: string): TokenEntry | undefined => {
    const entry = tokens.get(id);
    if (!entry) return undefined;
    if (entry.expiresAt !== undefined && entry.expiresAt <= now()) {
      revoke(id);
      return undefined;
    }
    // A child never outlives its parent.
    if (entry.parent !== undefined && !lookup(entry.parent)) {
      revoke(id);
      return undefined;
    }
    return entry;
  };

  const revoke = (id: string) => {
    if (!tokens.delete(id)) return;
    for (const child of [...tokens.values()].filter((entry) => entry.parent === id)) revoke(child.id);
  };

  const issue = (opts: IssueOptions): TokenEntry => {
    const id = `hvs.${base62(24)}`;
    const entry: TokenEntry = {
      id,
      accessor: base62(24),
      policies: opts.policies,
      parent: opts.parent?.id,
      meta: opts.meta ?? null,
      displayName: opts.displayName,
      path: opts.path,
      createdAt: now(),
      ttl: opts.ttl,
      expiresAt: opts.ttl > 0 ? now() + opts.ttl * 1000 : undefined,
      leaseTtl: opts.ttl,
      period: opts.period ?? 0,
      maxTtl: opts.maxTtl ?? 0,
      explicitMaxTtl: opts.explicitMaxTtl ?? 0,
      ...(opts.renewal ? { renewal: opts.renewal } : {}),
      numUses: opts.numUses ?? 0,
      orphan: opts.parent === undefined,
      renewable: (opts.renewable ?? true) && opts.ttl > 0,
      entityId: opts.entityId ?? '',
    };
    tokens.set(id, entry);
    return entry;
  };

  const auth = (entry: TokenEntry): VaultAuth => ({
    client_token: entry.id,
    accessor: entry.accessor,
    policies: entry.policies,
    token_policies: entry.policies,
    metadata: entry.meta,
    lease_duration: entry.ttl,
    renewable: entry.renewable,
    entity_id: entry.entityId,
    token_type: 'service',
    orphan: entry.orphan,
    mfa_requirement: null,
    num_uses: entry.numUses,
  });

  const describe = (entry: TokenEntry) => ({
    accessor: entry.accessor,
    creation_time: Math.floor(entry.createdAt / 1000),
    creation_ttl: entry.ttl,
    display_name: entry.displayName,
    entity_id: entry.entityId,
    expire_time: entry.expiresAt === undefined ? null : goTime(new Date(entry.expiresAt)),
    explicit_max_ttl: entry.explicitMaxTtl,
    id: entry.id,
    issue_time: goTime(new Date(entry.createdAt)),
    meta: entry.meta,
    num_uses: entry.numUses,
    orphan: entry.orphan,
    path: entry.path,
    policies: entry.policies,
    renewable: entry.renewable,
    ttl: remaining(entry),
    type: 'service',
    ...(entry.period > 0 ? { period: entry.period } : {}),
    ...(entry.lastRenewalAt === undefined
      ? {}
      : {
          last_renewal_time: Math.floor(entry.lastRenewalAt / 1000),
          last_renewal: goTime(new Date(entry.lastRenewalAt)),
        }),
  });

  const caller = (request: VaultRequest) => lookup(request.clientToken)!;

  const create = (request: VaultRequest, orphanPath: boolean) => {
    const parent = caller(request);
    const isRoot = parent.policies.includes('root');
    const body = request.data;
    const requested = stringList(body.policies);
    if (!isRoot && requested.some((name) => name !== 'default' && !parent.policies.includes(name))) {
      throw badRequest('child policies must be subset of parent');
    }
    const policies =
      requested.length > 0
        ? sanitizePolicies(requested, body.no_default_policy !== true)
        : parent.policies.filter((name) => body.no_default_policy !== true || name !== 'default');
    const numUses = Number(body.num_uses ?? 0);
    if (numUses < 0) throw badRequest('number of uses cannot be negative');
    const { ttl, period, explicitMaxTtl, warnings } = creationLifetime(body, policies, isRoot, now());
    const orphan = orphanPath || body.no_parent === true;
    if (body.no_parent === true && !isRoot) {
      throw badRequest('root or sudo privileges required to create orphan token');
    }
    const meta = isObject(body.meta)
      ? Object.fromEntries(Object.entries(body.meta).map(([key, value]) => [key, String(value)]))
      : null;
    const name = typeof body.display_name === 'string' ? body.display_name.trim().toLowerCase() : '';
    const entry = issue({
      policies,
      ttl,
      parent: orphan ? undefined : parent,
      numUses,
      meta,
      displayName: name ? `token-${name.replace(/[^\w-]/g, '-')}` : 'token',
      path: orphanPath ? 'auth/token/create-orphan' : 'auth/token/create',
      renewable: body.renewable !== false,
      explicitMaxTtl,
      period,
    });
    return { auth: auth(entry), warnings };
  };

  const tokenArgument = (request: VaultRequest) => {
    const token = typeof request.data.token === 'string' ? request.data.token : '';
    if (token === '') throw badRequest('missing token');
    return token;
  };

  tokens.set(rootToken, {
    id: rootToken,
    accessor: base62(24),
    policies: ['root'],
    meta: null,
    displayName: 'root',
    path: 'auth/token/root',
    createdAt: now(),
    ttl: 0,
    leaseTtl: 0,
    period: 0,
    maxTtl: 0,
    explicitMaxTtl: 0,
    numUses: 0,
    orphan: true,
    renewable: false,
    entityId: '',
  });

  return {
    issue,
    lookup,
    use: (entry) => {
      if (entry.numUses === 0) return;
      entry.numUses -= 1;
      if (entry.numUses === 0) revoke(entry.id);
    },
    revoke,
    all: () => [...tokens.values()],
    auth,
    routes: [
      { pattern: /^auth\/token\/create$/, operations: { update: (request) => create(request, false) } },
      { pattern: /^auth\/token\/create-orphan$/, operations: { update: (request) => create(request, true) } },
      {
        pattern: /^auth\/token\/lookup-self$/,
        operations: { read: (request) => ({ data: describe(caller(request)) }) },
      },
      {
        pattern: /^auth\/token\/lookup$/,
        operations: {
          update: (request) => {
            const entry = lookup(tokenArgument(request));
            if (!entry) throw vaultFailure(403, 'bad token');
            return { data: describe(entry) };
          },
        },
      },
      ...createRenewalRoutes({ lookup, auth }, now),
      {
        pattern: /^auth\/token\/revoke$/,
        operations: {
          update: (request) => {
            revoke(tokenArgument(request));
            return null;
          },
        },
      },
      {
        // Idempotent, as Vault has been since 1.10: an accessor of no live token is not an error.
        pattern: /^auth\/token\/revoke-accessor$/,
        operations: {
          update: (request) => {
            const accessor = typeof request.data.accessor === 'string' ? request.data.accessor : '';
            if (accessor === '') throw badRequest('missing accessor');
            const entry = [...tokens.values()].find((candidate) => candidate.accessor === accessor);
            if (entry) revoke(entry.id);
            return null;
          },
        },
      },
      {
        pattern: /^auth\/token\/revoke-self$/,
        operations: {
          update: (request) => {
            revoke(request.clientToken);
            return null;
          },
        },
      },
    ],
  };
}

export const newEntityId = () => randomUUID();
