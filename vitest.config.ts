import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['test/chaos/**', 'node_modules/**'],
    pool: 'forks',
    globalSetup: ['test/support/rsa-pairs.global.ts'],
    setupFiles: ['test/support/rsa-pairs.setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    reporters: ['default'],
  },
});
