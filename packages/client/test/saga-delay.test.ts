// Delayed compensation (a dtx extension) through the SDK, end to end: `add(…, { compensateDelay })` over HTTP and
// over gRPC against a real dtx server (test mode: its cron is driven one step at a time with the clock moved
// forward), with real branch services defined here; and a crash (SIGKILL) of the coordinator in the middle of the
// wait, after which a new one on the same SQLite file still waits the rest, then compensates.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DtxGrpcClient, type GrpcBranchHandler, grpcBranchService } from '../src/grpc/index.js';
import { DtxClient, FailureError, type QueryReply } from '../src/index.js';
import { type BranchService, startBranchService } from './support/branch-service.js';
import { type DtxServer, startDtxServer } from './support/dtx-server.js';
import {
  BUSI_METHODS,
  type BusiReply,
  type BusiReq,
  busiReq,
  busiService,
  type GrpcDtxServer,
  type GrpcTestServer,
  startGrpcDtxServer,
  startGrpcServer,
} from './support/grpc-services.js';
import { failure, ReplyScript } from './support/reply-script.js';
import { branchStatuses } from './support/transactions.js';

const busi = busiService();
/** The stock compensation waits 10 minutes after the rollback began. */
const DELAY = 600;

/** Cron steps (clock `nowForward` s ahead, due within `window` s) until one processed `gid`; fails if none does. */
async function cronFor(server: DtxServer, gid: string, nowForward: number, window = DELAY + 100): Promise<void> {
  for (let i = 0; i < 50; i++) {
    const g = await server.cronOnce(nowForward, window);
    if (g === gid) return;
    if (g === '') break;
  }
  throw new Error(`the cron did not pick ${gid}`);
}

/** The checks every delayed saga below shares, right after its submit: aborting, with the due time shown. */
function assertWaiting(q: QueryReply): number {
  const t = q.transaction;
  assert.equal(t?.status, 'aborting');
  assert.deepEqual(t?.compensate_delays, [DELAY, 0]);
  const began = Date.parse(t?.rollback_time ?? '');
  assert.ok(Number.isFinite(began), `rollback_time ${t?.rollback_time}`);
  const due = t?.compensate_due;
  assert.equal(Date.parse(due?.[0] ?? ''), began + DELAY * 1000);
  assert.equal(due?.[1], null);
  return began;
}

describe('saga compensateDelay against a real dtx', () => {
  const dir = { path: '' };
  let server: GrpcDtxServer | DtxServer;
  let client: DtxClient;
  let grpc: DtxGrpcClient;
  let web: BranchService;
  let branches: GrpcTestServer;
  const script = new ReplyScript();
  const grpcCalls: string[] = [];
  const failGrpc = new Set<string>();

  before(async () => {
    dir.path = await mkdtemp(join(tmpdir(), 'dtx-client-delay-'));
    server = await startGrpcDtxServer({ STORE_SQLITE_PATH: join(dir.path, 'dtx.db') });
    client = new DtxClient(server.url);
    grpc = new DtxGrpcClient((server as GrpcDtxServer).grpcAddress);
    web = await startBranchService((app) => {
      app.post('/:name', async (req, reply) => {
        const { gid } = req.query as { gid?: string };
        const r = script.next(gid, req.url.split('?')[0] ?? '');
        return reply.code(r.status).type('application/json').send(r.body);
      });
    });
    const handlers: Record<string, GrpcBranchHandler<BusiReq, BusiReply>> = {};
    for (const method of BUSI_METHODS) {
      handlers[method] = (ctx) => {
        grpcCalls.push(`${ctx.branchInfo.gid} ${method} ${ctx.branchInfo.op}`);
        if (failGrpc.has(`${ctx.branchInfo.gid} ${method}`)) throw new FailureError('out of stock');
        return { Message: `${method} ok` };
      };
    }
    branches = await startGrpcServer((s) => s.addService(busi, grpcBranchService(handlers)));
  });
  after(async () => {
    await grpc.close();
    await client.close();
    await branches.close();
    await web.close();
    await server.stop();
    await rm(dir.path, { recursive: true, force: true });
  });

  /** Stock deducted first (its restore delayed), then a payment that is refused. */
  const httpOrder = () => {
    const saga = client
      .saga(undefined, { waitResult: true })
      .add(`${web.url}/StockDeduct`, `${web.url}/StockRestore`, { sku: 'a1' }, { compensateDelay: DELAY })
      .add(`${web.url}/Pay`, `${web.url}/Refund`, { amount: 30 });
    script.set(saga.gid, '/Pay', failure('card declined'));
    return saga;
  };

  test('HTTP: the delayed compensation is not called before its due time, and is called after', async () => {
    const saga = httpOrder();
    await assert.rejects(saga.submit(), (err) => err instanceof FailureError && /card declined/.test(err.message));
    // the step without a delay is compensated at once; the stock waits
    assert.deepEqual(web.trace(saga.gid), ['/StockDeduct action', '/Pay action', '/Refund compensate']);
    assertWaiting(await client.query(saga.gid));

    // 300 s after the rollback began: a pass runs, and calls nothing
    await cronFor(server, saga.gid, DELAY / 2);
    assert.equal(web.trace(saga.gid).length, 3);
    assert.equal((await client.query(saga.gid)).transaction?.status, 'aborting');

    // past the due time: the stock is restored and the saga is failed
    await cronFor(server, saga.gid, DELAY + 1);
    assert.deepEqual(web.trace(saga.gid).slice(3), ['/StockRestore compensate']);
    const q = await client.query(saga.gid);
    assert.equal(q.transaction?.status, 'failed');
    assert.equal(q.transaction?.compensate_due, undefined);
    assert.deepEqual(branchStatuses(q), ['succeed', 'succeed', 'succeed', 'failed']);
  });

  test('gRPC: compensateDelay in DtmRequest.Steps waits the same way', async () => {
    const url = (m: string) => `${branches.address}/busi.Busi/${m}`;
    const saga = grpc
      .saga(undefined, { waitResult: true })
      .add(url('TransOut'), url('TransOutRevert'), busiReq(busi, 30), { compensateDelay: DELAY })
      .add(url('TransIn'), url('TransInRevert'), busiReq(busi, 30));
    failGrpc.add(`${saga.gid} TransIn`);
    await assert.rejects(saga.submit(), FailureError);
    const trace = () => grpcCalls.filter((c) => c.startsWith(`${saga.gid} `)).map((c) => c.slice(saga.gid.length + 1));
    assert.deepEqual(trace(), ['TransOut action', 'TransIn action', 'TransInRevert compensate']);
    const q = await client.query(saga.gid);
    assert.equal(q.transaction?.protocol, 'grpc');
    assertWaiting(q);

    await cronFor(server, saga.gid, DELAY / 2);
    assert.equal(trace().length, 3);

    await cronFor(server, saga.gid, DELAY + 1);
    assert.deepEqual(trace().slice(3), ['TransOutRevert compensate']);
    assert.equal((await client.query(saga.gid)).transaction?.status, 'failed');
  });

  test('a coordinator killed in the middle of the wait: the next one on the same store waits the rest, then compensates', async () => {
    const saga = httpOrder();
    await assert.rejects(saga.submit(), FailureError);
    const began = assertWaiting(await client.query(saga.gid));
    await cronFor(server, saga.gid, DELAY / 2);
    assert.equal(web.trace(saga.gid).length, 3);

    // a crash: no shutdown; then a new coordinator on the same SQLite file
    await server.kill();
    await server.stop(); // removes only its own temp dir; the store is in ours
    await client.close();
    server = await startDtxServer({ env: { STORE_SQLITE_PATH: join(dir.path, 'dtx.db') } });
    client = new DtxClient(server.url);
    const q = await client.query(saga.gid);
    assert.equal(q.transaction?.status, 'aborting');
    assert.equal(Date.parse(q.transaction?.rollback_time ?? ''), began);

    // still 300 s in: nothing; then past the due time: compensated
    await cronFor(server, saga.gid, DELAY / 2);
    assert.equal(web.trace(saga.gid).length, 3);
    await cronFor(server, saga.gid, DELAY + 1);
    assert.deepEqual(web.trace(saga.gid).slice(3), ['/StockRestore compensate']);
    assert.equal((await client.query(saga.gid)).transaction?.status, 'failed');
  });
});
