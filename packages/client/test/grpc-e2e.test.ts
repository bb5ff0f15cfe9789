// The SDK over gRPC end to end: a real dtx server (its gRPC API on a free port) and a real grpc-js branch service
// whose handlers, defined here, are wrapped with grpcBranch. Saga, msg and tcc are started with DtxGrpcClient;
// the coordinator calls the branches over gRPC; the state is read back with the HTTP client's query.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import {
  DtxGrpcClient,
  type GrpcBranchContext,
  type GrpcBranchHandler,
  grpcBranchService,
  grpcQueryPreparedHandler,
} from '../src/grpc/index.js';
import {
  CoordinatorError,
  DtxClient,
  ensureBarrierTable,
  FailureError,
  generateGid,
  isCoordinatorError,
  OngoingError,
  sqliteBarrierDb,
} from '../src/index.js';
import {
  BUSI_METHODS,
  type BusiReply,
  type BusiReq,
  busiReq,
  busiService,
  freePort,
  type GrpcDtxServer,
  type GrpcTestServer,
  startGrpcDtxServer,
  startGrpcServer,
} from './support/grpc-services.js';
import { waitFor } from './support/poll.js';
import { branchRows, cronUntilStatus, waitForStatus } from './support/transactions.js';

const busi = busiService();

/** One call a branch received. */
interface Received {
  gid: string;
  method: string;
  op: string;
  branchId: string;
  amount: number;
}

describe('SDK over gRPC against a real dtx', () => {
  let server: GrpcDtxServer;
  let dtx: DtxGrpcClient;
  let http: DtxClient;
  let branches: GrpcTestServer;
  const received: Received[] = [];
  /** `<gid> <method>` → what the handler does instead of succeeding. */
  const script = new Map<string, (ctx: GrpcBranchContext<BusiReq, BusiReply>) => unknown>();
  const warnings: string[] = [];
  const db = new Database(':memory:');
  const barrierDb = sqliteBarrierDb(db);
  const balance = () => (db.prepare('select balance from account where id = 1').get() as { balance: number }).balance;

  before(async () => {
    await ensureBarrierTable(barrierDb);
    db.exec('create table account (id integer primary key, balance integer not null)');
    db.exec('insert into account values (1, 100)');
    server = await startGrpcDtxServer();
    dtx = new DtxGrpcClient(server.grpcAddress);
    http = new DtxClient(server.url);
    const queryPrepared = grpcQueryPreparedHandler(barrierDb) as GrpcBranchHandler<BusiReq, BusiReply>;
    const handlers: Record<string, GrpcBranchHandler<BusiReq, BusiReply>> = {};
    for (const method of BUSI_METHODS) {
      handlers[method] = (ctx) => {
        const { gid, op, branch_id } = ctx.branchInfo;
        received.push({ gid, method, op, branchId: branch_id, amount: ctx.request.Amount });
        const scripted = script.get(`${gid} ${method}`);
        if (scripted !== undefined) return scripted(ctx) as BusiReply | undefined;
        return method === 'QueryPrepared' ? queryPrepared(ctx) : { Message: `${method} ok` };
      };
    }
    branches = await startGrpcServer((s) =>
      s.addService(busi, grpcBranchService(handlers, { logger: { warn: (m) => warnings.push(m), error() {} } })),
    );
  });
  after(async () => {
    await dtx.close();
    await http.close();
    await branches.close();
    await server.stop();
    db.close();
  });
  beforeEach(() => script.clear());

  const url = (m: string) => `${branches.address}/busi.Busi/${m}`;
  const trace = (gid: string) => received.filter((r) => r.gid === gid).map((r) => `${r.method} ${r.op}`);

  describe('saga', () => {
    test('commit: both actions run in order with the payload bytes, the saga succeeds', async () => {
      const saga = dtx
        .saga()
        .add(url('TransOut'), url('TransOutRevert'), busiReq(busi, 30))
        .add(url('TransIn'), url('TransInRevert'), busiReq(busi, 31));
      await saga.submit();
      const q = await waitForStatus(http, saga.gid, 'succeed');
      assert.equal(q.transaction?.protocol, 'grpc');
      assert.deepEqual(trace(saga.gid), ['TransOut action', 'TransIn action']);
      assert.deepEqual(
        received.filter((r) => r.gid === saga.gid).map((r) => [r.branchId, r.amount]),
        [
          ['01', 30],
          ['02', 31],
        ],
      );
    });

    test('rollback: an action throwing FailureError (Aborted) compensates every attempted step, last first', async () => {
      const gid = generateGid();
      script.set(`${gid} TransIn`, () => {
        throw new FailureError('insufficient balance');
      });
      await dtx
        .saga(gid)
        .add(url('TransOut'), url('TransOutRevert'), busiReq(busi, 30))
        .add(url('TransIn'), url('TransInRevert'), busiReq(busi, 30))
        .submit();
      const q = await waitForStatus(http, gid, 'failed');
      assert.deepEqual(trace(gid), [
        'TransOut action',
        'TransIn action',
        'TransInRevert compensate',
        'TransOutRevert compensate',
      ]);
      assert.match(q.transaction?.rollback_reason ?? '', /insufficient balance/);
    });

    test('waitResult: submit resolves after success and rejects with a FailureError after a rollback', async () => {
      const ok = dtx
        .saga(undefined, { waitResult: true })
        .add(url('TransOut'), url('TransOutRevert'), busiReq(busi, 1));
      await ok.submit();
      assert.equal((await http.query(ok.gid)).transaction?.status, 'succeed');

      const gid = generateGid();
      script.set(`${gid} TransOut`, () => {
        throw new FailureError('refused');
      });
      await assert.rejects(
        dtx.saga(gid, { waitResult: true }).add(url('TransOut'), url('TransOutRevert'), busiReq(busi, 1)).submit(),
        FailureError,
      );
    });

    test('the outcomes of a submit over gRPC: still running, resubmitted after success and after rollback', async () => {
      const send = (gid: string) =>
        dtx.saga(gid, { waitResult: true }).add(url('TransOut'), url('TransOutRevert'), busiReq(busi, 1)).submit();
      // an action that errs once: OngoingError (FailedPrecondition), then the cron finishes the saga
      const running = generateGid();
      script.set(`${running} TransOut`, () => {
        script.delete(`${running} TransOut`);
        throw new Error('database is restarting');
      });
      await assert.rejects(send(running), (err) => err instanceof OngoingError && /still submitted/.test(err.message));
      await cronUntilStatus(server, http, running, 'succeed');
      // after success: resolves, the branch is not called again
      const calls = trace(running).length;
      await send(running);
      assert.equal(trace(running).length, calls);
      // after a rollback: FailureError, not the coordinator's 'cannot sumbmit' refusal read as a rollback of its own
      const refused = generateGid();
      script.set(`${refused} TransOut`, () => {
        throw new FailureError('refused');
      });
      await assert.rejects(send(refused), FailureError);
      await assert.rejects(send(refused), (err) => err instanceof FailureError && /rolled back/.test(err.message));
    });

    test('a coordinator that cannot be reached over gRPC (a closed loopback port) → CoordinatorError', async () => {
      const gone = new DtxGrpcClient(`127.0.0.1:${await freePort()}`, { requestTimeoutMs: 2_000 });
      try {
        await assert.rejects(
          gone.saga(undefined, { waitResult: true }).add(url('TransOut'), '', busiReq(busi, 1)).submit(),
          (err) => err instanceof CoordinatorError && isCoordinatorError(err) && /cannot reach/.test(err.message),
        );
      } finally {
        await gone.close();
      }
    });

    test('a handler answering a code DTM retries forever is retried, never compensated, and warned about', async () => {
      const gid = generateGid();
      script.set(`${gid} TransIn`, () => {
        throw Object.assign(new Error('order creation error'), { code: 100 });
      });
      await dtx.saga(gid).add(url('TransIn'), url('TransInRevert'), busiReq(busi, 2)).submit();
      await waitForStatus(http, gid, 'submitted');
      await waitFor(() => (trace(gid).length > 0 ? true : undefined), { what: 'the first attempt' });
      assert.ok(warnings.some((w) => /TransIn answered Code\(100\)/.test(w)));
      assert.equal((await http.query(gid)).transaction?.status, 'submitted');
      script.delete(`${gid} TransIn`);
      await cronUntilStatus(server, http, gid, 'succeed');
      assert.ok(
        trace(gid).every((t) => t === 'TransIn action'),
        'no compensation ran',
      );
    });
  });

  describe('msg', () => {
    test('prepare + submit delivers every step', async () => {
      const msg = dtx.msg().add(url('TransIn'), busiReq(busi, 7)).add(url('TransOut'), busiReq(busi, 8));
      await msg.prepare(url('QueryPrepared'));
      await msg.submit();
      const q = await waitForStatus(http, msg.gid, 'succeed');
      assert.equal(q.transaction?.query_prepared, url('QueryPrepared'));
      assert.deepEqual(trace(msg.gid), ['TransIn action', 'TransOut action']);
    });

    test('doAndSubmit: the local transaction commits with the barrier, then the msg is delivered', async () => {
      const before = balance();
      const msg = dtx.msg().add(url('TransIn'), busiReq(busi, 30));
      await msg.doAndSubmit(url('QueryPrepared'), barrierDb, (tx) => {
        tx.prepare('update account set balance = balance - 30 where id = 1').run();
      });
      await waitForStatus(http, msg.gid, 'succeed');
      assert.equal(balance(), before - 30);
      assert.deepEqual(trace(msg.gid), ['TransIn action']);
    });

    test('doAndSubmit: a business FailureError aborts the msg; nothing is delivered', async () => {
      const before = balance();
      const msg = dtx.msg().add(url('TransIn'), busiReq(busi, 30));
      await assert.rejects(
        msg.doAndSubmit(url('QueryPrepared'), barrierDb, (tx) => {
          tx.prepare('update account set balance = balance - 30 where id = 1').run();
          throw new FailureError('not enough');
        }),
        FailureError,
      );
      await waitForStatus(http, msg.gid, 'failed');
      assert.equal(balance(), before);
      assert.deepEqual(trace(msg.gid), []);
    });

    test('a prepared msg that is never submitted is back-checked over gRPC: Aborted → failed', async () => {
      const msg = dtx.msg(undefined, { timeoutToFail: 1 }).add(url('TransIn'), busiReq(busi, 1));
      await msg.prepare(url('QueryPrepared'));
      await cronUntilStatus(server, http, msg.gid, 'failed');
      assert.deepEqual(trace(msg.gid), ['QueryPrepared msg']);
    });
  });

  describe('tcc', () => {
    const transOut = (tcc: Parameters<Parameters<DtxGrpcClient['tccGlobalTransaction']>[1]>[0]) =>
      tcc.callBranch(busiReq(busi, 30), url('TransOutTry'), url('TransOutConfirm'), url('TransOutCancel'));
    const transIn = (tcc: Parameters<Parameters<DtxGrpcClient['tccGlobalTransaction']>[1]>[0]) =>
      tcc.callBranch(busiReq(busi, 30), url('TransInTry'), url('TransInConfirm'), url('TransInCancel'));

    test('confirm: the tries run through the SDK, the coordinator confirms last branch first', async () => {
      const gid = generateGid();
      const reply = await dtx.tccGlobalTransaction(gid, async (tcc) => {
        await transOut(tcc);
        return transIn(tcc);
      });
      assert.deepEqual(busi.TransIn!.responseDeserialize(reply), { Message: 'TransInTry ok' });
      const q = await waitForStatus(http, gid, 'succeed');
      assert.deepEqual(branchRows(q), [
        '01 cancel prepared',
        '01 confirm succeed',
        '02 cancel prepared',
        '02 confirm succeed',
      ]);
      assert.deepEqual(trace(gid), [
        'TransOutTry try',
        'TransInTry try',
        'TransInConfirm confirm',
        'TransOutConfirm confirm',
      ]);
    });

    test('cancel: a try answering Aborted cancels every registered branch and the transaction fails', async () => {
      const gid = generateGid();
      script.set(`${gid} TransInTry`, () => {
        throw new FailureError('frozen account');
      });
      await assert.rejects(
        dtx.tccGlobalTransaction(gid, async (tcc) => {
          await transOut(tcc);
          await transIn(tcc);
        }),
        (err) => err instanceof FailureError && err.message === 'frozen account',
      );
      const q = await waitForStatus(http, gid, 'failed');
      assert.match(q.transaction?.rollback_reason ?? '', /frozen account/);
      assert.deepEqual(trace(gid), [
        'TransOutTry try',
        'TransInTry try',
        'TransInCancel cancel',
        'TransOutCancel cancel',
      ]);
    });
  });

  test('newGid over gRPC', async () => {
    assert.match(await dtx.newGid(), /^\w{22}$/);
  });
});
