// The scanner behind every secret scan finds what was planted, however it was written down.
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { findLeaks, needlesOf } from '../support/leak-scan.ts';

const pem = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({
  type: 'pkcs1',
  format: 'pem',
}) as string;
const jwt = `eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOjEyMzR9.${'s1gnature-Of-The-App-JWT_'.repeat(3)}`;

describe('the leak scanner', () => {
  it('finds a planted token, PEM or JWT in any of the texts and names what and where', () => {
    const needles = [
      ...needlesOf('Vault token', 'hvs.CAESIPlantedVaultToken0123'),
      ...needlesOf('App private key', pem),
      ...needlesOf('App JWT', jwt),
    ];
    const places = {
      logs: `{"msg":"login","err":"refused hvs.CAESIPlantedVaultToken0123"}`,
      // A PEM escaped into a JSON string: no longer whole, still recognisable by its lines.
      'error bodies': JSON.stringify({ detail: pem }),
      // A JWT's signature alone, cut from the rest.
      '/metrics': `deploykey_x{label="${jwt.split('.')[2]}"} 1`,
      Postgres: 'nothing secret here',
    };
    expect(findLeaks(places, needles).sort()).toEqual([
      'App JWT (signature) in /metrics',
      'App private key in error bodies',
      'Vault token in logs',
    ]);
  });

  it('finds nothing in clean texts and refuses a needle too short to mean anything', () => {
    expect(findLeaks({ logs: 'all clear' }, needlesOf('GitLab token', 'glpat-0123456789abcdef'))).toEqual([]);
    expect(() => needlesOf('empty secret id', '  ')).toThrow(/too short/);
  });
});
