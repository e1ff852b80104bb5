import { createRequire } from 'node:module';
import { defineConfig } from 'vitest/config';

const require = createRequire(import.meta.url);

export default defineConfig({
  resolve: {
    // graphql 16 ships CJS and ESM builds without an "exports" map: Vite would give our sources
    // the ESM build while yoga and Pothos (loaded by Node) get the CJS one, and two GraphQLError
    // classes make yoga mask every expected error. Pin our sources to the build Node resolves.
    alias: [{ find: /^graphql$/, replacement: require.resolve('graphql') }],
  },
  test: {
    include: ['test/**/*.test.ts'],
    setupFiles: ['test/support/setup.ts'],
    // Each file opens its own database (PGlite ~2 s to start; PostgreSQL: a fresh database).
    hookTimeout: 60_000,
    testTimeout: 30_000,
    pool: 'forks',
    maxWorkers: 2,
  },
});
