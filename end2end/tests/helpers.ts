import { expect, type Page, type APIRequestContext } from '@playwright/test';
import AxeBuilder from '@axe-core/playwright';

export const adminKey = process.env.E2E_ADMIN_KEY ?? '';

/** Loads a page and waits until the browser's bundle has hydrated it: the server-rendered
 * page shows everything at once, but its buttons answer only after hydration. */
export async function open(page: Page, path: string) {
  const response = await page.goto(path);
  await hydrated(page);
  return response;
}

export async function reload(page: Page) {
  await page.reload();
  await hydrated(page);
}

export async function hydrated(page: Page) {
  await page.locator('html[data-hydrated]').waitFor({ state: 'attached' });
}

/** Signs in through the form. */
export async function signIn(page: Page) {
  await open(page, '/');
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

/** Saves a screenshot of the page at desktop and phone widths, light and dark; fails when the
 * page is wider than the phone's screen (a table that cannot scroll, a row that cannot wrap). */
export async function screenshots(page: Page, name: string) {
  for (const scheme of ['light', 'dark'] as const) {
    await page.emulateMedia({ colorScheme: scheme });
    const suffix = scheme === 'dark' ? '-dark' : '';
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.screenshot({ path: `test-results/screens/${name}-1280${suffix}.png`, fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: `test-results/screens/${name}-390${suffix}.png`, fullPage: true });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow, `${name} is wider than a 390 px screen`).toBeLessThanOrEqual(0);
  }
  await page.emulateMedia({ colorScheme: 'light' });
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
