// XA end to end on real MariaDB and PostgreSQL with a real dtx: client.xa() over HTTP and gRPC calls branch
// handlers that run xaLocalTransaction (Fastify routes, grpc-js methods); the coordinator then commits or rolls
// back every registered branch through the same handlers. Crashes between prepare and phase 2 run the branch
// service in a process of its own and SIGKILL it. Then the phase-2 rules of spec §9.6 on the databases directly.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import Fastify, { type FastifyInstance } from 'fastify';
import mysql from 'mysql2/promise';
import { DtxGrpcClient, type GrpcBranchHandler, grpcBranchService } from '../src/grpc/index.js';
import {
  BranchError,
  DtxClient,
  DuplicatedError,
  FailureError,
  runXaBranch,
  XaBranchInfoError,
  XaXidInUseError,
  xaBranchFromMetadata,
  xaBranchFromQuery,
  xaLocalTransaction,
  xaPhase2,
  xaXid,
} from '../src/index.js';
import { MYSQL_URL, uniqueSuffix } from './support/db.js';
import {
  type BusiReply,
  type BusiReq,
  busiReq,
  busiService,
  freePort,
  type GrpcDtxServer,
  type GrpcTestServer,
  metadataOf,
  startGrpcDtxServer,
  startGrpcServer,
} from './support/grpc-services.js';
import { waitFor } from './support/poll.js';
import { branchRows, cronUntilStatus, waitForStatus } from './support/transactions.js';
import { openXaHarness, type XaDbName, type XaHarness } from './support/xa-db.js';
import { addXaRoutes, type XaCallLog } from './support/xa-routes.js';

const BRANCH_PROCESS = fileURLToPath(new URL('./support/xa-branch-process.js', import.meta.url));
const busi = busiService();

/** A branch service in a child process (support/xa-branch-process.ts). */
interface BranchProcess {
  readonly url: string;
  readonly exited: Promise<number | null>;
  kill(): Promise<void>;
  output(): string;
}

async function startBranchProcess(
  db: XaDbName,
  table: string,
  port: number,
  dtm: string,
  crash: boolean,
): Promise<BranchProcess> {
  let output = '';
  const child: ChildProcess = spawn(process.execPath, [BRANCH_PROCESS], {
    env: {
      ...process.env,
      XA_DB: db,
      XA_TABLE: table,
      XA_PORT: String(port),
      XA_DTM: dtm,
      XA_CRASH: crash ? 'after-prepare' : '',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (b: Buffer) => (output += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (output += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let gone = false;
  void exited.then(() => (gone = true));
  await waitFor(
    () => {
      if (gone) throw new Error(`the branch process exited: ${output}`);
      return output.includes('ready') ? true : undefined;
    },
    { what: 'the XA branch process to listen', timeoutMs: 15_000 },
  );
  return {
    url: `http://127.0.0.1:${port}`,
    exited,
    async kill() {
      if (!gone) child.kill('SIGKILL');
      await exited;
    },
    output: () => output,
  };
}

for (const name of ['mysql', 'postgres'] as const) {
  const label = name === 'mysql' ? 'MariaDB' : 'PostgreSQL';
  describe(`XA on ${label}`, () => {
    let server: GrpcDtxServer;
    let http: DtxClient;
    let grpc: DtxGrpcClient;
    let h: XaHarness;
    let app: FastifyInstance;
    let busiUrl: string;
    let branches: GrpcTestServer;
    const log: XaCallLog = [];
    const grpcLog: { gid: string; line: string; phase2Url: string }[] = [];
    // Short gids: the MySQL xid (gid-branch_id) has at most 64 bytes.
    const prefix = `x${uniqueSuffix().slice(0, 8)}`;
    let n = 0;
    const nextGid = () => `${prefix}-${++n}`;
    const trace = (gid: string) => log.filter((c) => c.gid === gid).map((c) => c.line);
    const grpcTrace = (gid: string) => grpcLog.filter((c) => c.gid === gid).map((c) => c.line);
    const route = (path: string) => `${busiUrl}/xa/${name}/${path}`;
    const method = (m: string) => `${branches.address}/busi.Busi/${m}`;

    before(async () => {
      server = await startGrpcDtxServer();
      http = new DtxClient(server.url);
      grpc = new DtxGrpcClient(server.grpcAddress);
      h = await openXaHarness(name, `xa_account_${uniqueSuffix()}`, true);
      app = Fastify();
      addXaRoutes(app, h, http, log);
      busiUrl = await app.listen({ host: '127.0.0.1', port: 0 });
      const grpcHandler =
        (work: (conn: unknown, req: BusiReq) => Promise<void>): GrpcBranchHandler<BusiReq, BusiReply> =>
        async (ctx) => {
          const md = metadataOf(ctx.metadata);
          grpcLog.push({
            gid: md['dtm-gid'] ?? '',
            line: `${ctx.call.getPath().split('/').pop()} ${md['dtm-op']} ${md['dtm-branch_id']}`,
            phase2Url: md['dtm-phase2_url'] ?? '',
          });
          const branch = xaBranchFromMetadata(ctx.metadata.getMap(), grpc);
          await xaLocalTransaction(h.dialect, h.db, branch, (conn) => work(conn, ctx.request));
          return { Message: 'ok' };
        };
      branches = await startGrpcServer((s) =>
        s.addService(
          busi,
          grpcBranchService(
            {
              TransOut: grpcHandler(async (conn, req) => {
                if (!(await h.debit(conn, req.Note, Number(req.Amount))))
                  throw new FailureError('insufficient balance');
              }),
              TransIn: grpcHandler((conn, req) => h.credit(conn, req.Note, Number(req.Amount))),
            },
            { logger: { warn() {}, error() {} } },
          ),
        ),
      );
    });
    after(async () => {
      // Nothing of this run may be left prepared, whatever failed.
      const left = await h?.prepared(prefix);
      for (const xid of left ?? []) await h.dialect.rollback(h.db, xid);
      await branches?.close();
      await app?.close();
      await grpc?.close();
      await http?.close();
      await h?.close();
      await server?.stop();
      assert.deepEqual(left, [], 'prepared XA transactions left behind');
    });

    /** Sets the balances of fresh accounts `<gid>-a`, `<gid>-b`, … and returns their names. */
    const accounts = async (gid: string, ...balances: number[]) => {
      const names: string[] = [];
      for (const [i, b] of balances.entries()) {
        const account = `${gid}-${String.fromCharCode(97 + i)}`;
        await h.setBalance(account, b);
        names.push(account);
      }
      return names;
    };

    describe('over HTTP (Fastify handlers)', () => {
      test('commit: both branches prepare, the coordinator commits them first to last', async () => {
        const gid = nextGid();
        const [a, b] = (await accounts(gid, 100, 0)) as [string, string];
        const replies = await http.xa(gid, async (xa) => {
          const r1 = await xa.callBranch(route('TransOut'), { account: a, amount: 30 });
          const r2 = await xa.callBranch(route('TransIn'), { account: b, amount: 30 });
          // Prepared, not committed: the work is invisible, the xids wait for phase 2.
          assert.deepEqual((await h.prepared(gid)).sort(), [xaXid(gid, '01'), xaXid(gid, '02')]);
          assert.equal(await h.balance(a), 100);
          return [r1.text, r2.text];
        });
        assert.deepEqual(replies, ['{"debited":30}', '{"credited":30}']);
        const q = await waitForStatus(http, gid, 'succeed');
        assert.deepEqual(branchRows(q), [
          '01 rollback prepared',
          '01 commit succeed',
          '02 rollback prepared',
          '02 commit succeed',
        ]);
        assert.deepEqual(trace(gid), [
          'TransOut action 01',
          'TransIn action 02',
          'TransOut commit 01',
          'TransIn commit 02',
        ]);
        assert.equal(await h.balance(a), 70);
        assert.equal(await h.balance(b), 30);
        assert.deepEqual(await h.prepared(gid), []);
        assert.equal(await h.barrierReason(gid, '01'), 'action');
      });

      test('rollback: a branch answering FAILURE aborts; the registered branch is rolled back', async () => {
        const gid = nextGid();
        const [a, c] = (await accounts(gid, 100, 0)) as [string, string];
        await assert.rejects(
          http.xa(gid, async (xa) => {
            await xa.callBranch(route('TransOut'), { account: a, amount: 30 });
            await xa.callBranch(route('TransOut'), { account: c, amount: 30 }); // balance 0: FAILURE
          }),
          (err: unknown) => err instanceof FailureError && /insufficient balance/.test(err.message),
        );
        const q = await waitForStatus(http, gid, 'failed');
        // Branch 02 refused inside its local transaction: rolled back there, never registered.
        assert.deepEqual(branchRows(q), ['01 rollback succeed', '01 commit prepared']);
        assert.match(q.transaction?.rollback_reason ?? '', /insufficient balance/);
        assert.deepEqual(trace(gid), ['TransOut action 01', 'TransOut action 02', 'TransOut rollback 01']);
        assert.equal(await h.balance(a), 100);
        assert.equal(await h.balance(c), 0);
        assert.deepEqual(await h.prepared(gid), []);
        assert.equal(await h.barrierReason(gid, '01'), 'rollback');
        assert.equal(await h.barrierReason(gid, '02'), undefined);
      });

      test('an error in the global body after a prepared branch aborts it, with the message as reason', async () => {
        const gid = nextGid();
        const [a] = (await accounts(gid, 100)) as [string];
        await assert.rejects(
          http.xa(gid, async (xa) => {
            await xa.callBranch(route('TransOut'), { account: a, amount: 30 });
            throw new Error('order service down');
          }),
          /order service down/,
        );
        const q = await waitForStatus(http, gid, 'failed');
        assert.equal(q.transaction?.rollback_reason, 'order service down');
        assert.equal(await h.balance(a), 100);
        assert.deepEqual(await h.prepared(gid), []);
      });

      test('bad input: a call without XA info answers 500 naming the missing field, and changes nothing', async () => {
        const gid = nextGid();
        const post = async (query: string) => {
          const res = await fetch(`${route('TransOut')}${query}`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ account: `${gid}-a`, amount: 1 }),
          });
          return { status: res.status, error: ((await res.json()) as { error?: string }).error ?? '' };
        };
        const none = await post('');
        assert.equal(none.status, 500);
        assert.match(none.error, /bad XA branch call: missing "trans_type" in the query string/);
        const noPhase2 = await post(`?gid=${gid}&trans_type=xa&branch_id=01&op=action`);
        assert.match(noPhase2.error, /missing "phase2_url"/);
        const saga = await post(`?gid=${gid}&trans_type=saga&branch_id=01&op=action&phase2_url=x`);
        assert.match(saga.error, /"trans_type" is 'saga', not 'xa'/);
        const op = await post(`?gid=${gid}&trans_type=xa&branch_id=01&op=try&phase2_url=x`);
        assert.match(op.error, /"op" is 'try', not action, commit or rollback/);
        const otherDtm = await post(
          `?gid=${gid}&trans_type=xa&branch_id=01&op=action&phase2_url=x&dtm=http://127.0.0.1:1/api/dtmsvr`,
        );
        assert.match(otherDtm.error, /called for coordinator http:\/\/127\.0\.0\.1:1\/api\/dtmsvr/);
        assert.deepEqual(await h.prepared(gid), []);
        assert.equal(await h.barrierReason(gid, '01'), undefined);
      });
    });

    describe('over gRPC (grpc-js handlers)', () => {
      test('commit: DtxGrpcClient.xa calls the methods with dtm-phase2_url; the coordinator commits them', async () => {
        const gid = nextGid();
        const [a, b] = (await accounts(gid, 100, 0)) as [string, string];
        await grpc.xa(gid, async (xa) => {
          await xa.callBranch(method('TransOut'), busiReq(busi, 30, a));
          await xa.callBranch(method('TransIn'), busiReq(busi, 30, b));
        });
        const q = await waitForStatus(http, gid, 'succeed');
        assert.equal(q.transaction?.protocol, 'grpc');
        assert.deepEqual(branchRows(q), [
          '01 rollback prepared',
          '01 commit succeed',
          '02 rollback prepared',
          '02 commit succeed',
        ]);
        assert.deepEqual(grpcTrace(gid), [
          'TransOut action 01',
          'TransIn action 02',
          'TransOut commit 01',
          'TransIn commit 02',
        ]);
        const actions = grpcLog.filter((c) => c.gid === gid && c.line.includes(' action '));
        assert.deepEqual(
          actions.map((c) => c.phase2Url),
          [method('TransOut'), method('TransIn')],
        );
        assert.equal(await h.balance(a), 70);
        assert.equal(await h.balance(b), 30);
        assert.deepEqual(await h.prepared(gid), []);
      });

      test('rollback: a method answering Aborted aborts; the registered branch is rolled back', async () => {
        const gid = nextGid();
        const [a, c] = (await accounts(gid, 100, 0)) as [string, string];
        await assert.rejects(
          grpc.xa(gid, async (xa) => {
            await xa.callBranch(method('TransOut'), busiReq(busi, 30, a));
            await xa.callBranch(method('TransOut'), busiReq(busi, 30, c));
          }),
          (err: unknown) => err instanceof FailureError && /insufficient balance/.test(err.message),
        );
        const q = await waitForStatus(http, gid, 'failed');
        assert.deepEqual(branchRows(q), ['01 rollback succeed', '01 commit prepared']);
        assert.deepEqual(grpcTrace(gid), ['TransOut action 01', 'TransOut action 02', 'TransOut rollback 01']);
        assert.equal(await h.balance(a), 100);
        assert.deepEqual(await h.prepared(gid), []);
      });

      test('bad input: a call without dtm-* metadata answers Unknown naming the missing key', async () => {
        const out = await grpc.invokeBranch(method('TransOut'), busiReq(busi, 1, 'nobody'), {});
        assert.equal(out.code, 2); // UNKNOWN
        assert.match(out.details, /bad XA branch call: missing "dtm-trans_type" in the dtm-\* metadata/);
      });
    });

    describe('a crash between prepare and phase 2 (the branch service is SIGKILLed, then restarted)', () => {
      test('killed right after XA PREPARE: the transaction survives, and is rolled back once the service is back', async () => {
        const gid = nextGid();
        const [a] = (await accounts(gid, 100)) as [string];
        const port = await freePort();
        const crashing = await startBranchProcess(name, h.table, port, server.url, true);
        await assert.rejects(
          http.xa(gid, (xa) => xa.callBranch(`${crashing.url}/xa/${name}/TransOut`, { account: a, amount: 30 })),
          BranchError,
        );
        assert.equal(await crashing.exited, null, `the branch process was not killed: ${crashing.output()}`);
        // Prepared by a process that is gone: the database keeps it, with its locks, for phase 2.
        assert.deepEqual(await h.prepared(gid), [xaXid(gid, '01')]);
        const aborting = await http.query(gid);
        assert.equal(aborting.transaction?.status, 'aborting');
        const back = await startBranchProcess(name, h.table, port, server.url, false);
        try {
          const q = await cronUntilStatus(server, http, gid, 'failed');
          assert.deepEqual(branchRows(q), ['01 rollback succeed', '01 commit prepared']);
        } finally {
          await back.kill();
        }
        assert.deepEqual(await h.prepared(gid), []);
        assert.equal(await h.balance(a), 100);
        assert.equal(await h.barrierReason(gid, '01'), 'rollback');
      });

      test('killed after answering, before the commit: the coordinator commits once the service is back', async () => {
        const gid = nextGid();
        const [a, b] = (await accounts(gid, 100, 0)) as [string, string];
        const port = await freePort();
        const first = await startBranchProcess(name, h.table, port, server.url, false);
        await http.xa(gid, async (xa) => {
          await xa.callBranch(`${first.url}/xa/${name}/TransOut`, { account: a, amount: 30 });
          await xa.callBranch(route('TransIn'), { account: b, amount: 30 });
          await first.kill();
        });
        const stuck = await http.query(gid);
        assert.equal(stuck.transaction?.status, 'submitted');
        assert.deepEqual((await h.prepared(gid)).sort(), [xaXid(gid, '01'), xaXid(gid, '02')]);
        assert.equal(await h.balance(a), 100);
        const back = await startBranchProcess(name, h.table, port, server.url, false);
        try {
          const q = await cronUntilStatus(server, http, gid, 'succeed');
          assert.deepEqual(branchRows(q), [
            '01 rollback prepared',
            '01 commit succeed',
            '02 rollback prepared',
            '02 commit succeed',
          ]);
        } finally {
          await back.kill();
        }
        assert.deepEqual(await h.prepared(gid), []);
        assert.equal(await h.balance(a), 70);
        assert.equal(await h.balance(b), 30);
      });
    });

    describe('the phase-2 rules (spec §9.6), on the database directly', () => {
      const ref = (gid: string) => ({ gid, branchId: '01' });
      const debit = (account: string, amount: number) => async (conn: unknown) => {
        if (!(await h.debit(conn, account, amount))) throw new FailureError('insufficient balance');
        return 'debited';
      };

      test('a repeated commit and a repeated rollback are idempotent', async () => {
        const gid = nextGid();
        const [a] = (await accounts(gid, 100)) as [string];
        assert.equal(await runXaBranch(h.dialect, h.db, ref(gid), debit(a, 10)), 'debited');
        await xaPhase2(h.dialect, h.db, ref(gid), 'commit');
        await xaPhase2(h.dialect, h.db, ref(gid), 'commit');
        assert.equal(await h.balance(a), 90);
        const g2 = nextGid();
        const [b] = (await accounts(g2, 100)) as [string];
        await runXaBranch(h.dialect, h.db, ref(g2), debit(b, 10));
        await xaPhase2(h.dialect, h.db, ref(g2), 'rollback');
        await xaPhase2(h.dialect, h.db, ref(g2), 'rollback');
        assert.equal(await h.balance(b), 100);
        assert.deepEqual(await h.prepared(gid), []);
        assert.deepEqual(await h.prepared(g2), []);
      });

      test('a rollback before the action: the late action is refused and nothing is prepared', async () => {
        const gid = nextGid();
        const [a] = (await accounts(gid, 100)) as [string];
        await xaPhase2(h.dialect, h.db, ref(gid), 'rollback');
        let ran = false;
        await assert.rejects(
          runXaBranch(h.dialect, h.db, ref(gid), async (conn) => {
            ran = true;
            return debit(a, 10)(conn);
          }),
          (err: unknown) => err instanceof FailureError && /was rolled back before/.test(err.message),
        );
        assert.equal(ran, false);
        assert.deepEqual(await h.prepared(gid), []);
        assert.equal(await h.balance(a), 100);
      });

      test('a commit of a branch that never prepared is an error (its work would be lost), not a success', async () => {
        const gid = nextGid();
        await assert.rejects(xaPhase2(h.dialect, h.db, ref(gid), 'commit'), /work was never committed/);
      });

      test('a repeated action: refused while prepared, answered as done once committed', async () => {
        const gid = nextGid();
        const [a] = (await accounts(gid, 100)) as [string];
        await runXaBranch(h.dialect, h.db, ref(gid), debit(a, 10));
        await assert.rejects(runXaBranch(h.dialect, h.db, ref(gid), debit(a, 10)), XaXidInUseError);
        await xaPhase2(h.dialect, h.db, ref(gid), 'commit');
        await assert.rejects(runXaBranch(h.dialect, h.db, ref(gid), debit(a, 10)), DuplicatedError);
        assert.equal(await h.balance(a), 90);
        assert.deepEqual(await h.prepared(gid), []);
      });

      test('an error in the branch or in beforePrepare rolls the local transaction back', async () => {
        const gid = nextGid();
        const [a] = (await accounts(gid, 5)) as [string];
        await assert.rejects(runXaBranch(h.dialect, h.db, ref(gid), debit(a, 10)), FailureError);
        const g2 = nextGid();
        const [b] = (await accounts(g2, 100)) as [string];
        await assert.rejects(
          runXaBranch(h.dialect, h.db, ref(g2), debit(b, 10), {
            beforePrepare: () => {
              throw new FailureError('no trans with gid: … status: prepared found');
            },
          }),
          /status: prepared found/,
        );
        assert.equal(await h.balance(b), 100);
        assert.deepEqual([...(await h.prepared(gid)), ...(await h.prepared(g2))], []);
        // Nothing was committed: the barrier rows went with the local transactions.
        assert.equal(await h.barrierReason(g2, '01'), undefined);
      });

      test('a rollback while the local transaction still runs waits at most lockTimeoutMs, then asks to retry', async () => {
        const gid = nextGid();
        const [a] = (await accounts(gid, 100)) as [string];
        let release!: () => void;
        const gate = new Promise<void>((resolve) => (release = resolve));
        let inside!: () => void;
        const entered = new Promise<void>((resolve) => (inside = resolve));
        const running = runXaBranch(h.dialect, h.db, ref(gid), async (conn) => {
          await debit(a, 10)(conn);
          inside();
          await gate;
        });
        await entered;
        await assert.rejects(
          xaPhase2(h.dialect, h.db, ref(gid), 'rollback', { lockTimeoutMs: 1_000 }),
          /locked by its local transaction, still running or prepared: try again later/,
        );
        release();
        await running;
        assert.deepEqual(await h.prepared(gid), [xaXid(gid, '01')]);
        await xaPhase2(h.dialect, h.db, ref(gid), 'rollback');
        assert.deepEqual(await h.prepared(gid), []);
        assert.equal(await h.balance(a), 100);
      });

      test('a gid too long for the xid is refused before anything starts', async () => {
        const gid = `${prefix}-${'g'.repeat(250)}`;
        await assert.rejects(
          runXaBranch(h.dialect, h.db, ref(gid), () => 'never'),
          new RegExp(`${name} accepts at most ${h.dialect.maxXidBytes}`),
        );
      });

      test('xids with quotes and backslashes are written as literals, not as SQL', async () => {
        const gid = `${prefix}-q'\\"`;
        const [a] = (await accounts(`${prefix}-q${++n}`, 100)) as [string];
        await runXaBranch(h.dialect, h.db, ref(gid), debit(a, 10));
        assert.deepEqual(await h.prepared(gid), [xaXid(gid, '01')]);
        await xaPhase2(h.dialect, h.db, ref(gid), 'commit');
        assert.equal(await h.balance(a), 90);
        assert.deepEqual(await h.prepared(gid), []);
      });

      if (name === 'mysql') {
        test('MariaDB: a transaction prepared by a session still open is not "gone": commit asks to retry', async () => {
          const gid = nextGid();
          const [a] = (await accounts(gid, 100)) as [string];
          const xid = xaXid(gid, '01');
          const session = await mysql.createConnection(MYSQL_URL);
          try {
            await session.query('XA START ?', [xid]);
            await session.query(
              `INSERT INTO ${h.dialect.table} (trans_type, gid, branch_id, op, barrier_id, reason) VALUES ('xa', ?, '01', 'action', '01', 'action')`,
              [gid],
            );
            await session.execute(`UPDATE ${h.table} SET balance = balance - 10 WHERE id = ?`, [a]);
            await session.query('XA END ?', [xid]);
            await session.query('XA PREPARE ?', [xid]);
            await assert.rejects(xaPhase2(h.dialect, h.db, ref(gid), 'commit'), /prepared but not reachable/);
          } finally {
            await session.end();
          }
          await xaPhase2(h.dialect, h.db, ref(gid), 'commit');
          assert.equal(await h.balance(a), 90);
          assert.deepEqual(await h.prepared(gid), []);
        });
      } else {
        test('PostgreSQL: a transaction aborted by a caught error is reported, not taken for prepared', async () => {
          const gid = nextGid();
          await assert.rejects(
            runXaBranch(h.dialect, h.db, ref(gid), async (conn) => {
              await (conn as { query(s: string): Promise<unknown> }).query('SELECT 1/0').catch(() => {});
            }),
            /was not prepared: an earlier statement failed/,
          );
          assert.deepEqual(await h.prepared(gid), []);
        });
      }
    });
  });
}

describe('XA branch info', () => {
  const client = new DtxClient('http://127.0.0.1:36789/api/dtmsvr');
  after(() => client.close());

  test('phase 2 needs no phase2_url; metadata keys are matched case-insensitively', () => {
    const b = xaBranchFromQuery({ gid: 'g', trans_type: 'xa', branch_id: '01', op: 'commit' }, client);
    assert.deepEqual([b.gid, b.branchId, b.op, b.phase2Url], ['g', '01', 'commit', undefined]);
    const m = xaBranchFromMetadata(
      {
        'DTM-GID': 'g',
        'dtm-trans_type': ['xa'],
        'dtm-branch_id': '02',
        'dtm-op': 'action',
        'dtm-phase2_url': 'h:1/a.B/C',
      },
      client,
    );
    assert.deepEqual([m.gid, m.branchId, m.op, m.phase2Url], ['g', '02', 'action', 'h:1/a.B/C']);
  });

  test('a missing field is named', () => {
    assert.throws(
      () => xaBranchFromQuery({ gid: 'g', trans_type: 'xa', op: 'action' }, client),
      (err: unknown) => err instanceof XaBranchInfoError && err.field === 'branch_id',
    );
  });
});
