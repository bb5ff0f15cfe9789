// Trace context from the application through the SDK, the coordinator and back to the branches: with a W3C
// propagator registered and a span active (what an OpenTelemetry SDK setup gives an application), every call
// the SDK makes — to a real dtx, and to the branches it calls itself — carries that span's traceparent, and the
// coordinator continues it to every branch it calls (its export is off: it forwards the context unchanged).
// The propagator and context manager are registered globally: this file is its own process.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { context, propagation } from '@opentelemetry/api';
import { DtxGrpcClient, type GrpcBranchHandler, grpcBranchService } from '../src/grpc/index.js';
import { DtxClient, generateGid } from '../src/index.js';
import { type BranchService, startBranchService } from './support/branch-service.js';
import {
  BUSI_METHODS,
  type BusiReply,
  type BusiReq,
  busiReq,
  busiService,
  type GrpcDtxServer,
  type GrpcTestServer,
  metadataOf,
  startGrpcDtxServer,
  startGrpcServer,
} from './support/grpc-services.js';
import { AlsContextManager, contextWithSpan, W3CPropagator } from './support/otel.js';
import { waitForStatus } from './support/transactions.js';

const TRACE_ID = '5b8efff798038103d269b633813fc60c';
const SPAN_ID = 'eee19b7ec3c1b174';
const TRACEPARENT = `00-${TRACE_ID}-${SPAN_ID}-01`;
const busi = busiService();

describe('trace context through the SDK and dtx', () => {
  let server: GrpcDtxServer;
  let http: DtxClient;
  let grpc: DtxGrpcClient;
  let httpBusi: BranchService;
  let grpcBusi: GrpcTestServer;
  /** `<gid> <method> <op>` → the traceparent the gRPC branch received. */
  const grpcReceived: { gid: string; method: string; op: string; traceparent: string | undefined }[] = [];
  const manager = new AlsContextManager();

  before(async () => {
    context.setGlobalContextManager(manager);
    propagation.setGlobalPropagator(new W3CPropagator());
    server = await startGrpcDtxServer();
    http = new DtxClient(server.url);
    grpc = new DtxGrpcClient(server.grpcAddress);
    httpBusi = await startBranchService((app) => {
      app.route({
        method: ['GET', 'POST'],
        url: '/:name',
        handler: async (_req, reply) => reply.code(200).type('application/json').send('{"dtm_result":"SUCCESS"}'),
      });
    });
    const handlers: Record<string, GrpcBranchHandler<BusiReq, BusiReply>> = {};
    for (const method of BUSI_METHODS) {
      handlers[method] = (ctx) => {
        const md = metadataOf(ctx.metadata);
        grpcReceived.push({ gid: ctx.branchInfo.gid, method, op: ctx.branchInfo.op, traceparent: md.traceparent });
        return { Message: 'ok' };
      };
    }
    grpcBusi = await startGrpcServer((s) => s.addService(busi, grpcBranchService(handlers)));
  });
  after(async () => {
    await http.close();
    await grpc.close();
    await httpBusi.close();
    await grpcBusi.close();
    await server.stop();
    propagation.disable();
    context.disable();
  });

  /** Runs `fn` with the application's span active. */
  const inSpan = <T>(fn: () => Promise<T>): Promise<T> => context.with(contextWithSpan(TRACE_ID, SPAN_ID), fn);
  const httpCalls = (gid: string) => httpBusi.calls.filter((c) => c.gid === gid);

  test('HTTP saga: the coordinator receives the active span and every branch continues it', async () => {
    const u = httpBusi.url;
    const saga = http
      .saga(undefined, { waitResult: true })
      .add(`${u}/TransOut`, `${u}/TransOutRevert`, { amount: 30 })
      .add(`${u}/TransIn`, `${u}/TransInRevert`, { amount: 30 });
    await inSpan(() => saga.submit());
    const calls = httpCalls(saga.gid);
    assert.deepEqual(
      calls.map((c) => `${c.path} ${c.op}`),
      ['/TransOut action', '/TransIn action'],
    );
    for (const c of calls) assert.equal(c.headers.traceparent, TRACEPARENT, c.path);
  });

  test('without an active span nothing is sent, and the coordinator sends nothing either', async () => {
    const u = httpBusi.url;
    const saga = http.saga(undefined, { waitResult: true }).add(`${u}/TransOut`, `${u}/TransOutRevert`, {});
    await saga.submit();
    const [c] = httpCalls(saga.gid);
    assert.ok(c);
    assert.equal(c.headers.traceparent, undefined);
  });

  test('HTTP tcc: the try (called by the SDK) and the confirm (called by dtx) carry the same trace', async () => {
    const u = httpBusi.url;
    const gid = generateGid();
    await inSpan(() =>
      http.tccGlobalTransaction(gid, async (tcc) => {
        await tcc.callBranch({ amount: 30 }, `${u}/TransOutTry`, `${u}/TransOutConfirm`, `${u}/TransOutCancel`);
      }),
    );
    await waitForStatus(http, gid, 'succeed');
    const calls = httpCalls(gid);
    assert.deepEqual(
      calls.map((c) => `${c.path} ${c.op}`),
      ['/TransOutTry try', '/TransOutConfirm confirm'],
    );
    for (const c of calls) assert.equal(c.headers.traceparent, TRACEPARENT, c.path);
  });

  test('gRPC saga: metadata to the coordinator, and on to every gRPC branch', async () => {
    const url = (m: string) => `${grpcBusi.address}/busi.Busi/${m}`;
    const saga = grpc
      .saga(undefined, { waitResult: true })
      .add(url('TransOut'), url('TransOutRevert'), busiReq(busi, 30))
      .add(url('TransIn'), url('TransInRevert'), busiReq(busi, 30));
    await inSpan(() => saga.submit());
    const calls = grpcReceived.filter((r) => r.gid === saga.gid);
    assert.deepEqual(
      calls.map((r) => `${r.method} ${r.op}`),
      ['TransOut action', 'TransIn action'],
    );
    for (const r of calls) assert.equal(r.traceparent, TRACEPARENT, r.method);
  });

  test('gRPC tcc: the try (called by the SDK over gRPC) and the confirm carry the same trace', async () => {
    const url = (m: string) => `${grpcBusi.address}/busi.Busi/${m}`;
    const gid = generateGid();
    await inSpan(() =>
      grpc.tccGlobalTransaction(gid, async (tcc) => {
        await tcc.callBranch(busiReq(busi, 30), url('TransOutTry'), url('TransOutConfirm'), url('TransOutCancel'));
      }),
    );
    await waitForStatus(http, gid, 'succeed');
    const calls = grpcReceived.filter((r) => r.gid === gid);
    assert.deepEqual(
      calls.map((r) => `${r.method} ${r.op}`),
      ['TransOutTry try', 'TransOutConfirm confirm'],
    );
    for (const r of calls) assert.equal(r.traceparent, TRACEPARENT, r.method);
  });
});
