import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { Busi } from './support/busi.js';
import { startTestDtx, type TestDtx } from './support/dtx.js';
import { call } from './support/http.js';
import { waitFor } from './support/poll.js';
import { gidFor } from './support/trans.js';

// Spec §15 tcc and xa scenarios (tcc_test.go, tcc_old_test.go, tcc_cover_test.go, xa_test.go). The
// client side of each protocol (§12.5) is played here with plain HTTP calls, as an SDK would.
describe('tcc and xa over HTTP', () => {
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

  const post = (route: string, body: Record<string, unknown>) => call('POST', `${dtx.api}/${route}`, body);

  /** Register a tcc branch and call its try, as the SDK's CallBranch does. Returns the try reply status. */
  async function tccBranch(gid: string, branchId: string, name: string): Promise<number> {
    const reg = await post('registerBranch', {
      gid,
      branch_id: branchId,
      trans_type: 'tcc',
      data: '{"amount":30}',
      confirm: `${busi.url}/${name}Confirm`,
      cancel: `${busi.url}/${name}Revert`,
    });
    if (reg.status !== 200) return reg.status;
    const q = `dtm=${encodeURIComponent(dtx.api)}&gid=${gid}&branch_id=${branchId}&trans_type=tcc&op=try`;
    return (await call('POST', `${busi.url}/${name}Try?${q}`, '{"amount":30}')).status;
  }

  describe('tcc', () => {
    it('normal: confirms run from the last branch to the first', async () => {
      const gid = gidFor('tcc-normal');
      assert.equal((await post('prepare', { gid, trans_type: 'tcc' })).status, 200);
      assert.equal(await tccBranch(gid, '01', 'TransOut'), 200);
      assert.equal(await tccBranch(gid, '02', 'TransIn'), 200);
      const r = await post('submit', { gid, trans_type: 'tcc', wait_result: true });
      assert.equal(r.status, 200, r.text);
      assert.equal(await dtx.status(gid), 'succeed');
      assert.deepEqual(await dtx.branchStatuses(gid), ['prepared', 'succeed', 'prepared', 'succeed']);
      const q = await dtx.query(gid);
      assert.deepEqual(
        q.branches.map((b: { op: string; branch_id: string }) => `${b.op}${b.branch_id}`),
        ['cancel01', 'confirm01', 'cancel02', 'confirm02'],
      );
      assert.deepEqual(busi.callsOf(gid), [
        'TransOutTry try',
        'TransInTry try',
        'TransInConfirm confirm',
        'TransOutConfirm confirm',
      ]);
      const confirm = busi.calls.find((c) => c.query.gid === gid && c.name === 'TransInConfirm')!;
      assert.equal(confirm.method, 'POST');
      assert.equal(confirm.body, '{"amount":30}');
    });

    it('rollback: a try FAILURE aborts; an ONGOING cancel is finished by the cron', async () => {
      const gid = gidFor('tcc-rollback');
      await post('prepare', { gid, trans_type: 'tcc', wait_result: true });
      assert.equal(await tccBranch(gid, '01', 'TransOut'), 200);
      busi.setOnce('TransInTry', 'FAILURE');
      assert.equal(await tccBranch(gid, '02', 'TransIn'), 409);
      busi.setOnce('TransOutRevert', 'ONGOING');
      const r = await post('abort', { gid, trans_type: 'tcc', rollback_reason: 'reason:TransIn refused FAILURE' });
      assert.equal(r.status, 425, r.text); // wait_result saved at prepare: the cancel answered ONGOING
      assert.equal(await dtx.status(gid), 'aborting');
      await dtx.cronFor(gid);
      assert.equal(await dtx.status(gid), 'failed');
      assert.deepEqual(await dtx.branchStatuses(gid), ['succeed', 'prepared', 'succeed', 'prepared']);
      assert.match((await dtx.query(gid)).transaction.rollback_reason, /FAILURE/);
      const cancels = busi.callsOf(gid).filter((c) => c.endsWith('cancel'));
      assert.deepEqual(cancels.slice(0, 2), ['TransInRevert cancel', 'TransOutRevert cancel']);
    });

    it('timeout: a prepared tcc past its timeout is cancelled and refuses new branches', async () => {
      const gid = gidFor('tcc-timeout');
      await post('prepare', { gid, trans_type: 'tcc' });
      assert.equal(await tccBranch(gid, '01', 'TransOut'), 200);
      await dtx.cronFor(gid, 300);
      assert.equal(await dtx.status(gid), 'failed');
      assert.match((await dtx.query(gid)).transaction.rollback_reason, /^Timeout after \d+ seconds$/);
      const reg = await post('registerBranch', { gid, branch_id: '02', trans_type: 'tcc', confirm: '', cancel: '' });
      assert.equal(reg.status, 409);
      assert.match(reg.text, /no trans with gid: .* status: prepared found FAILURE/);
      assert.deepEqual(await dtx.branchStatuses(gid), ['succeed', 'prepared']);
    });

    it('old-style branches answer 200 with dtm_result in the body', async () => {
      const gid = gidFor('tcc-old');
      await post('prepare', { gid, trans_type: 'tcc' });
      assert.equal(await tccBranch(gid, '01', 'TransOut'), 200);
      busi.setOnce('TransOutConfirm', { status: 200, body: '{"dtm_result":"ONGOING"}' });
      const r = await post('submit', { gid, trans_type: 'tcc', wait_result: true });
      assert.equal(r.status, 425, r.text);
      assert.equal(await dtx.status(gid), 'submitted');
      busi.setOnce('TransOutConfirm', { status: 200, body: '{"dtm_result":"FAILURE"}' });
      await dtx.cronFor(gid);
      assert.equal(await dtx.status(gid), 'submitted', 'a confirm FAILURE is retried, not a rollback');
      await dtx.cronFor(gid, 0, 1000);
      assert.equal(await dtx.status(gid), 'succeed');
    });

    it('nested branch ids and empty confirm URLs', async () => {
      const gid = gidFor('tcc-nested');
      await post('prepare', { gid, trans_type: 'tcc' });
      for (const id of ['01', '02', '0201']) assert.equal(await tccBranch(gid, id, 'TransOut'), 200);
      const reg = await post('registerBranch', { gid, branch_id: '03', trans_type: 'tcc', confirm: '', cancel: '' });
      assert.equal(reg.status, 200);
      assert.equal((await post('submit', { gid, trans_type: 'tcc', wait_result: true })).status, 200);
      assert.deepEqual(await dtx.branchStatuses(gid), Array(4).fill(['prepared', 'succeed']).flat());
    });

    it('a duplicate branch registration is an error', async () => {
      const gid = gidFor('tcc-dup');
      await post('prepare', { gid, trans_type: 'tcc' });
      assert.equal(await tccBranch(gid, '01', 'TransOut'), 200);
      const again = await post('registerBranch', { gid, branch_id: '01', trans_type: 'tcc', confirm: '', cancel: '' });
      // DTM answers 500 (a store conflict); dtx answers 400: the caller registered the same branch twice
      assert.equal(again.status, 400);
      assert.deepEqual(again.json, { message: `branch '01' of gid '${gid}' is already registered` });
      await post('abort', { gid, trans_type: 'tcc' });
    });

    it('branch_headers of the trans reach confirm calls', async () => {
      const gid = gidFor('tcc-headers');
      await post('prepare', { gid, trans_type: 'tcc', branch_headers: { test_header: 'yes' } });
      assert.equal(await tccBranch(gid, '01', 'TransOut'), 200);
      await post('submit', { gid, trans_type: 'tcc', wait_result: true });
      assert.equal(await dtx.status(gid), 'succeed');
      const confirm = busi.calls.find((c) => c.query.gid === gid && c.name === 'TransOutConfirm')!;
      assert.equal(confirm.headers.test_header, 'yes');
    });
  });

  describe('xa', () => {
    /** The local XA branch: the branch runs its local part, then registers its phase-2 URL. */
    async function xaBranch(gid: string, branchId: string, name: string): Promise<number> {
      const phase2 = `${busi.url}/${name}Xa`;
      const q = `dtm=${encodeURIComponent(dtx.api)}&gid=${gid}&branch_id=${branchId}&trans_type=xa&op=action&phase2_url=${encodeURIComponent(phase2)}`;
      const local = await call('POST', `${busi.url}/${name}?${q}`, '{"amount":30}');
      if (local.status !== 200) return local.status;
      return (await post('registerBranch', { gid, branch_id: branchId, trans_type: 'xa', url: phase2 })).status;
    }

    it('normal: commits first to last with an empty POST', async () => {
      const gid = gidFor('xa-normal');
      await post('prepare', { gid, trans_type: 'xa' });
      assert.equal(await xaBranch(gid, '01', 'TransOut'), 200);
      assert.equal(await xaBranch(gid, '02', 'TransIn'), 200);
      assert.equal((await post('submit', { gid, trans_type: 'xa', wait_result: true })).status, 200);
      assert.deepEqual(await dtx.branchStatuses(gid), ['prepared', 'succeed', 'prepared', 'succeed']);
      const commits = busi.calls.filter((c) => c.query.gid === gid && c.query.op === 'commit');
      assert.deepEqual(
        commits.map((c) => c.name),
        ['TransOutXa', 'TransInXa'],
      );
      for (const c of commits) {
        assert.equal(c.method, 'POST');
        assert.equal(c.body, '');
      }
    });

    it('rollback: abort rolls back the registered branches', async () => {
      const gid = gidFor('xa-rollback');
      await post('prepare', { gid, trans_type: 'xa' });
      assert.equal(await xaBranch(gid, '01', 'TransOut'), 200);
      busi.setOnce('TransIn', 'FAILURE');
      assert.equal(await xaBranch(gid, '02', 'TransIn'), 409);
      const r = await post('abort', { gid, trans_type: 'xa', rollback_reason: 'TransIn refused' });
      assert.equal(r.status, 200);
      await waitFor('rolled back', async () => (await dtx.status(gid)) === 'failed');
      assert.equal(await dtx.status(gid), 'failed');
      assert.deepEqual(await dtx.branchStatuses(gid), ['succeed', 'prepared']);
      assert.equal((await dtx.query(gid)).transaction.rollback_reason, 'TransIn refused');
    });

    it('timeout: a prepared xa past its timeout fails; its late submit is refused', async () => {
      const gid = gidFor('xa-timeout');
      await post('prepare', { gid, trans_type: 'xa' });
      await dtx.cronFor(gid, 300);
      assert.equal(await dtx.status(gid), 'failed');
      assert.deepEqual(await dtx.branchStatuses(gid), []);
      const r = await post('submit', { gid, trans_type: 'xa' });
      assert.equal(r.status, 409);
    });

    it('not timed out: an ONGOING commit is retried by the cron', async () => {
      const gid = gidFor('xa-not-timeout');
      await post('prepare', { gid, trans_type: 'xa' });
      await dtx.cronFor(gid, 0);
      assert.equal(await dtx.status(gid), 'prepared');
      assert.equal(await xaBranch(gid, '01', 'TransOut'), 200);
      busi.setOnce('TransOutXa', 'ONGOING');
      const r = await post('submit', { gid, trans_type: 'xa', wait_result: true });
      assert.equal(r.status, 425);
      assert.equal(await dtx.status(gid), 'submitted');
      await dtx.cronFor(gid);
      assert.equal(await dtx.status(gid), 'succeed');
      assert.deepEqual(await dtx.branchStatuses(gid), ['prepared', 'succeed']);
    });
  });
});
