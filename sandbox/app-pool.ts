// A second GitHub App installed on the sandbox's owner, and the service's host list with the GitHub
// host as a credential pool of the sandbox's App and this one, for tests and benchmarks of pools.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type StandIns, serviceSettingsFor } from './stand-ins.ts';

export interface PooledApp {
  type: 'app';
  appId: number;
  privateKeyFile: string;
  /** The App's private key, for scans that must not find it anywhere. */
  privateKeyPem: string;
}

/** Registers and installs on `acme` another App, its key in a file beside the sandbox App's. */
export function installSecondApp(standIns: StandIns, name = 'deploykey-rotator-sandbox-b'): PooledApp {
  const { github } = standIns;
  const { app, privateKeyPem } = github.api.apps.registerApp({ name });
  github.api.apps.install(app.id, { account: 'acme' });
  const privateKeyFile = join(github.app.privateKeyPath, '..', `${name}.private-key.pem`);
  writeFileSync(privateKeyFile, privateKeyPem!, { mode: 0o600 });
  return { type: 'app', appId: app.id, privateKeyFile, privateKeyPem: privateKeyPem! };
}

/** The stand-ins' hosts with `github` using the sandbox App (`app-a`) and `second` (`app-b`). */
export function hostsWithAppPool(standIns: StandIns, second: PooledApp, writes?: Record<string, number>) {
  return serviceSettingsFor(standIns).hosts.map((host) => {
    if (host.id !== 'github') return host;
    const { auth, ...rest } = host;
    const { privateKeyPem: _secret, ...secondAuth } = second;
    const credentials = [
      { name: 'app-a', auth },
      { name: 'app-b', auth: secondAuth },
    ];
    return { ...rest, credentials, ...(writes ? { writes } : {}) };
  });
}
