// The first journeys: sign up, log out, log in, the organization page, the admin page.
import { test, expect } from '@playwright/test';
import { PASSWORD, demoLogin, logIn, signUp, snap, uniqueEmail } from './support';

test('sign up, log out and log in again', async ({ page }) => {
  const email = uniqueEmail('ada');
  await page.goto('/');
  await snap(page, '01-landing');
  await page.getByRole('link', { name: 'Create an account' }).click();
  await expect(page.getByRole('heading', { name: 'Create your account' })).toBeVisible();
  await snap(page, '02-signup');

  await signUp(page, email, 'Analytical Engines');
  await expect(page.getByRole('status')).toContainText('Welcome! Analytical Engines is ready.');
  await expect(page.getByRole('cell', { name: email })).toBeVisible();
  await snap(page, '03-org-page');

  await page.getByRole('button', { name: 'Log out' }).click();
  await expect(page).toHaveURL(/\/login$/);
  await expect(page.getByRole('status')).toContainText('You have been logged out.');
  await snap(page, '04-logged-out');

  await logIn(page, email, 'not the password');
  await expect(page.getByRole('alert')).toContainText('The email or password is incorrect.');
  await snap(page, '05-wrong-password');

  await logIn(page, email, PASSWORD);
  await expect(page).toHaveURL(/\/orgs\/analytical-engines/);
  await expect(page.getByRole('heading', { level: 1, name: 'Analytical Engines' })).toBeVisible();
});

test.describe('with JavaScript turned off', () => {
  test.use({ javaScriptEnabled: false });

  test('sign up, see validation, create a second organization and switch', async ({ page }) => {
    const email = uniqueEmail('grace');
    await page.goto('/signup');
    await page.getByLabel('Email').fill('not-an-email');
    await page.getByLabel('Password').fill('short');
    await page.getByLabel('Organization name').fill('Compilers');
    await page.getByRole('button', { name: 'Sign up' }).click();
    await expect(page.getByText('is not a valid email address.')).toBeVisible();
    await expect(page.getByText('Choose a password of at least 10 characters.')).toBeVisible();
    await expect(page.getByLabel('Organization name')).toHaveValue('Compilers');
    // Post/Redirect/Get: what was typed comes back (never the password), and the address is the
    // clean form page, with nothing of the error in it.
    await expect(page.getByLabel('Email')).toHaveValue('not-an-email');
    await expect(page.getByLabel('Password')).toHaveValue('');
    expect(new URL(page.url()).pathname).toBe('/signup');
    expect(new URL(page.url()).search).toBe('');
    await snap(page, '06-signup-errors-no-js');
    // A reload is a clean form: the messages were shown once.
    await page.reload();
    await expect(page.getByText('is not a valid email address.')).toHaveCount(0);

    await signUp(page, email, 'Compilers');
    await page.goto('/orgs/new');
    await page.getByLabel('Organization name').fill('Second Team');
    await page.getByRole('button', { name: 'Create organization' }).click();
    await expect(page.getByRole('heading', { level: 1, name: 'Second Team' })).toBeVisible();

    // The switcher is a <details> element: it opens without JavaScript.
    await page.locator('.org-switcher summary').click();
    await snap(page, '07-org-switcher-no-js');
    await page.getByRole('link', { name: 'Compilers' }).click();
    await expect(page.getByRole('heading', { level: 1, name: 'Compilers' })).toBeVisible();

    await page.getByRole('button', { name: 'Log out' }).click();
    await logIn(page, email, PASSWORD);
    await expect(page.getByRole('heading', { level: 1, name: 'Compilers' })).toBeVisible();
    await snap(page, '08-logged-in-no-js');
  });
});

test('the seeded platform admin sees every organization', async ({ page }) => {
  const admin = demoLogin('admin');
  await logIn(page, admin.email, admin.password);
  await page.getByRole('link', { name: 'Admin' }).click();
  await expect(page.getByRole('heading', { name: 'Organizations' })).toBeVisible();
  await expect(page.getByRole('cell', { name: 'Demo Company' })).toBeVisible();
  await snap(page, '09-admin');
});

test('a customer is refused the admin page', async ({ page }) => {
  const owner = demoLogin('owner');
  await logIn(page, owner.email, owner.password);
  await expect(page.getByRole('heading', { level: 1, name: 'Demo Company' })).toBeVisible();
  const response = await page.goto('/admin');
  expect(response?.status()).toBe(403);
  await expect(page.getByText('You do not have access to this page.')).toBeVisible();
  await snap(page, '10-admin-refused');
});
