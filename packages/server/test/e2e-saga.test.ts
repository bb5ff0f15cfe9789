import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { Busi } from './support/busi.js';
import { startTestDtx, type TestDtx } from './support/dtx.js';
import { call } from './support/http.js';
import { waitFor } from './support/poll.js';
import { gidFor, sagaBody } from './support/trans.js';

// Spec §15 saga scenarios (test/saga_test.go, saga_options_test.go, saga_concurrent_test.go,
// saga_compatible_test.go) against a real dtx over HTTP and a real HTTP branch service.
describe('saga over HTTP', () => {
  let dtx: TestDtx;
  let busi: Busi;
  before(async () => {
    dtx = await startTestDtx();
    busi = await new Busi().start();
  });
  beforeEach(() => busi.reset());
  after(async () => {
    await dtx.stop();
    await busi.stop();
  });

  const submit = (body: Record<string, unknown>) => call('POST', `${dtx.api}/submit`, body);
  const finished = (gid: string, status: string) =>
    waitFor(`${gid} ${status}`, async () => (await dtx.status(gid)) === status);

  it('normal: both actions run in order and the saga succeeds', async () => {
    const gid = gidFor('saga-normal');
    const r = await submit(sagaBody(busi, gid));
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { dtm_result: 'SUCCESS' });
    await finished(gid, 'succeed');
    assert.deepEqual(await dtx.branchStatuses(gid), ['prepared', 'succeed', 'prepared', 'succeed']);
    assert.deepEqual(busi.callsOf(gid), ['TransOut action', 'TransIn action']);
    const q = await dtx.query(gid);
    assert.equal(q.transaction.rollback_reason, undefined);
    assert.ok(q.transaction.finish_time);
    const c = busi.calls.find((x) => x.query.gid === gid && x.name === 'TransIn')!;
    assert.equal(c.method, 'POST');
    assert.deepEqual(c.query, { gid, trans_type: 'saga', branch_id: '02', op: 'action' });
    assert.equal(c.body, '{"amount":30}');
    assert.equal(c.headers['content-type'], 'application/json');
  });

  it('rollback: an action FAILURE compensates the done steps in reverse and keeps the reason', async () => {
    const gid = gidFor('saga-rollback');
    busi.setOnce('TransIn', { status: 409, body: '{"error":"reason:Insufficient balance"}' });
    await submit(sagaBody(busi, gid));
    await finished(gid, 'failed');
    assert.deepEqual(await dtx.branchStatuses(gid), ['succeed', 'succeed', 'succeed', 'failed']);
    assert.deepEqual(busi.callsOf(gid), [
      'TransOut action',
      'TransIn action',
      'TransInRevert compensate',
      'TransOutRevert compensate',
    ]);
    const q = await dtx.query(gid);
    assert.match(q.transaction.rollback_reason, /Insufficient balance/);
    assert.match(q.transaction.rollback_reason, /^url:http.*\/TransIn return failed: .* FAILURE$/);
    assert.ok(q.transaction.rollback_time);
  });

  it('ongoing: an ONGOING action leaves it submitted; the cron finishes it', async () => {
    const gid = gidFor('saga-ongoing');
    busi.setOnce('TransOut', 'ONGOING');
    await submit(sagaBody(busi, gid, { wait_result: true }));
    assert.equal(await dtx.status(gid), 'submitted');
    assert.deepEqual(await dtx.branchStatuses(gid), ['prepared', 'prepared', 'prepared', 'prepared']);
    assert.equal(await dtx.cronOnce(), gid);
    assert.equal(await dtx.status(gid), 'succeed');
    assert.equal((await dtx.query(gid)).transaction.rollback_reason, undefined);
  });

  it('failed compensation is retried by the cron until the saga fails', async () => {
    const gid = gidFor('saga-failed');
    busi.setOnce('TransIn', 'FAILURE');
    busi.setOnce('TransOutRevert', 'ERROR');
    const r = await submit(sagaBody(busi, gid, { wait_result: true }));
    assert.equal(r.status, 409);
    assert.equal(await dtx.status(gid), 'aborting');
    assert.equal(await dtx.cronOnce(), gid);
    assert.equal(await dtx.status(gid), 'failed');
    assert.deepEqual(await dtx.branchStatuses(gid), ['succeed', 'succeed', 'succeed', 'failed']);
    assert.deepEqual(busi.callsOf(gid).slice(-2), ['TransOutRevert compensate', 'TransOutRevert compensate']);
  });

  it('abnormal: resubmitting a submitted saga re-processes it; after it finished it is refused', async () => {
    const gid = gidFor('saga-abnormal');
    busi.setOnce('TransOut', 'ONGOING');
    const body = sagaBody(busi, gid, { wait_result: true });
    const r1 = await submit(body);
    assert.equal(r1.status, 425, r1.text); // wait_result and still submitted → ONGOING (DTM: a false FAILURE)
    assert.equal((r1.json as { dtm_result: string }).dtm_result, 'ONGOING');
    assert.equal(await dtx.status(gid), 'submitted');
    const r2 = await submit(body);
    assert.equal(r2.status, 200, r2.text);
    assert.equal(await dtx.status(gid), 'succeed');
    const r3 = await submit(body);
    assert.equal(r3.status, 409);
    assert.match((r3.json as { message: string }).message, /current status 'succeed', cannot sumbmit/);
  });

  it('empty URLs succeed without a call', async () => {
    const gid = gidFor('saga-empty');
    const body = sagaBody(busi, gid, { wait_result: true });
    (body.steps as Record<string, string>[])[1] = { action: '', compensate: '' };
    const r = await submit(body);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(await dtx.branchStatuses(gid), ['prepared', 'succeed', 'prepared', 'succeed']);
    assert.deepEqual(busi.callsOf(gid), ['TransOut action']);
  });

  it('retry_interval: an ERROR backs the cron off to twice the interval', async () => {
    const gid = gidFor('saga-retry-error');
    busi.setOnce('TransOut', 'ERROR');
    const r = await submit(sagaBody(busi, gid, { retry_interval: 150, wait_result: true }));
    assert.equal(r.status, 425, r.text);
    assert.match((r.json as { message: string }).message, /still submitted \(last branch error: http status 500/);
    const q = await dtx.query(gid);
    assert.equal(q.transaction.next_cron_interval, 300);
    assert.equal(await dtx.cronOnce(0, 180), '', 'not due within 180 s');
    assert.equal(await dtx.cronOnce(0, 360), gid);
    assert.equal(await dtx.status(gid), 'succeed');
    assert.equal((await dtx.query(gid)).transaction.next_cron_interval, 150, 'success resets the interval');
  });

  it('retry_interval with ONGOING backs off like an error (DTM keeps the interval)', async () => {
    const gid = gidFor('saga-retry-ongoing');
    busi.setOnce('TransOut', 'ONGOING');
    await submit(sagaBody(busi, gid, { retry_interval: 150, wait_result: true }));
    assert.equal((await dtx.query(gid)).transaction.next_cron_interval, 300);
    assert.equal(await dtx.cronOnce(0, 180), '', 'not due within 180 s');
    assert.equal(await dtx.cronOnce(0, 360), gid);
    assert.equal(await dtx.status(gid), 'succeed');
    assert.deepEqual(await dtx.branchStatuses(gid), ['prepared', 'succeed', 'prepared', 'succeed']);
  });

  it('timeout_to_fail: a saga stuck past its timeout is compensated', async () => {
    const gid = gidFor('saga-timeout');
    busi.setOnce('TransOut', 'ONGOING');
    await submit(sagaBody(busi, gid, { timeout_to_fail: 1800, wait_result: true }));
    assert.equal(await dtx.status(gid), 'submitted');
    assert.equal(await dtx.cronOnce(3600, 1800), gid);
    assert.equal(await dtx.status(gid), 'failed');
    assert.deepEqual(await dtx.branchStatuses(gid), ['succeed', 'prepared', 'prepared', 'prepared']);
    assert.match((await dtx.query(gid)).transaction.rollback_reason, /^Timeout after \d+ seconds$/);
  });

  it('wait_result: final statuses are visible when submit returns', async () => {
    const gid = gidFor('saga-wait');
    const r = await submit(sagaBody(busi, gid, { wait_result: true, request_timeout: 6 }));
    assert.equal(r.status, 200);
    assert.equal(await dtx.status(gid), 'succeed');
  });

  it('wait_result with ONGOING replies ONGOING (DTM: FAILURE) and the cron finishes it', async () => {
    const gid = gidFor('saga-wait-ongoing');
    busi.setOnce('TransOut', 'ONGOING');
    const r = await submit(sagaBody(busi, gid, { wait_result: true }));
    assert.equal(r.status, 425);
    assert.equal((r.json as { dtm_result: string }).dtm_result, 'ONGOING');
    assert.match((r.json as { message: string }).message, /is still submitted .*will be retried/);
    assert.equal(await dtx.status(gid), 'submitted');
    await dtx.cronOnce();
    assert.equal(await dtx.status(gid), 'succeed');
  });

  it('wait_result with a rollback carries the branch reason', async () => {
    const gid = gidFor('saga-wait-rollback');
    busi.setOnce('TransIn', { status: 409, body: '{"error":"reason:Insufficient balance"}' });
    const r = await submit(sagaBody(busi, gid, { wait_result: true }));
    assert.equal(r.status, 409);
    assert.match((r.json as { message: string }).message, /Insufficient balance/);
    assert.ok(!(r.json as { message: string }).message.endsWith('FAILURE FAILURE'));
    assert.equal(await dtx.status(gid), 'failed');
  });

  it('branch_headers reach the branch, also on cron retries', async () => {
    const gid = gidFor('saga-headers');
    busi.setOnce('TransOut', 'ONGOING');
    await submit(sagaBody(busi, gid, { wait_result: true, branch_headers: { test_header: 'test' } }));
    await dtx.cronOnce();
    assert.equal(await dtx.status(gid), 'succeed');
    const outs = busi.calls.filter((c) => c.query.gid === gid);
    assert.equal(outs.length, 3);
    for (const c of outs) assert.equal(c.headers.test_header, 'test');
  });

  it('retry_limit: a flaky action is retried within the pass', async () => {
    const gid = gidFor('saga-retry-limit-yes');
    busi.setOnce('TransIn', 'ERROR', 'ERROR', 'ERROR');
    const r = await submit(sagaBody(busi, gid, { wait_result: true, retry_limit: 3 }));
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(await dtx.branchStatuses(gid), ['prepared', 'succeed', 'prepared', 'succeed']);
    assert.equal(busi.callsOf(gid).filter((c) => c === 'TransIn action').length, 4);
  });

  it('retry_limit exceeded aborts the saga with the exact reason', async () => {
    const gid = gidFor('saga-retry-limit-no');
    busi.setOnce('TransIn', 'ERROR', 'ERROR');
    const r = await submit(sagaBody(busi, gid, { wait_result: true, retry_limit: 1 }));
    assert.equal(r.status, 409);
    assert.equal(await dtx.status(gid), 'failed');
    assert.deepEqual(await dtx.branchStatuses(gid), ['succeed', 'succeed', 'succeed', 'prepared']);
    assert.equal(
      (await dtx.query(gid)).transaction.rollback_reason,
      'RetryCount is greater than RetryLimit, RetryLimit: 1',
    );
  });

  it('concurrent: both actions start together and the saga succeeds', async () => {
    const gid = gidFor('saga-con');
    const r = await submit(sagaBody(busi, gid, { wait_result: true, custom_data: '{"concurrent":true}' }));
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(await dtx.branchStatuses(gid), ['prepared', 'succeed', 'prepared', 'succeed']);
  });

  it('concurrent rollback with an ONGOING compensation ends failed after the cron', async () => {
    const gid = gidFor('saga-con-rollback');
    busi.setOnce('TransOut', 'FAILURE');
    busi.setOnce('TransOutRevert', 'ONGOING');
    await submit(sagaBody(busi, gid, { wait_result: true, custom_data: '{"concurrent":true}' }));
    assert.equal(await dtx.status(gid), 'aborting');
    await dtx.cronOnce();
    assert.equal(await dtx.status(gid), 'failed');
  });

  it('concurrent with orders: step 1 waits for step 0; a failing step 0 never starts step 1', async () => {
    const gid = gidFor('saga-con-order');
    busi.setOnce('TransOut', 'FAILURE');
    await submit(sagaBody(busi, gid, { wait_result: true, custom_data: '{"orders":{"1":[0]},"concurrent":true}' }));
    assert.equal(await dtx.status(gid), 'failed');
    assert.deepEqual(await dtx.branchStatuses(gid), ['succeed', 'failed', 'prepared', 'prepared']);
    assert.ok(!busi.callsOf(gid).includes('TransIn action'));
  });

  it('concurrent with orders: a failing later step compensates both', async () => {
    const gid = gidFor('saga-con-order2');
    busi.setOnce('TransIn', 'FAILURE');
    await submit(sagaBody(busi, gid, { wait_result: true, custom_data: '{"orders":{"1":[0]},"concurrent":true}' }));
    assert.equal(await dtx.status(gid), 'failed');
    assert.deepEqual(await dtx.branchStatuses(gid), ['succeed', 'succeed', 'succeed', 'failed']);
    const calls = busi.callsOf(gid);
    assert.ok(calls.indexOf('TransInRevert compensate') < calls.indexOf('TransOutRevert compensate'), calls.join());
  });

  it('concurrent with an ONGOING action stays submitted, then succeeds', async () => {
    const gid = gidFor('saga-con-ongoing');
    busi.setOnce('TransOut', 'ONGOING');
    await submit(sagaBody(busi, gid, { wait_result: true, custom_data: '{"concurrent":true}' }));
    assert.equal(await dtx.status(gid), 'submitted');
    assert.deepEqual(await dtx.branchStatuses(gid), ['prepared', 'prepared', 'prepared', 'succeed']);
    await dtx.cronOnce();
    assert.equal(await dtx.status(gid), 'succeed');
  });

  it('compatible: payloads only in steps[].data', async () => {
    const gid = gidFor('saga-compat');
    const r = await submit({
      gid,
      trans_type: 'saga',
      wait_result: true,
      steps: [
        { action: `${busi.url}/TransOut`, compensate: `${busi.url}/TransOutRevert`, data: '{"amount":30}' },
        { action: `${busi.url}/TransIn`, compensate: `${busi.url}/TransInRevert`, data: '{"amount":30}' },
      ],
    });
    assert.equal(r.status, 200, r.text);
    assert.equal(await dtx.status(gid), 'succeed');
    assert.equal(busi.calls.find((c) => c.query.gid === gid)!.body, '{"amount":30}');
  });

  it('keys are matched case-insensitively, as Go does', async () => {
    const gid = gidFor('saga-case');
    const body = sagaBody(busi, gid);
    const r = await submit({
      GID: gid,
      Trans_Type: 'saga',
      STEPS: body.steps,
      Payloads: body.payloads,
      WAIT_RESULT: true,
    });
    assert.equal(r.status, 200, r.text);
    assert.equal(await dtx.status(gid), 'succeed');
  });

  it('forceStop stops a stuck saga; a finished one refuses it', async () => {
    const gid = gidFor('saga-forcestop');
    busi.setOnce('TransOut', 'ONGOING');
    await submit(sagaBody(busi, gid, { wait_result: true }));
    const r = await call('POST', `${dtx.api}/forceStop`, { gid });
    assert.equal(r.status, 200, r.text);
    assert.equal(await dtx.status(gid), 'failed');
    assert.ok((await dtx.query(gid)).transaction.rollback_time);
    const again = await call('POST', `${dtx.api}/forceStop`, { gid });
    assert.equal(again.status, 409);
    assert.match((again.json as { message: string }).message, /force stop error. status: failed/);
    for (let picked = await dtx.cronOnce(0, 3600); picked !== ''; picked = await dtx.cronOnce(0, 3600)) {
      assert.notEqual(picked, gid, 'a stopped saga is never picked again');
    }
  });

  it('forceStop during a running pass stops further branch calls', async () => {
    const gid = gidFor('saga-forcestop-running');
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    busi.onCall = async (c) => {
      if (c.query.gid === gid && c.name === 'TransOut') await gate;
    };
    try {
      const pending = submit(sagaBody(busi, gid, { wait_result: true }));
      await waitFor('TransOut in flight', () => busi.callsOf(gid).length === 1);
      const r = await call('POST', `${dtx.api}/forceStop`, { gid });
      assert.equal(r.status, 200, r.text);
      release();
      const reply = await pending;
      assert.notEqual(reply.status, 200, 'the pass lost its compare-and-set');
      assert.equal(await dtx.status(gid), 'failed');
      assert.deepEqual(busi.callsOf(gid), ['TransOut action'], 'no branch is called after the stop');
    } finally {
      busi.onCall = undefined;
      release();
    }
  });
});
