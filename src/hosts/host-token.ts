// A host's token as it is now: the configured value, or a file re-read when it changes, so a token
// rotated in a mounted Kubernetes Secret is used from the next request on, without a restart.
import type { HostConfig } from '../config.ts';
import { type FileSecret, fileSecret } from '../file-secret.ts';
import type { Logger } from '../log.ts';
import type { Clock } from '../time.ts';
import type { SecretSource } from './host-auth-config.ts';

export function secretReader(source: SecretSource, clock: Clock, logger: Logger): () => string {
  if ('value' in source) return () => source.value;
  const secret: FileSecret = fileSecret(source.file, {
    clock,
    onError: (error) =>
      logger.warn({ file: source.file, err: error.message }, 'cannot re-read a secret file'),
  });
  secret.onChange(() => logger.info({ file: source.file }, 'secret file changed; using its new content'));
  return () => secret.value();
}

/** The token of a host that authenticates with one (GitLab, Gitea, GitHub without an App). */
export function hostTokenReader(context: { config: HostConfig; clock: Clock; logger: Logger }): () => string {
  const { credential } = context.config;
  if (credential?.type !== 'token') return () => context.config.token;
  return secretReader(credential.token, context.clock, context.logger);
}
