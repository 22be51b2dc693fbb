import { defineConfig } from '@playwright/test';

// Debian's chromium (installed by .ci/run); Playwright's own browser download cannot work offline.
const port = Number(process.env.E2E_PORT ?? 4173);
/** The vite dev server, for test pages under e2e/pages/ that import engine modules directly. */
export const devURL = `http://127.0.0.1:${port + 1}`;
const chromiumArgs = ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic', '--enable-unsafe-webgpu'];

export default defineConfig({
  testDir: 'e2e',
  outputDir: 'test-results',
  timeout: 180_000,
  expect: { timeout: 60_000 },
  workers: 1,
  reporter: [['list']],
  use: {
    baseURL: `http://127.0.0.1:${port}`,
    launchOptions: { executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: chromiumArgs },
    screenshot: 'only-on-failure',
  },
  projects: [
    { name: 'webgpu', metadata: { backend: 'webgpu' } },
    { name: 'wasm', metadata: { backend: 'wasm' } },
  ],
  webServer: [
    {
      command: `npm run -s build -- --logLevel warn && npx vite preview --port ${port}`,
      url: `http://127.0.0.1:${port}`,
      reuseExistingServer: !process.env.CI,
      timeout: 120_000,
    },
    { command: `npx vite --port ${port + 1} --strictPort --logLevel warn`, url: `${devURL}/e2e/pages/numerics.html`, reuseExistingServer: !process.env.CI, timeout: 120_000 },
  ],
});
