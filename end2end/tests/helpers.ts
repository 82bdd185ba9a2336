import { expect, type Page, type APIRequestContext } from '@playwright/test';
import AxeBuilder from '@axe-core/playwright';

export const adminKey = process.env.E2E_ADMIN_KEY ?? '';

/** Signs in through the form. */
export async function signIn(page: Page) {
  await page.goto('/');
  await page.getByLabel('Admin key').fill(adminKey);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('heading', { name: 'Teams' })).toBeVisible();
}

/** Admin API call with the bearer key, as scripts do. */
export async function admin(request: APIRequestContext, path: string, data: unknown) {
  const response = await request.post(path, { headers: { Authorization: `Bearer ${adminKey}` }, data });
  expect(response.status(), await response.text()).toBe(200);
  return response.json();
}

/** Fails on any serious or critical accessibility violation of the page as it is now. */
export async function expectAccessible(page: Page) {
  const results = await new AxeBuilder({ page }).analyze();
  const bad = results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  expect(bad.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target).join(', ')})`)).toEqual([]);
}

/** Saves a screenshot of the page at desktop and phone widths. */
export async function screenshots(page: Page, name: string) {
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.screenshot({ path: `test-results/screens/${name}-1280.png`, fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: `test-results/screens/${name}-390.png`, fullPage: true });
  await page.setViewportSize({ width: 1280, height: 800 });
}

/** Collects uncaught page errors (a broken hydration shows up here) and anything the
 * Content-Security-Policy blocked. */
export function pageErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  page.on('console', (message) => {
    if (/Content Security Policy|Refused to/.test(message.text())) errors.push(message.text());
  });
  return errors;
}
