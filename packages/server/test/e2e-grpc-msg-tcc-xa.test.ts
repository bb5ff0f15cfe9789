import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { GrpcStatus } from '@dtx/protocol';
import { Client, credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { startTestDtx, type TestDtx } from './support/dtx.js';
import { busiReq, DtmGrpcClient, GrpcBusi } from './support/grpc-busi.js';
import { waitFor } from './support/poll.js';
import { gidFor } from './support/trans.js';

// Spec §15 msg_grpc_test.go, tcc_grpc_test.go and xa_grpc_test.go: the client side of each protocol
// (§12.5) is played with plain grpc-js calls, as dtmgrpc makes them.
describe('msg, tcc and xa over gRPC', () => {
  let dtx: TestDtx;
  let busi: GrpcBusi;
  let dtm: DtmGrpcClient;
  /** Calls the busi directly, as a client's try / action call does. */
  let direct: Client;
  const PAYLOAD = busiReq(30);

  before(async () => {
    dtx = await startTestDtx();
    busi = await new GrpcBusi().start();
    dtm = new DtmGrpcClient(dtx.grpc);
    direct = new Client(busi.address, credentials.createInsecure());
    for (const m of ['TransOut', 'TransIn']) {
      await dtm.call('Subscribe', { Topic: 'grpc_trans', URL: busi.url(m), Remark: 'grpc busi' });
    }
  });
  beforeEach(() => busi.reset());
  after(async () => {
    direct.close();
    dtm.close();
    await dtx.stop();
    await busi.stop();
  });

  /** A try call from the client to a busi method, with the dtm-* metadata a dtmgrpc client sends. */
  function tryCall(gid: string, branchId: string, method: string, extra: Record<string, string> = {}) {
    const md = new Metadata();
    const pairs = { 'dtm-gid': gid, 'dtm-trans_type': 'tcc', 'dtm-branch_id': branchId, 'dtm-op': 'try' };
    for (const [k, v] of Object.entries({ ...pairs, 'dtm-dtm': dtx.grpc, ...extra })) md.set(k, v);
    return new Promise<number>((resolve) => {
      const raw = (b: Buffer) => b;
      direct.makeUnaryRequest(`/busi.Busi/${method}`, raw, raw, PAYLOAD, md, (err: ServiceError | null) =>
        resolve(err ? err.code : GrpcStatus.OK),
      );
    });
  }

  const branchIds = async (gid: string) =>
    (await dtx.query(gid)).branches.map((b: { branch_id: string; op: string }) => `${b.op}${b.branch_id}`);

  describe('msg', () => {
    it('normal: a topic with 2 gRPC subscribers delivers to both', async () => {
      const gid = gidFor('msg-grpc-normal');
      await dtm.call('Submit', {
        Gid: gid,
        TransType: 'msg',
        Steps: JSON.stringify([{ action: 'topic://grpc_trans' }]),
        BinPayloads: [PAYLOAD],
        QueryPrepared: busi.url('QueryPrepared'),
      });
      await waitFor('succeed', async () => (await dtx.status(gid)) === 'succeed');
      assert.deepEqual(await dtx.branchStatuses(gid), ['succeed', 'succeed']);
      assert.deepEqual(await branchIds(gid), ['action01-01', 'action01-02']);
      assert.deepEqual(busi.callsOf(gid), ['TransOut action', 'TransIn action']);
      for (const c of busi.calls.filter((x) => x.gid === gid)) {
        assert.ok(c.body.equals(PAYLOAD));
        assert.equal(c.transType, 'msg');
      }
    });

    const prepared = (gid: string, extra: Record<string, unknown> = {}) => ({
      Gid: gid,
      TransType: 'msg',
      Steps: JSON.stringify([{ action: busi.url('TransOut') }, { action: busi.url('TransIn') }]),
      BinPayloads: [PAYLOAD, PAYLOAD],
      QueryPrepared: busi.url('QueryPrepared'),
      ...extra,
    });

    it('timeout success: the back-check over gRPC decides a prepared msg', async () => {
      const gid = gidFor('msg-grpc-timeout-success');
      await dtm.call('Prepare', prepared(gid));
      busi.setOnce('QueryPrepared', 'ONGOING');
      await dtx.cronFor(gid, 180);
      assert.equal(await dtx.status(gid), 'prepared');
      busi.setOnce('TransOut', 'ONGOING');
      await dtx.cronFor(gid, 180);
      assert.equal(await dtx.status(gid), 'submitted');
      assert.deepEqual(await dtx.branchStatuses(gid), ['prepared', 'prepared']);
      await dtx.cronFor(gid);
      assert.equal(await dtx.status(gid), 'succeed');
      assert.deepEqual(await dtx.branchStatuses(gid), ['succeed', 'succeed']);
      const check = busi.calls.find((c) => c.gid === gid && c.name === 'QueryPrepared')!;
      assert.equal(check.op, 'msg');
      assert.equal(check.branchId, '00');
      assert.equal(check.transType, 'msg');
      assert.equal(check.body.length, 0, 'the back-check sends an empty message');
    });

    it('timeout failed: Aborted from the back-check fails the msg without delivering', async () => {
      const gid = gidFor('msg-grpc-timeout-failed');
      await dtm.call('Prepare', prepared(gid));
      busi.setOnce('QueryPrepared', 'ONGOING');
      await dtx.cronFor(gid, 360);
      assert.equal(await dtx.status(gid), 'prepared');
      busi.setOnce('QueryPrepared', 'FAILURE');
      await dtx.cronFor(gid, 180);
      assert.equal(await dtx.status(gid), 'failed');
      assert.deepEqual(await dtx.branchStatuses(gid), ['prepared', 'prepared']);
      assert.deepEqual(busi.callsOf(gid), ['QueryPrepared msg', 'QueryPrepared msg']);
    });

    it('prepare is idempotent, submit continues it, prepare after success is refused with ABORTED', async () => {
      const gid = gidFor('msg-grpc-abnormal');
      await dtm.call('Prepare', prepared(gid));
      await dtm.call('Prepare', prepared(gid));
      await dtm.call('Submit', { Gid: gid, TransType: 'msg', Steps: 'null', TransOptions: { WaitResult: true } });
      assert.equal(await dtx.status(gid), 'succeed');
      const err = await dtm.error('Prepare', prepared(gid));
      assert.equal(err.code, GrpcStatus.ABORTED);
      assert.equal(err.details, "current status 'succeed', cannot prepare. FAILURE");
    });

    it('Abort of a prepared msg fails it without any call', async () => {
      const gid = gidFor('msg-grpc-abort');
      await dtm.call('Prepare', prepared(gid));
      await dtm.call('Abort', { Gid: gid, TransType: 'msg', Steps: 'null' });
      assert.equal(await dtx.status(gid), 'failed');
      assert.deepEqual(busi.callsOf(gid), []);
    });

    it('an unknown topic is refused naming the step', async () => {
      const gid = gidFor('msg-grpc-no-topic');
      const err = await dtm.error('Submit', {
        Gid: gid,
        TransType: 'msg',
        Steps: JSON.stringify([{ action: 'topic://no_such_topic' }]),
        BinPayloads: [PAYLOAD],
      });
      assert.equal(err.code, GrpcStatus.INVALID_ARGUMENT);
      assert.equal(err.details, "Steps[0].action: topic not found: 'no_such_topic'");
      assert.equal(await dtx.status(gid), '');
    });
  });

  describe('tcc', () => {
    /** RegisterBranch as dtmgrpc's CallBranch sends it, then the try call. Returns the try's code. */
    async function tccBranch(gid: string, branchId: string, name: string, confirm = true): Promise<number> {
      await dtm.call('RegisterBranch', {
        Gid: gid,
        TransType: 'tcc',
        BranchID: branchId,
        Op: 'try',
        Data: confirm ? { confirm: busi.url(`${name}Confirm`), cancel: busi.url(`${name}Revert`) } : {},
        BusiPayload: PAYLOAD,
      });
      return tryCall(gid, branchId, `${name}Tcc`);
    }

    it('normal: confirms over gRPC, last branch first, with the registered payload', async () => {
      const gid = gidFor('tcc-grpc-normal');
      await dtm.call('Prepare', { Gid: gid, TransType: 'tcc', Steps: 'null' });
      assert.equal(await tccBranch(gid, '01', 'TransOut'), GrpcStatus.OK);
      assert.equal(await tccBranch(gid, '02', 'TransIn'), GrpcStatus.OK);
      await dtm.call('Submit', { Gid: gid, TransType: 'tcc', Steps: 'null', TransOptions: { WaitResult: true } });
      assert.equal(await dtx.status(gid), 'succeed');
      assert.deepEqual(await dtx.branchStatuses(gid), ['prepared', 'succeed', 'prepared', 'succeed']);
      assert.deepEqual(await branchIds(gid), ['cancel01', 'confirm01', 'cancel02', 'confirm02']);
      assert.deepEqual(busi.callsOf(gid), [
        'TransOutTcc try',
        'TransInTcc try',
        'TransInConfirm confirm',
        'TransOutConfirm confirm',
      ]);
      const confirm = busi.calls.find((c) => c.gid === gid && c.name === 'TransInConfirm')!;
      assert.ok(confirm.body.equals(PAYLOAD));
      assert.equal(confirm.branchId, '02');
      assert.equal(confirm.transType, 'tcc');
      assert.equal(confirm.metadata['dtm-dtm'], '');
    });

    it('rollback: Abort with the try error as reason; an ONGOING cancel is finished by the cron', async () => {
      const gid = gidFor('tcc-grpc-rollback');
      await dtm.call('Prepare', { Gid: gid, TransType: 'tcc', Steps: 'null', TransOptions: { WaitResult: true } });
      assert.equal(await tccBranch(gid, '01', 'TransOut'), GrpcStatus.OK);
      busi.setOnce('TransInTcc', { code: GrpcStatus.ABORTED, details: 'reason:' });
      assert.equal(await tccBranch(gid, '02', 'TransIn'), GrpcStatus.ABORTED);
      busi.setOnce('TransOutRevert', 'ONGOING');
      const reason = 'rpc error: code = Aborted desc = reason:';
      const err = await dtm.error('Abort', { Gid: gid, TransType: 'tcc', Steps: 'null', RollbackReason: reason });
      assert.equal(err.code, GrpcStatus.FAILED_PRECONDITION, 'wait_result from Prepare: the cancel was ONGOING');
      assert.equal(await dtx.status(gid), 'aborting');
      await dtx.cronFor(gid);
      assert.equal(await dtx.status(gid), 'failed');
      assert.deepEqual(await dtx.branchStatuses(gid), ['succeed', 'prepared', 'succeed', 'prepared']);
      assert.equal((await dtx.query(gid)).transaction.rollback_reason, reason);
      assert.deepEqual(busi.callsOf(gid).slice(2), [
        'TransInRevert cancel',
        'TransOutRevert cancel',
        'TransOutRevert cancel',
      ]);
    });

    it('nested: a branch registers its own sub-branch; 6 rows, succeed', async () => {
      const gid = gidFor('tcc-grpc-nested');
      await dtm.call('Prepare', { Gid: gid, TransType: 'tcc', Steps: 'null' });
      assert.equal(await tccBranch(gid, '01', 'TransOut'), GrpcStatus.OK);
      assert.equal(await tccBranch(gid, '02', 'TransIn'), GrpcStatus.OK);
      assert.equal(await tccBranch(gid, '0201', 'TransIn'), GrpcStatus.OK);
      await dtm.call('Submit', { Gid: gid, TransType: 'tcc', Steps: 'null', TransOptions: { WaitResult: true } });
      assert.equal(await dtx.status(gid), 'succeed');
      assert.deepEqual(await dtx.branchStatuses(gid), [
        'prepared',
        'succeed',
        'prepared',
        'succeed',
        'prepared',
        'succeed',
      ]);
    });

    it('headers: empty confirm and cancel succeed without a call', async () => {
      const gid = gidFor('tcc-grpc-headers');
      await dtm.call('Prepare', {
        Gid: gid,
        TransType: 'tcc',
        Steps: 'null',
        TransOptions: { WaitResult: true, BranchHeaders: { test_header: 'test' } },
      });
      await dtm.call('RegisterBranch', { Gid: gid, TransType: 'tcc', BranchID: '01', Data: {}, BusiPayload: PAYLOAD });
      assert.equal(await tryCall(gid, '01', 'TransOutTcc', { test_header: 'test' }), GrpcStatus.OK);
      await dtm.call('Submit', { Gid: gid, TransType: 'tcc', Steps: 'null', TransOptions: { WaitResult: true } });
      assert.equal(await dtx.status(gid), 'succeed');
      assert.deepEqual(await dtx.branchStatuses(gid), ['prepared', 'succeed']);
      assert.deepEqual(busi.callsOf(gid), ['TransOutTcc try']);
    });

    it('timeout: the cron cancels a prepared tcc; a later RegisterBranch is ABORTED', async () => {
      const gid = gidFor('tcc-grpc-timeout');
      await dtm.call('Prepare', { Gid: gid, TransType: 'tcc', Steps: 'null' });
      assert.equal(await tccBranch(gid, '01', 'TransOut'), GrpcStatus.OK);
      await dtx.cronFor(gid, 300);
      assert.equal(await dtx.status(gid), 'failed');
      assert.match((await dtx.query(gid)).transaction.rollback_reason, /^Timeout after \d+ seconds$/);
      const err = await dtm.error('RegisterBranch', {
        Gid: gid,
        TransType: 'tcc',
        BranchID: '02',
        Data: { confirm: busi.url('TransInConfirm'), cancel: busi.url('TransInRevert') },
      });
      assert.equal(err.code, GrpcStatus.ABORTED);
      assert.equal(err.details, `no trans with gid: ${gid} status: prepared found FAILURE`);
      assert.deepEqual(await dtx.branchStatuses(gid), ['succeed', 'prepared']);
    });

    it('a duplicate RegisterBranch is ALREADY_EXISTS (DTM: UNKNOWN, a store conflict)', async () => {
      const gid = gidFor('tcc-grpc-dup');
      await dtm.call('Prepare', { Gid: gid, TransType: 'tcc', Steps: 'null' });
      const reg = { Gid: gid, TransType: 'tcc', BranchID: '01', Data: { confirm: busi.url('TransOutConfirm') } };
      await dtm.call('RegisterBranch', reg);
      const err = await dtm.error('RegisterBranch', reg);
      assert.equal(err.code, GrpcStatus.ALREADY_EXISTS);
      assert.match(err.details, /already registered/);
      // not left prepared: the cron steps of later tests would keep leasing it ahead of theirs
      await dtm.call('Abort', { Gid: gid, TransType: 'tcc', Steps: 'null' });
      await waitFor('failed', async () => (await dtx.status(gid)) === 'failed');
    });
  });

  describe('xa', () => {
    const register = (gid: string, branchId: string) =>
      dtm.call('RegisterBranch', {
        Gid: gid,
        TransType: 'xa',
        BranchID: branchId,
        Data: { url: busi.url('XaNotify') },
        BusiPayload: PAYLOAD,
      });

    it('normal: commits every branch over gRPC', async () => {
      const gid = gidFor('xa-grpc-normal');
      await dtm.call('Prepare', { Gid: gid, TransType: 'xa', Steps: 'null' });
      await register(gid, '01');
      await register(gid, '02');
      await dtm.call('Submit', { Gid: gid, TransType: 'xa', Steps: 'null', TransOptions: { WaitResult: true } });
      assert.equal(await dtx.status(gid), 'succeed');
      assert.deepEqual(await dtx.branchStatuses(gid), ['prepared', 'succeed', 'prepared', 'succeed']);
      assert.deepEqual(await branchIds(gid), ['rollback01', 'commit01', 'rollback02', 'commit02']);
      assert.deepEqual(busi.callsOf(gid), ['XaNotify commit', 'XaNotify commit']);
      assert.deepEqual(
        busi.calls.filter((c) => c.gid === gid).map((c) => `${c.branchId} ${c.transType}`),
        ['01 xa', '02 xa'],
      );
    });

    it('rollback: Abort rolls the registered branch back', async () => {
      const gid = gidFor('xa-grpc-rollback');
      await dtm.call('Prepare', { Gid: gid, TransType: 'xa', Steps: 'null' });
      await register(gid, '01');
      await dtm.call('Abort', { Gid: gid, TransType: 'xa', Steps: 'null', RollbackReason: 'local error' });
      await waitFor('failed', async () => (await dtx.status(gid)) === 'failed');
      assert.deepEqual(await dtx.branchStatuses(gid), ['succeed', 'prepared']);
      assert.deepEqual(busi.callsOf(gid), ['XaNotify rollback']);
      assert.equal((await dtx.query(gid)).transaction.rollback_reason, 'local error');
    });

    it('a commit answering FailedPrecondition stays submitted until the cron', async () => {
      const gid = gidFor('xa-grpc-ongoing');
      await dtm.call('Prepare', { Gid: gid, TransType: 'xa', Steps: 'null' });
      await register(gid, '01');
      busi.setOnce('XaNotify', 'ONGOING');
      const err = await dtm.error('Submit', {
        Gid: gid,
        TransType: 'xa',
        Steps: 'null',
        TransOptions: { WaitResult: true },
      });
      assert.equal(err.code, GrpcStatus.FAILED_PRECONDITION);
      assert.equal(await dtx.status(gid), 'submitted');
      await dtx.cronFor(gid);
      assert.equal(await dtx.status(gid), 'succeed');
      assert.deepEqual(await dtx.branchStatuses(gid), ['prepared', 'succeed']);
    });
  });
});
