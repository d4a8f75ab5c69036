// Billing journeys: a trial, upgrading through the hosted Checkout (declined, then 4242), the
// cancel page, the invoice list, and the admin pages. Stripe is the offline emulator the portal starts on its own port.
import { test, expect, Page } from '@playwright/test';
import { demoLogin, logIn, signUp, payWith, snap, uniqueEmail } from './support';

async function newOrg(page: Page, label: string): Promise<void> {
  await signUp(page, uniqueEmail(label), `${label} ${Date.now()}`);
  await page.getByRole('link', { name: 'Plans' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Plans' })).toBeVisible();
}

test.describe('with JavaScript turned off', () => {
  test.use({ javaScriptEnabled: false });

  test('start a 7-day trial without a card', async ({ page }) => {
    await newOrg(page, 'trial');
    await snap(page, '11-plans');
    await page.getByRole('button', { name: 'Start 7-day trial' }).nth(1).click();
    await expect(page.getByRole('status')).toContainText('Your 7-day trial of Pro has started.');
    await expect(page.getByText(/Trial: (6 days 23 hours|7 days) left\./)).toBeVisible();
    await expect(page.getByRole('heading', { name: 'Pro plan' })).toBeVisible();
    await snap(page, '12-trial-billing');
  });
});

test('upgrade through Checkout: a declined card, then 4242, then the invoice', async ({ page }) => {
  await newOrg(page, 'upgrade');
  await page.getByRole('button', { name: 'Upgrade to Starter' }).click();
  await expect(page.getByRole('heading', { name: 'Subscribe' })).toBeVisible();
  await snap(page, '13-hosted-checkout');

  await payWith(page, '4000 0000 0000 0002');
  await expect(page.getByRole('alert')).toContainText('Your card was declined.');
  await snap(page, '14-checkout-declined');

  await payWith(page, '4242 4242 4242 4242');
  await expect(page.getByRole('status')).toContainText('is now on the Starter plan.');
  await expect(page.getByRole('heading', { name: 'Starter plan' })).toBeVisible();
  // The invoice arrives by webhook; reload until it is listed.
  await expect(async () => {
    await page.reload();
    await expect(page.getByRole('link', { name: 'PDF' })).toBeVisible({ timeout: 1000 });
  }).toPass({ timeout: 15_000 });
  await expect(page.getByRole('cell', { name: '$9.99' })).toBeVisible();
  await snap(page, '15-billing-with-invoice');
});

test('going back from Checkout charges nothing', async ({ page }) => {
  await newOrg(page, 'cancel');
  await page.getByRole('button', { name: 'Upgrade to Pro' }).click();
  await page.getByRole('link', { name: '← Back (cancel)' }).click();
  await expect(page.getByRole('heading', { name: 'Checkout canceled' })).toBeVisible();
  await expect(page.getByText('Nothing was charged.')).toBeVisible();
  await snap(page, '16-checkout-canceled');
});

test('the admin pages show organizations, their billing and the webhook log', async ({ page }) => {
  const admin = demoLogin('admin');
  await logIn(page, admin.email, admin.password);
  await page.goto('/admin');
  await page.getByLabel('Search by name or email').fill('Demo');
  await page.getByRole('button', { name: 'Search' }).click();
  await page.getByRole('link', { name: 'Demo Company' }).click();
  await expect(page.getByRole('heading', { name: 'Subscription' })).toBeVisible();
  await snap(page, '17-admin-org-billing');
  await page.goto('/admin/webhooks');
  await expect(page.getByRole('heading', { name: 'Webhook events' })).toBeVisible();
  await page.getByRole('cell').getByRole('link').first().click();
  await expect(page.getByRole('heading', { name: 'Payload' })).toBeVisible();
  await snap(page, '18-admin-webhook-event');
});
