// Rampart admin page, and the member page (`data-page="member"`: the
// member's equity chart, P&L and the leaderboard) on the same code. Vanilla JavaScript, no build step, no inline code (the
// page's CSP allows only this file). Login: OAuth 2.1 authorization code
// flow with PKCE (S256) as the tenant's public client; the access token is
// kept in this tab's sessionStorage only. Every call goes to the JSON API,
// which enforces the role's permissions itself.
'use strict';

(function () {
  const body = document.body;
  const cfg = {
    tenant: body.dataset.tenant,
    clientId: body.dataset.clientId,
    redirectUri: body.dataset.redirectUri,
    issuer: body.dataset.issuer,
    scope: body.dataset.scope,
  };
  if (!cfg.tenant) return; // an error page: nothing to run
  const base = '/t/' + encodeURIComponent(cfg.tenant);
  const apiBase = '/api/v1/t/' + encodeURIComponent(cfg.tenant);
  const page = body.dataset.page === 'member' ? 'member' : 'admin';
  const pagePath = base + '/' + page + '/';
  const key = (name) => 'rampart.' + page + '.' + cfg.tenant + '.' + name;
  const $ = (id) => document.getElementById(id);

  // ---------------------------------------------------------------- helpers

  function el(tag, props, children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (k === 'text') e.textContent = v;
      else if (k === 'class') e.className = v;
      else if (k.startsWith('data-')) e.setAttribute(k, v);
      else e[k] = v;
    }
    for (const c of children || []) e.append(c);
    return e;
  }

  function notify(message, isError, problems) {
    const n = $('notice');
    n.replaceChildren(document.createTextNode(message));
    if (problems && problems.length) {
      n.append(el('ul', {}, problems.map((p) => el('li', { text: (p.field ? p.field + ': ' : '') + p.message }))));
    }
    n.className = 'notice' + (isError ? ' error' : '');
    n.hidden = false;
  }

  function clearNotice() {
    $('notice').hidden = true;
  }

  function b64url(bytes) {
    let s = '';
    for (const b of new Uint8Array(bytes)) s += String.fromCharCode(b);
    return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  function randomToken(n) {
    const a = new Uint8Array(n);
    crypto.getRandomValues(a);
    return b64url(a);
  }

  class ApiFailure extends Error {
    constructor(status, error) {
      super((error && error.message) || 'request failed (' + status + ')');
      this.status = status;
      this.code = error && error.code;
      this.problems = (error && error.details && error.details.problems) || [];
    }
  }

  let token = sessionStorage.getItem(key('token'));

  async function api(method, path, payload, contentType) {
    // Signed out meanwhile (e.g. while a list was still loading): no call.
    if (!token) throw new ApiFailure(401, null);
    const headers = { Accept: 'application/json', Authorization: 'Bearer ' + token };
    let bodyText;
    if (payload !== undefined) {
      headers['Content-Type'] = contentType || 'application/json';
      bodyText = contentType ? payload : JSON.stringify(payload);
    }
    const res = await fetch(apiBase + path, { method, headers, body: bodyText, credentials: 'omit', cache: 'no-store' });
    let json = null;
    try { json = await res.json(); } catch (_) { json = null; }
    if (res.status === 401) {
      forget();
      showSignIn('Your session has ended; please sign in again.');
      throw new ApiFailure(401, json && json.error);
    }
    if (!res.ok || !json || !json.success) throw new ApiFailure(res.status, json && json.error);
    return json;
  }

  function failed(what, e) {
    notify(what + ': ' + e.message, true, e.problems);
  }

  // ---------------------------------------------------------------- sign-in

  function forget() {
    token = null;
    sessionStorage.removeItem(key('token'));
  }

  function showOnly(id) {
    for (const s of ['signin', 'refused', 'console']) $(s).hidden = s !== id;
    $('signout').hidden = id === 'signin';
  }

  function showSignIn(message) {
    showOnly('signin');
    $('who').textContent = '';
    if (message) notify(message, true);
    const canonical = new URL(cfg.redirectUri).origin;
    if (canonical !== location.origin) {
      const a = $('canonical-link');
      a.href = canonical + pagePath;
      a.textContent = canonical + pagePath;
      $('wrong-origin').hidden = false;
    }
  }

  async function signIn() {
    const verifier = randomToken(32);
    const state = randomToken(16);
    const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
    sessionStorage.setItem(key('verifier'), verifier);
    sessionStorage.setItem(key('state'), state);
    const q = new URLSearchParams({
      response_type: 'code',
      client_id: cfg.clientId,
      redirect_uri: cfg.redirectUri,
      scope: cfg.scope,
      state,
      code_challenge: b64url(digest),
      code_challenge_method: 'S256',
    });
    location.assign(base + '/oauth/authorize?' + q.toString());
  }

  async function finishSignIn(params) {
    const expected = sessionStorage.getItem(key('state'));
    const verifier = sessionStorage.getItem(key('verifier'));
    sessionStorage.removeItem(key('state'));
    sessionStorage.removeItem(key('verifier'));
    history.replaceState(null, '', pagePath);
    if (params.get('error')) {
      throw new Error('the sign-in was refused: ' + (params.get('error_description') || params.get('error')));
    }
    if (!expected || !verifier || params.get('state') !== expected) {
      throw new Error('this sign-in was not started here (state mismatch); please sign in again');
    }
    if (params.get('iss') && params.get('iss') !== cfg.issuer) {
      throw new Error('the answer came from an unexpected issuer');
    }
    const res = await fetch(base + '/oauth/token', {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
      credentials: 'omit',
      cache: 'no-store',
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code: params.get('code') || '',
        redirect_uri: cfg.redirectUri,
        client_id: cfg.clientId,
        code_verifier: verifier,
      }).toString(),
    });
    const t = await res.json().catch(() => ({}));
    if (!res.ok || !t.access_token) {
      throw new Error('the token request failed: ' + (t.error_description || t.error || res.status));
    }
    token = t.access_token;
    sessionStorage.setItem(key('token'), token);
  }

  async function signOut() {
    const t = token;
    forget();
    if (t) {
      // Best effort: revoke the token at the tenant's revocation endpoint.
      fetch(base + '/oauth/revoke', {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        credentials: 'omit',
        body: new URLSearchParams({ token: t, client_id: cfg.clientId }).toString(),
      }).catch(() => {});
    }
    if (page === 'admin') closeCharts();
    else clearMember();
    clearNotice();
    showSignIn();
  }

  // ---------------------------------------------------------------- health

  function fact(list, name, value, cls) {
    list.append(el('dt', { text: name }), el('dd', { text: String(value), class: cls || '' }));
  }

  async function loadHealth() {
    const list = $('health-list');
    try {
      const { data } = await api('GET', '/admin/health');
      const h = data.health;
      list.replaceChildren();
      fact(list, 'Status', h.status, h.status === 'active' ? 'ok' : 'bad');
      fact(list, 'Database', h.reachable ? 'reachable' : 'unreachable' + (h.error ? ' (' + h.error + ')' : ''), h.reachable ? 'ok' : 'bad');
      fact(list, 'Migrations', (h.migrationsCurrent ?? h.migrations_current) ? 'current' : 'behind', (h.migrationsCurrent ?? h.migrations_current) ? 'ok' : 'bad');
      fact(list, 'Schema version', (h.migrationVersion ?? h.migration_version) || '—');
      fact(list, 'Probe latency', Number(h.latencyMs ?? h.latency_ms).toFixed(1) + ' ms');
      if (data.usage) {
        fact(list, 'Schema size', (data.usage.schemaBytes / 1024 / 1024).toFixed(2) + ' MiB');
        fact(list, 'Connection checkouts', data.usage.checkouts);
      }
      $('health').dataset.status = h.status;
    } catch (e) {
      if (e.status !== 401) failed('Tenant health', e);
    }
  }

  // ---------------------------------------------------------------- members

  let nextCursor = null;
  let brokerTarget = null;

  function memberRow(m) {
    const actions = el('td');
    if (m.brokerAttached) {
      const detach = el('button', { type: 'button', class: 'ghost small', text: 'Detach key', 'data-action': 'detach' });
      detach.addEventListener('click', () => detachKey(m, detach));
      actions.append(detach);
    } else {
      const attach = el('button', { type: 'button', class: 'ghost small', text: 'Attach key', 'data-action': 'attach' });
      attach.addEventListener('click', () => openBroker(m));
      actions.append(attach);
    }
    return el('tr', { 'data-email': m.email }, [
      el('td', { text: m.name }),
      el('td', { text: m.email }),
      el('td', { text: m.role }),
      el('td', { text: m.status }),
      el('td', { text: m.brokerAttached ? 'paper key attached' : '—' }),
      actions,
    ]);
  }

  async function loadMembers(more) {
    const tbody = $('members-table').tBodies[0];
    try {
      const q = new URLSearchParams({ limit: '200' });
      if (more && nextCursor) q.set('cursor', nextCursor);
      const res = await api('GET', '/admin/members?' + q.toString());
      if (!more) tbody.replaceChildren();
      for (const m of res.data) {
        membersById.set(m.id, m);
        tbody.append(memberRow(m));
      }
      nextCursor = (res.meta && res.meta.nextCursor) || null;
      $('members-more').hidden = !nextCursor;
      $('members').dataset.count = String(tbody.rows.length);
    } catch (e) {
      if (e.status !== 401) failed('Members', e);
    }
  }

  async function addMember(ev) {
    ev.preventDefault();
    clearNotice();
    const f = ev.target;
    const input = { name: f.elements.name.value, email: f.elements.email.value, role: f.elements.role.value };
    try {
      const res = await api('POST', '/admin/members', input);
      notify((res.data.created ? 'Added ' : 'Updated ') + res.data.member.email + '.');
      f.reset();
      await loadMembers(false);
    } catch (e) {
      if (e.status !== 401) failed('Could not save the member', e);
    }
  }

  // ---------------------------------------------------------------- broker keys

  function openBroker(m) {
    brokerTarget = m;
    $('broker-member').textContent = m.name + ' <' + m.email + '>';
    $('broker-panel').hidden = false;
    $('broker-key-id').focus();
  }

  function closeBroker() {
    brokerTarget = null;
    $('broker-form').reset();
    $('broker-panel').hidden = true;
  }

  async function attachKey(ev) {
    ev.preventDefault();
    if (!brokerTarget) return;
    clearNotice();
    const m = brokerTarget;
    const keys = { keyId: $('broker-key-id').value.trim(), secretKey: $('broker-secret').value.trim() };
    $('broker-secret').value = '';
    try {
      await api('PUT', '/admin/members/' + encodeURIComponent(m.id) + '/broker', keys);
      closeBroker();
      notify('Paper-trading key attached for ' + m.email + '.');
      await loadMembers(false);
    } catch (e) {
      if (e.status !== 401) failed('Could not attach the key', e);
    }
  }

  async function detachKey(m, button) {
    // Two clicks: the first one asks.
    if (button.dataset.armed !== 'yes') {
      button.dataset.armed = 'yes';
      button.textContent = 'Really detach? (removes its snapshots)';
      button.className = 'danger small';
      setTimeout(() => {
        if (button.isConnected) {
          button.dataset.armed = '';
          button.textContent = 'Detach key';
          button.className = 'ghost small';
        }
      }, 6000);
      return;
    }
    clearNotice();
    try {
      const res = await api('DELETE', '/admin/members/' + encodeURIComponent(m.id) + '/broker');
      notify('Key detached for ' + m.email + ' (' + res.data.snapshotsRemoved + ' snapshots removed).');
      await loadMembers(false);
    } catch (e) {
      if (e.status !== 401) failed('Could not detach the key', e);
    }
  }

  // ---------------------------------------------------------------- portfolios and charts

  // Owner ids (user ids) to members, from the members list.
  const membersById = new Map();
  let selectedPortfolio = null;
  const chartUrls = {};
  let chartRequest = 0;

  function ownerLabel(id) {
    const m = membersById.get(id);
    return m ? m.name + ' <' + m.email + '>' : id;
  }

  function portfolioRow(p) {
    const show = el('button', { type: 'button', class: 'ghost small', text: 'Charts', 'data-action': 'charts' });
    show.addEventListener('click', () => selectPortfolio(p));
    return el('tr', { 'data-id': p.id, 'data-name': p.name, class: selectedPortfolio && selectedPortfolio.id === p.id ? 'selected' : '' }, [
      el('td', { text: p.name }),
      el('td', { text: ownerLabel(p.owner_id ?? p.ownerId), 'data-owner': String(p.owner_id ?? p.ownerId) }),
      el('td', { text: '…', class: 'positions' }),
      el('td', { text: String(p.version) }),
      el('td', {}, [show]),
    ]);
  }

  async function positionsCount(p, cell) {
    try {
      const { data } = await api('GET', '/portfolios/' + encodeURIComponent(p.id));
      cell.textContent = Array.isArray(data.positions) ? String(data.positions.length) : '—';
    } catch (e) {
      cell.textContent = '—';
    }
  }

  async function loadPortfolios() {
    const tbody = $('portfolios-table').tBodies[0];
    try {
      const items = [];
      let cursor = null;
      // A tenant admin sees every portfolio of the tenant; at most 1,000 here.
      for (let i = 0; i < 10; i++) {
        const q = new URLSearchParams({ limit: '100' });
        if (cursor) q.set('cursor', cursor);
        const res = await api('GET', '/portfolios?' + q.toString());
        items.push(...res.data);
        cursor = (res.meta && res.meta.nextCursor) || null;
        if (!cursor) break;
      }
      tbody.replaceChildren();
      const counts = [];
      for (const p of items) {
        const row = portfolioRow(p);
        tbody.append(row);
        counts.push(positionsCount(p, row.querySelector('td.positions')));
      }
      $('portfolios-empty').hidden = items.length > 0;
      await Promise.all(counts);
      $('portfolios').dataset.count = String(items.length);
    } catch (e) {
      if (e.status !== 401) failed('Portfolios', e);
    }
  }

  function clearCharts() {
    $('charts-window').textContent = '';
    for (const id of ['chart-equity', 'chart-returns']) {
      const img = $(id);
      img.hidden = true;
      img.removeAttribute('src');
      delete img.dataset.loaded;
      if (chartUrls[id]) URL.revokeObjectURL(chartUrls[id]);
      delete chartUrls[id];
    }
  }

  function closeCharts() {
    chartRequest++;
    selectedPortfolio = null;
    clearCharts();
    $('charts').hidden = true;
    $('charts-show').disabled = true;
    for (const tr of $('portfolios-table').tBodies[0].rows) tr.classList.remove('selected');
  }

  // The chart routes need the bearer token, so an <img src> cannot load
  // them directly: fetch the SVG, then show it as an <img> from a blob: URL
  // (an SVG shown as an image runs no script).
  async function fetchChart(path) {
    if (!token) throw new ApiFailure(401, null);
    const res = await fetch(apiBase + path, {
      headers: { Accept: 'image/svg+xml', Authorization: 'Bearer ' + token },
      credentials: 'omit',
      cache: 'no-store',
    });
    if (res.status === 401) {
      forget();
      showSignIn('Your session has ended; please sign in again.');
      throw new ApiFailure(401, null);
    }
    if (!res.ok) {
      const json = await res.json().catch(() => null);
      throw new ApiFailure(res.status, json && json.error);
    }
    const type = (res.headers.get('Content-Type') || '').split(';')[0].trim();
    if (type !== 'image/svg+xml') throw new Error('unexpected chart type ' + type);
    const blob = new Blob([await res.arrayBuffer()], { type: 'image/svg+xml' });
    return { blob, window: res.headers.get('Rampart-Analysis-Window') };
  }

  // "2005-12-31/2010-12-31; basis=available-data" → a sentence for the page.
  function describeWindow(header) {
    const m = /^(\d{4}-\d{2}-\d{2})\/(\d{4}-\d{2}-\d{2}); basis=([a-z-]+)$/.exec(header || '');
    if (!m) return '';
    const span = m[1] + ' to ' + m[2];
    return m[3] === 'available-data'
      ? 'Showing ' + span + ': the latest five years with prices for every holding.'
      : 'Showing ' + span + '.';
  }

  function showChart(id, blob) {
    const img = $(id);
    const url = URL.createObjectURL(blob);
    if (chartUrls[id]) URL.revokeObjectURL(chartUrls[id]);
    chartUrls[id] = url;
    return new Promise((resolve, reject) => {
      img.onload = () => {
        img.dataset.loaded = 'yes';
        resolve();
      };
      img.onerror = () => reject(new Error('the chart could not be shown'));
      img.src = url;
      img.hidden = false;
    });
  }

  async function loadCharts() {
    const p = selectedPortfolio;
    if (!p) return;
    const request = ++chartRequest;
    clearNotice();
    clearCharts();
    $('charts').dataset.state = 'loading';
    const q = new URLSearchParams();
    if ($('charts-from').value) q.set('from', $('charts-from').value);
    if ($('charts-to').value) q.set('to', $('charts-to').value);
    const bench = $('charts-benchmark').value.trim();
    if (bench) q.set('benchmark', bench);
    const qs = q.toString() ? '?' + q.toString() : '';
    const prefix = '/portfolios/' + encodeURIComponent(p.id) + '/charts/';
    try {
      const [equity, returns] = await Promise.all([fetchChart(prefix + 'equity.svg' + qs), fetchChart(prefix + 'returns.svg' + qs)]);
      if (request !== chartRequest) return; // another portfolio was chosen meanwhile
      await Promise.all([showChart('chart-equity', equity.blob), showChart('chart-returns', returns.blob)]);
      $('charts-window').textContent = describeWindow(equity.window);
      $('charts').dataset.state = 'loaded';
    } catch (e) {
      if (request !== chartRequest) return;
      $('charts').dataset.state = 'failed';
      if (e.status !== 401) failed('Charts of ' + p.name, e);
    }
  }

  async function selectPortfolio(p) {
    selectedPortfolio = p;
    for (const tr of $('portfolios-table').tBodies[0].rows) tr.classList.toggle('selected', tr.dataset.id === p.id);
    $('charts-name').textContent = p.name;
    $('charts').hidden = false;
    $('charts-show').disabled = false;
    await loadCharts();
  }

  // ---------------------------------------------------------------- CSV import

  let preview = null;

  function showPreview(p) {
    preview = p;
    const tbody = $('preview-table').tBodies[0];
    tbody.replaceChildren();
    for (const r of p.rows) {
      const why = (r.problems || []).map((x) => x.field + ': ' + x.message);
      if (r.action === 'update' && r.existing) why.push('was ' + r.existing.name + ', ' + r.existing.role);
      tbody.append(el('tr', { class: r.action, 'data-line': String(r.line), 'data-action': r.action }, [
        el('td', { text: String(r.line) }),
        el('td', { text: r.name }),
        el('td', { text: r.email }),
        el('td', { text: r.role }),
        el('td', {}, [el('span', { class: 'status ' + r.action, text: r.action })]),
        el('td', { text: why.join('; ') }),
      ]));
    }
    $('preview-summary').textContent =
      p.created + ' to create, ' + p.updated + ' to update, ' + p.unchanged + ' unchanged, ' + p.refused + ' refused';
    const blocked = p.refused > 0;
    $('import-confirm').disabled = blocked;
    $('preview-blocked').hidden = !blocked;
    $('import-drop-refused').hidden = !blocked;
    $('preview').hidden = false;
  }

  function hidePreview() {
    preview = null;
    $('preview').hidden = true;
    $('preview-table').tBodies[0].replaceChildren();
  }

  async function previewCsv(ev) {
    if (ev) ev.preventDefault();
    clearNotice();
    hidePreview();
    const text = $('csv-text').value;
    if (!text.trim()) {
      notify('Choose a CSV file or paste its content first.', true);
      return;
    }
    try {
      const res = await api('POST', '/admin/members/import/preview', text, 'text/csv; charset=utf-8');
      showPreview(res.data);
    } catch (e) {
      if (e.status !== 401) failed('The file could not be previewed', e);
    }
  }

  async function dropRefused() {
    if (!preview) return;
    const refused = new Set(preview.rows.filter((r) => r.action === 'refused').map((r) => r.line));
    const lines = $('csv-text').value.split(/\r?\n/);
    $('csv-text').value = lines.filter((_, i) => !refused.has(i + 1)).join('\n');
    await previewCsv();
  }

  async function confirmImport() {
    if (!preview) return;
    clearNotice();
    $('import-confirm').disabled = true;
    try {
      const res = await api('POST', '/admin/members/import/' + encodeURIComponent(preview.id) + '/commit', { digest: preview.digest });
      const c = res.data;
      hidePreview();
      $('import-form').reset();
      $('csv-text').value = '';
      notify('Imported: ' + c.created + ' created, ' + c.updated + ' updated, ' + c.unchanged + ' unchanged.');
      await loadMembers(false);
    } catch (e) {
      $('import-confirm').disabled = false;
      if (e.status !== 401) failed('The import was not applied', e);
    }
  }

  async function readFile() {
    const file = $('csv-file').files[0];
    if (!file) return;
    $('csv-text').value = await file.text();
    await previewCsv();
  }

  // ---------------------------------------------------------------- tabs

  function selectTab(id) {
    for (const b of document.querySelectorAll('.tabs button')) {
      const on = b.dataset.tab === id;
      b.setAttribute('aria-selected', on ? 'true' : 'false');
      $(b.dataset.tab).hidden = !on;
    }
  }

  // ---------------------------------------------------------------- member page

  const money = (v) => Number(v).toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  const pct = (v) => (v === null || v === undefined ? '' : (100 * Number(v)).toFixed(2) + ' %');
  const signed = (v) => (Number(v) < 0 ? 'bad' : 'ok');

  function clearMember() {
    $('pnl-table').tBodies[0].replaceChildren();
    $('board-table').tBodies[0].replaceChildren();
    const img = $('member-chart');
    img.hidden = true;
    img.removeAttribute('src');
    delete img.dataset.loaded;
    if (chartUrls['member-chart']) URL.revokeObjectURL(chartUrls['member-chart']);
    delete chartUrls['member-chart'];
  }

  async function loadBoard() {
    const period = $('board-period').value;
    try {
      const board = (await api('GET', '/leaderboard?period=' + encodeURIComponent(period))).data;
      $('board-asof').textContent = board.asOf ? 'As of ' + board.asOf + '.' : 'No snapshots yet.';
      $('board-table').tBodies[0].replaceChildren(...board.entries.map((e) => el('tr', { 'data-member': e.memberId }, [
        el('td', { text: String(e.rank) }),
        el('td', { text: e.name }),
        el('td', { text: money(e.pnl), class: signed(e.pnl) }),
        el('td', { text: pct(e.returnPct) }),
        el('td', { text: money(e.equity) }),
      ])));
    } catch (e) {
      if (e.status !== 401) failed('Could not load the leaderboard', e);
    }
  }

  async function enterMember() {
    let me;
    let series;
    try {
      me = (await api('GET', '/me')).data;
      series = (await api('GET', '/me/portfolio')).data;
    } catch (e) {
      if (e.status !== 401) failed('Could not read your portfolio', e);
      return;
    }
    const email = (me.user && me.user.email) || '';
    $('who').textContent = email;
    if (!series.points.length) {
      $('refused-who').textContent = email;
      $('refused-role').textContent = me.role;
      showOnly('refused');
      return;
    }
    showOnly('console');
    $('member-window').textContent = 'From ' + series.from + ' to ' + series.to + ', ' + series.points.length + ' daily snapshots.';
    const rows = series.points.slice().reverse().map((p) => {
      const daily = p.daily_pnl !== undefined ? p.daily_pnl : p.dailyPnl;
      const total = p.total_pnl !== undefined ? p.total_pnl : p.totalPnl;
      return el('tr', { 'data-date': p.date }, [
        el('td', { text: p.date }),
        el('td', { text: money(p.equity) }),
        el('td', { text: money(p.cash) }),
        el('td', { text: String(p.positions) }),
        el('td', { text: money(daily), class: signed(daily) }),
        el('td', { text: money(total), class: signed(total) }),
      ]);
    });
    $('pnl-table').tBodies[0].replaceChildren(...rows);
    const chart = series.points.length > 1
      ? fetchChart('/me/portfolio.svg').then((c) => showChart('member-chart', c.blob))
      : Promise.resolve();
    await Promise.all([
      chart.catch((e) => failed('Could not draw your equity chart', e)),
      loadBoard(),
    ]);
  }

  // ---------------------------------------------------------------- start

  async function enterConsole() {
    let me;
    try {
      me = (await api('GET', '/me')).data;
    } catch (e) {
      if (e.status !== 401) failed('Could not read your account', e);
      return;
    }
    const email = (me.user && me.user.email) || '';
    $('who').textContent = email;
    // Roles are tenant data: what counts is what the role may do.
    const may = (scope) => (me.permissions || []).includes(scope);
    if (!may('tenant:admin') || !may('users:manage')) {
      $('refused-who').textContent = email;
      $('refused-role').textContent = me.role;
      showOnly('refused');
      return;
    }
    showOnly('console');
    // Members first: the portfolios list names owners from it.
    await Promise.all([loadHealth(), loadMembers(false).then(loadPortfolios)]);
  }

  async function startMember() {
    $('signin-button').addEventListener('click', () => signIn().catch((e) => notify('Sign-in failed: ' + e.message, true)));
    $('signout').addEventListener('click', signOut);
    $('refused-signout').addEventListener('click', signOut);
    $('board-period').addEventListener('change', loadBoard);
    if (await finishIfCallback()) return;
    if (!token) {
      showSignIn();
      return;
    }
    await enterMember();
  }

  // On the OAuth redirect: finishes the sign-in; true when it failed.
  async function finishIfCallback() {
    if (!location.pathname.endsWith('/' + page + '/callback')) return false;
    try {
      await finishSignIn(new URLSearchParams(location.search));
      return false;
    } catch (e) {
      forget();
      showSignIn();
      notify('Sign-in failed: ' + e.message, true);
      return true;
    }
  }

  async function start() {
    $('signin-button').addEventListener('click', () => signIn().catch((e) => notify('Sign-in failed: ' + e.message, true)));
    $('signout').addEventListener('click', signOut);
    $('refused-signout').addEventListener('click', signOut);
    $('health-refresh').addEventListener('click', loadHealth);
    $('members-refresh').addEventListener('click', () => loadMembers(false));
    $('members-more').addEventListener('click', () => loadMembers(true));
    $('add-form').addEventListener('submit', addMember);
    $('import-form').addEventListener('submit', previewCsv);
    $('csv-file').addEventListener('change', readFile);
    $('import-confirm').addEventListener('click', confirmImport);
    $('import-drop-refused').addEventListener('click', dropRefused);
    $('import-cancel').addEventListener('click', hidePreview);
    $('broker-form').addEventListener('submit', attachKey);
    $('portfolios-refresh').addEventListener('click', loadPortfolios);
    $('charts-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      loadCharts();
    });
    $('charts-close').addEventListener('click', closeCharts);
    $('broker-cancel').addEventListener('click', closeBroker);
    for (const b of document.querySelectorAll('.tabs button')) b.addEventListener('click', () => selectTab(b.dataset.tab));

    if (await finishIfCallback()) return;
    if (!token) {
      showSignIn();
      return;
    }
    await enterConsole();
  }

  if (page === 'member') startMember();
  else start();
})();
