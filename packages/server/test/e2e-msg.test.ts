import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { Busi } from './support/busi.js';
import { startTestDtx, type TestDtx } from './support/dtx.js';
import { call } from './support/http.js';
import { waitFor } from './support/poll.js';
import { gidFor, msgBody } from './support/trans.js';

// Spec §15 msg scenarios (msg_test.go, msg_options_test.go, msg_delay_test.go, msg_webhook_test.go).
describe('msg over HTTP', () => {
  let dtx: TestDtx;
  let busi: Busi;
  before(async () => {
    busi = await new Busi().start();
    dtx = await startTestDtx({ AlertWebHook: `${busi.url}/AlertWebHook`, ConfigUpdateInterval: 1 });
    const sub = (url: string) =>
      call('GET', `${dtx.api}/subscribe?topic=http_trans&url=${encodeURIComponent(url)}&remark=test`);
    assert.equal((await sub(`${busi.url}/TransOut`)).status, 200);
    assert.equal((await sub(`${busi.url}/TransIn`)).status, 200);
  });
  beforeEach(() => busi.reset());
  after(async () => {
    await dtx.stop();
    await busi.stop();
  });

  const post = (route: string, body: Record<string, unknown>) => call('POST', `${dtx.api}/${route}`, body);

  it('normal: a topic expands to its subscribers; async submit answers at once and delivers', async () => {
    const gid = gidFor('msg-normal');
    const r = await post('submit', {
      ...msgBody(busi, gid),
      steps: [{ action: 'topic://http_trans' }],
      payloads: ['{"amount":30}'],
    });
    assert.equal(r.status, 200, r.text);
    await waitFor('succeed', async () => (await dtx.status(gid)) === 'succeed');
    const q = await dtx.query(gid);
    assert.deepEqual(
      q.branches.map((b: { branch_id: string; status: string }) => `${b.branch_id} ${b.status}`),
      ['01-01 succeed', '01-02 succeed'],
    );
    assert.deepEqual(busi.callsOf(gid), ['TransOut action', 'TransIn action']);
  });

  it('timeout success: the back-check decides a prepared msg after its timeout', async () => {
    const gid = gidFor('msg-timeout-success');
    assert.equal((await post('prepare', msgBody(busi, gid))).status, 200);
    busi.setOnce('QueryPrepared', 'ONGOING');
    await dtx.cronFor(gid, 180);
    assert.equal(await dtx.status(gid), 'prepared');
    busi.setOnce('TransIn', 'ONGOING');
    await dtx.cronFor(gid, 180);
    assert.equal(await dtx.status(gid), 'submitted');
    await dtx.cronFor(gid);
    assert.equal(await dtx.status(gid), 'succeed');
    assert.deepEqual(await dtx.branchStatuses(gid), ['succeed', 'succeed']);
    const check = busi.calls.find((c) => c.query.gid === gid && c.name === 'QueryPrepared')!;
    assert.equal(check.method, 'GET');
    assert.deepEqual(check.query, { gid, trans_type: 'msg', branch_id: '00', op: 'msg' });
  });

  it('timeout failed: a back-check FAILURE fails the msg without delivering', async () => {
    const gid = gidFor('msg-timeout-failed');
    await post('prepare', msgBody(busi, gid));
    busi.setOnce('QueryPrepared', 'ONGOING');
    await dtx.cronFor(gid, 360);
    assert.equal(await dtx.status(gid), 'prepared');
    busi.setOnce('QueryPrepared', 'FAILURE');
    await dtx.cronFor(gid, 180);
    assert.equal(await dtx.status(gid), 'failed');
    assert.deepEqual(await dtx.branchStatuses(gid), ['prepared', 'prepared']);
    assert.deepEqual(busi.callsOf(gid), ['QueryPrepared msg', 'QueryPrepared msg']);
  });

  it('abnormal: prepare is idempotent; prepare after success is refused', async () => {
    const gid = gidFor('msg-abnormal');
    assert.equal((await post('prepare', msgBody(busi, gid))).status, 200);
    assert.equal((await post('prepare', msgBody(busi, gid))).status, 200);
    assert.equal((await post('submit', { ...msgBody(busi, gid), wait_result: true })).status, 200);
    assert.equal(await dtx.status(gid), 'succeed');
    const r = await post('prepare', msgBody(busi, gid));
    assert.equal(r.status, 409);
    assert.match(r.text, /current status 'succeed', cannot prepare/);
  });

  it('an unknown topic is refused with "topic not found"', async () => {
    const gid = gidFor('msg-no-topic');
    const r = await post('submit', {
      ...msgBody(busi, gid),
      steps: [{ action: 'topic://no_such_topic' }],
      payloads: ['{}'],
    });
    assert.notEqual(r.status, 200);
    assert.match(r.text, /topic not found/);
    assert.equal(await dtx.status(gid), '');
  });

  it('the default timeout (35 s) gates the back-check', async () => {
    const gid = gidFor('msg-options-timeout');
    await post('prepare', msgBody(busi, gid));
    await dtx.cronFor(gid, 0);
    assert.equal(await dtx.status(gid), 'prepared');
    assert.deepEqual(busi.callsOf(gid), [], 'no back-check before the timeout');
    await dtx.cronFor(gid, 60);
    assert.equal(await dtx.status(gid), 'succeed');
  });

  it('timeout_to_fail sets the back-check timeout', async () => {
    const gid = gidFor('msg-options-timeout-custom');
    await post('prepare', msgBody(busi, gid, { timeout_to_fail: 120 }));
    await dtx.cronFor(gid, 0);
    assert.equal(await dtx.status(gid), 'prepared');
    await dtx.cronFor(gid, 60);
    assert.equal(await dtx.status(gid), 'prepared');
    await dtx.cronFor(gid, 180);
    assert.equal(await dtx.status(gid), 'succeed');
  });

  it('concurrent delivery', async () => {
    const gid = gidFor('msg-concurrent');
    const r = await post('submit', { ...msgBody(busi, gid), concurrent: true, wait_result: true });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(await dtx.branchStatuses(gid), ['succeed', 'succeed']);
  });

  it('a branch FAILURE is retried, never rolled back', async () => {
    const gid = gidFor('msg-failure-retried');
    busi.setOnce('TransIn', 'FAILURE');
    const r = await post('submit', { ...msgBody(busi, gid), wait_result: true });
    assert.equal(r.status, 425, r.text); // still submitted, will be retried (DTM: 500)
    assert.equal(await dtx.status(gid), 'submitted');
    await dtx.cronFor(gid, 0, 1000);
    assert.equal(await dtx.status(gid), 'succeed');
  });

  it('delay: delivery waits until the delay has passed', async () => {
    const gid = gidFor('msg-delay');
    const r = await post('submit', { ...msgBody(busi, gid), custom_data: '{"delay":10}', wait_result: true });
    assert.equal(r.status, 425, r.text); // wait_result and not finished yet: ONGOING
    assert.equal(await dtx.status(gid), 'submitted');
    assert.deepEqual(await dtx.branchStatuses(gid), ['prepared', 'prepared']);
    assert.deepEqual(busi.callsOf(gid), []);
    const nextRun = Date.parse((await dtx.query(gid)).transaction.next_cron_time);
    const created = Date.parse((await dtx.query(gid)).transaction.create_time);
    assert.ok(
      nextRun - created >= 10_000 && nextRun - created < 11_000,
      `next run ${nextRun - created} ms after create`,
    );
    await dtx.cronFor(gid, 12, 12);
    assert.equal(await dtx.status(gid), 'succeed');
    assert.deepEqual(await dtx.branchStatuses(gid), ['succeed', 'succeed']);
  });

  it('webhook: the third consecutive failure calls the alert webhook', async () => {
    const gid = gidFor('msg-webhook');
    busi.setOnce('TransIn', 'ERROR', 'ERROR', 'ERROR');
    await post('submit', { ...msgBody(busi, gid), wait_result: true });
    await dtx.cronFor(gid, 0, 1000);
    assert.equal(busi.calls.filter((c) => c.name === 'AlertWebHook').length, 0);
    await dtx.cronFor(gid, 0, 1000);
    const alert = await waitFor('alert', () => busi.calls.find((c) => c.name === 'AlertWebHook'));
    const payload = JSON.parse(alert.body);
    assert.equal(payload.gid, gid);
    assert.equal(payload.status, 'submitted');
    assert.equal(payload.retry_count, 3);
    assert.match(payload.branch, /TransIn$/);
    assert.match(payload.error, /500/);
    await dtx.cronFor(gid, 0, 1000);
    assert.equal(await dtx.status(gid), 'succeed');
  });

  it('webhook errors do not disturb processing', async () => {
    const gid = gidFor('msg-webhook-error');
    busi.setAlways('AlertWebHook', 'ERROR');
    busi.setOnce('TransIn', 'ERROR', 'ERROR', 'ERROR');
    await post('submit', { ...msgBody(busi, gid), wait_result: true });
    await dtx.cronFor(gid, 0, 1000);
    await dtx.cronFor(gid, 0, 1000);
    await waitFor('alert attempt', () => busi.calls.some((c) => c.name === 'AlertWebHook' && c.body.includes(gid)));
    await dtx.cronFor(gid, 0, 1000);
    assert.equal(await dtx.status(gid), 'succeed');
  });

  it('abort of a prepared msg fails it without calls', async () => {
    const gid = gidFor('msg-abort');
    await post('prepare', msgBody(busi, gid));
    const r = await post('abort', { gid, trans_type: 'msg' });
    assert.equal(r.status, 200, r.text);
    assert.equal(await dtx.status(gid), 'failed');
    assert.deepEqual(busi.callsOf(gid), []);
  });
});
