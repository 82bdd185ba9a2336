// Time to interactive of the teams page with many teams: starts Gatehouse on a fresh data
// directory, creates the teams through the API, signs in, then loads `/` several times in
// Chromium and reports when the server's first paint arrived and when the full table was
// rendered by the hydrated app (the moment the page answers to search and clicks).
// Usage: node bench/teams-tti.mjs [TEAMS=1000] [RUNS=5]   (GATEHOUSE_BIN, LEPTOS_SITE_ROOT set)
import { chromium } from '@playwright/test';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const teams = Number(process.argv[2] ?? 1000);
const runs = Number(process.argv[3] ?? 5);
const adminKey = `sk-admin-bench-${Date.now()}`;
const dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-tti-'));

const server = spawn(process.env.GATEHOUSE_BIN, [], {
  env: { ...process.env, GATEHOUSE_PORT: '0', GATEHOUSE_DATA_DIR: dataDir, GATEHOUSE_MASTER_KEY: adminKey, RUST_LOG: 'warn' },
  stdio: ['ignore', 'pipe', 'inherit'],
});
const base = await new Promise((resolve, reject) => {
  server.stdout.on('data', (chunk) => {
    const match = /listening on (http:\/\/\S+)/.exec(chunk.toString());
    if (match) resolve(match[1]);
  });
  server.on('exit', (code) => reject(new Error(`gatehouse exited with ${code}`)));
});

try {
  const headers = { Authorization: `Bearer ${adminKey}`, 'Content-Type': 'application/json' };
  for (let i = 0; i < teams; i += 50) {
    await Promise.all(Array.from({ length: Math.min(50, teams - i) }, (_, j) => fetch(`${base}/team/new`, {
      method: 'POST', headers,
      body: JSON.stringify({ team_id: `team-${i + j}`, team_alias: `Team ${i + j}`, max_budget: 100 + i + j, budget_duration: '30d', models: ['gpt-4o'] }),
    }).then((r) => { if (!r.ok) throw new Error(`team/new: ${r.status}`); })));
  }
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
  });
  const context = await browser.newContext({ baseURL: base });
  const login = await context.request.post('/session/login', { data: { key: adminKey } });
  if (!login.ok()) throw new Error(`login: ${login.status()}`);
  const page = await context.newPage();
  const results = [];
  for (let run = 0; run < runs; run++) {
    await page.goto('/', { waitUntil: 'commit' });
    await page.waitForFunction((n) => document.querySelectorAll('tbody tr').length >= n, teams, { timeout: 60_000, polling: 'raf' });
    const timing = await page.evaluate(() => {
      const paint = performance.getEntriesByName('first-contentful-paint')[0];
      return { fcp: paint ? paint.startTime : NaN, interactive: performance.now() };
    });
    results.push(timing);
  }
  await browser.close();
  const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  console.log(`teams page with ${teams} teams, ${runs} loads (ms since navigation start, median):`);
  console.log(`  first contentful paint (server-rendered): ${median(results.map((r) => r.fcp)).toFixed(0)}`);
  console.log(`  full table rendered by the hydrated app:  ${median(results.map((r) => r.interactive)).toFixed(0)}`);
  console.log(`  all runs: ${results.map((r) => r.interactive.toFixed(0)).join(', ')}`);
} finally {
  server.kill();
  rmSync(dataDir, { recursive: true, force: true });
}
