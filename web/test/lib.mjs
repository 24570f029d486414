// lib.mjs: what the browser tests (browser.mjs, catalog.mjs) share: the
// control plane's URL and the screenshot directory from the environment,
// Chromium launched headless as Debian ships it, polling the page, and
// signing in through the forms.
//
// Environment: FILLCAST_URL (the control plane), FILLCAST_OUT (where the
// screenshots go; default test-output), CHROMIUM (default
// /usr/bin/chromium).

import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';

export const base = process.env.FILLCAST_URL;
export const out = process.env.FILLCAST_OUT || 'test-output';
mkdirSync(out, { recursive: true });

// check throws msg unless ok.
export function check(ok, msg) {
  if (!ok) throw new Error(msg);
}

// launch starts headless Chromium: no sandbox (a container's root), no
// GPU, nothing fetched in the background, and video that may autoplay.
export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run',
      '--autoplay-policy=no-user-gesture-required'],
  });
}

// until polls fn (run in the page) until it returns a truthy value.
export async function until(page, what, fn, arg, timeout = 30000) {
  try {
    return await (await page.waitForFunction(fn, arg, { timeout, polling: 200 })).jsonValue();
  } catch (err) {
    const state = await page.evaluate(() => ({ player: window.fillcastPlayer, t: document.querySelector('video')?.currentTime, err: document.querySelector('.error')?.textContent }));
    throw new Error(`${what}: not within ${timeout / 1000}s (${JSON.stringify(state)})`);
  }
}

// watch reports the errors a page throws.
export function watch(page, errors) {
  page.on('pageerror', (err) => { errors.push(err.message); console.log(`page error: ${err.message}`); });
  page.on('console', (m) => { if (m.type() === 'error') console.log(`console: ${m.text()}`); });
}

// signIn signs in through the form and waits for the profile picker.
export async function signIn(page, email, password) {
  await page.goto(`${base}/#/signin`);
  await page.fill('#signin input[name=email]', email);
  await page.fill('#signin input[name=password]', password);
  await page.click('#signin button[type=submit]');
  await page.waitForSelector('#profiles .profile');
}

// pickProfile picks the kids profile or the grown-up one in the picker
// and waits for the catalog; it returns the ids of the titles listed.
export async function pickProfile(page, kids) {
  await page.click(`#profiles .profile[data-kids="${kids ? 'yes' : 'no'}"]`);
  return until(page, `the catalog of the ${kids ? 'kids' : 'grown-up'} profile`, (k) => {
    const cards = [...document.querySelectorAll('#catalog .card')].map((c) => c.dataset.title);
    const badge = Boolean(document.querySelector('#current-profile .badge.kids'));
    return cards.length && badge === k ? cards : null;
  }, kids);
}

// useKey enters key in the operator page's key prompt.
export async function useKey(page, key) {
  await page.fill('#key-form input[name=key]', key);
  await page.click('#key-form button[type=submit]');
}
