// Notifications in the demo: without SMTP_URL every message lands in the portal's mail catcher,
// which platform admins read at /admin/mail (the HTML in a sandboxed frame, the text, the headers).
import { test, expect } from '@playwright/test';
import { demoLogin, logIn, signUp, snap, uniqueEmail } from './support';

test.describe('with JavaScript turned off', () => {
  test.use({ javaScriptEnabled: false });

  test('a trial started by a customer is read in the mail catcher by an admin', async ({ browser }) => {
    const customer = await browser.newPage({ javaScriptEnabled: false });
    const email = uniqueEmail('mail');
    const org = `Mail ${Date.now()}`;
    await signUp(customer, email, org);
    await customer.getByRole('link', { name: 'Plans' }).click();
    await customer.getByRole('button', { name: 'Start 7-day trial' }).nth(1).click();
    await expect(customer.getByRole('status')).toContainText('Your 7-day trial of Pro has started.');

    const admin = await browser.newPage({ javaScriptEnabled: false });
    const login = demoLogin('admin');
    await logIn(admin, login.email, login.password);
    const subject = `Your Pro trial for ${org} has started`;
    // The sender works off the request path: poll the catcher until the message is there.
    await expect(async () => {
      await admin.goto('/admin/mail');
      await expect(admin.getByRole('link', { name: subject })).toBeVisible({ timeout: 1_000 });
    }).toPass({ timeout: 20_000 });
    await snap(admin, '40-mail-catcher');
    await admin.getByRole('link', { name: subject }).click();
    await expect(admin.getByRole('heading', { level: 1, name: subject })).toBeVisible();
    await expect(admin.getByTestId('mail-text')).toContainText('Your 7-day trial of the Pro plan');
    await expect(admin.getByTitle("The message's HTML part")).toHaveAttribute('sandbox', '');
    await expect(admin.getByText('List-Unsubscribe-Post: List-Unsubscribe=One-Click')).toBeVisible();
    await snap(admin, '41-mail-message');
  });
});
