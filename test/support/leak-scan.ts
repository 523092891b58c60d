// The leak scanner the secret scans share: which texts hold which secret. A secret is looked for
// whole and by the parts that identify it on their own, so a PEM re-wrapped or escaped into a JSON
// log line, or a JWT cut after its signature, is still found.
import { execFile, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import type { GithubStandIn } from '../../sandbox/github/stand-in.ts';
import type { StandIns } from '../../sandbox/stand-ins.ts';

export interface Needle {
  what: string;
  value: string;
}

// Shorter needles would match by chance; every secret the service handles is far longer.
const MIN_NEEDLE_LENGTH = 12;
const MIN_PEM_LINE = 40;

/** The secret itself and, for a PEM its long base64 lines, for a JWT its signature. */
export function needlesOf(what: string, secret: string): Needle[] {
  const value = secret.trim();
  if (value.length < MIN_NEEDLE_LENGTH) throw new Error(`${what} is too short to scan for reliably`);
  const needles: Needle[] = [{ what, value }];
  const lines = value.split('\n');
  if (lines.length > 1) {
    for (const line of lines) {
      if (line.length >= MIN_PEM_LINE && !line.startsWith('-----'))
        needles.push({ what, value: line.trim() });
    }
  }
  const parts = value.split('.');
  if (parts.length === 3 && (parts[2]?.length ?? 0) >= MIN_NEEDLE_LENGTH) {
    needles.push({ what: `${what} (signature)`, value: parts[2]! });
  }
  return needles;
}

/** `<what> in <where>` for every secret found in a text, each once. */
export function findLeaks(places: Record<string, string>, needles: Needle[]): string[] {
  const found = new Set<string>();
  for (const [where, text] of Object.entries(places)) {
    for (const needle of needles) if (text.includes(needle.value)) found.add(`${needle.what} in ${where}`);
  }
  return [...found];
}

/** Collects every installation token the GitHub stand-in mints from now on. */
export function recordInstallationTokens(github: GithubStandIn): string[] & { appIds: Set<number> } {
  const minted = Object.assign([] as string[], { appIds: new Set<number>() });
  const { apps } = github;
  const mint = apps.mintToken.bind(apps);
  apps.mintToken = (installation, request) => {
    const result = mint(installation, request);
    if ('token' in result) {
      minted.push(result.token.token);
      minted.appIds.add(installation.app.id);
    }
    return result;
  };
  return minted;
}

/**
 * The service's own credentials as the stand-ins handed them out or saw them: Vault tokens from
 * logins and renewals, the App's private key, its JWTs and installation tokens, the host tokens.
 */
export function serviceCredentialNeedles(standIns: StandIns, installationTokens: string[]): Needle[] {
  const { github, gitlab, vault } = standIns;
  return [
    ...vault.auth.loginTokens().flatMap((token, i) => needlesOf(`Vault login token ${i}`, token)),
    ...needlesOf('GitHub App private key', readFileSync(github.app.privateKeyPath, 'utf8')),
    ...github.api.appJwtsSeen.flatMap((jwt, i) => needlesOf(`App JWT ${i}`, jwt)),
    ...installationTokens.flatMap((token, i) => needlesOf(`installation token ${i}`, token)),
    ...needlesOf('GitHub token', github.token),
    ...needlesOf('GitLab token', gitlab.token),
    ...needlesOf('Vault root token', vault.token),
  ];
}

/** Every row of every table: pg_dump when the client is installed, else each table read as text. */
export async function dumpPostgres(
  databaseUrl: string,
  pool?: { query<R>(sql: string): Promise<{ rows: R[] }> },
): Promise<string> {
  if (spawnSync('which', ['pg_dump']).status === 0) {
    const { stdout } = await promisify(execFile)('pg_dump', ['--no-owner', databaseUrl], {
      maxBuffer: 256 * 1024 * 1024,
    });
    return stdout;
  }
  if (!pool) throw new Error('pg_dump is not installed');
  const { rows: tables } = await pool.query<{ name: string }>(
    `SELECT quote_ident(table_schema) || '.' || quote_ident(table_name) AS name
       FROM information_schema.tables
      WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')`,
  );
  const parts: string[] = [];
  for (const { name } of tables) {
    const { rows } = await pool.query<{ row: string }>(`SELECT t::text AS row FROM ${name} t`);
    parts.push(name, ...rows.map((r) => r.row));
  }
  return parts.join('\n');
}

export { dumpPrefix as dumpRedis } from '../chaos/redis-prefix.ts';
