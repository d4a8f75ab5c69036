// Attacks that need a real browser to show: Chromium reads `/\t/evil.example/` as another
// origin, follows a redirect there, and would draw the portal inside another site's frame;
// invitations are accepted by the invited person, through the pages, without JavaScript too.
import { test, expect } from '@playwright/test';
import { PASSWORD, logIn, signUp, snap, uniqueEmail } from './support';

test('a hostile next after log-in never leaves the portal', async ({ page, baseURL }) => {
  const email = uniqueEmail('next');
  await signUp(page, email, 'Next Checks');
  await page.getByRole('button', { name: 'Log out' }).click();
  for (const next of ['/%09/evil.example/', '//evil.example/', '/\\evil.example/', 'https://evil.example/']) {
    await page.goto(`/login?next=${encodeURIComponent(next).replace(/%25/g, '%')}`);
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.waitForLoadState();
    expect(new URL(page.url()).origin, `after next=${next}`).toBe(new URL(baseURL!).origin);
    await expect(page.getByRole('heading', { level: 1, name: 'Next Checks' })).toBeVisible();
    await page.getByRole('button', { name: 'Log out' }).click();
  }
});

test('another site cannot frame the portal', async ({ page, baseURL }) => {
  // A page of another origin (about:blank with this markup) frames the log-in page, and, as a
  // control that the check can see a rendered form, a framed page that allows it.
  const control = 'data:text/html,<form><input name="email"></form>';
  await page.route('http://evil.example/', (route) =>
    route.fulfill({
      contentType: 'text/html',
      body: `<h1>evil</h1><iframe src="${baseURL}/login"></iframe><iframe src='${control}'></iframe>`,
    }),
  );
  await page.goto('http://evil.example/');
  await page.waitForTimeout(1500);
  const emailFields = async (url: RegExp) => {
    const frame = page.frames().find((f) => url.test(f.url()));
    return frame ? frame.locator('input[name="email"]').count().catch(() => 0) : 0;
  };
  expect(await emailFields(/^data:/)).toBe(1);
  // Chromium refuses to render the portal there (frame-ancestors 'none', X-Frame-Options).
  expect(await emailFields(/\/login/)).toBe(0);
});

test.describe('with JavaScript turned off', () => {
  test.use({ javaScriptEnabled: false });

  test('an invited person signs up through the link and joins on accepting', async ({ page, browser }) => {
    const owner = uniqueEmail('inviter');
    await signUp(page, owner, 'Inviting Team');
    const invited = uniqueEmail('invitee');
    await page.getByLabel('Email').last().fill(invited);
    await page.getByRole('button', { name: 'Send invitation' }).click();
    await expect(page.getByText('an invitation was sent')).toBeVisible();
    // Shown once, to pass on (there is no mailer yet).
    const link = await page
      .getByRole('region', { name: `Invitation link for ${invited}` })
      .locator('code')
      .textContent();
    expect(link).toContain('/invitations/');
    await snap(page, '26-invitation-sent-no-js');

    const other = await browser.newContext({ javaScriptEnabled: false });
    const guest = await other.newPage();
    await guest.goto(link!.trim());
    await expect(guest.getByRole('heading', { level: 1 })).toContainText('Inviting Team');
    await guest.getByRole('main').getByRole('link', { name: 'Sign up' }).click();
    await guest.getByLabel('Email').fill(invited);
    await guest.getByLabel('Password').fill(PASSWORD);
    await guest.getByLabel('Organization name').fill('Invitee Own');
    await guest.getByRole('button', { name: 'Sign up' }).click();
    await expect(guest).toHaveURL(/\/invitations\//);
    await snap(guest, '27-invitation-accept-no-js');
    await guest.getByRole('button', { name: /accept/i }).click();
    await expect(guest.getByRole('heading', { level: 1, name: 'Inviting Team' })).toBeVisible();
    await other.close();

    await page.reload();
    await expect(page.getByRole('cell', { name: invited })).toBeVisible();
  });
});
