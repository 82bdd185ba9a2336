// Runs the console's tests in Debian's Chromium against a real `gatehouse` process that
// Playwright starts (scripts/test passes the binary, the built site and a fresh data directory).
import { defineConfig } from '@playwright/test';

const port = Number(process.env.E2E_PORT ?? 4100);

export default defineConfig({
  testDir: './tests',
  outputDir: './test-results',
  timeout: 30_000,
  workers: 1,
  reporter: [['list']],
  use: {
    baseURL: `http://127.0.0.1:${port}`,
    screenshot: 'only-on-failure',
    trace: 'retain-on-failure',
    launchOptions: {
      executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        '--disable-quic',
      ],
    },
  },
  webServer: {
    command: process.env.GATEHOUSE_BIN ?? '../target/release/gatehouse',
    url: `http://127.0.0.1:${port}/health`,
    reuseExistingServer: false,
    timeout: 60_000,
    stdout: 'pipe',
    env: {
      GATEHOUSE_HOST: '127.0.0.1',
      GATEHOUSE_PORT: String(port),
      GATEHOUSE_MASTER_KEY: process.env.E2E_ADMIN_KEY ?? '',
      GATEHOUSE_DATA_DIR: process.env.E2E_DATA_DIR ?? '',
      LEPTOS_SITE_ROOT: process.env.LEPTOS_SITE_ROOT ?? '../target/site',
    },
  },
});
