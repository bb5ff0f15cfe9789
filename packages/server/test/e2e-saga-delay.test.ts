import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Busi } from './support/busi.js';
import { startTestDtx, type TestDtx, testStoreConfig } from './support/dtx.js';
import { call } from './support/http.js';
import { gidFor, sagaBody } from './support/trans.js';

// dtx's compensate_delay on a real dtx over HTTP, on SQLite (or DTX_TEST_STORE), with a restart of the
// server in the middle of the wait on the same store.
describe('saga compensate_delay', () => {
  let busi: Busi;
  let dtx: TestDtx;
  const dir = mkdtempSync(join(tmpdir(), 'dtx-delay-'));
  // one store for both server runs (the same SQLite file, or the same schema / database / prefix)
  const store = testStoreConfig(dir);
  before(async () => {
    busi = await new Busi().start();
    dtx = await startTestDtx({ Store: store });
  });
  after(async () => {
    await dtx.stop();
    await busi.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const delayedBody = (gid: string, delay: unknown) =>
    sagaBody(busi, gid, {
      wait_result: true,
      steps: [
        { action: `${busi.url}/TransOut`, compensate: `${busi.url}/TransOutRevert`, compensate_delay: delay },
        { action: `${busi.url}/TransIn`, compensate: `${busi.url}/TransInRevert` },
      ],
    });

  it('bad delays are refused with a 400 naming the step field', async () => {
    for (const bad of [-1, 1.5, '600', 7 * 24 * 3600 + 1]) {
      const r = await call('POST', `${dtx.api}/submit`, delayedBody(gidFor('delay-bad'), bad));
      assert.equal(r.status, 400, r.text);
      assert.match(r.text, /steps\[0\]\.compensate_delay: expected an integer number of seconds from 0 to 604800/);
    }
  });

  it('waits the delay after the rollback began, survives a restart, then compensates', async () => {
    const gid = gidFor('delay');
    busi.setOnce('TransIn', 'FAILURE');
    const r = await call('POST', `${dtx.api}/submit`, delayedBody(gid, 600));
    // the outcome is decided (rolled back); only the compensation is pending
    assert.equal(r.status, 409, r.text);
    // step 2 (no delay) is compensated at once; step 1 waits
    assert.deepEqual(busi.callsOf(gid), ['TransOut action', 'TransIn action', 'TransInRevert compensate']);
    let q = await dtx.query(gid);
    assert.equal(q.transaction.status, 'aborting');
    assert.deepEqual(q.transaction.compensate_delays, [600, 0]);
    const began = Date.parse(q.transaction.rollback_time);
    assert.equal(Date.parse(q.transaction.compensate_due[0]), began + 600_000);
    assert.equal(q.transaction.compensate_due[1], null);
    // the cron comes back when the delay ends, not at the retry interval (the clock may have ticked meanwhile)
    assert.ok(Date.parse(q.transaction.next_cron_time) >= began + 600_000, q.transaction.next_cron_time);
    assert.doesNotMatch(q.transaction.options, /compensate/); // the options text reads as DTM's

    // 300 s later: a pass calls nothing
    await dtx.cronFor(gid, 300, 700);
    assert.equal(busi.callsOf(gid).length, 3);
    assert.equal(await dtx.status(gid), 'aborting');

    // restart on the same store: the rollback start was stored, so 300 s in it still waits
    await dtx.server.stop();
    dtx = await startTestDtx({ Store: store });
    q = await dtx.query(gid);
    assert.equal(q.transaction.status, 'aborting');
    assert.equal(Date.parse(q.transaction.rollback_time), began);
    await dtx.cronFor(gid, 300, 700);
    assert.equal(busi.callsOf(gid).length, 3);

    // once the delay has passed: the compensation runs and the saga is failed
    await dtx.cronFor(gid, 601, 700);
    assert.deepEqual(busi.callsOf(gid).slice(3), ['TransOutRevert compensate']);
    q = await dtx.query(gid);
    assert.equal(q.transaction.status, 'failed');
    assert.equal(q.transaction.compensate_due, undefined);
    assert.deepEqual(
      q.branches.map((b: { status: string }) => b.status),
      ['succeed', 'succeed', 'succeed', 'failed'],
    );
  });

  it('a delay of 0 (or none) rolls back at once, as DTM', async () => {
    const gid = gidFor('delay-zero');
    busi.setOnce('TransIn', 'FAILURE');
    const r = await call('POST', `${dtx.api}/submit`, delayedBody(gid, 0));
    assert.equal(r.status, 409, r.text);
    const q = await dtx.query(gid);
    assert.equal(q.transaction.status, 'failed');
    assert.equal(q.transaction.compensate_delays, undefined);
  });
});
