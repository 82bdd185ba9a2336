import { test, expect } from '@playwright/test';
import { admin, adminKey, open, pageErrors as watchForPageErrors, reload, signIn } from './helpers';

test('an admin signs in and sees a team created through the API', async ({ page, request }) => {
  expect(adminKey, 'scripts/test sets E2E_ADMIN_KEY').not.toBe('');
  const errors = watchForPageErrors(page);
  const teamId = `e2e-${Date.now()}`;
  const created = await request.post('/team/new', {
    headers: { Authorization: `Bearer ${adminKey}` },
    data: {
      team_id: teamId,
      team_alias: 'Playwright <b>Team</b>',
      models: ['gpt-4'],
      max_budget: 42,
      budget_duration: '30d',
    },
  });
  expect(created.status()).toBe(200);

  // Without a session the server renders the sign-in form; the WASM bundle then hydrates it.
  const html = await (await request.get('/')).text();
  expect(html).toContain('the admin key');
  expect(html).not.toContain(teamId);
  expect(html).toContain('/pkg/gatehouse');

  await open(page, '/');
  const keyField = page.getByLabel('Admin key');
  await expect(keyField).toBeVisible();
  await keyField.fill(adminKey);
  await page.getByRole('button', { name: 'Sign in' }).click();

  await expect(page.getByRole('heading', { name: 'Teams' })).toBeVisible();
  const row = page.getByRole('row', { name: /Playwright/ });
  await expect(row).toContainText(teamId);
  await expect(row).toContainText('$0.00 / $42.00');
  await expect(row).toContainText('gpt-4');
  // HTML in a team name is shown as text, not rendered.
  await expect(row).toContainText('Playwright <b>Team</b>');
  await expect(page.locator('td b')).toHaveCount(0);

  // The session lives in an HttpOnly cookie; the key is stored nowhere in the page.
  const session = (await page.context().cookies()).find((c) => c.name === 'gatehouse_session');
  expect(session?.httpOnly).toBe(true);
  expect(session?.sameSite).toBe('Strict');
  const stored = await page.evaluate(
    () => JSON.stringify(localStorage) + JSON.stringify(sessionStorage) + document.cookie,
  );
  expect(stored).not.toContain(adminKey);

  // Still signed in after a reload.
  await reload(page);
  await expect(page.getByRole('row', { name: /Playwright/ })).toBeVisible();
  await page.screenshot({ path: 'test-results/teams.png', fullPage: true });

  // Signing out returns to the form.
  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page.getByLabel('Admin key')).toBeVisible();
  expect(errors).toEqual([]);
});

test('a wrong key shows an error message and no teams', async ({ page }) => {
  const errors = watchForPageErrors(page);
  await open(page, '/');
  await page.getByLabel('Admin key').fill('sk-admin-not-the-right-key');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('alert')).toContainText('not the admin key');
  await expect(page.getByRole('heading', { name: 'Teams' })).toHaveCount(0);
  await page.screenshot({ path: 'test-results/sign-in-error.png', fullPage: true });
  expect(errors).toEqual([]);
});

test('every page hydrates and works under the Content-Security-Policy', async ({ page, request }) => {
  const errors = watchForPageErrors(page);
  const teamId = `csp-${Date.now()}`;
  await admin(request, '/team/new', { team_id: teamId, team_alias: 'CSP team', max_budget: 10 });
  const document = await open(page, '/');
  const csp = document?.headers()['content-security-policy'] ?? '';
  expect(csp).toContain("script-src 'self' 'nonce-");
  expect(csp).toContain("frame-ancestors 'none'");
  expect(csp).not.toContain('unsafe-inline');
  expect(document?.headers()['x-content-type-options']).toBe('nosniff');
  await signIn(page);
  // Hydrated: the search box asks the server for the matching teams.
  await page.getByRole('searchbox').fill(teamId);
  await page.getByRole('searchbox').press('Enter');
  await expect(page.getByRole('link', { name: 'CSP team' })).toBeVisible();
  await page.getByRole('link', { name: 'CSP team' }).click();
  await expect(page.getByRole('heading', { name: 'CSP team' })).toBeVisible();
  await expect(page.getByRole('progressbar', { name: 'Budget used' }).first()).toBeVisible();
  await page.getByRole('link', { name: 'Usage' }).click();
  await expect(page.getByRole('heading', { name: 'Usage' })).toBeVisible();
  expect(errors).toEqual([]);
});

test('the first HTML of the teams and team pages already holds their data', async ({ page, request }) => {
  const teamId = `ssr-${Date.now()}`;
  await admin(request, '/team/new', { team_id: teamId, team_alias: 'Rendered team', max_budget: 12, models: ['gpt-4o'] });
  await admin(request, '/key/generate', { team_id: teamId, key_alias: 'rendered-key' });
  const login = await page.request.post('/session/login', { data: { key: adminKey } });
  expect(login.status()).toBe(200);

  // The documents as they arrive, before any script could run.
  const teams = await page.request.get(`/?search=${teamId}`);
  expect(teams.headers()['content-type']).toContain('text/html');
  const teamsHtml = await teams.text();
  expect(teamsHtml).toContain('Rendered team');
  expect(teamsHtml).toContain('$0.00 / $12.00');
  expect(teamsHtml).not.toContain('Loading…');
  const team = await (await page.request.get(`/teams/${teamId}`)).text();
  expect(team).toContain('Rendered team');
  expect(team).toContain('rendered-key');
  expect(team).toContain('Spend, last 30 days');
  expect(team).not.toContain('Loading');
  const usage = await (await page.request.get('/usage')).text();
  expect(usage).toContain('Spend per team');

  // Hydration takes the data over: no second request for it (only the live figures' stream
  // opens).
  const asked: string[] = [];
  const streams: string[] = [];
  page.on('request', (r) => {
    const path = new URL(r.url()).pathname;
    if (path === '/team/events') streams.push(r.url());
    else if (/\/(team|spend)\//.test(path)) asked.push(r.url());
  });
  const errors = watchForPageErrors(page);
  await open(page, `/teams/${teamId}`);
  await expect(page.getByRole('heading', { level: 1, name: 'Rendered team' })).toBeVisible();
  await page.waitForLoadState('networkidle');
  expect(asked).toEqual([]);
  expect(streams).toEqual([expect.stringContaining(`team_ids=${teamId}`)]);
  expect(errors).toEqual([]);
});

test('pages work, read-only, without the WebAssembly bundle', async ({ browser }) => {
  const teamId = `nojs-${Date.now()}`;
  const context = await browser.newContext({ javaScriptEnabled: false });
  await admin(context.request, '/team/new', { team_id: teamId, team_alias: 'No script team', max_budget: 5 });
  expect((await context.request.post('/session/login', { data: { key: adminKey } })).status()).toBe(200);
  const page = await context.newPage();
  await page.goto('/');
  await page.getByLabel('Search teams').fill(teamId);
  await page.getByLabel('Search teams').press('Enter');
  await expect(page).toHaveURL(new RegExp(`search=${teamId}`));
  const row = page.getByRole('row', { name: /No script team/ });
  await expect(row).toContainText('$0.00 / $5.00');
  await row.getByRole('link', { name: 'No script team' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'No script team' })).toBeVisible();
  await context.close();
});

test('the bundle arrives compressed, under 400 KiB, and is cached for good', async ({ request }) => {
  const html = await (await request.get('/')).text();
  const wasm = /\/pkg\/[^"']+\.wasm/.exec(html)?.[0];
  expect(wasm, 'the page names its .wasm').toBeTruthy();
  const response = await request.get(wasm!, { headers: { 'Accept-Encoding': 'br' } });
  expect(response.status()).toBe(200);
  expect(response.headers()['content-encoding']).toBe('br');
  const onTheWire = Number(response.headers()['content-length']);
  console.log(`.wasm on the wire: ${onTheWire} bytes (brotli)`);
  expect(onTheWire).toBeGreaterThan(0);
  expect(onTheWire).toBeLessThanOrEqual(400 * 1024);
  expect(response.headers()['cache-control']).toContain('immutable');
  const gzip = await request.get(wasm!, { headers: { 'Accept-Encoding': 'gzip' } });
  expect(gzip.headers()['content-encoding']).toBe('gzip');
  // The page itself is checked on every visit.
  expect((await request.get('/')).headers()['cache-control']).toBe('no-cache');
});

test('the API reference at /docs shows the OpenAPI document under its own policy', async ({ page }) => {
  const errors = watchForPageErrors(page);
  const response = await page.goto('/docs/');
  expect(response?.headers()['content-security-policy']).toContain("script-src 'self';");
  await expect(page.getByRole('heading', { name: /Gatehouse/ })).toBeVisible();
  await expect(page.getByText('/team/new', { exact: true })).toBeVisible();
  await expect(page.getByText('/v1/chat/completions', { exact: true })).toBeVisible();
  expect(errors).toEqual([]);
});
