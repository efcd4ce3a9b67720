// What the browser scripts of the page tests (admin_page.e2e.mjs,
// member_page.e2e.mjs) share: the environment, checks and log lines,
// headless Chromium (Debian's package) driven by playwright-core with the
// browser console watched, the page's OAuth sign-in and sign-out, and how a
// run ends (exit 0 once every step passed; else the first failure printed,
// with the console errors and a screenshot in RAMPART_ARTIFACTS).
// Environment: RAMPART_BASE_URL, RAMPART_TENANT, RAMPART_PASSWORD,
// RAMPART_NODE_MODULES (where playwright-core is), RAMPART_ARTIFACTS and,
// optionally, RAMPART_SCREENSHOTS (keep screenshots of the main steps there).
import { createRequire } from 'node:module';
import { join } from 'node:path';

export const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
export const base = env('RAMPART_BASE_URL');
export const tenant = env('RAMPART_TENANT');
const password = env('RAMPART_PASSWORD');
const artifacts = process.env.RAMPART_ARTIFACTS || '/tmp';
// Optional: a directory to keep screenshots of the main steps in.
const shots = process.env.RAMPART_SCREENSHOTS;
const require = createRequire(join(env('RAMPART_NODE_MODULES'), 'noop.js'));
const { chromium } = require('playwright-core');

export const log = (...a) => console.log('[e2e]', ...a);
export function check(cond, message) {
  if (!cond) throw new Error(`assertion failed: ${message}`);
}
export async function shot(page, name) {
  if (shots) await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
}

// The page `/t/{tenant}/{name}/` in a fresh headless Chromium: `signIn`
// opens it in a new context and signs in through the tenant's login page,
// `storedToken` is what the page keeps in sessionStorage, `signOut` signs
// out and checks it forgotten, `run` runs the steps and ends the process.
export async function browserPage(name) {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    // Playwright gives every launch a new empty profile directory.
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  const path = `/t/${tenant}/${name}/`;
  let current = null;
  const consoleErrors = [];

  async function signIn(email) {
    // The server's certificate is issued by the test's own throwaway CA.
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await context.newPage();
    page.setDefaultTimeout(20_000);
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(`${m.text()} (${m.location().url || page.url()})`);
    });
    page.on('pageerror', (e) => consoleErrors.push(String(e)));
    current = page;
    await page.goto(`${base}${path}`);
    await page.locator('#signin-button').click();
    // The tenant's own login page (server-rendered by the OAuth routes).
    await page.waitForURL(/\/oauth\/authorize\?/);
    await page.locator('input[name=email]').fill(email);
    await page.locator('input[name=password]').fill(password);
    await page.locator('button[type=submit]').click();
    // Back through the page's callback (code + PKCE exchange) to the page.
    await page.waitForURL((u) => u.pathname === path);
    return page;
  }

  const storedToken = (page) =>
    page.evaluate(([n, t]) => sessionStorage.getItem(`rampart.${n}.${t}.token`), [name, tenant]);

  async function signOut(page) {
    await page.locator('#signout').click();
    await page.locator('#signin').waitFor({ state: 'visible' });
    check((await storedToken(page)) === null, 'token forgotten on sign-out');
  }

  async function run(steps) {
    try {
      await steps();
      check(consoleErrors.length === 0, `no errors in the browser console: ${consoleErrors.join(' | ')}`);
      await browser.close();
      log('all steps passed');
      process.exit(0);
    } catch (e) {
      console.error('[e2e] FAILED:', e && e.stack ? e.stack : e);
      if (consoleErrors.length) console.error('[e2e] browser console errors:', consoleErrors.join(' | '));
      if (current) {
        try {
          const shot = join(artifacts, `${name}-page-failure.png`);
          await current.screenshot({ path: shot, fullPage: true });
          console.error('[e2e] screenshot:', shot, 'url:', current.url());
          console.error('[e2e] page text:', (await current.locator('body').innerText()).slice(0, 4000));
        } catch (_) {
          // the page may be gone
        }
      }
      await browser.close().catch(() => {});
      process.exit(1);
    }
  }

  return { consoleErrors, signIn, signOut, storedToken, run };
}
