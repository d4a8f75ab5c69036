// The operators' metrics page with JavaScript turned off: a platform admin picks a range with the
// plain form, every chart is named for what it shows, every table has a figure for each day, the
// definitions are written out, and each table downloads as CSV.
import { test, expect } from '@playwright/test';
import { demoLogin, logIn, signUp, snap, uniqueEmail } from './support';

test.describe('with JavaScript turned off', () => {
  test.use({ javaScriptEnabled: false });

  test('the metrics page shows named charts with their figures', async ({ page }) => {
    // Something happens today: a trial starts (so Trials shows it).
    await signUp(page, uniqueEmail('metrics'), `Metrics ${Date.now()}`);
    await page.getByRole('link', { name: 'Plans' }).click();
    await page.getByRole('button', { name: 'Start 7-day trial' }).first().click();
    await expect(page.getByRole('status')).toContainText('trial');
    await page.goto('/login');
    await page.context().clearCookies();

    const admin = demoLogin('admin');
    await logIn(page, admin.email, admin.password);
    await page.goto('/admin');
    await page.getByRole('link', { name: 'Metrics', exact: true }).click();
    await expect(page.getByRole('heading', { level: 1, name: 'Metrics' })).toBeVisible();

    // Every chart is an image named for its metric and days.
    const charts = page.getByRole('img', { name: /per day, \d{4}-\d{2}-\d{2} to \d{4}-\d{2}-\d{2}/ });
    expect(await charts.count()).toBeGreaterThanOrEqual(9);
    for (const name of [/^MRR and ARR \(USD\): MRR per day/, /^MRR movement \(USD\)/, /^Active subscriptions per plan/,
      /^Trials: Started, Converted, Expired/, /^Logo and revenue churn/, /^Checkout sessions/,
      /^Credit packs sold and credits consumed/, /^Net revenue after refunds \(USD\)/, /^Webhook health/]) {
      await expect(page.getByRole('img', { name })).toBeVisible();
    }
    // Beside each chart a table with a row per day (30) and a figure in every cell.
    const trials = page.getByRole('table', { name: /^Trials per day/ });
    await expect(trials.getByRole('row')).toHaveCount(31);
    const today = trials.getByRole('row').nth(1);
    await expect(today.getByRole('cell').first()).toHaveText(/^[1-9]\d*$/);
    const mrr = page.getByRole('table', { name: /^MRR and ARR \(USD\) per day/ });
    await expect(mrr.getByRole('row').nth(1).getByRole('cell').first()).toHaveText(/^\$\d+\.\d\d$/);
    await expect(page.getByRole('heading', { name: 'Definitions' })).toBeVisible();
    await expect(page.getByText('MRR × 12.')).toBeVisible();
    await snap(page, '30-admin-metrics');

    // The range form is a plain GET.
    await page.getByLabel('Range').selectOption('90');
    await page.getByRole('button', { name: 'Show' }).click();
    await expect(page).toHaveURL(/\/admin\/metrics\?days=90$/);
    await expect(page.getByRole('table', { name: /^Trials per day/ }).getByRole('row')).toHaveCount(91);

    // Each table downloads as CSV.
    const download = page.waitForEvent('download');
    await page.getByRole('link', { name: 'Download Trials as CSV' }).click();
    const file = await download;
    expect(file.suggestedFilename()).toMatch(/^metrics-trials-\d{4}-\d{2}-\d{2}-to-\d{4}-\d{2}-\d{2}\.csv$/);
  });
});
