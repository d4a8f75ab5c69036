// The public pricing page: from the home page to the price list, then "Start free trial" through
// sign-up straight into that plan's trial, with JavaScript off. The page is checked for what a
// screen reader needs: one main heading, a comparison table with column and row headers, links
// and fields with names.
import { test, expect } from '@playwright/test';
import { PASSWORD, snap, uniqueEmail } from './support';

test.describe('with JavaScript turned off', () => {
  test.use({ javaScriptEnabled: false });

  test('from the pricing page to a started trial of Pro', async ({ page }) => {
    await page.goto('/');
    await page.getByRole('link', { name: 'See plans and pricing' }).click();
    await expect(page).toHaveURL(/\/pricing$/);
    await expect(page.getByRole('heading', { level: 1, name: 'Plans and pricing' })).toBeVisible();
    await expect(page.getByText('Every paid plan starts with a 7-day free trial, without a card.')).toBeVisible();

    // Accessibility: a single h1, a card heading per plan, a table with headers both ways.
    await expect(page.getByRole('heading', { level: 1 })).toHaveCount(1);
    for (const plan of ['Free', 'Starter', 'Pro', 'Max']) {
      await expect(page.getByRole('heading', { level: 2, name: plan, exact: true })).toBeVisible();
      await expect(page.getByRole('columnheader', { name: plan, exact: true })).toBeVisible();
    }
    const table = page.getByRole('table', { name: 'Limits and features of each plan' });
    await expect(table).toBeVisible();
    const small = table.getByRole('row', { name: /Small actions included per period/ });
    await expect(small.getByRole('rowheader')).toHaveText('Small actions included per period');
    await expect(small.getByRole('cell')).toHaveText(['10', '250', '2500', '12500']);
    await expect(table.getByRole('row', { name: /Free trial/ }).getByRole('cell')).toHaveText([
      /Not included/,
      '7 days',
      '7 days',
      '7 days',
    ]);
    const pro = page.locator('article[data-plan="pro"]');
    await expect(pro.getByText('$99.00')).toBeVisible();
    await expect(pro.getByText('per month')).toBeVisible();
    // Each trial link names its plan for someone who hears only the link.
    for (const plan of ['Starter', 'Pro', 'Max']) {
      await expect(page.getByRole('link', { name: `Start a free 7-day trial of ${plan}` })).toBeVisible();
    }
    await snap(page, '31-pricing-no-js');

    await page.getByRole('link', { name: 'Start a free 7-day trial of Pro' }).click();
    await expect(page).toHaveURL(/\/signup\?plan=pro$/);
    await expect(page.getByText('Your 7-day free trial of Pro starts as soon as your account is created.')).toBeVisible();
    const org = `Pricing ${Date.now()}`;
    await page.getByLabel('Email').fill(uniqueEmail('pricing'));
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByLabel('Organization name').fill(org);
    await page.getByRole('button', { name: 'Sign up' }).click();

    await expect(page).toHaveURL(/\/orgs\/[a-z0-9-]+\/billing$/);
    await expect(page.getByRole('status')).toContainText(`Welcome! Your 7-day trial of Pro has started for ${org}.`);
    await expect(page.getByRole('heading', { name: 'Pro plan' })).toBeVisible();
    await expect(page.getByText(/Trial: (6 days 23 hours|7 days) left\./)).toBeVisible();
    await snap(page, '32-pricing-trial-started-no-js');
  });

  test('a plan the catalog does not offer for a trial is not carried into sign-up', async ({ page }) => {
    await page.goto('/signup?plan=free');
    await expect(page.getByRole('heading', { name: 'Create your account' })).toBeVisible();
    await expect(page.getByText(/free trial of/)).toHaveCount(0);
    await expect(page.locator('input[type="hidden"][name="plan"]')).toHaveValue('');
  });
});
