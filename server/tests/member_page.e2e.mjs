// End-to-end test of the member page in headless Chromium (Debian's package)
// driven by playwright-core (through page_e2e.mjs). Started by
// server/tests/member_page.rs, which runs the server (demo members seeded)
// and passes through the environment: what page_e2e.mjs reads, and
//   RAMPART_MEMBER_EMAIL (a member with RAMPART_DAYS snapshots),
//   RAMPART_NEWCOMER_EMAIL (a member without any),
//   RAMPART_MEMBERS (leaderboard size).
// Exit code 0: every step passed; anything else: the first failure, printed.
import { browserPage, check, env, log } from './page_e2e.mjs';

const memberEmail = env('RAMPART_MEMBER_EMAIL');
const newcomerEmail = env('RAMPART_NEWCOMER_EMAIL');
const days = Number(env('RAMPART_DAYS'));
const members = Number(env('RAMPART_MEMBERS'));
const { signIn, signOut, run } = await browserPage('member');

await run(async () => {
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

  await signOut(page);
});
