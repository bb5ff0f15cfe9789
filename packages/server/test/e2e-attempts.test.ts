import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { Busi } from './support/busi.js';
import { startTestDtx, type TestDtx } from './support/dtx.js';
import { call } from './support/http.js';
import { waitFor } from './support/poll.js';
import { gidFor, sagaBody } from './support/trans.js';

// Attempt history, stuck transactions and the alert-once rule against a real dtx (on DTX_TEST_STORE), real
// HTTP branches and a real loopback webhook receiver (the busi service records every delivery).
describe('attempt history and stuck transactions over HTTP', () => {
  let dtx: TestDtx;
  let busi: Busi;
  before(async () => {
    busi = await new Busi().start();
    dtx = await startTestDtx({ AlertWebHook: `${busi.url}/AlertWebHook` });
  });
  beforeEach(() => busi.reset());
  after(async () => {
    await dtx.stop();
    await busi.stop();
  });

  const submit = (body: Record<string, unknown>) => call('POST', `${dtx.api}/submit`, body);
  const alertsOf = (gid: string) =>
    busi.calls
      .filter((c) => c.name === 'AlertWebHook')
      .map((c) => JSON.parse(c.body) as Record<string, unknown>)
      .filter((a) => a.gid === gid);

  it('a branch failing twice then succeeding: attempts 3, its last error, failed_attempts reset', async () => {
    const gid = gidFor('att-3');
    busi.setOnce('TransIn', { status: 503, body: '{"error":"service down"}' }, 'ERROR');
    const r = await submit(sagaBody(busi, gid, { wait_result: true }));
    assert.equal(r.status, 425, r.text);
    let q = await dtx.query(gid);
    assert.equal(q.transaction.failed_attempts, 1);
    assert.match(q.transaction.last_error, /^http status 503: \{"error":"service down"\}$/);
    let tin = q.branches[3];
    assert.deepEqual([tin.attempts, tin.last_result], [1, 'ERROR']);
    assert.ok(Date.parse(tin.last_attempt_time) > 0, tin.last_attempt_time);
    assert.equal(q.branches[1].attempts, 1, 'TransOut was called once');
    assert.equal(q.branches[1].last_result, 'SUCCESS');
    assert.equal(q.branches[1].last_error, undefined);
    assert.equal(q.branches[0].attempts, undefined, 'a compensation never called shows no attempts');
    await dtx.cronFor(gid, 0, 1000);
    q = await dtx.query(gid);
    assert.equal(q.transaction.failed_attempts, 2);
    await dtx.cronFor(gid, 0, 1000);
    q = await dtx.query(gid);
    assert.equal(q.transaction.status, 'succeed');
    tin = q.branches[3];
    assert.deepEqual([tin.attempts, tin.last_result], [3, 'SUCCESS']);
    assert.match(tin.last_error, /^http status 500/);
    assert.equal(q.transaction.failed_attempts, undefined, 'reset to 0, omitted like DTM keys');
    assert.match(q.transaction.last_error, /^http status 500/);
    assert.equal(q.transaction.stuck, undefined);
    assert.deepEqual(alertsOf(gid), [], 'two failures in a row: not stuck');
  });

  it('stuck after 3 failed attempts: listed, alerted exactly once, then exactly one recovery notice', async () => {
    const gid = gidFor('att-stuck');
    busi.setOnce('TransIn', 'ERROR', 'ERROR', 'ERROR', 'ERROR', 'ERROR');
    await submit(sagaBody(busi, gid, { wait_result: true }));
    for (let i = 0; i < 4; i++) await dtx.cronFor(gid, 0, 100_000);
    const q = await dtx.query(gid);
    assert.equal(q.transaction.status, 'submitted');
    assert.equal(q.transaction.failed_attempts, 5);
    assert.equal(q.transaction.stuck, true);
    assert.equal(q.transaction.stuck_reason, 'attempts');
    const all = await call('GET', `${dtx.api}/all?gid=${gid}`);
    assert.equal((all.json as { transactions: { stuck: boolean }[] }).transactions[0]!.stuck, true);
    // the stuck list (others' transactions may be there too: page until ours shows up)
    const listed = await waitFor('listed as stuck', async () => {
      let position = '';
      for (;;) {
        const r = await call('GET', `${dtx.api}/stuck?limit=2&position=${position}`);
        assert.equal(r.status, 200, r.text);
        const page = r.json as { transactions: { gid: string; stuck_reason: string }[]; next_position: string };
        const mine = page.transactions.find((t) => t.gid === gid);
        if (mine) return mine;
        if (!page.next_position) return undefined;
        position = page.next_position;
      }
    });
    assert.equal(listed.stuck_reason, 'attempts');
    const stuck = await waitFor('one stuck alert', () => (alertsOf(gid).length > 0 ? alertsOf(gid) : undefined));
    assert.equal(stuck.length, 1, JSON.stringify(stuck));
    const a = stuck[0]!;
    assert.equal(a.event, 'stuck');
    assert.equal(a.status, 'submitted');
    assert.equal(a.retry_count, 3);
    assert.equal(a.attempts, 3);
    assert.equal(a.branch_id, '02');
    assert.equal(a.op, 'action');
    assert.equal(a.stuck_reason, 'attempts');
    assert.match(String(a.branch), /\/TransIn$/);
    assert.match(String(a.error), /^http status 500/);
    assert.ok(Date.parse(String(a.next_retry_time)) > 0);
    // the service is fixed: "retry now", and the cron finishes it
    const reset = await call('POST', `${dtx.api}/resetNextCronTime`, { gid });
    assert.equal(reset.status, 200, reset.text);
    await dtx.cronFor(gid, 0, 1);
    assert.equal(await dtx.status(gid), 'succeed');
    const recovered = await waitFor('recovery notice', () =>
      alertsOf(gid).some((x) => x.event === 'recovered') ? alertsOf(gid) : undefined,
    );
    assert.deepEqual(
      recovered.map((x) => [x.event, x.status]),
      [
        ['stuck', 'submitted'],
        ['recovered', 'succeed'],
      ],
    );
    const r = await call('GET', `${dtx.api}/stuck?limit=1&position=abc`);
    assert.equal(r.status, 400, r.text);
  });
});
