// Makes the RSA pairs the stand-ins sign with once per test run, instead of once or more per test
// file: each is 100-300 ms of CPU, and most files start an OIDC issuer and a GitHub App.
import type { TestProject } from 'vitest/node';
import { makeRsaPairs } from '../../sandbox/shared/rsa-keys.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    premadeRsaPairs: string[];
  }
}

// What one file of stand-ins takes (the OIDC issuer and the GitHub App) with room for a second set;
// a file that needs more makes the rest itself.
const PAIRS = 4;

export default async function setup(project: TestProject) {
  project.provide('premadeRsaPairs', await makeRsaPairs(PAIRS));
}
