// End-to-end test of the member page in headless Chromium (Debian's package)
// driven by playwright-core. Started by server/tests/member_page.rs, which
// runs the server (demo members seeded) and passes through the environment:
//   RAMPART_BASE_URL, RAMPART_TENANT, RAMPART_MEMBER_EMAIL (a member with
//   RAMPART_DAYS snapshots), RAMPART_NEWCOMER_EMAIL (a member without any),
//   RAMPART_MEMBERS (leaderboard size), RAMPART_PASSWORD,
//   RAMPART_NODE_MODULES, RAMPART_ARTIFACTS (failure screenshot).
// Exit code 0: every step passed; anything else: the first failure, printed.
import { createRequire } from 'node:module';
import { join } from 'node:path';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const base = env('RAMPART_BASE_URL');
const tenant = env('RAMPART_TENANT');
const memberEmail = env('RAMPART_MEMBER_EMAIL');
const newcomerEmail = env('RAMPART_NEWCOMER_EMAIL');
const password = env('RAMPART_PASSWORD');
const days = Number(env('RAMPART_DAYS'));
const members = Number(env('RAMPART_MEMBERS'));
const artifacts = process.env.RAMPART_ARTIFACTS || '/tmp';
const require = createRequire(join(env('RAMPART_NODE_MODULES'), 'noop.js'));
const { chromium } = require('playwright-core');

const pageUrl = `${base}/t/${tenant}/member/`;
const log = (...a) => console.log('[e2e]', ...a);
function check(cond, message) {
  if (!cond) throw new Error(`assertion failed: ${message}`);
}

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
let current = null;
const consoleErrors = [];

async function signIn(email) {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(`${m.text()} (${m.location().url || page.url()})`);
  });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  current = page;
  await page.goto(pageUrl);
  await page.locator('#signin-button').click();
  await page.waitForURL(/\/oauth\/authorize\?/);
  await page.locator('input[name=email]').fill(email);
  await page.locator('input[name=password]').fill(password);
  await page.locator('button[type=submit]').click();
  await page.waitForURL((u) => u.pathname === `/t/${tenant}/member/`);
  return page;
}

try {
  // ---- a member without snapshots is told so
  {
    const page = await signIn(newcomerEmail);
    await page.locator('#refused').waitFor({ state: 'visible' });
    const text = await page.locator('#refused').innerText();
    check(text.includes('No snapshots yet') && text.includes(newcomerEmail), `newcomer told: ${text}`);
    await page.context().close();
    log('newcomer without snapshots told');
  }

  // ---- a seeded member: chart, P&L table, leaderboard
  const page = await signIn(memberEmail);
  await page.locator('#console').waitFor({ state: 'visible' });
  check((await page.locator('#who').innerText()) === memberEmail, 'signed-in e-mail shown');
  await page.locator('#member-chart[data-loaded=yes]').waitFor({ state: 'visible' });
  const size = await page.$eval('#member-chart', (img) => [img.naturalWidth, img.naturalHeight]);
  check(size[0] > 100 && size[1] > 100, `the equity chart is drawn: ${size}`);
  const rows = await page.$$eval('#pnl-table tbody tr', (trs) => trs.map((tr) => ({
    date: tr.dataset.date, cells: [...tr.children].map((td) => td.textContent),
  })));
  check(rows.length === days, `${days} P&L rows: ${rows.length}`);
  check(rows[0].date > rows[rows.length - 1].date, 'newest first');
  check(rows.every((r) => r.cells.length === 6 && /\d/.test(r.cells[5])), 'every row has its total P&L');
  await page.locator(`#board-table tbody tr >> nth=${members - 1}`).waitFor({ state: 'attached' });
  let board = await page.$$eval('#board-table tbody tr', (trs) => trs.map((tr) => tr.children[1].textContent));
  check(board.length === members, `leaderboard of ${members}: ${board.length}`);
  check(board.includes('Tom Trader'), `the member is on it: ${board}`);
  await page.locator('#board-period').selectOption('day');
  await page.waitForFunction(() => document.querySelectorAll('#board-table tbody tr').length > 0);
  board = await page.$$eval('#board-table tbody tr', (trs) => trs.length);
  check(board === members, `the day's leaderboard: ${board}`);
  log('chart, P&L and leaderboard shown');

  await page.locator('#signout').click();
  await page.locator('#signin').waitFor({ state: 'visible' });
  const after = await page.evaluate((t) => sessionStorage.getItem(`rampart.member.${t}.token`), tenant);
  check(after === null, 'token forgotten on sign-out');

  check(consoleErrors.length === 0, `no errors in the browser console: ${consoleErrors.join(' | ')}`);
  await browser.close();
  log('all steps passed');
  process.exit(0);
} catch (e) {
  console.error('[e2e] FAILED:', e && e.stack ? e.stack : e);
  if (consoleErrors.length) console.error('[e2e] browser console errors:', consoleErrors.join(' | '));
  if (current) {
    try {
      const shot = join(artifacts, 'member-page-failure.png');
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
