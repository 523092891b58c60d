// When the service's own token on a host stops working, where the host type can tell (GitLab's
// `expires_at`). One attempt, its failure mapped as every host call's is: the expiry watch
// (credential-expiry.ts) looks again within a minute, so retrying here would only delay it.

import type { Clock } from '../time.ts';
import { toHostError } from './error-mapping.ts';
import type { GitHost } from './git-host.ts';
import type { HostTransport } from './host-transport.ts';

export function tokenExpiry(
  hostId: string,
  transport: HostTransport,
  clock: Clock,
): Pick<GitHost, 'credentialExpiry'> {
  const { credentialExpiry } = transport;
  if (!credentialExpiry) return {};
  return {
    async credentialExpiry() {
      let date: string | null;
      try {
        date = await credentialExpiry();
      } catch (error) {
        throw toHostError(hostId, 'read the token’s expiry', error, transport.answerOf, clock().getTime());
      }
      // GitLab stores a date; the token stops working at its start (UTC).
      return date === null ? null : new Date(`${date}T00:00:00Z`);
    },
  };
}
