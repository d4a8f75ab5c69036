// Helpers shared by the browser tests.
import { Page, expect } from '@playwright/test';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as os from 'node:os';

export const PASSWORD = 'correct horse battery';

/** A unique email per test run, so runs never collide. */
export function uniqueEmail(name: string): string {
  return `${name}-${Date.now()}-${Math.floor(Math.random() * 1e6)}@example.com`;
}

/** Saves a full-page screenshot under end2end/screenshots/ (git-ignored). */
export async function snap(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(__dirname, '..', 'screenshots', `${name}.png`), fullPage: true });
}

/** The demo logins the server wrote when it seeded its fresh database. */
export function demoLogin(who: 'owner' | 'admin'): { email: string; password: string } {
  const dataDir = process.env.E2E_DATA_DIR ?? path.join(os.tmpdir(), 'billing-portal-e2e');
  const lines = fs.readFileSync(path.join(dataDir, 'demo-logins.txt'), 'utf8').split('\n');
  const line = lines.find((l) => l.includes(`${who}@demo.example.com`));
  if (!line) throw new Error(`no ${who} line in demo-logins.txt`);
  const [email, password] = line.split(':').slice(1).join(':').trim().split(' / ');
  return { email, password };
}

export async function signUp(page: Page, email: string, org: string): Promise<void> {
  await page.goto('/signup');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByLabel('Organization name').fill(org);
  await page.getByRole('button', { name: 'Sign up' }).click();
  await expect(page.getByRole('heading', { level: 1, name: org })).toBeVisible();
}

export async function logIn(page: Page, email: string, password: string): Promise<void> {
  await page.goto('/login');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
}

/** Fills the emulator's hosted Checkout with a test card and submits it ("Subscribe" or "Pay"). */
export async function payWith(page: Page, card: string, button = 'Subscribe'): Promise<void> {
  await page.getByLabel('Card number').fill(card);
  await page.getByLabel('Expiry (MM / YY)').fill('12 / 34');
  await page.getByLabel('CVC').fill('123');
  await page.getByRole('button', { name: button }).click();
}
