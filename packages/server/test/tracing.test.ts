import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { parseTraceContext } from '../src/observe/trace-context.js';
import { MemoryStore } from '../src/store/memory/memory-store.js';
import { Busi, type BusiCall } from './support/busi.js';
import { DtxProcess, freePort, startTestDtx, type TestDtx } from './support/dtx.js';
import { busiReq, DtmGrpcClient, GrpcBusi, type GrpcBusiCall } from './support/grpc-busi.js';
import { call } from './support/http.js';
import { waitFor } from './support/poll.js';
import { gidFor, msgBody, sagaBody } from './support/trans.js';

// W3C trace context through the coordinator with tracing export off (the default): the traceparent /
// tracestate a transaction was started with is stored with it and sent, unchanged, on every branch call of
// every pass — over HTTP, gRPC and JSON-RPC, on cron retries and after a restart, on every store.

const TRACE_ID = '0af7651916cd43dd8448eb211c80319c';
const TRACEPARENT = `00-${TRACE_ID}-b7ad6b7169203331-01`;
const TRACESTATE = 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7';
const TRACED = { traceparent: TRACEPARENT, tracestate: TRACESTATE };

/** The trace headers an HTTP branch call carried. */
const traceOf = (c: BusiCall) => ({ traceparent: c.headers.traceparent, tracestate: c.headers.tracestate });
/** The trace metadata a gRPC branch call carried. */
const grpcTraceOf = (c: GrpcBusiCall) => ({ traceparent: c.metadata.traceparent, tracestate: c.metadata.tracestate });
const NONE = { traceparent: undefined, tracestate: undefined };
/** The options text of a saga submitted with wait_result, as DTM stores and shows it. */
const OPTIONS = '{"wait_result":true,"concurrent":false}';

describe('parseTraceContext (W3C, read loosely)', () => {
  it('keeps a valid traceparent and its tracestate as given', () => {
    assert.deepEqual(parseTraceContext(TRACEPARENT, TRACESTATE), TRACED);
    assert.deepEqual(parseTraceContext(` ${TRACEPARENT} `, undefined), { traceparent: TRACEPARENT });
    assert.deepEqual(parseTraceContext([TRACEPARENT], ['a=1', 'b=2']), {
      traceparent: TRACEPARENT,
      tracestate: 'a=1,b=2',
    });
    assert.deepEqual(parseTraceContext(`00-${TRACE_ID}-b7ad6b7169203331-00`, ''), {
      traceparent: `00-${TRACE_ID}-b7ad6b7169203331-00`,
    });
  });

  it('reads a later version as version 00', () => {
    assert.deepEqual(parseTraceContext(`cc-${TRACE_ID}-b7ad6b7169203331-01-what-the-future-holds`, undefined), {
      traceparent: TRACEPARENT,
    });
  });

  it('ignores an invalid traceparent, and then its tracestate too', () => {
    const invalid: unknown[] = [
      undefined,
      '',
      'garbage',
      `ff-${TRACE_ID}-b7ad6b7169203331-01`,
      `00-${TRACE_ID.toUpperCase()}-b7ad6b7169203331-01`,
      `00-${'0'.repeat(32)}-b7ad6b7169203331-01`,
      `00-${TRACE_ID}-${'0'.repeat(16)}-01`,
      `00-${TRACE_ID}-b7ad6b7169203331`,
      `00-${TRACE_ID}-b7ad6b7169203331-01-extra`,
      `00_${TRACE_ID}_b7ad6b7169203331_01`,
      [TRACEPARENT, TRACEPARENT],
      42,
    ];
    for (const tp of invalid) assert.equal(parseTraceContext(tp, TRACESTATE), undefined, JSON.stringify(tp));
  });

  it('drops a tracestate that cannot be forwarded, keeping the traceparent', () => {
    assert.deepEqual(parseTraceContext(TRACEPARENT, `a=${'x'.repeat(600)}`), { traceparent: TRACEPARENT });
    assert.deepEqual(parseTraceContext(TRACEPARENT, 'a=é'), { traceparent: TRACEPARENT });
  });
});

describe('trace context propagation, export off', () => {
  let dtx: TestDtx;
  let busi: Busi;
  let grpcBusi: GrpcBusi;
  let dtm: DtmGrpcClient;
  before(async () => {
    dtx = await startTestDtx();
    busi = await new Busi().start();
    grpcBusi = await new GrpcBusi().start();
    dtm = new DtmGrpcClient(dtx.grpc);
  });
  beforeEach(() => {
    busi.reset();
    grpcBusi.reset();
  });
  after(async () => {
    dtm.close();
    await dtx.stop();
    await busi.stop();
    await grpcBusi.stop();
  });

  const post = (route: string, body: unknown, headers: Record<string, string> = {}) =>
    call('POST', `${dtx.api}/${route}`, body, headers);
  const callsOf = (gid: string) => busi.calls.filter((c) => c.query.gid === gid);

  it('HTTP saga: every action and compensation receives exactly the submitted traceparent and tracestate', async () => {
    const gid = gidFor('trace-saga');
    busi.setOnce('TransIn', 'FAILURE');
    const r = await post('submit', sagaBody(busi, gid, { wait_result: true }), TRACED);
    assert.equal(r.status, 409, r.text);
    assert.equal(await dtx.status(gid), 'failed');
    const calls = callsOf(gid);
    assert.deepEqual(calls.map((c) => `${c.name} ${c.query.op}`).sort(), [
      'TransIn action',
      'TransInRevert compensate',
      'TransOut action',
      'TransOutRevert compensate',
    ]);
    for (const c of calls) assert.deepEqual(traceOf(c), TRACED, `${c.name} ${c.query.op}`);
  });

  it('a cron retry sends the stored context again', async () => {
    const gid = gidFor('trace-retry');
    busi.setOnce('TransIn', 'ERROR');
    const r = await post('submit', sagaBody(busi, gid, { wait_result: true }), { traceparent: TRACEPARENT });
    assert.equal(r.status, 425, 'the first pass ended with TransIn to retry');
    await dtx.cronFor(gid);
    assert.equal(await dtx.status(gid), 'succeed');
    const ins = callsOf(gid).filter((c) => c.name === 'TransIn');
    assert.equal(ins.length, 2, 'TransIn: the failed call and the cron retry');
    for (const c of callsOf(gid)) assert.deepEqual(traceOf(c), { traceparent: TRACEPARENT, tracestate: undefined });
  });

  it('the stored context is not shown by query or all; without one, nothing more is stored or sent', async () => {
    const traced = gidFor('trace-query');
    const plain = gidFor('trace-none');
    assert.equal((await post('submit', sagaBody(busi, traced, { wait_result: true }), TRACED)).status, 200);
    assert.equal((await post('submit', sagaBody(busi, plain, { wait_result: true }))).status, 200);
    for (const c of callsOf(plain)) assert.deepEqual(traceOf(c), NONE, 'no trace context, none sent');

    const stored = await dtx.server.store.findTrans(traced);
    assert.equal(
      stored?.options,
      `{"wait_result":true,"concurrent":false,"traceparent":"${TRACEPARENT}","tracestate":"${TRACESTATE}"}`,
      'kept with the options',
    );
    assert.equal((await dtx.server.store.findTrans(plain))?.options, OPTIONS, 'no extra bytes');

    const q = await dtx.query(traced);
    assert.equal(q.transaction.options, OPTIONS, "query shows DTM's options");
    assert.equal((await dtx.query(plain)).transaction.options, OPTIONS);
    const all = await call('GET', `${dtx.api}/all?gid=${traced}`);
    const page = await call('GET', `${dtx.api}/all?limit=1000`);
    for (const text of [JSON.stringify(q), all.text, page.text]) {
      assert.ok(!text.includes(TRACE_ID), 'the trace id is in no reply');
      assert.ok(!text.includes('traceparent') && !text.includes('rojo'), 'nor the keys');
    }
  });

  it('an invalid traceparent is ignored: the transaction runs, its branches get no trace context', async () => {
    const invalid = [
      `ff-${TRACE_ID}-b7ad6b7169203331-01`,
      `00-${TRACE_ID.toUpperCase()}-b7ad6b7169203331-01`,
      `00-${'0'.repeat(32)}-b7ad6b7169203331-01`,
      `00-${TRACE_ID}-${'0'.repeat(16)}-01`,
      `00-${TRACE_ID}-b7ad6b7169203331-01-extra`,
      'not a traceparent',
    ];
    for (const traceparent of invalid) {
      const gid = gidFor('trace-invalid');
      const r = await post('submit', sagaBody(busi, gid, { wait_result: true }), { traceparent, tracestate: 'a=b' });
      assert.equal(r.status, 200, `${traceparent}: ${r.text}`);
      for (const c of callsOf(gid)) assert.deepEqual(traceOf(c), NONE, traceparent);
      assert.equal((await dtx.server.store.findTrans(gid))?.options, OPTIONS, traceparent);
    }
  });

  it("the transaction's context replaces a traceparent or tracestate given in branch_headers", async () => {
    const gid = gidFor('trace-headers');
    const branchHeaders = { Traceparent: `00-${'1'.repeat(32)}-${'2'.repeat(16)}-01`, TraceState: 'x=y', 'x-a': 'b' };
    const body = sagaBody(busi, gid, { wait_result: true, branch_headers: branchHeaders });
    assert.equal((await post('submit', body, { traceparent: TRACEPARENT })).status, 200);
    for (const c of callsOf(gid)) {
      assert.deepEqual(traceOf(c), { traceparent: TRACEPARENT, tracestate: undefined });
      assert.equal(c.headers['x-a'], 'b');
    }
    // without a context of its own, the branch headers go as they are
    const gid2 = gidFor('trace-headers-only');
    assert.equal(
      (await post('submit', sagaBody(busi, gid2, { wait_result: true, branch_headers: branchHeaders }))).status,
      200,
    );
    for (const c of callsOf(gid2))
      assert.deepEqual(traceOf(c), { traceparent: branchHeaders.Traceparent, tracestate: 'x=y' });
  });

  it('gRPC saga: the metadata traceparent / tracestate reach every gRPC action and compensation', async () => {
    const gid = gidFor('trace-grpc');
    grpcBusi.setOnce('TransIn', 'FAILURE');
    const request = {
      Gid: gid,
      TransType: 'saga',
      Steps: JSON.stringify([
        { action: grpcBusi.url('TransOut'), compensate: grpcBusi.url('TransOutRevert') },
        { action: grpcBusi.url('TransIn'), compensate: grpcBusi.url('TransInRevert') },
      ]),
      BinPayloads: [busiReq(30), busiReq(30)],
      TransOptions: { WaitResult: true },
    };
    await assert.rejects(dtm.call('Submit', request, TRACED), (err: { code: number }) => err.code === 10);
    const calls = grpcBusi.calls.filter((c) => c.gid === gid);
    assert.deepEqual(calls.map((c) => `${c.name} ${c.op}`).sort(), [
      'TransIn action',
      'TransInRevert compensate',
      'TransOut action',
      'TransOutRevert compensate',
    ]);
    for (const c of calls) assert.deepEqual(grpcTraceOf(c), TRACED, `${c.name} ${c.op}`);
    // an invalid one is ignored over gRPC too
    const gid2 = gidFor('trace-grpc-invalid');
    await dtm.call('Submit', { ...request, Gid: gid2 }, { traceparent: 'nope', tracestate: 'a=b' });
    for (const c of grpcBusi.calls.filter((x) => x.gid === gid2)) assert.deepEqual(grpcTraceOf(c), NONE);
  });

  it('JSON-RPC: the HTTP headers of the request reach the JSON-RPC branch and the HTTP branch', async () => {
    const gid = gidFor('trace-jrpc');
    const params = {
      gid,
      trans_type: 'msg',
      protocol: 'json-rpc',
      steps: [{ action: `${busi.url}/TransOut` }, { action: `${busi.url}/json-rpc?method=TransIn` }],
      payloads: ['{"amount":30}', '{"amount":30}'],
      query_prepared: `${busi.url}/QueryPrepared`,
    };
    const r = await call(
      'POST',
      `${dtx.base}/api/json-rpc`,
      { jsonrpc: '2.0', id: 'trace-1', method: 'submit', params },
      TRACED,
    );
    assert.equal(r.json.error, null, r.text);
    await waitFor('succeed', async () => (await dtx.status(gid)) === 'succeed');
    const calls = busi.calls.filter((c) => c.query.gid === gid || c.body.includes(JSON.stringify(gid)));
    assert.deepEqual(calls.map((c) => c.name).sort(), ['TransOut', 'json-rpc']);
    for (const c of calls) assert.deepEqual(traceOf(c), TRACED, c.name);
  });

  it("msg: the back-check (query_prepared) of a timed-out prepare and the deliveries continue prepare's context", async () => {
    const gid = gidFor('trace-msg');
    assert.equal((await post('prepare', msgBody(busi, gid), TRACED)).status, 200);
    await dtx.cronFor(gid, 60);
    await waitFor('succeed', async () => (await dtx.status(gid)) === 'succeed');
    const calls = callsOf(gid);
    assert.deepEqual(
      calls.map((c) => `${c.name} ${c.query.op}`),
      ['QueryPrepared msg', 'TransOut action', 'TransIn action'],
    );
    for (const c of calls) assert.deepEqual(traceOf(c), TRACED, c.name);
  });

  it('tcc: confirm and cancel continue the context stored by prepare, whatever later calls carry', async () => {
    const other = { traceparent: `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01` };
    const register = (gid: string, branchId: string, name: string) =>
      post(
        'registerBranch',
        {
          gid,
          branch_id: branchId,
          trans_type: 'tcc',
          data: '{"amount":30}',
          confirm: `${busi.url}/${name}Confirm`,
          cancel: `${busi.url}/${name}Revert`,
        },
        other,
      );
    const confirmed = gidFor('trace-tcc-confirm');
    assert.equal((await post('prepare', { gid: confirmed, trans_type: 'tcc' }, TRACED)).status, 200);
    assert.equal((await register(confirmed, '01', 'TransOut')).status, 200);
    assert.equal((await register(confirmed, '02', 'TransIn')).status, 200);
    assert.equal((await post('submit', { gid: confirmed, trans_type: 'tcc', wait_result: true }, other)).status, 200);
    assert.deepEqual(busi.callsOf(confirmed), ['TransInConfirm confirm', 'TransOutConfirm confirm']);
    for (const c of callsOf(confirmed)) assert.deepEqual(traceOf(c), TRACED, c.name);

    const cancelled = gidFor('trace-tcc-cancel');
    assert.equal((await post('prepare', { gid: cancelled, trans_type: 'tcc' }, TRACED)).status, 200);
    assert.equal((await register(cancelled, '01', 'TransOut')).status, 200);
    const r = await post('abort', { gid: cancelled, trans_type: 'tcc', wait_result: true }, other);
    assert.equal(r.status, 200, r.text);
    await waitFor('failed', async () => (await dtx.status(cancelled)) === 'failed');
    assert.deepEqual(busi.callsOf(cancelled), ['TransOutRevert cancel']);
    for (const c of callsOf(cancelled)) assert.deepEqual(traceOf(c), TRACED, c.name);
  });

  it('xa: commit continues the context stored by prepare', async () => {
    const gid = gidFor('trace-xa');
    assert.equal((await post('prepare', { gid, trans_type: 'xa' }, TRACED)).status, 200);
    const reg = await post('registerBranch', {
      gid,
      branch_id: '01',
      trans_type: 'xa',
      url: `${busi.url}/XaNotify`,
    });
    assert.equal(reg.status, 200, reg.text);
    assert.equal((await post('submit', { gid, trans_type: 'xa', wait_result: true })).status, 200);
    assert.deepEqual(busi.callsOf(gid), ['XaNotify commit']);
    for (const c of callsOf(gid)) assert.deepEqual(traceOf(c), TRACED);
  });
});

describe('the stored context survives on every store', () => {
  let busi: Busi;
  before(async () => {
    busi = await new Busi().start();
  });
  after(async () => {
    await busi.stop();
  });

  for (const kind of ['memory', 'sqlite', 'postgres', 'mysql', 'redis']) {
    it(`${kind}: a cron retry, with the transaction read back from the store, sends the stored context`, async () => {
      const dtx =
        kind === 'memory'
          ? await startTestDtx({}, { store: new MemoryStore() })
          : await startTestDtx({}, { storeKind: kind });
      try {
        const gid = gidFor(`trace-store-${kind}`);
        busi.setOnce('TransIn', 'ERROR');
        const r = await call('POST', `${dtx.api}/submit`, sagaBody(busi, gid, { wait_result: true }), TRACED);
        assert.equal(r.status, 425, 'the first pass ended with TransIn to retry');
        await dtx.cronFor(gid);
        assert.equal(await dtx.status(gid), 'succeed');
        const calls = busi.calls.filter((c) => c.query.gid === gid);
        assert.equal(calls.filter((c) => c.name === 'TransIn').length, 2);
        for (const c of calls) assert.deepEqual(traceOf(c), TRACED, `${c.name} ${c.query.op}`);
        assert.equal((await dtx.query(gid)).transaction.options, OPTIONS);
      } finally {
        await dtx.stop();
      }
    });
  }
});

describe('a restarted coordinator', () => {
  let busi: Busi;
  let dir: string;
  let proc: DtxProcess | undefined;
  before(async () => {
    busi = await new Busi().start();
    dir = mkdtempSync(join(tmpdir(), 'dtx-trace-'));
  });
  after(async () => {
    await proc?.kill();
    await busi.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('forwards the stored context on the cron retries it runs after a restart on the same SQLite file', async () => {
    const env = {
      STORE_SQLITE_PATH: join(dir, 'dtx.sqlite'),
      DTX_TEST_MODE: '1',
      RETRY_INTERVAL: '600',
      TIMEOUT_TO_FAIL: '600',
      LOG_LEVEL: 'warn',
    };
    proc = new DtxProcess(await freePort(), env);
    await proc.start();
    const gid = gidFor('trace-restart');
    busi.setAlways('TransIn', 'ERROR');
    const r = await call('POST', `${proc.api}/submit`, sagaBody(busi, gid, { wait_result: true }), TRACED);
    assert.equal(r.status, 425, 'the first pass ended with TransIn to retry');
    await proc.stop();
    const before = busi.calls.length;

    busi.setAlways('TransIn', undefined);
    proc = new DtxProcess(proc.port, env);
    await proc.start();
    const base = proc.api.replace('/api/dtmsvr', '');
    await waitFor('the restarted cron retried it', async () => {
      await call('POST', `${base}/api/dtx-test/cronOnce`, { cron_forward: 3600 });
      const q = await call('GET', `${proc!.api}/query?gid=${gid}`);
      return q.json.transaction?.status === 'succeed';
    });
    const retried = busi.calls.slice(before).filter((c) => c.query.gid === gid);
    assert.ok(
      retried.some((c) => c.name === 'TransIn'),
      'TransIn was retried by the new process',
    );
    for (const c of retried) assert.deepEqual(traceOf(c), TRACED, `${c.name} ${c.query.op}`);
  });
});
