import { test, expect } from '@playwright/test';
import { admin, expectAccessible, open, pageErrors, reload, screenshots, signIn } from './helpers';

test.describe.configure({ mode: 'serial' });

test('create, edit, block, unblock and delete a team in the browser', async ({ page }) => {
  const errors = pageErrors(page);
  const id = `flow-${Date.now()}`;
  await signIn(page);
  await expectAccessible(page);

  await page.getByRole('button', { name: 'New team' }).click();
  const form = page.getByRole('form', { name: 'New team' });
  await form.getByLabel('Team id').fill(id);
  await form.getByLabel('Name').fill('Flow Team');
  await form.getByLabel('Budget (USD)').fill('10');
  await form.getByLabel('Budget resets').selectOption({ label: 'Monthly' });
  await form.getByLabel('Requests per minute').fill('600');
  await form.getByLabel('gpt-4o-mini').check();
  await form.getByRole('button', { name: 'Add metadata' }).click();
  await form.getByLabel('Key 1').fill('department');
  await form.getByLabel('Value 1').fill('<i>R&D</i>');
  await expectAccessible(page);
  await form.getByRole('button', { name: 'Create team' }).click();

  await expect(page.getByRole('status')).toContainText(`Team ${id} created.`);
  const row = page.getByRole('row', { name: new RegExp(id) });
  await expect(row).toContainText('Flow Team');
  await expect(row).toContainText('$0.00 / $10.00');
  await expect(row).toContainText('gpt-4o-mini');
  await expect(row).toContainText('600');
  await expect(row).toContainText('Active');

  // Search and sort, on the server: the address says what is shown.
  await page.getByLabel('Search teams').fill('no-such-team');
  await page.getByLabel('Search teams').press('Enter');
  await expect(page.getByText('No team matches the search.')).toBeVisible();
  await expect(page).toHaveURL(/search=no-such-team/);
  await page.getByLabel('Search teams').fill(id);
  await page.getByRole('button', { name: 'Search', exact: true }).click();
  await expect(row).toBeVisible();
  await expect(page.getByRole('navigation', { name: 'Pages of teams' })).toContainText('1–1 of 1 teams');
  await page.getByLabel('Sort by').selectOption({ label: 'Spend' });
  await expect(page).toHaveURL(/sort=-spend/);
  await expect(row).toBeVisible();

  await row.getByRole('button', { name: 'Block Flow Team' }).click();
  await expect(page.getByRole('row', { name: new RegExp(id) })).toContainText('Blocked');
  await page.getByRole('row', { name: new RegExp(id) }).getByRole('button', { name: 'Unblock Flow Team' }).click();
  await expect(page.getByRole('row', { name: new RegExp(id) })).toContainText('Active');

  // Edit from the table...
  await page.getByRole('row', { name: new RegExp(id) }).getByRole('button', { name: 'Edit Flow Team' }).click();
  const inline = page.getByRole('form', { name: 'Edit team' });
  await inline.getByLabel('Tokens per minute').fill('50000');
  await inline.getByRole('button', { name: 'Save changes' }).click();
  await expect(page.getByRole('status')).toContainText(`Team ${id} saved.`);
  await expect(page.getByRole('row', { name: new RegExp(id) })).toContainText('50000');

  // ...and on the team page.
  await page.getByRole('link', { name: 'Flow Team' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Flow Team' })).toBeVisible();
  // Metadata containing HTML is shown as text.
  await expect(page.getByText('<i>R&D</i>')).toBeVisible();
  await expect(page.locator('dd i')).toHaveCount(0);
  await page.getByRole('button', { name: 'Edit team' }).click();
  const edit = page.getByRole('form', { name: 'Edit team' });
  await expect(edit.getByLabel('Budget (USD)')).toHaveValue('10');
  await edit.getByLabel('Name').fill('Flow Team Renamed');
  await edit.getByLabel('Budget (USD)').fill('25');
  await edit.getByRole('button', { name: 'Save changes' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Flow Team Renamed' })).toBeVisible();
  await expect(page.getByText('$0.00 / $25.00')).toBeVisible();

  // Delete, with confirmation, from the table.
  await page.getByRole('link', { name: 'Teams' }).first().click();
  const renamed = page.getByRole('row', { name: new RegExp(id) });
  await renamed.getByRole('button', { name: 'Delete Flow Team Renamed' }).click();
  await expect(renamed.getByRole('group', { name: 'Confirm deletion' })).toBeVisible();
  await renamed.getByRole('button', { name: 'Yes, delete' }).click();
  await expect(page.getByRole('status')).toContainText(`Team ${id} deleted.`);
  await expect(page.getByRole('row', { name: new RegExp(id) })).toHaveCount(0);
  expect(errors).toEqual([]);
});

test('the server\'s validation errors show next to their field, and nothing is created', async ({ page, request }) => {
  await signIn(page);
  await page.getByRole('button', { name: 'New team' }).click();
  const form = page.getByRole('form', { name: 'New team' });
  await form.getByLabel('Team id').fill('bad id!');
  await form.getByRole('button', { name: 'Create team' }).click();
  await expect(form.locator('#team_id-error')).toContainText('team_id must be 1 to 128 characters');
  await form.getByLabel('Team id').fill('valid-but-negative');
  await form.getByLabel('Budget (USD)').fill('-5');
  await form.getByRole('button', { name: 'Create team' }).click();
  await expect(form.locator('#max_budget-error')).toContainText('non-negative');
  await form.getByLabel('Budget (USD)').fill('ten');
  await form.getByRole('button', { name: 'Create team' }).click();
  await expect(form.locator('#max_budget-error')).toContainText('Enter a number');
  await screenshots(page, 'new-team-form-errors');
  const list = await request.get('/team/list', { headers: { Authorization: `Bearer ${process.env.E2E_ADMIN_KEY}` } });
  const ids = (await list.json()).teams.map((t: { team_id: string }) => t.team_id);
  expect(ids).not.toContain('valid-but-negative');
});

test('issue a key, copy it once, use it through the proxy and see the spend', async ({ page, request, context }) => {
  const errors = pageErrors(page);
  await context.grantPermissions(['clipboard-read', 'clipboard-write']);
  const id = `keys-${Date.now()}`;
  await admin(request, '/team/new', {
    team_id: id, team_alias: 'Key Team', max_budget: 1, models: ['gpt-4o-mini', 'gpt-4o'], budget_duration: '30d',
  });
  await signIn(page);
  await page.getByRole('link', { name: 'Key Team' }).click();
  await expect(page.getByText('No keys yet')).toBeVisible();

  const form = page.getByRole('form', { name: 'Issue a key' });
  // A negative limit is refused next to its field, not turned into 0 (a key refusing all).
  await form.getByLabel('Key requests per minute').fill('-5');
  await form.getByRole('button', { name: 'Issue key' }).click();
  await expect(form).toContainText('Enter a whole number, 0 or more');
  await expect(page.getByTestId('new-key')).toHaveCount(0);
  await form.getByLabel('Key requests per minute').fill('');
  await form.getByLabel('User id').fill('alice@example.com');
  await form.getByLabel('Key alias').fill('laptop');
  await form.getByLabel('gpt-4o-mini').check();
  await form.getByRole('button', { name: 'Issue key' }).click();

  const secret = page.getByTestId('new-key');
  await expect(secret).toContainText('sk-');
  const key = (await secret.textContent()) ?? '';
  await expect(page.getByText('This is the only time the key is shown')).toBeVisible();
  await page.getByRole('button', { name: 'Copy key' }).click();
  await expect(page.getByRole('button', { name: 'Copied' })).toBeVisible();
  expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(key);
  await expectAccessible(page);
  await page.getByRole('button', { name: 'Done' }).click();
  await expect(page.getByTestId('new-key')).toHaveCount(0);

  // The key's row (alice is also in the Members table now).
  const keyTable = page.getByRole('region', { name: 'Keys' });
  // Afterwards only the masked form is shown.
  const keyRow = keyTable.getByRole('row', { name: /alice@example.com/ });
  await expect(keyRow).toContainText('...');
  await expect(keyRow).toContainText('laptop');
  expect(await page.content()).not.toContain(key);

  // The key works through the proxy, within its models.
  const chat = (model: string) => request.post('/v1/chat/completions', {
    headers: { Authorization: `Bearer ${key}` },
    data: { model, messages: [{ role: 'user', content: 'Hello from the browser test' }] },
  });
  expect((await chat('gpt-4o-mini')).status()).toBe(200);
  expect((await chat('gpt-4o')).status()).toBe(401);
  // The open page follows the team's and the key's spend and status (server-sent events): no
  // reload.
  await expect(page.locator('.card', { has: page.getByRole('heading', { name: 'Budget' }) }))
    .toContainText('$0.000005 / $1.00');
  await expect(keyTable.getByRole('row', { name: /alice@example.com/ })).toContainText('$0.000005');
  await admin(request, '/key/block', { key });
  await expect(keyTable.getByRole('row', { name: /alice@example.com/ })).toContainText('Blocked');
  await expect(page.getByRole('button', { name: 'Unblock key laptop' })).toBeVisible();
  await admin(request, '/key/unblock', { key });
  await expect(keyTable.getByRole('row', { name: /alice@example.com/ })).toContainText('Active');

  // The spend shows on the team page and in its chart once written (the writer commits
  // every 200 ms): reload until it does.
  await expect(async () => {
    await reload(page);
    await page.getByText('Daily figures').click();
    await expect(page.getByRole('figure').getByRole('table')).toContainText('$0.000005');
  }).toPass({ timeout: 10_000 });
  await expect(page.locator('.forecast')).toContainText('At the current rate ($0.000001/day)');
  await expect(keyTable.getByRole('row', { name: /alice@example.com/ })).toContainText('$0.000005');
  // The figures table folds away again under the chart.
  await page.getByText('Daily figures').click();
  await expect(page.getByRole('figure').getByRole('table')).toBeHidden();
  await screenshots(page, 'team');
  await expectAccessible(page);

  // Each day split by model, then by key: the address says so (the server renders it), the
  // legend and the figures name the parts.
  const splits = page.getByRole('navigation', { name: 'Split the chart' });
  const figure = page.getByRole('figure');
  await splits.getByRole('link', { name: 'By model' }).click();
  await expect(page).toHaveURL(/split=model/);
  await expect(figure.locator('figcaption')).toContainText('gpt-4o-mini');
  await splits.getByRole('link', { name: 'By key' }).click();
  await expect(page).toHaveURL(/split=key/);
  await expect(figure.locator('figcaption')).toContainText('laptop');
  await expect(splits.getByRole('link', { name: 'By key' })).toHaveAttribute('aria-current', 'true');
  await page.getByText('Daily figures').click();
  await expect(figure.getByRole('columnheader', { name: 'laptop' })).toBeVisible();
  await screenshots(page, 'team-split-by-key');
  await expectAccessible(page);
  await page.getByText('Daily figures').click();

  // Block and revoke from the keys table.
  await page.getByRole('button', { name: 'Block key laptop' }).click();
  await expect(keyTable.getByRole('row', { name: /alice@example.com/ })).toContainText('Blocked');
  expect((await chat('gpt-4o-mini')).status()).toBe(401);
  await page.getByRole('button', { name: 'Revoke key laptop' }).click();
  await page.getByRole('button', { name: 'Yes, revoke' }).click();
  await expect(page.getByRole('status')).toContainText('Key revoked.');
  await expect(keyTable.getByRole('row', { name: /alice@example.com/ })).toHaveCount(0);

  // The usage page charts the team's spend.
  await page.getByRole('link', { name: 'Usage' }).click();
  await expect(page.getByRole('heading', { name: 'Usage' })).toBeVisible();
  await expect(page.getByRole('link', { name: id })).toBeVisible();
  await expect(page.getByRole('table').first()).toContainText('gpt-4o-mini');
  await screenshots(page, 'usage');
  await expectAccessible(page);

  // The request log lists the call (the refused one never reached a provider); its page
  // shows the figures.
  await page.getByRole('link', { name: 'Logs' }).click();
  await page.getByLabel('Team', { exact: true }).fill(id);
  await page.getByRole('button', { name: 'Show' }).click();
  await expect(page).toHaveURL(new RegExp(`team_id=${id}`));
  const logRow = page.getByRole('row', { name: /gpt-4o-mini/ });
  await expect(logRow).toHaveCount(1);
  await expect(logRow).toContainText('200');
  await expect(logRow).toContainText('$0.000005');
  await expect(page.getByRole('navigation', { name: 'Pages of the log' })).toContainText('1–1 of 1 requests');
  await screenshots(page, 'logs');
  await expectAccessible(page);
  await logRow.getByRole('link').first().click();
  await expect(page.getByRole('heading', { name: 'Request', exact: true })).toBeVisible();
  await expect(page.getByText('Prompts and answers are never stored.')).toBeVisible();
  await expect(page.locator('dl')).toContainText('gpt-4o-mini');
  await expectAccessible(page);

  // The overview: spend, top models, and the refusals (a model the key may not use, a blocked
  // key), counted without the requests themselves.
  await page.getByRole('link', { name: 'Overview' }).click();
  await expect(page.getByRole('heading', { name: 'Overview' })).toBeVisible();
  await expect(async () => {
    await reload(page);
    const refused = page.locator('.card', { hasText: 'Refused, last 24 hours' });
    await expect(refused).toContainText('model not allowed', { timeout: 1000 });
    await expect(refused).toContainText('blocked', { timeout: 1000 });
  }).toPass({ timeout: 10_000 });
  await expect(page.locator('.card', { hasText: 'Top models' })).toContainText('gpt-4o-mini');
  await screenshots(page, 'overview');
  await expectAccessible(page);
  expect(errors).toEqual([]);
});

test('an expired session goes back to sign-in with a message', async ({ page, context }) => {
  await signIn(page);
  await screenshots(page, 'teams');
  const url = new URL(page.url());
  await context.addCookies([{ name: 'gatehouse_session', value: 'expired-or-forged', domain: url.hostname, path: '/' }]);
  await reload(page);
  await expect(page.getByText('Your session has expired. Sign in again to continue.')).toBeVisible();
  await expect(page.getByLabel('Admin key')).toBeVisible();
  await screenshots(page, 'sign-in-expired');
  await expectAccessible(page);
});

test('the teams table follows spend and blocks made elsewhere, without a reload', async ({ page, request }) => {
  const errors = pageErrors(page);
  const id = `live-${Date.now()}`;
  await admin(request, '/team/new', { team_id: id, team_alias: 'Live Team', max_budget: 1, models: ['gpt-4o-mini'] });
  const { key } = await admin(request, '/key/generate', { team_id: id });
  await signIn(page);
  await open(page, `/?search=${id}`);
  const row = page.getByRole('row', { name: /Live Team/ });
  await expect(row).toContainText('$0.00 / $1.00');
  await expect(row).toContainText('Active');

  const chat = await request.post('/v1/chat/completions', {
    headers: { Authorization: `Bearer ${key}` },
    data: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hello from the browser test' }] },
  });
  expect(chat.status()).toBe(200);
  await expect(row).toContainText('$0.000005 / $1.00');

  // A block made by a script shows, and the row's button now unblocks.
  await admin(request, '/team/block', { team_id: id });
  await expect(row).toContainText('Blocked');
  await row.getByRole('button', { name: 'Unblock Live Team' }).click();
  await expect(page.getByRole('status')).toContainText(`Team ${id} unblocked.`);
  await expect(row).toContainText('Active');
  expect(errors).toEqual([]);
});

test('add a member with a role and a budget in the team, change them, and remove them', async ({ page, request }) => {
  const errors = pageErrors(page);
  const id = `members-${Date.now()}`;
  await admin(request, '/team/new', { team_id: id, team_alias: 'Member Team', max_budget: 10 });
  await signIn(page);
  await open(page, `/teams/${id}`);
  const section = page.getByRole('region', { name: 'Members' });
  await expect(section).toContainText('No members yet');

  const form = page.getByRole('form', { name: 'Add a member' });
  // A bad budget is refused next to its field, and nobody is added.
  await form.getByLabel('User id or e-mail').fill('grace@example.com');
  await form.getByLabel('Budget in team (USD)').fill('-3');
  await form.getByRole('button', { name: 'Add member' }).click();
  await expect(form).toContainText('max_budget');
  await expect(section.getByRole('row')).toHaveCount(0);
  await form.getByLabel('Budget in team (USD)').fill('2.5');
  await form.getByLabel('Role').selectOption('admin');
  await form.getByRole('button', { name: 'Add member' }).click();

  // Added by e-mail: a user is made for her, an admin of the team with her own budget there.
  const row = section.getByRole('row', { name: /grace@example.com/ });
  await expect(row).toBeVisible();
  await expect(row.getByLabel(/^Role of /)).toHaveValue('admin');
  await expect(row.getByLabel(/^Budget in team of /)).toHaveValue('2.5');
  const info = await (await request.get(`/team/info?team_id=${id}`, {
    headers: { Authorization: `Bearer ${process.env.E2E_ADMIN_KEY}` },
  })).json();
  expect(info.members_with_roles).toEqual([
    expect.objectContaining({ user_email: 'grace@example.com', role: 'admin' }),
  ]);
  expect(info.team_memberships[0].max_budget_in_team).toBe(2.5);
  await screenshots(page, 'team-members');
  await expectAccessible(page);

  // Role and budget change in place.
  await row.getByLabel(/^Role of /).selectOption('user');
  await expect(page.getByRole('status')).toContainText('Member updated.');
  await row.getByLabel(/^Budget in team of /).fill('4');
  await row.getByRole('button', { name: /^Save budget of / }).click();
  await expect(async () => {
    const now = await (await request.get(`/team/info?team_id=${id}`, {
      headers: { Authorization: `Bearer ${process.env.E2E_ADMIN_KEY}` },
    })).json();
    expect(now.team_memberships[0]).toEqual(expect.objectContaining({ role: 'user', max_budget_in_team: 4 }));
  }).toPass({ timeout: 5_000 });
  await expect(section.getByRole('row', { name: /grace@example.com/ }).getByLabel(/^Role of /)).toHaveValue('user');

  // Removed after a confirmation.
  await section.getByRole('button', { name: /^Remove member / }).click();
  await page.getByRole('button', { name: 'Yes, remove' }).click();
  await expect(page.getByRole('status')).toContainText('Member removed');
  await expect(section).toContainText('No members yet');
  expect(errors).toEqual([]);
});

test('create an organization and put a team in it', async ({ page, request }) => {
  const errors = pageErrors(page);
  const org = `org-${Date.now()}`;
  const team = `orgteam-${Date.now()}`;
  await admin(request, '/team/new', { team_id: team, team_alias: 'Org Team', max_budget: 5 });
  await signIn(page);
  await page.getByRole('link', { name: 'Organizations' }).click();
  await expect(page.getByRole('heading', { name: 'Organizations', level: 1 })).toBeVisible();

  const form = page.getByRole('form', { name: 'New organization' });
  await form.getByLabel('Organization id').fill(org);
  await form.getByLabel('Name').fill('Acme Org');
  await form.getByLabel('Budget (USD)').fill('3');
  await form.getByRole('button', { name: 'Create organization' }).click();
  await expect(page.getByRole('status')).toContainText(`Organization ${org} created.`);
  const row = page.getByRole('row', { name: /Acme Org/ });
  await expect(row).toContainText('$0.00 / $3.00');
  await expect(row).toContainText('none');

  // The team's budget ($5) is above the organization's ($3): refused next to the field.
  await open(page, `/teams/${team}`);
  await page.getByRole('button', { name: 'Edit team' }).click();
  const edit = page.getByRole('form', { name: 'Edit team' });
  await edit.getByLabel('Organization id').fill(org);
  await edit.getByRole('button', { name: 'Save changes' }).click();
  await expect(edit).toContainText(`organization '${org}'`);
  await edit.getByLabel('Budget (USD)').fill('2');
  await edit.getByRole('button', { name: 'Save changes' }).click();
  await expect(edit).toHaveCount(0);

  await page.getByRole('link', { name: 'Organizations' }).click();
  await expect(page.getByRole('row', { name: /Acme Org/ }).getByRole('link', { name: 'Org Team' })).toBeVisible();
  await screenshots(page, 'organizations');
  await expectAccessible(page);

  // The users page lists who the organization and teams brought in, and makes users.
  await page.getByRole('link', { name: 'Users' }).click();
  const users = page.getByRole('form', { name: 'New user' });
  await users.getByLabel('User id').fill(`ada-${org}`);
  await users.getByLabel('E-mail').fill('not-an-address');
  await users.getByRole('button', { name: 'Create user' }).click();
  await expect(users).toContainText('user_email must be an e-mail address');
  await users.getByLabel('E-mail').fill('ada@example.com');
  await users.getByLabel('Role').selectOption('proxy_admin_viewer');
  await users.getByRole('button', { name: 'Create user' }).click();
  await expect(page.getByRole('status')).toContainText(`User ada-${org} created.`);
  await expect(page.getByRole('row', { name: new RegExp(`ada-${org}`) })).toContainText('proxy_admin_viewer');
  await expectAccessible(page);
  expect(errors).toEqual([]);
});
