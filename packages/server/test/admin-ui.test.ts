import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import Fastify from 'fastify';
import type { Browser, Page, Route } from 'playwright-core';
import { registerAdminUi } from '../src/api/http/admin-ui.js';
import { DEFAULT_CONFIG, validate } from '../src/config.js';
import { Busi } from './support/busi.js';
import { startTestDtx, type TestDtx } from './support/dtx.js';
import { call } from './support/http.js';
import { waitFor } from './support/poll.js';
import { gidFor, sagaBody } from './support/trans.js';

const CHROMIUM = process.env.DTX_CHROMIUM ?? '/usr/bin/chromium';
/** What the page callbacks below see of an element (the test is compiled without the DOM types). */
type El = { dataset: Record<string, string | undefined>; textContent: string | null; className: string };
/** Screenshots of the browser test (git-ignored). */
const OUT = fileURLToPath(new URL('../../../admin/test-output/', import.meta.url));

describe('admin UI routes', () => {
  let dtx: TestDtx;
  before(async () => {
    dtx = await startTestDtx();
  });
  after(async () => dtx.stop());

  it('serves index.html on / and /admin/*, assets with their types, the favicon, and 404 for other names', async () => {
    for (const path of ['/', '/admin', '/admin/trans/some-gid']) {
      const r = await call('GET', `${dtx.base}${path}`);
      assert.equal(r.status, 200, path);
      assert.match(r.text, /<title>dtx admin<\/title>/);
      assert.match(r.text, /src="\/assets\/main\.js"/);
      assert.match(r.text, /<meta name="dtx-base" content="">/);
    }
    const js = await fetch(`${dtx.base}/assets/main.js`);
    assert.equal(js.status, 200);
    assert.equal(js.headers.get('content-type'), 'text/javascript; charset=utf-8');
    assert.match(await js.text(), /from '\.\/api\.js'/);
    const css = await fetch(`${dtx.base}/assets/app.css`);
    assert.equal(css.headers.get('content-type'), 'text/css; charset=utf-8');
    const ico = await fetch(`${dtx.base}/favicon.ico`);
    assert.equal(ico.status, 200);
    assert.equal(ico.headers.get('content-type'), 'image/svg+xml');
    for (const bad of ['/assets/nope.js', '/assets/..%2Fpackage.json', '/assets/index.html', '/assets/main.d.ts']) {
      assert.equal((await call('GET', `${dtx.base}${bad}`)).status, 404, bad);
    }
  });

  it('GET /api/dtmsvr/info names the version, store, ports and start time', async () => {
    const r = await call('GET', `${dtx.api}/info`);
    assert.equal(r.status, 200);
    assert.equal(r.json.store, process.env.DTX_TEST_STORE ?? 'sqlite');
    assert.equal(r.json.http_port, dtx.server.httpPort);
    assert.equal(r.json.grpc_port, dtx.server.grpcPort);
    assert.equal(r.json.version, (await call('GET', `${dtx.api}/version`)).json.version);
    assert.ok(Date.parse(r.json.started_at) <= Date.now());
  });

  it('under an AdminBasePath, rewrites index.html for it and serves only there', async () => {
    const app = Fastify();
    registerAdminUi(app, { basePath: '/ops/dtx/' });
    try {
      const r = await app.inject({ method: 'GET', url: '/ops/dtx/admin/transactions' });
      assert.equal(r.statusCode, 200);
      assert.equal(r.headers['content-type'], 'text/html; charset=utf-8');
      assert.match(r.body, /src="\/ops\/dtx\/assets\/main\.js"/);
      assert.match(r.body, /<meta name="dtx-base" content="\/ops\/dtx">/);
      assert.equal((await app.inject({ method: 'GET', url: '/ops/dtx' })).statusCode, 200);
      assert.equal((await app.inject({ method: 'GET', url: '/ops/dtx/assets/main.js' })).statusCode, 200);
      assert.equal((await app.inject({ method: 'GET', url: '/' })).statusCode, 404);
      assert.equal((await app.inject({ method: 'GET', url: '/assets/main.js' })).statusCode, 404);
    } finally {
      await app.close();
    }
  });

  it('without a built UI answers 503 saying to run npm run build', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dtx-admin-'));
    mkdirSync(join(dir, 'public'));
    writeFileSync(join(dir, 'public', 'index.html'), '<html></html>');
    const app = Fastify();
    registerAdminUi(app, { basePath: '', dir });
    try {
      for (const url of ['/', '/admin/x', '/assets/main.js']) {
        const r = await app.inject({ method: 'GET', url });
        assert.equal(r.statusCode, 503, url);
        assert.match(r.body, /run `npm run build`/);
      }
    } finally {
      await app.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('AdminBasePath must be a plain path outside /api', () => {
    const withBase = (p: string) => ({ ...structuredClone(DEFAULT_CONFIG), AdminBasePath: p });
    for (const ok of ['', '/', '/dtx', '/ops/dtx-1/']) validate(withBase(ok));
    for (const bad of ['dtx', '/a b', '/x/../y?', '/api', '/api/ui']) {
      assert.throws(() => validate(withBase(bad)), /AdminBasePath/, bad);
    }
  });
});

describe('admin UI in a real browser (Debian chromium)', { skip: skipReason() }, () => {
  let dtx: TestDtx;
  let busi: Busi;
  let browser: Browser | undefined;
  let page: Page;
  const run = `ui${process.pid.toString(36)}`;
  const okGid = gidFor(`${run}-ok`);
  const rbGid = gidFor(`${run}-rb`);
  const retryGid = gidFor(`${run}-retry`);
  const delayGid = gidFor(`${run}-delay`);

  before(async () => {
    mkdirSync(OUT, { recursive: true });
    // stuck after two failed attempts in a row: the saga that keeps failing below is stuck by its third
    dtx = await startTestDtx({ Stuck: { ...DEFAULT_CONFIG.Stuck, FailedAttempts: 2 } });
    busi = await new Busi().start();
    busi.answer = (c) =>
      c.query.gid === retryGid && c.name === 'TransOut'
        ? { status: 500, body: '{"error":"payment service down: connection pool exhausted"}' }
        : (c.query.gid === rbGid || c.query.gid === delayGid) && c.name === 'TransIn'
          ? { status: 409, body: '{"error":"reason:Insufficient balance"}' }
          : undefined;
    const submit = async (body: Record<string, unknown>) => {
      const r = await call('POST', `${dtx.api}/submit`, body);
      assert.equal(r.status, 200, r.text);
    };
    await submit(
      sagaBody(busi, okGid, {
        branch_headers: { Authorization: 'Bearer s3cret-token', 'X-Tenant': 'acme' },
        payloads: ['{"amount":30}', 'plain text'],
      }),
    );
    await submit(sagaBody(busi, rbGid));
    await submit(sagaBody(busi, retryGid));
    await waitFor('ok succeeded', async () => (await dtx.status(okGid)) === 'succeed');
    await waitFor('rb failed', async () => (await dtx.status(rbGid)) === 'failed');
    await waitFor('retry tried once', () => busi.callsOf(retryGid).length >= 1);
    // two more attempts by the cron: the one that keeps failing with 500
    await dtx.cronFor(retryGid, 3600);
    await dtx.cronFor(retryGid, 7200);
    assert.equal(await dtx.status(retryGid), 'submitted');
    assert.equal(busi.callsOf(retryGid).length, 3);

    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
    });
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    // loopback only: anything else the page might ask for is refused before a connection is made
    await context.route('**/*', (route: Route) => {
      const host = new URL(route.request().url()).hostname;
      return host === '127.0.0.1' ? route.continue() : route.abort();
    });
    page = await context.newPage();
    page.on('pageerror', (err: Error) => {
      throw err;
    });
  });
  after(async () => {
    await browser?.close();
    await busi?.stop();
    await dtx?.stop();
  });

  const textOf = async (selector: string): Promise<string> => (await page.textContent(selector)) ?? '';
  const shot = (name: string) => page.screenshot({ path: join(OUT, `${name}.png`), fullPage: true });
  const rowGids = async (): Promise<string[]> =>
    page.$$eval('table.trans tbody tr', (rows: El[]) => rows.map((r) => r.dataset.gid ?? ''));

  it('lists transactions and filters them by status and gid prefix', async () => {
    await page.goto(`${dtx.base}/admin/transactions`);
    await page.waitForSelector('table.trans tbody tr');
    const all = await rowGids();
    for (const g of [okGid, rbGid, retryGid]) assert.ok(all.includes(g), `${g} listed`);
    await shot('list');

    await page.selectOption('select[name=status]', 'failed');
    await page.click('form.filters button[type=submit]');
    await page.waitForURL(/status=failed/);
    await waitFor('only failed rows', async () => {
      const g = await rowGids();
      return g.includes(rbGid) && !g.includes(okGid) && !g.includes(retryGid);
    });
    const badges = await page.$$eval('table.trans tbody td:nth-child(3) .badge', (b: El[]) =>
      b.map((x) => x.textContent),
    );
    assert.ok(
      badges.every((b: string | null) => b === 'failed'),
      badges.join(),
    );

    await page.click('form.filters button:has-text("Reset")');
    await page.fill('input[name=gidPrefix]', `${run}-retry`);
    await page.click('form.filters button[type=submit]');
    await page.waitForURL(/gidPrefix=/);
    await waitFor('only the retrying one', async () => (await rowGids()).join() === retryGid);

    // a time range that ends before they were created: none of them
    await page.click('form.filters button:has-text("Reset")');
    await page.fill('input[name=to]', '2001-01-01T00:00');
    await page.click('form.filters button[type=submit]');
    await page.waitForURL(/createTimeEnd=/);
    await page.waitForSelector('main .empty:has-text("No transactions match.")');
    assert.equal(new URL(page.url()).searchParams.get('createTimeEnd'), String(new Date('2001-01-01T00:00').getTime()));
  });

  it('shows a rolled-back saga with its branches, payloads and rollback reason', async () => {
    await page.goto(`${dtx.base}/admin/trans/${encodeURIComponent(rbGid)}`);
    await page.waitForSelector('ol.timeline');
    assert.equal(await textOf('h1 .badge'), 'failed');
    assert.match(await textOf('.rollback-reason'), /TransIn return failed: .*Insufficient balance/);
    const branches = await page.$$eval('li.step .op-row', (l: El[]) => l.map((x) => x.dataset.branch));
    assert.deepEqual(branches, ['01/action', '01/compensate', '02/action', '02/compensate']);
    const failed = await page.$$eval('.op-row.failed', (l: El[]) => l.map((x) => x.dataset.branch));
    assert.deepEqual(failed, ['02/action']);
    const payload = await page.$eval('.op-row pre.payload', (p: El) => ({ cls: p.className, text: p.textContent }));
    assert.equal(payload.cls, 'payload json');
    assert.equal(payload.text, '{\n  "amount": 30\n}');
    assert.equal(await page.$('button.force-stop'), null, 'no force stop on a finished transaction');
    await page.click('.op-row[data-branch="02/action"] summary');
    await shot('detail-rolled-back');
  });

  it('shows a delayed compensation (compensate_delay) waiting with its due time, then done', async () => {
    // submitted here, after the cron steps of before(): those move the clock past its due time
    const r = await call(
      'POST',
      `${dtx.api}/submit`,
      sagaBody(busi, delayGid, {
        wait_result: true,
        steps: [
          { action: `${busi.url}/TransOut`, compensate: `${busi.url}/TransOutRevert`, compensate_delay: 600 },
          { action: `${busi.url}/TransIn`, compensate: `${busi.url}/TransInRevert` },
        ],
      }),
    );
    assert.equal(r.status, 409, r.text);
    const due = (await dtx.query(delayGid)).transaction.compensate_due as (string | null)[];
    assert.equal(typeof due[0], 'string');
    const row = (branch: string) => page.locator(`.op-row[data-branch="${branch}"]`);

    await page.goto(`${dtx.base}/admin/trans/${encodeURIComponent(delayGid)}`);
    await page.waitForSelector('ol.timeline');
    assert.equal(await textOf('h1 .badge'), 'aborting');
    assert.equal(await row('01/compensate').locator('.compensate-delay').textContent(), 'delayed 10 min');
    assert.equal(await row('01/compensate').locator('.badge.waiting').textContent(), 'waiting');
    assert.equal(await row('01/compensate').locator('.compensate-due time').getAttribute('datetime'), due[0]);
    assert.match((await row('01/compensate').getAttribute('class')) ?? '', /\bprepared\b/);
    // the step without a delay was compensated at once and shows none; actions never show one
    assert.match((await row('02/compensate').getAttribute('class')) ?? '', /\bsucceed\b/);
    for (const b of ['02/compensate', '01/action', '02/action']) {
      assert.equal(await row(b).locator('.compensate-delay, .badge.waiting, .compensate-due').count(), 0, b);
    }
    await shot('detail-delayed-compensation');

    // past the due time the compensation runs: still "delayed 10 min", no longer waiting
    await dtx.cronFor(delayGid, 601, 700);
    assert.deepEqual(busi.callsOf(delayGid).slice(-1), ['TransOutRevert compensate']);
    await page.reload();
    await page.waitForSelector('h1 .badge:has-text("failed")');
    assert.match((await row('01/compensate').getAttribute('class')) ?? '', /\bsucceed\b/);
    assert.equal(await row('01/compensate').locator('.compensate-delay').textContent(), 'delayed 10 min');
    assert.equal(await row('01/compensate').locator('.badge.waiting, .compensate-due').count(), 0);
  });

  it("shows a workflow's result and its recorded steps", async () => {
    const gid = gidFor(`${run}-wf`);
    const post = async (route: string, body: Record<string, unknown>) => {
      const r = await call('POST', `${dtx.api}/${route}`, body);
      assert.equal(r.status, 200, r.text);
    };
    await post('prepareWorkflow', {
      gid,
      trans_type: 'workflow',
      custom_data: JSON.stringify({ name: 'transfer', data: Buffer.from('{"amount":30}').toString('base64') }),
    });
    await post('registerBranch', {
      gid,
      trans_type: 'workflow',
      branch_id: '01',
      op: 'action',
      status: 'succeed',
      data: '{"debited":30}',
    });
    const result = Buffer.from('{"ok":true}').toString('base64');
    await post('submit', { gid, trans_type: 'workflow', req_extra: { status: 'succeed', result } });
    await page.goto(`${dtx.base}/admin/trans/${encodeURIComponent(gid)}`);
    await page.waitForSelector('ol.timeline');
    assert.equal(await textOf('h1 .badge'), 'succeed');
    assert.equal(await textOf('pre.workflow-result'), '{\n  "ok": true\n}');
    assert.match((await page.getAttribute('.op-row[data-branch="01/action"]', 'class')) ?? '', /\bsucceed\b/);
    await shot('detail-workflow');
  });

  it('masks secret branch_headers and shows a payload that is not JSON as hex', async () => {
    await page.goto(`${dtx.base}/admin/trans/${encodeURIComponent(okGid)}`);
    await page.waitForSelector('ol.timeline');
    const text = await textOf('main');
    assert.ok(!text.includes('s3cret-token'), 'the token is not shown');
    assert.match(text, /Authorization: \*\*\*/);
    assert.match(text, /X-Tenant: acme/);
    await page.click('.op-row[data-branch="02/action"] summary');
    const hex = await page.$eval('.op-row[data-branch="02/action"] pre.payload', (p: El) => ({
      cls: p.className,
      text: p.textContent,
    }));
    assert.equal(hex.cls, 'payload hex', hex.text ?? '');
    assert.equal(hex.text, '000000  70 6c 61 69 6e 20 74 65 78 74'); // "plain text"
  });

  it('lists the saga that keeps failing in the Stuck view with its reason', async () => {
    const stuck = (await call('GET', `${dtx.api}/stuck`)).json.transactions as { gid: string; stuck_reason: string }[];
    const listed = stuck.find((t) => t.gid === retryGid);
    assert.equal(listed?.stuck_reason, 'attempts');
    await page.goto(`${dtx.base}/admin/stuck`);
    await page.waitForSelector(`table.trans tbody tr[data-gid="${retryGid}"]`);
    const row = page.locator(`table.trans tbody tr[data-gid="${retryGid}"]`);
    assert.match((await row.locator('td:nth-child(3)').textContent()) ?? '', /submitted\s*stuck/);
    const why = (await row.locator('td.why-stuck').textContent()) ?? '';
    assert.equal(why, `${busi.callsOf(retryGid).length} failed attempts in a row`);
    for (const g of [okGid, rbGid]) assert.equal(await page.$(`tr[data-gid="${g}"]`), null, `${g} is not stuck`);
    await shot('stuck');
  });

  it('shows the retrying saga and its attempts, and force-stops it after confirmation', async () => {
    const q = await dtx.query(retryGid);
    const calls = busi.callsOf(retryGid).length;
    const action = q.branches.find((b: { branch_id: string; op: string }) => b.branch_id === '01' && b.op === 'action');
    assert.equal(action.attempts, calls, 'the API counts every call');
    assert.equal(action.last_result, 'ERROR');
    assert.equal(q.transaction.failed_attempts, calls);
    assert.equal(q.transaction.stuck, true);
    await page.goto(`${dtx.base}/admin/trans/${encodeURIComponent(retryGid)}`);
    await page.waitForSelector('ol.timeline');
    assert.equal(await textOf('h1 .badge.submitted'), 'submitted');
    assert.equal(await textOf('h1 .badge.stuck'), 'stuck (attempts)');
    assert.ok(await page.$('dl.kv dt:has-text("Next retry")'));
    assert.equal(await textOf('dl.kv dt:has-text("Failed attempts") + dd'), String(calls));
    assert.match(await textOf('dl.kv dt:has-text("Last error") + dd'), /500.*payment service down/s);
    const li = page.locator('.op-row[data-branch="01/action"]');
    const shown = Number(/^(\d+) attempts$/.exec((await li.locator('.attempts').textContent()) ?? '')?.[1]);
    assert.ok(shown >= action.attempts, `the page shows ${shown} attempts, the API ${action.attempts}`);
    assert.equal((await li.locator('.last-result .badge').textContent()) ?? '', 'ERROR');
    assert.match((await li.locator('.lasterr').textContent()) ?? '', /500/);
    assert.match((await li.locator('.lasterr').textContent()) ?? '', /payment service down: connection pool exhausted/);
    await shot('detail-retrying');

    // retry now: the next attempt is due at once
    const before = Date.parse(q.transaction.next_cron_time);
    await page.click('button.retry');
    await page.click('dialog.confirm [data-confirm]');
    await waitFor('next retry moved earlier', async () => {
      const t = (await dtx.query(retryGid)).transaction;
      return Date.parse(t.next_cron_time) < before;
    });

    // force stop, cancelled first: nothing happens
    await page.click('button.force-stop');
    await page.waitForSelector('dialog.confirm[open]');
    await shot('confirm');
    await page.click('dialog.confirm button:has-text("Cancel")');
    assert.equal(await dtx.status(retryGid), 'submitted');
    // then confirm
    await page.click('button.force-stop');
    await page.click('dialog.confirm [data-confirm]');
    await page.waitForSelector('h1 .badge:has-text("failed")');
    assert.equal(await dtx.status(retryGid), 'failed');
    assert.equal(await page.$('button.force-stop'), null);
  });

  it('adds a subscriber to a topic, removes it and deletes the topic', async () => {
    const topic = `${run}-orders`;
    const url = `${busi.url}/OnOrder`;
    await page.goto(`${dtx.base}/admin/topics`);
    await page.waitForSelector('form.subscribe');
    await page.fill('form.subscribe input[name=topic]', topic);
    await page.fill('form.subscribe input[name=url]', url);
    await page.fill('form.subscribe input[name=remark]', 'order events');
    await page.click('form.subscribe button[type=submit]');
    await page.waitForSelector(`.topic[data-topic="${topic}"] tr[data-url="${url}"]`);
    const kv = await call('GET', `${dtx.api}/queryKV?cat=topics&key=${topic}`);
    assert.deepEqual(JSON.parse(kv.json.kv[0].v), [{ url, remark: 'order events' }]);
    await shot('topics');

    await page.click(`.topic[data-topic="${topic}"] button.unsubscribe`);
    await page.click('dialog.confirm [data-confirm]');
    await page.waitForSelector(`.topic[data-topic="${topic}"] >> text=No subscribers.`);
    await page.click(`.topic[data-topic="${topic}"] button.delete-topic`);
    await page.click('dialog.confirm [data-confirm]');
    await waitFor('topic gone from the page', async () => (await page.$(`.topic[data-topic="${topic}"]`)) === null);
    assert.deepEqual((await call('GET', `${dtx.api}/queryKV?cat=topics&key=${topic}`)).json.kv, []);
  });

  it('works under an AdminBasePath: page, assets and links below it', async () => {
    const other = await startTestDtx({ AdminBasePath: '/ops/dtx' });
    try {
      await page.goto(`${other.base}/ops/dtx/admin/transactions`);
      await page.waitForSelector('main .empty:has-text("No transactions match.")');
      await page.click('nav a[data-nav=topics]');
      await page.waitForSelector('form.subscribe');
      assert.equal(new URL(page.url()).pathname, '/ops/dtx/admin/topics');
      await page.goBack();
      await page.waitForSelector('main h1:has-text("Transactions")');
      assert.equal(new URL(page.url()).pathname, '/ops/dtx/admin/transactions');
    } finally {
      await other.stop();
    }
  });

  it('shows the overview and the server info', async () => {
    await page.goto(`${dtx.base}/admin/overview`);
    await page.waitForSelector('main h1:has-text("Overview")');
    const metrics = await call('GET', `${dtx.base}/api/metrics`);
    if (metrics.status === 200) {
      await page.waitForSelector('[data-card="Stuck"]');
    } else {
      await page.waitForSelector('.notice:has-text("no metrics")');
    }
    await shot('overview');
    await page.click('nav a[data-nav=server]');
    await page.waitForSelector('.server-info');
    const text = await textOf('.server-info');
    assert.match(text, new RegExp(`HTTP port${dtx.server.httpPort}`));
    assert.match(text, /Store(sqlite|postgres|mysql|redis)/);
    await shot('server');
  });

  it('live overview: parses /api/metrics in the browser, shows rates, unfinished by status, and n/a when absent', async () => {
    // a loopback stand-in for /api/metrics (this build's real one is tested above when it exists): counters grow
    const app = Fastify();
    registerAdminUi(app, { basePath: '' });
    let scrapes = 0;
    app.get('/api/metrics', async (_req, reply) => {
      scrapes += 1;
      const n = scrapes * 30;
      reply.type('text/plain; version=0.0.4');
      return [
        '# HELP dtx_transactions_finished_total Transactions finished.',
        '# TYPE dtx_transactions_finished_total counter',
        `dtx_transactions_finished_total{trans_type="saga",outcome="succeed"} ${n}`,
        `dtx_transactions_finished_total{trans_type="saga",outcome="failed"} ${scrapes}`,
        `dtx_branch_failures_total{trans_type="saga",op="action",reason="error"} ${2 * scrapes}`,
        'dtx_unfinished_transactions{trans_type="saga",status="submitted"} 4',
        'dtx_unfinished_transactions{trans_type="msg",status="prepared"} 1',
        'dtx_unfinished_transactions{trans_type="tcc",status="submitted"} 3',
        'dtx_stuck_transactions{reason="attempts"} 2',
        'dtx_stuck_transactions{reason="age"} 1',
        'dtx_retries_total{trans_type="saga"} 17',
        '',
      ].join('\n');
    });
    const base = await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      await page.goto(`${base}/admin/overview`);
      await page.waitForSelector('[data-card="Stuck"]');
      const card = async (k: string) => textOf(`[data-card="${k}"] .v`);
      assert.equal(await card('Stuck'), '3');
      assert.equal(await card('submitted'), '7');
      assert.equal(await card('prepared'), '1');
      assert.equal(await card('Retries'), '17');
      assert.equal(await card('Cron lag'), 'n/a');
      assert.equal(await card('Oldest unfinished'), 'n/a');
      // after the second scrape the rates are numbers (their size depends on the clock, so only their form)
      await waitFor('rates', async () => /^\d+(\.\d+)?$/.test(await card('Finished / s')), 15_000);
      assert.match(await card('Branch failures / s'), /^\d+(\.\d+)?$/);
      assert.ok(scrapes >= 2);
      await shot('overview-live');
    } finally {
      await app.close();
    }
  });

  it('against a dtx with Auth.AdminToken: the login form on the 401, wrong and client tokens refused, log in, log out', async () => {
    const admin = `adm-${run}-secret`;
    const client = `cli-${run}-secret`;
    const secured = await startTestDtx({ Auth: { ...DEFAULT_CONFIG.Auth, Token: client, AdminToken: admin } });
    const apiStatuses: number[] = [];
    const onResponse = (r: { url(): string; status(): number }) => {
      if (new URL(r.url()).pathname.startsWith('/api/')) apiStatuses.push(r.status());
    };
    page.on('response', onResponse);
    const stored = () => page.evaluate("sessionStorage.getItem('dtx-admin-token')");
    const loginError = () => textOf('dialog.login-dialog[open] .login-error:not([hidden])');
    const submitToken = async (t: string) => {
      await page.fill('dialog.login-dialog input[name=token]', t);
      await page.click('dialog.login-dialog button[type=submit]');
    };
    try {
      const gid = gidFor(`${run}-auth`);
      const submitted = await call('POST', `${secured.api}/submit`, sagaBody(busi, gid), {
        authorization: `Bearer ${client}`,
      });
      assert.equal(submitted.status, 200, submitted.text);

      await page.goto(`${secured.base}/admin/transactions`);
      await page.waitForSelector('dialog.login-dialog[open]');
      assert.ok(apiStatuses.includes(401), `the API answered ${apiStatuses.join()}`);
      assert.equal(await page.isVisible('dialog.login-dialog .login-error'), false, 'no error before a try');
      await shot('login');

      await submitToken('not-the-token');
      await page.waitForSelector('dialog.login-dialog[open] .login-error:not([hidden])');
      assert.match(await loginError(), /did not accept this token/);
      assert.equal(await stored(), null);
      await shot('login-wrong-token');

      await submitToken(client);
      await page.waitForSelector('dialog.login-dialog[open] .login-error:has-text("client token")');
      assert.match(await loginError(), /not.*admin token|needs an admin token/);
      assert.ok(apiStatuses.includes(403), `the API answered ${apiStatuses.join()}`);
      assert.equal(await stored(), null);
      await shot('login-client-token');

      await submitToken(admin);
      await page.waitForSelector(`table.trans tbody tr[data-gid="${gid}"]`);
      assert.equal(await page.$('dialog.login-dialog'), null, 'the form is gone');
      assert.equal(await stored(), admin);
      assert.ok(await page.isVisible('#logout'));
      await shot('logged-in');

      await page.click('#logout');
      await page.waitForSelector('dialog.login-dialog[open]');
      assert.equal(await stored(), null);
      assert.equal(await page.isVisible('dialog.login-dialog .login-error'), false);
      assert.equal(await page.$(`table.trans tbody tr[data-gid="${gid}"]`), null, 'the list is not shown');
      await shot('logged-out');

      // a saved token the server stopped accepting (rotated away): dropped, and the form says why
      await page.evaluate("sessionStorage.setItem('dtx-admin-token', 'rotated-away')");
      await page.reload();
      await page.waitForSelector('dialog.login-dialog[open] .login-error:has-text("no longer accepts")');
      assert.equal(await stored(), null);
    } finally {
      page.off('response', onResponse);
      await secured.stop();
    }
  });
});

function skipReason(): string | false {
  if (existsSync(CHROMIUM)) return false;
  return `no chromium at ${CHROMIUM}: install it with \`apt-get install -y chromium\` (scripts/services.sh does) or set DTX_CHROMIUM`;
}
