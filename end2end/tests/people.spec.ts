import { test, expect, type Page, type APIRequestContext } from '@playwright/test';
import { admin, expectAccessible, open, pageErrors, screenshots, signIn } from './helpers';

test.describe.configure({ mode: 'serial' });

const password = 'violet tugboat quarry 4417 marmalade';

/** Sets a password through the invitation link's page, then signs in on the form it shows. */
async function acceptAndSignIn(page: Page, url: string, user: string) {
  await open(page, new URL(url).pathname);
  await expect(page.getByRole('heading', { name: 'Set your password' })).toBeVisible();
  await expectAccessible(page);
  await page.getByLabel('New password').fill('password1');
  await page.getByLabel('Repeat it').fill('password1');
  await page.getByRole('button', { name: 'Set password' }).click();
  await expect(page.getByRole('alert')).toContainText('too easy to guess');
  await page.getByLabel('New password').fill(password);
  await page.getByLabel('Repeat it').fill(password);
  await page.getByRole('button', { name: 'Set password' }).click();
  await expect(page.getByRole('status')).toContainText('Your password is set');
  await page.getByLabel('User ID or e-mail').fill(user);
  await page.getByLabel('Password, or the admin key').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('heading', { name: 'Teams' })).toBeVisible();
}

/** A person invited through the API (as an admin's script would), signed in in the browser. */
async function invitedPerson(page: Page, request: APIRequestContext, user: string, body: object) {
  const invitation = await admin(request, '/invitation/new', { user_id: user, ...body });
  await acceptAndSignIn(page, invitation.url, user);
}

const changeControls = /^(New team|Edit|Edit team|Block|Unblock|Block team|Delete|Delete team|Revoke|Rotate|Add member|Issue key|Create link|Create organization|Create user)$/;

test('an invited team admin sets a password, adds a member, issues a key, and sees no other team', async ({ browser, request }) => {
  const stamp = Date.now();
  const team = `ppl-${stamp}`;
  const other = `ppl-other-${stamp}`;
  await admin(request, '/team/new', { team_id: team, team_alias: 'People Team', models: ['gpt-4o-mini'] });
  await admin(request, '/team/new', { team_id: other, team_alias: 'Hidden Team' });
  const lead = `lead-${stamp}`;
  const invitation = await admin(request, '/invitation/new', { user_id: lead, team_id: team });
  expect(invitation.url).toContain('/invite/');
  await admin(request, '/team/member_update', { team_id: team, user_id: lead, role: 'admin' });

  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = pageErrors(page);
  await acceptAndSignIn(page, invitation.url, lead);
  await expect(page.getByRole('link', { name: 'People Team' })).toBeVisible();
  await expect(page.getByText('Hidden Team')).toHaveCount(0);
  await expect(page.getByRole('button', { name: 'New team' })).toHaveCount(0);
  await expect(page.getByRole('link', { name: 'Users' })).toHaveCount(0);

  await page.getByRole('link', { name: 'People Team' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'People Team' })).toBeVisible();
  // A team admin manages members and keys, not the team's budget.
  await expect(page.getByRole('button', { name: 'Edit team' })).toHaveCount(0);
  const add = page.getByRole('form', { name: 'Add a member' });
  await add.getByLabel('User id or e-mail').fill(`bob-${stamp}`);
  await add.getByRole('button', { name: 'Add member' }).click();
  await expect(page.getByRole('row', { name: new RegExp(`bob-${stamp}`) })).toBeVisible();
  const issue = page.getByRole('form', { name: 'Issue a key' });
  await issue.getByLabel('User id').fill(`bob-${stamp}`);
  await issue.getByLabel('Key alias').fill('bobs-laptop');
  await issue.getByRole('button', { name: 'Issue key' }).click();
  await expect(page.getByTestId('new-key')).toContainText('sk-');
  const key = (await page.getByTestId('new-key').textContent()) ?? '';
  const chat = await request.post('/v1/chat/completions', {
    headers: { Authorization: `Bearer ${key}` },
    data: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hello from a team admin' }] },
  });
  expect(chat.status()).toBe(200);
  await page.getByRole('button', { name: 'Done' }).click();
  // Inviting someone into the team gives a link to pass on.
  const invite = page.getByRole('form', { name: 'Invite a person' });
  await invite.getByLabel('User id or e-mail').fill(`carol-${stamp}@example.com`);
  await invite.getByRole('button', { name: 'Create link' }).click();
  await expect(page.getByTestId('invitation-link')).toContainText('/invite/');
  await expectAccessible(page);
  await screenshots(page, 'team-admin');

  // Another team is refused, and shows nothing of it.
  await open(page, `/teams/${other}`);
  await expect(page.getByRole('alert')).toContainText('does not allow');
  await expect(page.getByText('Hidden Team')).toHaveCount(0);
  expect(errors).toEqual([]);
  await context.close();
});

test('an internal user sees only their own keys and issues themself one', async ({ browser, request }) => {
  const stamp = Date.now();
  const team = `own-${stamp}`;
  await admin(request, '/team/new', { team_id: team, team_alias: 'Own Keys Team' });
  const ada = `ada-${stamp}`;
  await admin(request, '/key/generate', { team_id: team, user_id: ada, key_alias: 'adas-key' });
  await admin(request, '/key/generate', { team_id: team, user_id: `bob-${stamp}`, key_alias: 'bobs-key' });

  const context = await browser.newContext();
  const page = await context.newPage();
  await invitedPerson(page, request, ada, {});
  await page.getByRole('link', { name: 'Own Keys Team' }).click();
  const keys = page.getByRole('region', { name: 'Keys', exact: true });
  await expect(keys).toContainText('adas-key');
  await expect(keys).not.toContainText('bobs-key');
  await expect(page.getByRole('form', { name: 'Add a member' })).toHaveCount(0);
  const issue = page.getByRole('form', { name: 'Issue a key' });
  await expect(issue.getByLabel('User id')).toHaveCount(0);
  await issue.getByLabel('Key alias').fill('adas-second');
  await issue.getByRole('button', { name: 'Issue key' }).click();
  await expect(page.getByTestId('new-key')).toContainText('sk-');
  await page.getByRole('button', { name: 'Done' }).click();
  await expect(keys).toContainText('adas-second');
  await expect(keys).not.toContainText('bobs-key');
  await expectAccessible(page);
  await context.close();
});

test('a viewer sees everything and no change control', async ({ browser, request }) => {
  const stamp = Date.now();
  const team = `view-${stamp}`;
  await admin(request, '/team/new', { team_id: team, team_alias: 'Viewed Team' });
  await admin(request, '/key/generate', { team_id: team, user_id: `dev-${stamp}`, key_alias: 'viewed-key' });
  await admin(request, '/team/member_add', { team_id: team, member: { user_id: `dev2-${stamp}`, role: 'user' } });
  const auditor = `auditor-${stamp}`;
  await admin(request, '/user/new', { user_id: auditor, user_role: 'proxy_admin_viewer', auto_create_key: false });

  const context = await browser.newContext();
  const page = await context.newPage();
  await invitedPerson(page, request, auditor, {});
  await expect(page.getByRole('link', { name: 'Viewed Team' })).toBeVisible();
  await expect(page.getByRole('button', { name: changeControls })).toHaveCount(0);
  await page.getByRole('link', { name: 'Viewed Team' }).click();
  await expect(page.getByRole('region', { name: 'Keys', exact: true })).toContainText('viewed-key');
  await expect(page.getByRole('region', { name: 'Members', exact: true })).toContainText(`dev2-${stamp}`);
  await expect(page.getByRole('button', { name: changeControls })).toHaveCount(0);
  await expect(page.locator('form[aria-label], select[aria-label^="Role of"]')).toHaveCount(0);
  // The audit log: who changed what, readable by a viewer.
  await page.getByRole('link', { name: 'Audit' }).click();
  await expect(page.getByRole('heading', { name: 'Audit log' })).toBeVisible();
  await page.getByLabel('Id').fill(team);
  await page.getByRole('button', { name: 'Show' }).click();
  await expect(page).toHaveURL(new RegExp(`target_id=${team}`));
  await expect(page.getByRole('row', { name: /POST \/team\/new/ })).toContainText('admin');
  await expectAccessible(page);
  await screenshots(page, 'audit');
  for (const path of ['/organizations', '/users']) {
    await open(page, path);
    await expect(page.getByRole('heading', { level: 1 })).toBeVisible();
    await expect(page.getByRole('button', { name: changeControls })).toHaveCount(0);
    await expect(page.locator('form.form')).toHaveCount(0);
  }
  await context.close();
});

test('a key rotated with a grace period keeps working until it ends', async ({ page, request }) => {
  const stamp = Date.now();
  const team = `rot-${stamp}`;
  await admin(request, '/team/new', { team_id: team, team_alias: 'Rotation Team' });
  const issued = await admin(request, '/key/generate', { team_id: team, key_alias: 'rotating' });
  const chat = (key: string) => request.post('/v1/chat/completions', {
    headers: { Authorization: `Bearer ${key}` },
    data: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hello from rotation' }] },
  });
  expect((await chat(issued.key)).status()).toBe(200);

  await signIn(page);
  await page.getByRole('link', { name: 'Rotation Team' }).click();
  await page.getByRole('button', { name: 'Rotate key rotating' }).click();
  const confirm = page.getByRole('group', { name: 'Confirm rotation' });
  await confirm.getByLabel('Old secret:').selectOption({ label: '1 hour' });
  await confirm.getByRole('button', { name: 'Rotate now' }).click();
  const secret = page.getByTestId('rotated-key');
  await expect(secret).toContainText('sk-');
  const rotated = (await secret.textContent()) ?? '';
  expect(rotated).not.toBe(issued.key);
  await expectAccessible(page);
  expect((await chat(rotated)).status()).toBe(200);
  expect((await chat(issued.key)).status()).toBe(200);

  // Rotated again with a grace of two seconds: the previous secret works, then stops.
  const again = await admin(request, '/key/regenerate', { key: issued.token, grace_period: '2s' });
  expect(again.token).toBe(issued.token);
  expect((await chat(rotated)).status()).toBe(200);
  await expect.poll(async () => (await chat(rotated)).status(), { timeout: 15_000 }).toBe(401);
  expect((await chat(again.key)).status()).toBe(200);
  // The first secret stopped with the second rotation (only the last one has a grace period).
  expect((await chat(issued.key)).status()).toBe(401);
});
