import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Busi } from './support/busi.js';
import { startTestDtx, type TestDtx } from './support/dtx.js';
import { call } from './support/http.js';
import { gidFor, msgBody, sagaBody } from './support/trans.js';

// Spec §15 api_test.go and topic_test.go: the admin and KV routes over real HTTP.
describe('HTTP API routes', () => {
  let dtx: TestDtx;
  let busi: Busi;
  before(async () => {
    dtx = await startTestDtx();
    busi = await new Busi().start();
  });
  after(async () => {
    await dtx.stop();
    await busi.stop();
  });
  const get = (path: string) => call('GET', `${dtx.api}/${path}`);

  it('version, ping, newGid and the 404 of an unknown route', async () => {
    const v = await get('version');
    assert.equal(v.status, 200);
    assert.match((v.json as { version: string }).version, /^v\d+\.\d+\.\d+/);
    const ping = await call('GET', `${dtx.base}/api/ping`);
    assert.deepEqual(ping.json, { msg: 'pong' });
    const gids = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const r = await get('newGid');
      const j = r.json as { gid: string; dtm_result: string };
      assert.equal(j.dtm_result, 'SUCCESS');
      assert.match(j.gid, /^[2-9A-HJ-NP-Za-km-z]{22}$/);
      gids.add(j.gid);
    }
    assert.equal(gids.size, 20);
    const nf = await get('nothingHere');
    assert.equal(nf.status, 404);
    assert.equal(nf.text, '404 page not found');
  });

  it('query: an unknown gid gives a null transaction and an empty branch array', async () => {
    const r = await get('query?gid=no-such-gid');
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { transaction: null, branches: [] });
    assert.equal((await get('query?gid=')).status, 400);
  });

  it('query renders DTM shapes: base64 bin_data, RFC 3339 times, options inline', async () => {
    const gid = gidFor('api-query');
    await call('POST', `${dtx.api}/submit`, sagaBody(busi, gid, { wait_result: true, branch_headers: { h: 'v' } }));
    const q = (await get(`query?gid=${gid}`)).json as {
      transaction: Record<string, unknown>;
      branches: Record<string, unknown>[];
    };
    const t = q.transaction;
    assert.equal(t.gid, gid);
    assert.equal(t.status, 'succeed');
    assert.equal(t.trans_type, 'saga');
    assert.equal(t.protocol, 'http');
    assert.equal(t.wait_result, true);
    assert.deepEqual(t.branch_headers, { h: 'v' });
    assert.equal(t.concurrent, false);
    assert.equal(typeof t.id, 'number');
    for (const k of ['create_time', 'update_time', 'finish_time', 'next_cron_time']) {
      assert.match(String(t[k]), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/, k);
    }
    assert.deepEqual(JSON.parse(String(t.options)), {
      wait_result: true,
      branch_headers: { h: 'v' },
      concurrent: false,
    });
    assert.equal(q.branches.length, 4);
    assert.equal(Buffer.from(String(q.branches[1]!.bin_data), 'base64').toString(), '{"amount":30}');
    assert.deepEqual(
      q.branches.map((b) => `${b.branch_id}:${b.op}`),
      ['01:compensate', '01:action', '02:compensate', '02:action'],
    );
  });

  it('all: paging by cursor and the filters', async () => {
    const gids = [gidFor('api-all'), gidFor('api-all'), gidFor('api-all')];
    for (const gid of gids) await call('POST', `${dtx.api}/submit`, { ...msgBody(busi, gid), wait_result: true });
    const p1 = (await get('all?limit=1')).json as { transactions: { gid: string }[]; next_position: string };
    assert.equal(p1.transactions.length, 1);
    assert.notEqual(p1.next_position, '');
    const one = (await get(`all?gid=${gids[0]}`)).json as { transactions: { gid: string }[] };
    assert.deepEqual(
      one.transactions.map((t) => t.gid),
      [gids[0]],
    );
    assert.equal(((await get('all?gid=missing')).json as { transactions: unknown }).transactions, null);
    const p2 = (await get(`all?limit=1&position=${p1.next_position}`)).json as {
      transactions: { gid: string }[];
      next_position: string;
    };
    assert.notEqual(p2.next_position, p1.next_position);
    assert.notEqual(p2.transactions[0]!.gid, p1.transactions[0]!.gid);
    const rest = (await get(`all?limit=1000&position=${p2.next_position}`)).json as { next_position: string };
    assert.equal(rest.next_position, '');
    const now = Date.now();
    const filtered = (
      await get(`all?status=succeed&transType=msg&createTimeStart=${now - 60_000}&createTimeEnd=${now + 60_000}`)
    ).json as {
      transactions: { status: string; trans_type: string }[];
      next_position: string;
    };
    assert.ok(filtered.transactions.length >= 3);
    assert.ok(filtered.transactions.every((t) => t.status === 'succeed' && t.trans_type === 'msg'));
    assert.equal(filtered.next_position, '');
    const past = (await get(`all?createTimeStart=${now - 600_000}&createTimeEnd=${now - 300_000}`)).json as {
      transactions: unknown[];
      next_position: string;
    };
    assert.deepEqual(past, { transactions: [], next_position: '' });
  });

  it('topics: subscribe, unsubscribe and delete with their errors', async () => {
    const topic = gidFor('topic');
    const sub = (url: string, t = topic) => get(`subscribe?topic=${t}&url=${encodeURIComponent(url)}&remark=r`);
    const unsub = (url: string, t = topic) => get(`unsubscribe?topic=${t}&url=${encodeURIComponent(url)}`);
    assert.equal((await sub('http://a/1')).status, 200);
    const dup = await sub('http://a/1');
    // DTM answers 500 to these topic errors; dtx answers 4xx with DTM's text (a caller's mistake, not the server's)
    assert.equal(dup.status, 400);
    assert.deepEqual(dup.json, { message: 'this url exists' });
    assert.equal((await sub('http://a/1', '')).status, 400);
    assert.equal((await sub('')).status, 400);
    assert.equal((await sub('http://a/2')).status, 200);
    const kv = (await get(`queryKV?cat=topics&key=${topic}`)).json as { kv: { v: string; version: number }[] };
    assert.equal(kv.kv.length, 1);
    assert.deepEqual(JSON.parse(kv.kv[0]!.v), [
      { url: 'http://a/1', remark: 'r' },
      { url: 'http://a/2', remark: 'r' },
    ]);
    assert.equal((await unsub('http://a/1')).status, 200);
    const noUrl = await unsub('http://a/1');
    assert.deepEqual([noUrl.status, noUrl.json], [404, { message: 'no such an url ' }]);
    const noTopic = await unsub('http://a/1', 'no-such-topic');
    assert.deepEqual([noTopic.status, noTopic.json], [404, { message: 'no such a topic' }]);
    assert.equal((await unsub('http://a/2')).status, 200);
    const empty = await unsub('http://a/2');
    assert.deepEqual([empty.status, empty.json], [404, { message: 'this topic is empty' }]);
    const gone = await call('DELETE', `${dtx.api}/topic/no-such-topic`);
    assert.deepEqual([gone.status, gone.json], [404, { message: 'storage: NotFound' }]);
    assert.equal((await call('DELETE', `${dtx.api}/topic/${topic}`)).status, 200);
    assert.deepEqual((await get(`queryKV?cat=topics&key=${topic}`)).json, { kv: [] });
  });

  it('topics: concurrent subscribes keep the version arithmetic (2N after N subs and N unsubs)', async () => {
    const topic = gidFor('topic-con');
    const urls = Array.from({ length: 20 }, (_, i) => `http://c/${i}`);
    const results = await Promise.all(urls.map((u) => get(`subscribe?topic=${topic}&url=${encodeURIComponent(u)}`)));
    const ok = urls.filter((_, i) => results[i]!.status === 200);
    assert.ok(ok.length >= 1);
    for (const u of ok)
      assert.equal((await get(`unsubscribe?topic=${topic}&url=${encodeURIComponent(u)}`)).status, 200);
    const kv = (await get(`queryKV?cat=topics&key=${topic}`)).json as { kv: { version: number }[] };
    assert.equal(kv.kv[0]!.version, 2 * ok.length);
  });

  it('scanKV pages topics by cursor', async () => {
    for (let i = 0; i < 3; i++) await get(`subscribe?topic=${gidFor('scan')}&url=http://s/1`);
    const p1 = (await get('scanKV?cat=topics&limit=1')).json as { kv: { k: string }[]; next_position: string };
    assert.equal(p1.kv.length, 1);
    assert.notEqual(p1.next_position, '');
    const p2 = (await get(`scanKV?cat=topics&limit=1&position=${p1.next_position}`)).json as {
      kv: { k: string }[];
      next_position: string;
    };
    assert.notEqual(p2.next_position, '');
    assert.notEqual(p2.next_position, p1.next_position);
    const rest = (await get(`scanKV?cat=topics&limit=1000&position=${p2.next_position}`)).json as {
      next_position: string;
    };
    assert.equal(rest.next_position, '');
  });

  it('resetCronTime reschedules far-away unfinished trans in batches', async () => {
    const gids = [gidFor('reset'), gidFor('reset'), gidFor('reset')];
    busi.setAlways('Slow', 'ONGOING');
    for (const gid of gids) {
      await call('POST', `${dtx.api}/submit`, {
        ...sagaBody(busi, gid),
        steps: [{ action: `${busi.url}/Slow`, compensate: '' }],
        payloads: ['{}'],
        retry_interval: 5000,
        wait_result: true,
      });
    }
    const r1 = (await get('resetCronTime?timeout=1000&limit=2')).json as {
      has_remaining: boolean;
      succeed_count: number;
    };
    assert.deepEqual(r1, { has_remaining: true, succeed_count: 2 });
    const r2 = (await get('resetCronTime?timeout=1000&limit=2')).json as {
      has_remaining: boolean;
      succeed_count: number;
    };
    assert.deepEqual(r2, { has_remaining: false, succeed_count: 1 });
    for (const gid of gids) {
      const next = Date.parse((await dtx.query(gid)).transaction.next_cron_time);
      assert.ok(next <= Date.now() + 1000, 'rescheduled to now');
    }
    busi.setAlways('Slow', undefined);
    for (const gid of gids) await call('POST', `${dtx.api}/forceStop`, { gid });
  });

  it('resetNextCronTime moves one trans to now', async () => {
    const gid = gidFor('reset-next');
    await call('POST', `${dtx.api}/submit`, sagaBody(busi, gid, { wait_result: true }));
    const before = (await dtx.query(gid)).transaction;
    const r = await call('POST', `${dtx.api}/resetNextCronTime`, { gid });
    assert.equal(r.status, 200);
    const after = (await dtx.query(gid)).transaction;
    assert.notEqual(after.next_cron_time, before.next_cron_time);
    assert.ok(Date.parse(after.next_cron_time) < Date.now() + 3000);
    assert.equal((await call('POST', `${dtx.api}/resetNextCronTime`, { gid: 'missing' })).status, 400);
  });
});
