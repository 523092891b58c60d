// Every test file's stand-ins sign with the pairs made once for the run (rsa-pairs.global.ts).
import { inject } from 'vitest';
import { addPremadeRsaPairs } from '../../sandbox/shared/rsa-keys.ts';

addPremadeRsaPairs(inject('premadeRsaPairs'));
