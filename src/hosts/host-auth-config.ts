// How the service authenticates to one host: a token (GitHub Enterprise Server without Apps,
// GitLab), or a GitHub App whose installation tokens are minted on demand. Secrets come from the
// environment or from a file re-read when it changes (a rotated Kubernetes Secret).
import { readFileSync } from 'node:fs';
import Type, { type Static } from 'typebox';

export const DEFAULT_EXPIRY_WARNING_DAYS = 14;

const EnvName = Type.String({ pattern: '^[A-Z_][A-Z0-9_]*$' });
const FilePath = Type.String({ minLength: 1 });

export const HostAuthSchema = Type.Union(
  [
    Type.Object(
      {
        type: Type.Literal('token'),
        tokenEnv: Type.Optional(EnvName),
        tokenFile: Type.Optional(FilePath),
        expiryWarningDays: Type.Optional(
          Type.Integer({
            minimum: 1,
            maximum: 365,
            description: `Warn this many days before the token expires (GitLab; default ${DEFAULT_EXPIRY_WARNING_DAYS})`,
          }),
        ),
      },
      { additionalProperties: false },
    ),
    Type.Object(
      {
        type: Type.Literal('app'),
        appId: Type.Integer({ minimum: 1, description: 'The GitHub App id (the JWT `iss`)' }),
        privateKeyFile: Type.Optional(FilePath),
        privateKeyEnv: Type.Optional(EnvName),
        installationId: Type.Optional(
          Type.Integer({
            minimum: 1,
            description: 'Use this installation for every repository instead of looking it up per owner',
          }),
        ),
      },
      { additionalProperties: false },
    ),
  ],
  { description: 'Credentials for this host; a token from DEPLOYKEY_HOST_<ID>_TOKEN when left out' },
);

export type HostAuthSetting = Static<typeof HostAuthSchema>;

export const HostCredentialsSchema = Type.Array(
  Type.Object(
    {
      name: Type.String({
        pattern: '^[a-z0-9][a-z0-9-]{0,62}$',
        description: 'Names the credential in metrics and logs (never a secret)',
      }),
      auth: HostAuthSchema,
    },
    { additionalProperties: false },
  ),
  {
    minItems: 1,
    description:
      'Several credentials (GitHub Apps or tokens) for this host instead of one `auth`: each has its own ' +
      'write budget (`writes`), and a write goes to the credential able to start it soonest',
  },
);

/** A secret given inline (from the environment) or as a file to re-read on change. */
export type SecretSource = { value: string } | { file: string };

export type HostCredential =
  | { type: 'token'; token: SecretSource }
  | { type: 'app'; appId: number; privateKey: SecretSource; installationId?: number };

interface HostAuthInput {
  id: string;
  type: string;
  tokenEnv?: string;
  auth?: HostAuthSetting;
  credentials?: Static<typeof HostCredentialsSchema>;
}

/** One credential of a host's pool: its name, where its secret is, and the token as read at start. */
export interface PoolCredential {
  name: string;
  credential: HostCredential;
  token: string;
}

const defaultTokenEnv = (hostId: string) =>
  `DEPLOYKEY_HOST_${hostId.toUpperCase().replaceAll('-', '_')}_TOKEN`;

function fromEnvOrFile(
  envName: string | undefined,
  file: string | undefined,
  env: NodeJS.ProcessEnv,
  what: string,
  problems: string[],
): SecretSource {
  if (file) return { file };
  const value = envName ? env[envName] : undefined;
  if (!value) problems.push(`${envName ?? 'a file or environment variable'} is required (${what})`);
  return { value: value ?? '' };
}

/** The host's credential as configured; what is missing is added to `problems`. */
export function resolveHostCredential(
  host: HostAuthInput,
  index: number,
  env: NodeJS.ProcessEnv,
  problems: string[],
): HostCredential {
  const auth = host.auth ?? { type: 'token' as const };
  if (auth.type === 'app') {
    if (host.type !== 'github')
      problems.push(`config hosts.${index}.auth.type "app" is for GitHub hosts only`);
    const privateKey = fromEnvOrFile(
      auth.privateKeyEnv ??
        (auth.privateKeyFile ? undefined : `${defaultTokenEnv(host.id).slice(0, -6)}_APP_KEY`),
      auth.privateKeyFile,
      env,
      `GitHub App private key of host "${host.id}"`,
      problems,
    );
    return {
      type: 'app',
      appId: auth.appId,
      privateKey,
      ...(auth.installationId === undefined ? {} : { installationId: auth.installationId }),
    };
  }
  const token = fromEnvOrFile(
    auth.tokenEnv ?? host.tokenEnv ?? defaultTokenEnv(host.id),
    auth.tokenFile,
    env,
    `credentials of host "${host.id}"`,
    problems,
  );
  return { type: 'token', token };
}

/** How many days ahead of its token's expiry the host warns. */
export function expiryWarningDays(host: { auth?: HostAuthSetting }): number {
  return (host.auth?.type === 'token' && host.auth.expiryWarningDays) || DEFAULT_EXPIRY_WARNING_DAYS;
}

/**
 * The token as it is now, for clients that take a fixed string (GitLab's); a token file or App key
 * that cannot be read is a start-up problem.
 */
export function currentToken(credential: HostCredential, problems: string[]): string {
  const source = credential.type === 'token' ? credential.token : credential.privateKey;
  if ('value' in source) return credential.type === 'token' ? source.value : '';
  try {
    const value = readFileSync(source.file, 'utf8').trim();
    if (value === '') problems.push(`${source.file} is empty`);
    return credential.type === 'token' ? value : '';
  } catch (error) {
    problems.push(`${source.file} cannot be read: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
    return '';
  }
}

export interface ResolvedHostAuth {
  /** The token as read at start (empty for an App); `credential` says where it is re-read from. */
  token: string;
  credential?: HostCredential;
  /** With `credentials`: every credential of the host, each with its own write budget. */
  pool?: PoolCredential[];
}

/**
 * The host's credentials as configured: the single `auth` (or the default token), or, with
 * `credentials`, the pool besides its first member as `credential` for what takes one credential.
 */
export function resolveHostCredentials(
  host: HostAuthInput,
  index: number,
  env: NodeJS.ProcessEnv,
  problems: string[],
): ResolvedHostAuth {
  if (!host.credentials) {
    const credential = resolveHostCredential(host, index, env, problems);
    return { token: currentToken(credential, problems), credential };
  }
  if (host.auth) problems.push(`config hosts.${index} has both auth and credentials; keep one`);
  const names = new Set<string>();
  const pool = host.credentials.map(({ name, auth }) => {
    if (names.has(name)) problems.push(`config hosts.${index}.credentials name "${name}" is used twice`);
    names.add(name);
    const credential = resolveHostCredential({ ...host, auth }, index, env, problems);
    return { name, credential, token: currentToken(credential, problems) };
  });
  const [first] = pool as [PoolCredential];
  return { token: first.token, credential: first.credential, pool };
}
