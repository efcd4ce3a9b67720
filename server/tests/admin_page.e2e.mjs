// End-to-end test of the admin page in headless Chromium (Debian's package)
// driven by playwright-core (through page_e2e.mjs). Started by
// server/tests/admin_page.rs, which runs the server and passes everything
// through the environment: what page_e2e.mjs reads, and
//   RAMPART_ADMIN_EMAIL, RAMPART_VIEWER_EMAIL,
//   RAMPART_PORTFOLIO_ID, RAMPART_PORTFOLIO_NAME, RAMPART_PORTFOLIO_OWNER (a
//   portfolio with positions the test created for a trader of the tenant).
// Exit code 0: every step passed; anything else: the first failure, printed.
import { browserPage, check, env, log, shot } from './page_e2e.mjs';

const adminEmail = env('RAMPART_ADMIN_EMAIL');
const viewerEmail = env('RAMPART_VIEWER_EMAIL');
const portfolioId = env('RAMPART_PORTFOLIO_ID');
const portfolioName = env('RAMPART_PORTFOLIO_NAME');
const portfolioOwner = env('RAMPART_PORTFOLIO_OWNER');
const { consoleErrors, signIn, signOut, storedToken, run } = await browserPage('admin');

async function previewRows(page) {
  return page.$$eval('#preview-table tbody tr', (trs) =>
    trs.map((tr) => ({
      line: Number(tr.dataset.line),
      action: tr.dataset.action,
      email: tr.children[2].textContent,
      why: tr.children[5].textContent,
    })),
  );
}

async function memberRows(page) {
  return page.$$eval('#members-table tbody tr', (trs) =>
    trs.map((tr) => ({ email: tr.dataset.email, role: tr.children[2].textContent })),
  );
}

await run(async () => {
  // ---- a viewer signs in and is refused, clearly
  {
    const page = await signIn(viewerEmail);
    await page.locator('#refused').waitFor({ state: 'visible' });
    const text = await page.locator('#refused').innerText();
    check(text.includes('Administrators only'), `refusal shown: ${text}`);
    check(text.includes('viewer'), `refusal names the role: ${text}`);
    check(await page.locator('#console').isHidden(), 'console hidden for a viewer');
    await shot(page, '0-refused');
    log('viewer refused');
    await page.context().close();
  }

  // ---- the admin signs in
  const page = await signIn(adminEmail);
  await page.locator('#console').waitFor({ state: 'visible' });
  check((await page.locator('#who').innerText()) === adminEmail, 'signed-in e-mail shown');
  const token = await storedToken(page);
  check(token && token.split('.').length >= 3, 'access token kept in sessionStorage');
  log('admin signed in');

  // ---- tenant health
  await page.locator('#health[data-status]').waitFor();
  const health = await page.locator('#health-list').innerText();
  check(health.includes('active') && health.includes('reachable'), `health shown: ${health}`);
  log('health shown');

  // ---- the admin is listed; add one member through the form
  await page.locator(`#members-table tr[data-email="${adminEmail}"]`).waitFor();
  await page.locator('#add-name').fill('Linus Added');
  await page.locator('#add-email').fill('linus@e2e.example');
  await page.locator('#add-role').selectOption('trader');
  await page.locator('#add-form button[type=submit]').click();
  await page.locator('#members-table tr[data-email="linus@e2e.example"]').waitFor();
  check((await page.locator('#notice').innerText()).includes('Added linus@e2e.example'), 'add notice');
  log('member added');

  // ---- import a CSV with one broken row
  await page.locator('#tab-import-button').click();
  const csv = [
    'name,email,role',
    'Grace Hopper,grace@e2e.example,trader',
    'Alan Turing,alan@e2e.example,viewer',
    'Broken Row,not-an-email,wizard',
    'Linus Added,linus@e2e.example,admin',
  ].join('\n') + '\n';
  await page.locator('#csv-file').setInputFiles({
    name: 'members.csv',
    mimeType: 'text/csv',
    buffer: Buffer.from(csv, 'utf8'),
  });
  await page.locator('#preview').waitFor({ state: 'visible' });
  let rows = await previewRows(page);
  log('preview', JSON.stringify(rows));
  check(rows.length === 4, `4 preview rows, got ${rows.length}`);
  const byLine = Object.fromEntries(rows.map((r) => [r.line, r]));
  check(byLine[2]?.action === 'create' && byLine[2].email === 'grace@e2e.example', 'line 2 create');
  check(byLine[3]?.action === 'create' && byLine[3].email === 'alan@e2e.example', 'line 3 create');
  check(byLine[4]?.action === 'refused', 'line 4 refused');
  check(/email/.test(byLine[4].why) && /role/.test(byLine[4].why), `line 4 reasons: ${byLine[4].why}`);
  check(byLine[5]?.action === 'update' && /was Linus Added, trader/.test(byLine[5].why), 'line 5 update');
  check(
    (await page.locator('#preview-summary').innerText()) ===
      '2 to create, 1 to update, 0 unchanged, 1 refused',
    'preview summary',
  );
  check(await page.locator('#import-confirm').isDisabled(), 'confirm blocked by the refused row');
  check(await page.locator('#preview-blocked').isVisible(), 'blocked explanation shown');
  // Nothing applied by the preview.
  check(!(await memberRows(page)).some((m) => m.email === 'grace@e2e.example'), 'preview applied nothing');
  await shot(page, '1-preview-refused');
  log('preview with a refused row checked');

  // ---- drop the refused row, preview again, confirm
  await page.locator('#import-drop-refused').click();
  await page.locator('#import-confirm:enabled').waitFor();
  rows = await previewRows(page);
  check(rows.length === 3 && rows.every((r) => r.action !== 'refused'), `second preview: ${JSON.stringify(rows)}`);
  check(
    (await page.locator('#preview-summary').innerText()) ===
      '2 to create, 1 to update, 0 unchanged, 0 refused',
    'second preview summary',
  );
  await page.locator('#import-confirm').click();
  await page.locator('#members-table tr[data-email="grace@e2e.example"]').waitFor();
  await page.locator('#members-table tr[data-email="alan@e2e.example"]').waitFor();
  const notice = await page.locator('#notice').innerText();
  check(notice.includes('Imported: 2 created, 1 updated, 0 unchanged'), `import notice: ${notice}`);
  check(await page.locator('#preview').isHidden(), 'preview closed after the commit');
  const members = await memberRows(page);
  log('members', JSON.stringify(members));
  const role = (email) => members.find((m) => m.email === email)?.role;
  check(role('grace@e2e.example') === 'trader', 'grace is a trader');
  check(role('alan@e2e.example') === 'viewer', 'alan is a viewer');
  check(role('linus@e2e.example') === 'admin', 'linus became an admin');
  check(!members.some((m) => m.email === 'not-an-email'), 'the refused row was not imported');
  await shot(page, '2-imported');
  log('import committed');

  // ---- broker keys: a live key is refused, paper keys attach and detach
  const row = (email) => page.locator(`#members-table tr[data-email="${email}"]`);
  async function attach(email, keyId, secret) {
    await row(email).locator('button[data-action=attach]').click();
    await page.locator('#broker-panel').waitFor({ state: 'visible' });
    check((await page.locator('#broker-member').innerText()).includes(email), 'broker panel names the member');
    await page.locator('#broker-key-id').fill(keyId);
    await page.locator('#broker-secret').fill(secret);
    await page.locator('#broker-form button[type=submit]').click();
  }
  check(consoleErrors.length === 0, `no browser errors so far: ${consoleErrors.join(' | ')}`);
  await attach('grace@e2e.example', 'AKLIVEAAAAAAAAAAAAAA', 's3cretLive1s3cretLive1s3cretLive1s3cret1');
  await page.locator('#notice.error').waitFor();
  const refusal = await page.locator('#notice').innerText();
  check(/live-trading/.test(refusal), `live key refused: ${refusal}`);
  check(!refusal.includes('s3cretLive1'), 'the refusal does not echo the secret');
  // Chromium logs the expected 400 of that refusal; nothing else may appear.
  for (let i = consoleErrors.length - 1; i >= 0; i--) {
    if (/status of 400 .*\/broker\)$/.test(consoleErrors[i])) consoleErrors.splice(i, 1);
  }
  check((await page.locator('#broker-secret').inputValue()) === '', 'secret field cleared');
  await page.locator('#broker-key-id').fill('PKGOODE2EAAAAAAAAAAA');
  await page.locator('#broker-secret').fill('s3cretGoodE2Es3cretGoodE2Es3cretGoodE2E1');
  await page.locator('#broker-form button[type=submit]').click();
  await row('grace@e2e.example').locator('button[data-action=detach]').waitFor();
  check(await page.locator('#broker-panel').isHidden(), 'broker panel closed');
  check((await row('grace@e2e.example').innerText()).includes('paper key attached'), 'grace has a key');
  await attach('alan@e2e.example', 'PKGOODE2EBBBBBBBBBBB', 's3cretGoodE2Fs3cretGoodE2Fs3cretGoodE2F2');
  const detach = row('alan@e2e.example').locator('button[data-action=detach]');
  await detach.click(); // arms
  check((await detach.innerText()).startsWith('Really detach?'), 'detach asks first');
  await detach.click();
  await row('alan@e2e.example').locator('button[data-action=attach]').waitFor();
  check((await page.locator('#notice').innerText()).includes('Key detached for alan@e2e.example'), 'detach notice');
  await shot(page, '3-broker');
  log('broker keys attached and detached');

  // ---- portfolios: the trader's portfolio is listed, its two charts load
  const prow = page.locator(`#portfolios-table tr[data-id="${portfolioId}"]`);
  await prow.waitFor();
  await page.locator('#portfolios[data-count]').waitFor();
  const pcells = await prow.locator('td').allInnerTexts();
  log('portfolio row', JSON.stringify(pcells));
  check(pcells[0] === portfolioName, `portfolio name: ${pcells[0]}`);
  check(pcells[1].includes(portfolioOwner), `portfolio owner: ${pcells[1]}`);
  check(pcells[2] === '3', `positions count: ${pcells[2]}`);
  check(await page.locator('#charts').isHidden(), 'no charts before a portfolio is selected');
  // The first click, with no dates, draws: the window ends where the
  // embedded prices end (2010), and the page says so.
  await prow.locator('button[data-action=charts]').click();
  await page.locator('#charts[data-state=loaded]').waitFor({ state: 'attached' });
  const defaultWindow = await page.locator('#charts-window').innerText();
  log('default window', defaultWindow);
  check(/^Showing \d{4}-\d{2}-\d{2} to 2010-03-01: the latest five years with prices for every holding\.$/.test(defaultWindow), `default window note: ${defaultWindow}`);
  await page.locator('#charts-from').fill('2005-01-01');
  await page.locator('#charts-to').fill('2009-12-31');
  await page.locator('#charts-show').click();
  await page.locator('#charts[data-state=loaded]').waitFor({ state: 'attached' });
  await page.locator('#charts-window', { hasText: 'Showing 2005-01-01 to 2009-12-31.' }).waitFor();
  check((await page.locator('#charts-name').innerText()) === portfolioName, 'charts name the portfolio');
  check((await prow.getAttribute('class')).includes('selected'), 'the row is marked selected');
  for (const id of ['chart-equity', 'chart-returns']) {
    const img = await page.locator(`#${id}`).evaluate((i) => ({
      src: i.src,
      complete: i.complete,
      width: i.naturalWidth,
      height: i.naturalHeight,
      visible: !i.hidden,
    }));
    log(id, JSON.stringify(img));
    check(img.src.startsWith('blob:'), `${id} shown from a blob: URL`);
    check(img.complete && img.width > 0 && img.height > 0, `${id} loaded: ${JSON.stringify(img)}`);
    check(img.visible, `${id} visible`);
  }
  await shot(page, '4-charts');
  // Redraw with a benchmark; then close.
  await page.locator('#charts-benchmark').fill('MSFT');
  await page.locator('#charts-show').click();
  await page.locator('#charts[data-state=loaded]').waitFor({ state: 'attached' });
  check(
    (await page.locator('#chart-returns').evaluate((i) => i.naturalWidth)) > 0,
    'returns chart redrawn',
  );
  await page.locator('#charts-close').click();
  check(await page.locator('#charts').isHidden(), 'charts closed');
  check(consoleErrors.length === 0, `no browser errors with the charts: ${consoleErrors.join(' | ')}`);
  log('portfolio charts shown');

  // ---- a reload keeps the session of this tab; signing out forgets it
  await page.reload();
  await page.locator('#members-table tr[data-email="grace@e2e.example"]').waitFor();
  // Everything the page loads is in before signing out.
  await page.locator('#portfolios[data-count]').waitFor({ state: 'attached' });
  await signOut(page);
  log('reload and sign-out checked');
});
