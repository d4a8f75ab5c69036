// Usage and credits: an API key made in the browser records actions through the JSON API; the
// organization's page shows a bar per tier and the 80% warning; the usage history draws them per
// day; the credits page buys packs through the emulator's hosted Checkout (payment mode).
import { test, expect, Page, APIRequestContext } from '@playwright/test';
import { demoLogin, logIn, signUp, payWith, snap, uniqueEmail } from './support';

type Tier = 'small' | 'medium' | 'large' | 'xl';

/** Signs up a fresh owner with a fresh organization; answers the organization's slug. */
async function newOrg(page: Page, label: string): Promise<string> {
  await signUp(page, uniqueEmail(label), `${label} ${Date.now()}`);
  const match = new URL(page.url()).pathname.match(/^\/orgs\/([^/]+)$/);
  if (!match) throw new Error(`sign-up landed on ${page.url()}, not an organization page`);
  return match[1];
}

/** Creates an API key on the keys page and answers its secret (shown only once). */
async function createApiKey(page: Page, slug: string, name: string): Promise<string> {
  await page.goto(`/orgs/${slug}/api-keys`);
  await expect(page.getByRole('heading', { level: 1, name: 'API keys' })).toBeVisible();
  await page.getByLabel('Name').fill(name);
  await page.getByRole('button', { name: 'Create key' }).click();
  const secret = page.getByTestId('new-api-key');
  await expect(secret).toHaveText(/^bpk_\S+$/);
  return (await secret.textContent())!.trim();
}

/** A unique idempotency key, so runs never collide. */
function idem(tag: string): string {
  return `${tag}-${Date.now()}-${Math.floor(Math.random() * 1e9)}`;
}

/** Records `count` actions of each given tier in one batch; every one must be allowed. */
async function recordBatch(
  request: APIRequestContext,
  key: string,
  counts: Partial<Record<Tier, number>>,
): Promise<{ occurred_at: string }[]> {
  const actions = Object.entries(counts).flatMap(([tier, n]) =>
    Array.from({ length: n ?? 0 }, (_, i) => ({ tier, idempotency_key: idem(`${tier}-${i}`) })),
  );
  const response = await request.post('/api/v1/usage/batch', {
    headers: { Authorization: `Bearer ${key}` },
    data: { actions },
  });
  expect(response.status(), await response.text()).toBe(200);
  const body = await response.json();
  expect(body.results).toHaveLength(actions.length);
  for (const result of body.results) {
    expect(result, JSON.stringify(result)).toMatchObject({ status: 200, allowed: true, counted_as: 'included' });
  }
  return body.results;
}

/** Records one action through the single-action endpoint. */
async function recordOne(request: APIRequestContext, key: string, tier: Tier): Promise<void> {
  const response = await request.post('/api/v1/usage', {
    headers: { Authorization: `Bearer ${key}` },
    data: { tier, idempotency_key: idem(tier) },
  });
  expect(response.status(), await response.text()).toBe(200);
  expect(await response.json()).toMatchObject({ allowed: true, tier });
}

test.describe('with JavaScript turned off', () => {
  test.use({ javaScriptEnabled: false });

  test('the dashboard shows a bar per tier and warns at 80%', async ({ page, request }) => {
    const slug = await newOrg(page, 'meter');
    const key = await createApiKey(page, slug, 'Dashboard test');
    await snap(page, '21-api-key-created');

    // 7 small and 1 medium in a batch, then the 8th small on its own: 80% of 10.
    await recordBatch(request, key, { small: 7, medium: 1 });
    await recordOne(request, key, 'small');

    const entitlements = await request.get('/api/v1/entitlements', {
      headers: { Authorization: `Bearer ${key}` },
    });
    expect(entitlements.status(), await entitlements.text()).toBe(200);

    await page.goto(`/orgs/${slug}`);
    await expect(page.getByRole('heading', { name: 'Usage this period' })).toBeVisible();
    const small = page.getByRole('progressbar', { name: 'Small actions used this period' });
    await expect(small).toHaveAttribute('aria-valuenow', '8');
    await expect(small).toHaveAttribute('aria-valuemax', '10');
    await expect(page.getByText('8 of 10 included used', { exact: true })).toBeVisible();
    const medium = page.getByRole('progressbar', { name: 'Medium actions used this period' });
    await expect(medium).toHaveAttribute('aria-valuenow', '1');
    await expect(medium).toHaveAttribute('aria-valuemax', '4');
    await expect(page.getByRole('progressbar', { name: 'XL actions used this period' })).toHaveAttribute(
      'aria-valuenow',
      '0',
    );

    const warning = page.getByTestId('usage-warning');
    await expect(warning).toHaveAttribute('role', 'status');
    await expect(warning).toContainText('8 of 10 included Small actions are used this period.');
    await expect(warning).not.toContainText('Medium');
    await expect(page.getByTestId('overage-banner')).toHaveCount(0);
    await expect(page.getByTestId('credit-balance')).toContainText('Credit balance: 0 credits');

    // The 80% message is stored as the 8th small action is recorded; reload until it is listed.
    await expect(async () => {
      await page.reload();
      const messages = page.getByRole('region', { name: 'Messages' });
      await expect(messages).toContainText('You have used 80% of the 10 Small actions', { timeout: 1000 });
    }).toPass({ timeout: 15_000 });
    await snap(page, '22-usage-dashboard-no-js');
  });
});

test('buying two credit packs through Checkout with 4242', async ({ page, browser }) => {
  const slug = await newOrg(page, 'credits');
  await page.goto(`/orgs/${slug}/credits`);
  await expect(page.getByRole('heading', { level: 1, name: 'Credits' })).toBeVisible();
  await expect(page.getByTestId('credits-page-balance')).toHaveText('0 credits');
  await expect(page.getByText('No credit movements yet.')).toBeVisible();

  await page.getByLabel('Packs').fill('2');
  await page.getByRole('button', { name: 'Buy with Stripe Checkout' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Pay' })).toBeVisible();
  await expect(page.getByRole('cell', { name: '2 × 500 credits' })).toBeVisible();
  await expect(page.getByRole('cell', { name: '$40.00' }).first()).toBeVisible();
  await snap(page, '23-credits-checkout');

  await payWith(page, '4242 4242 4242 4242', 'Pay');
  await expect(page).toHaveURL(new RegExp(`/orgs/${slug}/credits$`));
  await expect(page.getByRole('status')).toContainText('Thank you! Your credits have been added.');
  await expect(page.getByTestId('credits-page-balance')).toHaveText('1000 credits');
  const purchase = page.getByRole('row').filter({ has: page.getByRole('cell', { name: 'Purchase', exact: true }) });
  await expect(purchase).toHaveCount(1);
  await expect(purchase).toContainText('+1000');
  await snap(page, '24-credits-bought');

  // The same payment also arrives by webhook: once the admin sees it applied to this
  // organization, the balance must still count the two packs once.
  const adminContext = await browser.newContext({ baseURL: test.info().project.use.baseURL });
  try {
    const admin = await adminContext.newPage();
    const login = demoLogin('admin');
    await logIn(admin, login.email, login.password);
    await expect(async () => {
      await admin.goto(`/admin/orgs/${slug}`);
      const event = admin
        .getByRole('row')
        .filter({ has: admin.getByRole('link', { name: 'checkout.session.completed' }) });
      await expect(event.getByRole('cell', { name: 'applied', exact: true })).toBeVisible({ timeout: 1000 });
    }).toPass({ timeout: 15_000 });
    await expect(admin.getByTestId('admin-balance')).toHaveText('Balance: 1000 credits');
  } finally {
    await adminContext.close();
  }
  await page.reload();
  await expect(page.getByTestId('credits-page-balance')).toHaveText('1000 credits');
  await expect(purchase).toHaveCount(1);
  await page.goto(`/orgs/${slug}`);
  await expect(page.getByTestId('credit-balance')).toContainText('Credit balance: 1000 credits');
});

test('the usage history charts actions per day', async ({ page, request }) => {
  const slug = await newOrg(page, 'history');
  const key = await createApiKey(page, slug, 'Chart test');
  const results = await recordBatch(request, key, { small: 5, medium: 3, large: 2, xl: 1 });
  // The day the server counted them in (UTC), so a run across midnight still finds its row.
  const day = results[0].occurred_at.slice(0, 10);

  await page.goto(`/orgs/${slug}`);
  await page.getByRole('link', { name: 'Usage history' }).click();
  await expect(page).toHaveURL(new RegExp(`/orgs/${slug}/usage$`));
  await expect(page.getByRole('heading', { level: 1, name: 'Usage history' })).toBeVisible();
  await expect(page.locator('svg[role="img"]')).toBeVisible();

  const table = page.getByRole('table', { name: 'Actions per day' });
  await expect(table).toBeVisible();
  const row = table.getByRole('row', { name: new RegExp(`^${day}\\b`) });
  await expect(row).toHaveCount(1);
  await expect(row.getByRole('rowheader')).toHaveText(day);
  await expect(row.getByRole('cell')).toHaveText(['5', '3', '2', '1']);
  // Only days with actions are listed: just this one.
  await expect(table.locator('tbody tr')).toHaveCount(1);
  await snap(page, '25-usage-history');
});
