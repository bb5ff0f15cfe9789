// The SDK's XA against a real DTM (v1.19.0, the binary the bench builds into ~/.cache/dtx-bench/dtm/dtm; its
// BoltDB store in a temp dir): the same handlers and expectations as xa.test.ts — commit and rollback over HTTP
// and gRPC, on MariaDB and PostgreSQL — hold against DTM too. Skipped, saying why, when the binary is absent
// (`npm run bench -- --peers` builds it).
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { DtxGrpcClient, type GrpcBranchHandler, grpcBranchService } from '../src/grpc/index.js';
import { DtxClient, FailureError, xaBranchFromMetadata, xaLocalTransaction } from '../src/index.js';
import { uniqueSuffix } from './support/db.js';
import { busiReq, busiService, freePort, type GrpcTestServer, startGrpcServer } from './support/grpc-services.js';
import { waitFor } from './support/poll.js';
import { branchRows, waitForStatus } from './support/transactions.js';
import { openXaHarness, type XaHarness } from './support/xa-db.js';
import { addXaRoutes, type XaCallLog } from './support/xa-routes.js';

const DTM_BIN = process.env.DTX_DTM_BIN ?? join(homedir(), '.cache', 'dtx-bench', 'dtm', 'dtm');
const skip = existsSync(DTM_BIN) ? false : `no DTM binary at ${DTM_BIN} (set DTX_DTM_BIN, or build it with the bench)`;
const busi = busiService();

interface Dtm {
  url: string;
  grpcAddress: string;
  stop(): Promise<void>;
}

async function startDtm(): Promise<Dtm> {
  const dir = await mkdtemp(join(tmpdir(), 'dtx-xa-dtm-'));
  const [http, grpc, jsonRpc] = [await freePort(), await freePort(), await freePort()];
  await writeFile(
    join(dir, 'conf.yml'),
    `HttpPort: ${http}\nGrpcPort: ${grpc}\nJsonRpcPort: ${jsonRpc}\nLogLevel: 'error'\nStore:\n  Driver: 'boltdb'\n`,
  );
  let output = '';
  const child: ChildProcess = spawn(DTM_BIN, ['-c', join(dir, 'conf.yml')], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (b: Buffer) => (output += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (output += b.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    child.kill('SIGKILL');
    await exited;
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(
      async () => {
        const res = await fetch(`http://127.0.0.1:${http}/api/ping`);
        return res.status === 200 ? true : undefined;
      },
      { what: 'DTM to answer /api/ping', timeoutMs: 15_000 },
    );
  } catch (err) {
    await stop();
    throw new Error(`${(err as Error).message}\n${output}`);
  }
  return { url: `http://127.0.0.1:${http}/api/dtmsvr`, grpcAddress: `127.0.0.1:${grpc}`, stop };
}

describe('XA against a real DTM', { skip }, () => {
  let dtm: Dtm;
  before(async () => {
    dtm = await startDtm();
  });
  after(async () => {
    await dtm?.stop();
  });

  for (const name of ['mysql', 'postgres'] as const) {
    describe(name === 'mysql' ? 'MariaDB' : 'PostgreSQL', () => {
      let http: DtxClient;
      let grpc: DtxGrpcClient;
      let h: XaHarness;
      let app: FastifyInstance;
      let busiUrl: string;
      let branches: GrpcTestServer;
      const log: XaCallLog = [];
      const prefix = `d${uniqueSuffix().slice(0, 8)}`;
      let n = 0;
      const nextGid = () => `${prefix}-${++n}`;
      const trace = (gid: string) => log.filter((c) => c.gid === gid).map((c) => c.line);
      const route = (path: string) => `${busiUrl}/xa/${name}/${path}`;
      const method = (m: string) => `${branches.address}/busi.Busi/${m}`;

      before(async () => {
        http = new DtxClient(dtm.url);
        grpc = new DtxGrpcClient(dtm.grpcAddress);
        h = await openXaHarness(name, `xa_dtm_${uniqueSuffix()}`, true);
        app = Fastify();
        addXaRoutes(app, h, http, log);
        busiUrl = await app.listen({ host: '127.0.0.1', port: 0 });
        const handler: GrpcBranchHandler<{ Amount: number; Note: string }> = async (ctx) => {
          const branch = xaBranchFromMetadata(ctx.metadata.getMap(), grpc);
          await xaLocalTransaction(h.dialect, h.db, branch, async (conn) => {
            if (!(await h.debit(conn, ctx.request.Note, Number(ctx.request.Amount)))) {
              throw new FailureError('insufficient balance');
            }
          });
          return { Message: 'ok' };
        };
        branches = await startGrpcServer((s) =>
          s.addService(busi, grpcBranchService({ TransOut: handler }, { logger: { warn() {}, error() {} } })),
        );
      });
      after(async () => {
        const left = await h?.prepared(prefix);
        for (const xid of left ?? []) await h.dialect.rollback(h.db, xid);
        await branches?.close();
        await app?.close();
        await grpc?.close();
        await http?.close();
        await h?.close();
        assert.deepEqual(left, [], 'prepared XA transactions left behind');
      });

      test('HTTP commit: DTM commits both branches through the same routes', async () => {
        const gid = nextGid();
        await h.setBalance(`${gid}-a`, 100);
        await h.setBalance(`${gid}-b`, 0);
        await http.xa(gid, async (xa) => {
          await xa.callBranch(route('TransOut'), { account: `${gid}-a`, amount: 30 });
          await xa.callBranch(route('TransIn'), { account: `${gid}-b`, amount: 30 });
        });
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
        assert.equal(await h.balance(`${gid}-a`), 70);
        assert.equal(await h.balance(`${gid}-b`), 30);
        assert.deepEqual(await h.prepared(gid), []);
      });

      test('HTTP rollback: DTM rolls back the registered branch', async () => {
        const gid = nextGid();
        await h.setBalance(`${gid}-a`, 100);
        await h.setBalance(`${gid}-c`, 0);
        await assert.rejects(
          http.xa(gid, async (xa) => {
            await xa.callBranch(route('TransOut'), { account: `${gid}-a`, amount: 30 });
            await xa.callBranch(route('TransOut'), { account: `${gid}-c`, amount: 30 });
          }),
          FailureError,
        );
        const q = await waitForStatus(http, gid, 'failed');
        assert.deepEqual(branchRows(q), ['01 rollback succeed', '01 commit prepared']);
        assert.deepEqual(trace(gid), ['TransOut action 01', 'TransOut action 02', 'TransOut rollback 01']);
        assert.equal(await h.balance(`${gid}-a`), 100);
        assert.deepEqual(await h.prepared(gid), []);
        assert.equal(await h.barrierReason(gid, '01'), 'rollback');
      });

      test('gRPC commit and rollback: DTM drives phase 2 over gRPC', async () => {
        const ok = nextGid();
        await h.setBalance(`${ok}-a`, 100);
        await grpc.xa(ok, (xa) => xa.callBranch(method('TransOut'), busiReq(busi, 30, `${ok}-a`)));
        await waitForStatus(http, ok, 'succeed');
        assert.equal(await h.balance(`${ok}-a`), 70);
        const bad = nextGid();
        await h.setBalance(`${bad}-a`, 100);
        await assert.rejects(
          grpc.xa(bad, async (xa) => {
            await xa.callBranch(method('TransOut'), busiReq(busi, 30, `${bad}-a`));
            await xa.callBranch(method('TransOut'), busiReq(busi, 30, `${bad}-none`));
          }),
          FailureError,
        );
        const q = await waitForStatus(http, bad, 'failed');
        assert.deepEqual(branchRows(q), ['01 rollback succeed', '01 commit prepared']);
        assert.equal(await h.balance(`${bad}-a`), 100);
        assert.deepEqual([...(await h.prepared(ok)), ...(await h.prepared(bad))], []);
      });
    });
  }
});
