// The Action's `post` step: runs after the job's steps whatever their outcome (post-if: always()),
// tells the service the job is done so its key is revoked now, and removes the key files.
import { rm } from 'node:fs/promises';
import { discoverCredential } from '../cli/client/credentials.ts';
import { readClientEnvironment } from '../cli/client/environment.ts';
import { createServiceClient } from '../cli/client/service-client.ts';
import { getState, info, setFailed, setSecret } from './runner.ts';

// Revoking comes first: a key file left behind is harmless once its key is revoked at the host.
async function removeKeyFiles(): Promise<void> {
  const dir = getState('dir');
  if (!dir) return;
  await rm(dir, { recursive: true, force: true }).catch((error: Error) =>
    info(`::warning::deploykey: could not remove ${dir}: ${error.message}`),
  );
}

async function post(): Promise<void> {
  const jobId = getState('jobId');
  if (!jobId) {
    info('deploykey: the main step asked for no key; nothing to revoke.');
    return;
  }
  const audience = getState('audience');
  const credential = await discoverCredential(readClientEnvironment(), { audience, k8sTokenFiles: [] });
  setSecret(credential.token);
  const client = createServiceClient({ baseUrl: getState('url'), credential });
  try {
    const done = await client.completeJob(jobId);
    for (const key of done.keys)
      info(`deploykey: revoking key ${key.id} for ${key.provider} ${key.repository}`);
    info(`deploykey: job ${jobId} complete; ${done.keys.length} key(s) being revoked.`);
    await removeKeyFiles();
  } catch (error) {
    // The main step failed before the service registered any key for this job: nothing is live.
    if ((error as { status?: number }).status === 404) {
      info(`deploykey: the service has no key for job ${jobId}; nothing to revoke.`);
      await removeKeyFiles();
      return;
    }
    throw error;
  }
}

post().catch((error: Error) => setFailed(`deploykey: could not revoke the job's keys: ${error.message}`));
