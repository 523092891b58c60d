// The shared secret of each host's webhook, from the environment or a file (so a mounted Secret can
// rotate it). During a rotation both the new and the previous secret are accepted. A host with no
// secret configured has no webhook endpoint: deliveries to it are refused, never trusted unsigned.
import { fileSecret } from '../file-secret.ts';
import type { Clock } from '../time.ts';

export type WebhookSecrets = (hostId: string) => string[];

const envPrefix = (hostId: string) => `DEPLOYKEY_WEBHOOK_${hostId.toUpperCase().replaceAll('-', '_')}_SECRET`;

/** The variables a host's secrets come from: `<PREFIX>` or `<PREFIX>_FILE`, then `<PREFIX>_PREVIOUS(_FILE)`. */
export function webhookSecretNames(hostId: string) {
  const prefix = envPrefix(hostId);
  return { current: prefix, previous: `${prefix}_PREVIOUS` };
}

function secretFrom(name: string, env: NodeJS.ProcessEnv, clock: Clock): (() => string) | undefined {
  const inline = env[name];
  if (inline) return () => inline;
  const path = env[`${name}_FILE`];
  if (!path) return undefined;
  const file = fileSecret(path, { clock });
  return () => file.value();
}

/** Reads every configured secret now, so a bad file path stops start-up. */
export function webhookSecretsFromEnv(
  hostIds: readonly string[],
  env: NodeJS.ProcessEnv,
  clock: Clock,
): WebhookSecrets {
  const byHost = new Map<string, (() => string)[]>();
  for (const hostId of hostIds) {
    const names = webhookSecretNames(hostId);
    const readers = [secretFrom(names.current, env, clock), secretFrom(names.previous, env, clock)];
    byHost.set(
      hostId,
      readers.filter((reader): reader is () => string => reader !== undefined),
    );
  }
  return (hostId) => (byHost.get(hostId) ?? []).map((read) => read()).filter((value) => value !== '');
}
