import { test, expect } from '@playwright/test';
import { admin, adminKey, pageErrors as watchForPageErrors, signIn } from './helpers';

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

  // The server renders the page; the WASM bundle then hydrates it and fetches the teams.
  const html = await (await request.get('/')).text();
  expect(html).toContain('Loading');
  expect(html).toContain('/pkg/gatehouse');

  await page.goto('/');
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
  await page.reload();
  await expect(page.getByRole('row', { name: /Playwright/ })).toBeVisible();
  await page.screenshot({ path: 'test-results/teams.png', fullPage: true });

  // Signing out returns to the form.
  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page.getByLabel('Admin key')).toBeVisible();
  expect(errors).toEqual([]);
});

test('a wrong key shows an error message and no teams', async ({ page }) => {
  const errors = watchForPageErrors(page);
  await page.goto('/');
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
  const document = await page.goto('/');
  const csp = document?.headers()['content-security-policy'] ?? '';
  expect(csp).toContain("script-src 'self' 'nonce-");
  expect(csp).toContain("frame-ancestors 'none'");
  expect(csp).not.toContain('unsafe-inline');
  expect(document?.headers()['x-content-type-options']).toBe('nosniff');
  await signIn(page);
  // Hydrated: the search box filters the table as you type.
  await page.getByRole('searchbox').fill(teamId);
  await expect(page.getByRole('link', { name: 'CSP team' })).toBeVisible();
  await page.getByRole('link', { name: 'CSP team' }).click();
  await expect(page.getByRole('heading', { name: 'CSP team' })).toBeVisible();
  await expect(page.getByRole('progressbar', { name: 'Budget used' }).first()).toBeVisible();
  await page.getByRole('link', { name: 'Usage' }).click();
  await expect(page.getByRole('heading', { name: 'Usage' })).toBeVisible();
  expect(errors).toEqual([]);
});
