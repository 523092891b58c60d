// The `vault` section of the config file: where the private halves live, how pods read them, how
// the service logs in and how long it waits for Vault. Part of the config file schema in src/config.ts.
import Type from 'typebox';
import { VaultAuthSchema } from './vault/vault-auth-config.ts';

export const VaultSettingsSchema = Type.Object(
  {
    kvMount: Type.String({ pattern: '^[A-Za-z0-9_-]+$', default: 'secret' }),
    pathPrefix: Type.String({ pattern: '^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$', default: 'deploy-keys' }),
    kubernetesAuthMount: Type.String({
      pattern: '^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$',
      default: 'kubernetes',
    }),
    kubernetesAudience: Type.String({
      minLength: 1,
      default: 'vault',
      description:
        'The `aud` a service account token must carry to log in with a per-key Kubernetes-auth role ' +
        '(the audience the pods request their Vault token for)',
    }),
    auth: VaultAuthSchema,
    requestTimeoutSeconds: Type.Integer({
      minimum: 1,
      maximum: 300,
      default: 5,
      description: 'Longest one request to Vault may go unanswered before it fails as a timeout',
    }),
    loginRetryMaxSeconds: Type.Integer({
      minimum: 1,
      maximum: 300,
      default: 5,
      description:
        'Longest wait between two tries of a failed login or renewal (vault.auth other than token): ' +
        'how soon the service holds a token again once Vault auth is back',
    }),
  },
  { additionalProperties: false, default: {} },
);
