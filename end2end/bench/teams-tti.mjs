// The teams page with many teams: starts Gatehouse on a fresh data directory, creates the
// teams through the API, signs in, then loads several views of the table (first page, a
// sorted page, a search) in Chromium and reports when the table's rows were in the document
// (server-rendered), the first contentful paint, and when the bundle had hydrated the page
// (the moment it answers to clicks).
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
  const pageSize = 50;
  // Each view of the table: the first page, a sorted page deep in the list, a search.
  const views = [
    ['first page', '/'],
    ['sorted by spend, last page', `/?sort=-spend&page=${Math.max(1, Math.ceil(teams / pageSize))}`],
    ['sorted by name, page 2', '/?sort=name&page=2'],
    ['search', `/?search=${encodeURIComponent(`Team ${teams - 1}`)}`],
  ];
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  // One load first, not counted: the browser compiles and caches the bundle once.
  await page.goto('/');
  await page.locator('html[data-hydrated]').waitFor({ state: 'attached', timeout: 60_000 });
  console.log(`teams page with ${teams} teams, ${runs} loads each after one warm-up load (ms since navigation start, median):`);
  for (const [name, path] of views) {
    const results = [];
    for (let run = 0; run < runs; run++) {
      await page.goto(path, { waitUntil: 'commit' });
      // Rows of the server-rendered table, in the document as it arrives.
      await page.waitForFunction(() => document.querySelectorAll('tbody tr').length > 0, null, { timeout: 60_000, polling: 'raf' });
      const visible = await page.evaluate(() => performance.now());
      await page.locator('html[data-hydrated]').waitFor({ state: 'attached', timeout: 60_000 });
      const timing = await page.evaluate(() => {
        const paint = performance.getEntriesByName('first-contentful-paint')[0];
        return { fcp: paint ? paint.startTime : NaN, hydrated: performance.now() };
      });
      results.push({ visible, ...timing });
    }
    console.log(`  ${name.padEnd(28)} table visible ${median(results.map((r) => r.visible)).toFixed(0).padStart(5)}   first paint ${median(results.map((r) => r.fcp)).toFixed(0).padStart(5)}   hydrated ${median(results.map((r) => r.hydrated)).toFixed(0).padStart(5)}   (visible, all runs: ${results.map((r) => r.visible.toFixed(0)).join(', ')})`);
  }
  await browser.close();
} finally {
  server.kill();
  rmSync(dataDir, { recursive: true, force: true });
}
