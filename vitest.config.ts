import { defineConfig } from 'vitest/config';

export default defineConfig({
  // tfjs packages' Node entries are CJS bundles that would load a second copy of tfjs-core (without gradients);
  // resolve their ES module builds instead, as the browser build and the CLI bundle do.
  resolve: { mainFields: ['module', 'main'] },
  ssr: { resolve: { mainFields: ['module', 'main'] } } as object,
  test: {
    include: ['tests/**/*.test.ts'],
    globalSetup: ['tests/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    server: { deps: { inline: [/@tensorflow\//] } },
    pool: 'forks',
  },
});
