import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { trace } from '@opentelemetry/api';
import { Busi, type BusiCall } from './support/busi.js';
import { DtxProcess, freePort, startTestDtx, type TestDtx } from './support/dtx.js';
import { busiReq, DtmGrpcClient, GrpcBusi } from './support/grpc-busi.js';
import { call } from './support/http.js';
import { OtlpReceiver, type ReceivedSpan } from './support/otlp-receiver.js';
import { waitFor } from './support/poll.js';
import { gidFor, sagaBody } from './support/trans.js';

// Tracing export on (`Tracing.Exporter: otlp`): dtx makes a SERVER span per API call and a CLIENT span per
// branch call, exported over OTLP/HTTP (JSON) to a real receiver in this process. Each test stops its
// coordinator, which flushes what is buffered, before it reads the spans.

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT_SPAN = '00f067aa0ba902b7';
const TRACEPARENT = `00-${TRACE_ID}-${PARENT_SPAN}-01`;
const TRACESTATE = 'rojo=00f067aa0ba902b7';

/** OTLP's SpanKind and status codes. */
const SERVER = 2;
const CLIENT = 3;
const STATUS_ERROR = 2;

/** The span id a traceparent names. */
const spanIdOf = (traceparent: unknown): string => String(traceparent).split('-')[2] ?? '';
const traceIdOf = (traceparent: unknown): string => String(traceparent).split('-')[1] ?? '';

describe('tracing export (OTLP/HTTP)', () => {
  let receiver: OtlpReceiver;
  let busi: Busi;
  const running: TestDtx[] = [];
  before(async () => {
    receiver = await new OtlpReceiver().start();
    busi = await new Busi().start();
  });
  beforeEach(() => busi.reset());
  afterEach(async () => {
    for (const d of running.splice(0)) await d.stop();
  });
  after(async () => {
    await busi.stop();
    await receiver.stop();
  });

  async function tracedDtx(serviceName: string, sampleRatio = 1): Promise<TestDtx> {
    const dtx = await startTestDtx({
      Tracing: { Exporter: 'otlp', Endpoint: receiver.url, ServiceName: serviceName, SampleRatio: sampleRatio },
    });
    running.push(dtx);
    return dtx;
  }
  /** Stop a coordinator: its provider is shut down, which exports every span still buffered. */
  async function stop(dtx: TestDtx): Promise<void> {
    running.splice(running.indexOf(dtx), 1);
    await dtx.stop();
  }
  const callsOf = (gid: string) => busi.calls.filter((c) => c.query.gid === gid);
  const one = (spans: ReceivedSpan[], name: string) => {
    const found = spans.filter((s) => s.name === name);
    assert.equal(found.length, 1, `one span '${name}' in ${JSON.stringify(spans.map((s) => s.name))}`);
    return found[0]!;
  };

  it('a saga: submit is a child of the caller, each branch call a child of submit, and names its span', async () => {
    const dtx = await tracedDtx('dtx-saga');
    const gid = gidFor('export-saga');
    busi.setOnce('TransIn', 'FAILURE');
    const r = await call('POST', `${dtx.api}/submit`, sagaBody(busi, gid, { wait_result: true }), {
      traceparent: TRACEPARENT,
      tracestate: TRACESTATE,
    });
    assert.equal(r.status, 409, r.text);
    await stop(dtx);

    const spans = receiver.spansOf(gid);
    for (const s of spans) {
      assert.equal(s.traceId, TRACE_ID, `${s.name} is in the caller's trace`);
      assert.equal(s.serviceName, 'dtx-saga');
    }
    const submit = one(spans, 'dtx submit');
    assert.equal(submit.kind, SERVER);
    assert.equal(submit.parentSpanId, PARENT_SPAN, "submit's parent is the caller's span");
    assert.deepEqual(submit.attributes, { 'dtx.gid': gid, 'dtx.trans_type': 'saga' });
    assert.equal(submit.statusCode, STATUS_ERROR, 'the saga rolled back: the submit answered FAILURE');

    const branchSpans = spans.filter((s) => s !== submit);
    assert.deepEqual(branchSpans.map((s) => s.name).sort(), [
      'dtx saga action 01',
      'dtx saga action 02',
      'dtx saga compensate 01',
      'dtx saga compensate 02',
    ]);
    const calls = callsOf(gid);
    assert.equal(calls.length, 4);
    for (const s of branchSpans) {
      assert.equal(s.kind, CLIENT, s.name);
      assert.equal(s.parentSpanId, submit.spanId, `${s.name} is a child of submit`);
      const [, , op, branchId] = s.name.split(' ');
      assert.equal(s.attributes['dtx.gid'], gid);
      assert.equal(s.attributes['dtx.branch_id'], branchId);
      assert.equal(s.attributes['dtx.op'], op);
      assert.match(String(s.attributes['dtx.url']), /^http:\/\/127\.0\.0\.1:\d+\/api\/busi\/Trans/);
      const received = calls.find((c) => c.query.op === op && c.query.branch_id === branchId) as BusiCall;
      assert.equal(received.headers.traceparent, `00-${TRACE_ID}-${s.spanId}-01`, `${s.name}: its own span`);
      assert.equal(received.headers.tracestate, TRACESTATE, 'the tracestate goes along');
    }
    const failed = one(branchSpans, 'dtx saga action 02');
    assert.equal(failed.attributes['dtx.result'], 'FAILURE');
    assert.equal(failed.statusCode, STATUS_ERROR);
    assert.match(failed.statusMessage, /refused/);
    const ok = one(branchSpans, 'dtx saga action 01');
    assert.equal(ok.attributes['dtx.result'], 'SUCCESS');
    assert.notEqual(ok.statusCode, STATUS_ERROR);
  });

  it('gRPC: Submit with traceparent metadata, branches called with their span in metadata', async () => {
    const dtx = await tracedDtx('dtx-grpc');
    const grpcBusi = await new GrpcBusi().start();
    const dtm = new DtmGrpcClient(dtx.grpc);
    try {
      const gid = gidFor('export-grpc');
      await dtm.call(
        'Submit',
        {
          Gid: gid,
          TransType: 'saga',
          Steps: JSON.stringify([{ action: grpcBusi.url('TransOut'), compensate: grpcBusi.url('TransOutRevert') }]),
          BinPayloads: [busiReq(30)],
          TransOptions: { WaitResult: true },
        },
        { traceparent: TRACEPARENT },
      );
      await stop(dtx);
      const spans = receiver.spansOf(gid);
      const submit = one(spans, 'dtx submit');
      assert.equal(submit.parentSpanId, PARENT_SPAN);
      const action = one(spans, 'dtx saga action 01');
      assert.equal(action.parentSpanId, submit.spanId);
      const [received] = grpcBusi.calls.filter((c) => c.gid === gid);
      assert.equal(received?.metadata.traceparent, `00-${TRACE_ID}-${action.spanId}-01`);
      assert.equal(received?.metadata.tracestate, undefined);
    } finally {
      dtm.close();
      await grpcBusi.stop();
    }
  });

  it('tcc: prepare, registerBranch and submit each have a span; confirms are children of prepare', async () => {
    const dtx = await tracedDtx('dtx-tcc');
    const gid = gidFor('export-tcc');
    const headers = { traceparent: TRACEPARENT };
    const post = (route: string, body: unknown) => call('POST', `${dtx.api}/${route}`, body, headers);
    assert.equal((await post('prepare', { gid, trans_type: 'tcc' })).status, 200);
    const reg = await post('registerBranch', {
      gid,
      branch_id: '01',
      trans_type: 'tcc',
      data: '{}',
      confirm: `${busi.url}/TransOutConfirm`,
      cancel: `${busi.url}/TransOutRevert`,
    });
    assert.equal(reg.status, 200, reg.text);
    assert.equal((await post('submit', { gid, trans_type: 'tcc', wait_result: true })).status, 200);
    await stop(dtx);
    const spans = receiver.spansOf(gid);
    const prepare = one(spans, 'dtx prepare');
    for (const name of ['dtx prepare', 'dtx registerBranch', 'dtx submit']) {
      const s = one(spans, name);
      assert.equal(s.kind, SERVER, name);
      assert.equal(s.parentSpanId, PARENT_SPAN, `${name}: a child of the caller`);
      assert.equal(s.attributes['dtx.trans_type'], 'tcc');
    }
    const confirm = one(spans, 'dtx tcc confirm 01');
    assert.equal(confirm.parentSpanId, prepare.spanId, "the confirm continues the prepare's context");
    const [received] = callsOf(gid);
    assert.equal(received?.headers.traceparent, `00-${TRACE_ID}-${confirm.spanId}-01`);
  });

  it('a request without a trace context starts a trace of its own; SampleRatio 0 records none', async () => {
    const dtx = await tracedDtx('dtx-root');
    const gid = gidFor('export-root');
    assert.equal((await call('POST', `${dtx.api}/submit`, sagaBody(busi, gid, { wait_result: true }))).status, 200);
    await stop(dtx);
    const spans = receiver.spansOf(gid);
    const submit = one(spans, 'dtx submit');
    assert.equal(submit.parentSpanId, '', 'a root span');
    for (const c of callsOf(gid)) {
      assert.equal(traceIdOf(c.headers.traceparent), submit.traceId);
      const span = spans.find((s) => s.spanId === spanIdOf(c.headers.traceparent));
      assert.equal(span?.parentSpanId, submit.spanId);
    }

    const unsampled = await tracedDtx('dtx-unsampled', 0);
    const gid2 = gidFor('export-unsampled');
    assert.equal(
      (await call('POST', `${unsampled.api}/submit`, sagaBody(busi, gid2, { wait_result: true }))).status,
      200,
    );
    await stop(unsampled);
    assert.deepEqual(receiver.spansOf(gid2), [], 'nothing recorded');
    const calls = callsOf(gid2);
    assert.equal(calls.length, 2);
    const traceIds = new Set(calls.map((c) => traceIdOf(c.headers.traceparent)));
    assert.equal(traceIds.size, 1, 'the branches still share one trace');
    for (const c of calls)
      assert.match(String(c.headers.traceparent), /^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/, 'unsampled');

    // a sampled caller is followed whatever the ratio
    const follower = await tracedDtx('dtx-follower', 0);
    const gid3 = gidFor('export-follow');
    const headers = { traceparent: TRACEPARENT };
    const r = await call('POST', `${follower.api}/submit`, sagaBody(busi, gid3, { wait_result: true }), headers);
    assert.equal(r.status, 200);
    await stop(follower);
    assert.equal(one(receiver.spansOf(gid3), 'dtx submit').parentSpanId, PARENT_SPAN);
  });

  it('two coordinators in one process trace on their own, and nothing is registered globally', async () => {
    const a = await tracedDtx('dtx-a');
    const b = await tracedDtx('dtx-b');
    const gidA = gidFor('export-a');
    const gidB = gidFor('export-b');
    const headers = { traceparent: TRACEPARENT };
    assert.equal(
      (await call('POST', `${a.api}/submit`, sagaBody(busi, gidA, { wait_result: true }), headers)).status,
      200,
    );
    assert.equal(
      (await call('POST', `${b.api}/submit`, sagaBody(busi, gidB, { wait_result: true }), headers)).status,
      200,
    );
    await stop(a);
    await stop(b);
    assert.deepEqual(new Set(receiver.spansOf(gidA).map((s) => s.serviceName)), new Set(['dtx-a']));
    assert.deepEqual(new Set(receiver.spansOf(gidB).map((s) => s.serviceName)), new Set(['dtx-b']));
    assert.equal(receiver.spansOf(gidA).length, 3, 'submit and two actions');
    const probe = trace.getTracer('probe').startSpan('probe');
    assert.equal(probe.isRecording(), false, 'the global tracer provider is still the no-op one');
    probe.end();
  });
});

describe('tracing export across a restart', () => {
  let receiver: OtlpReceiver;
  let busi: Busi;
  let dir: string;
  let proc: DtxProcess | undefined;
  before(async () => {
    receiver = await new OtlpReceiver().start();
    busi = await new Busi().start();
    dir = mkdtempSync(join(tmpdir(), 'dtx-trace-export-'));
  });
  after(async () => {
    await proc?.kill();
    await busi.stop();
    await receiver.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the cron of a restarted dtx (same SQLite file) parents its branch spans on the stored submit span', async () => {
    const env = {
      STORE_SQLITE_PATH: join(dir, 'dtx.sqlite'),
      DTX_TEST_MODE: '1',
      RETRY_INTERVAL: '600',
      TIMEOUT_TO_FAIL: '600',
      LOG_LEVEL: 'warn',
      TRACING_EXPORTER: 'otlp',
      TRACING_ENDPOINT: receiver.url,
      TRACING_SERVICE_NAME: 'dtx-restart',
    };
    proc = new DtxProcess(await freePort(), env);
    await proc.start();
    const gid = gidFor('export-restart');
    busi.setAlways('TransIn', 'ERROR');
    const r = await call('POST', `${proc.api}/submit`, sagaBody(busi, gid, { wait_result: true }), {
      traceparent: TRACEPARENT,
    });
    assert.equal(r.status, 425, 'the first pass ended with TransIn to retry');
    await proc.stop(); // SIGTERM: a graceful stop, which flushes the spans
    const submit = receiver.spansOf(gid).find((s) => s.name === 'dtx submit');
    assert.ok(submit, 'the first process exported its submit span on stop');
    assert.equal(submit.parentSpanId, PARENT_SPAN);
    const firstSpans = new Set(receiver.spansOf(gid).map((s) => s.spanId));
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
    await proc.stop();
    const retry = busi.calls.slice(before).find((c) => c.query.gid === gid && c.name === 'TransIn');
    assert.ok(retry, 'TransIn was retried by the new process');
    const spanId = spanIdOf(retry.headers.traceparent);
    assert.equal(traceIdOf(retry.headers.traceparent), TRACE_ID);
    const span = receiver.spansOf(gid).find((s) => s.spanId === spanId);
    assert.ok(span, 'the retry was made in a span the new process exported');
    assert.ok(!firstSpans.has(spanId));
    assert.equal(span.name, 'dtx saga action 02');
    assert.equal(span.parentSpanId, submit.spanId, 'its parent is the submit span stored by the first process');
    assert.equal(span.serviceName, 'dtx-restart');
  });
});
