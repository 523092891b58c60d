// How the service itself logs in to Vault (`vault.auth` in the config file). A static token
// (`VAULT_TOKEN`) stays possible; Kubernetes auth is the recommended method, AppRole and JWT serve
// platforms without it. Credentials come from files, re-read when they change.
import Type, { type Static } from 'typebox';

// Optional rather than defaulted: defaults inside a union are not filled in. Default: the method's name.
const Mount = Type.Optional(
  Type.String({
    pattern: '^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$',
    description: 'Auth mount; default the method name',
  }),
);
const Role = Type.String({ minLength: 1, maxLength: 128 });
const FilePath = (description: string) => Type.String({ minLength: 1, description });

export const DEFAULT_SERVICE_ACCOUNT_TOKEN_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/token';

export const VaultAuthSchema = Type.Union(
  [
    Type.Object({ method: Type.Literal('token') }, { additionalProperties: false }),
    Type.Object(
      {
        method: Type.Literal('kubernetes'),
        role: Role,
        tokenFile: Type.Optional(FilePath('Service account token; default the projected token of the pod')),
        mount: Mount,
      },
      { additionalProperties: false },
    ),
    Type.Object(
      {
        method: Type.Literal('approle'),
        roleId: Type.String({ minLength: 1 }),
        secretIdFile: FilePath('File holding the AppRole secret id'),
        mount: Mount,
      },
      { additionalProperties: false },
    ),
    Type.Object(
      {
        method: Type.Literal('jwt'),
        role: Role,
        jwtFile: FilePath('File holding the JWT the service logs in with'),
        mount: Mount,
      },
      { additionalProperties: false },
    ),
  ],
  {
    default: { method: 'token' },
    description: 'How the service logs in to Vault: `token` (VAULT_TOKEN), `kubernetes`, `approle` or `jwt`',
  },
);

export type VaultAuthConfig = Static<typeof VaultAuthSchema>;
