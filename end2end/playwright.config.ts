// Browser tests against the real server binary, which starts its own private PostgreSQL in a
// fresh data folder and seeds the demo. Chromium is Debian's (/usr/bin/chromium): Playwright's
// own browser download is not available on these machines.
import { defineConfig, devices } from '@playwright/test';
import * as path from 'node:path';
import * as os from 'node:os';

const port = Number(process.env.E2E_PORT ?? 3100);
const targetDir = process.env.CARGO_TARGET_DIR ?? path.join(__dirname, '..', 'target');
const binary = process.env.PORTAL_BIN ?? path.join(targetDir, 'debug', 'billing-portal');
// Known to the tests too (they read the demo logins from it), so it must not be random.
export const dataDir = process.env.E2E_DATA_DIR ?? path.join(os.tmpdir(), 'billing-portal-e2e');

const serverEnv: Record<string, string> = {};
for (const [key, value] of Object.entries(process.env)) {
  if (value !== undefined && key !== 'DATABASE_URL') serverEnv[key] = value;
}
Object.assign(serverEnv, {
  HOST: '127.0.0.1',
  PORT: String(port),
  // The offline Stripe's own origin, beside the portal (as Stripe's pages live elsewhere).
  STRIPE_EMULATOR_PORT: String(port + 1),
  DATA_DIR: dataDir,
  E2E_DATA_DIR: dataDir,
  SEED_DEMO: 'true',
  RUST_LOG: 'warn',
});

export default defineConfig({
  testDir: './tests',
  fullyParallel: false,
  workers: 1,
  retries: 0,
  forbidOnly: !!process.env.CI,
  reporter: [['list']],
  timeout: 60_000,
  use: {
    baseURL: `http://127.0.0.1:${port}`,
    trace: 'off',
    launchOptions: {
      executablePath: '/usr/bin/chromium',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    },
  },
  projects: [{ name: 'chromium', use: { ...devices['Desktop Chrome'] } }],
  webServer: {
    // A fresh data folder every run: a new cluster, a new demo seed.
    command: `rm -rf "${dataDir}" && exec "${binary}" serve`,
    url: `http://127.0.0.1:${port}/healthz`,
    env: serverEnv,
    timeout: 120_000,
    reuseExistingServer: false,
    stdout: 'pipe',
    stderr: 'pipe',
  },
});
