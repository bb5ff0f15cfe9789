import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import { GrpcStatus } from '@dtx/protocol';
import { Busi } from './support/busi.js';
import { startTestDtx, type TestDtx } from './support/dtx.js';
import { busiReq, DtmGrpcClient, GrpcBusi } from './support/grpc-busi.js';
import { waitFor } from './support/poll.js';
import { gidFor } from './support/trans.js';

// Spec §15 saga_grpc_test.go: sagas submitted over gRPC whose branches are gRPC methods of a real
// grpc-js busi; the payload bytes go through unchanged and the transaction travels as metadata.
describe('saga over gRPC', () => {
  let dtx: TestDtx;
  let busi: GrpcBusi;
  let http: Busi;
  let dtm: DtmGrpcClient;
  before(async () => {
    dtx = await startTestDtx();
    busi = await new GrpcBusi().start();
    http = await new Busi().start();
    dtm = new DtmGrpcClient(dtx.grpc);
  });
  beforeEach(() => busi.reset());
  after(async () => {
    dtm.close();
    await dtx.stop();
    await busi.stop();
    await http.stop();
  });

  const OUT = busiReq(30, 'SUCCESS');
  const IN = busiReq(30, '', 'SUCCESS');

  /** A 2-step saga request as dtmgrpc sends it: steps as JSON text, payloads as protobuf bytes. */
  function saga(gid: string, extra: Record<string, unknown> = {}, options: Record<string, unknown> = {}) {
    return {
      Gid: gid,
      TransType: 'saga',
      Steps: JSON.stringify([
        { action: busi.url('TransOut'), compensate: busi.url('TransOutRevert') },
        { action: busi.url('TransIn'), compensate: busi.url('TransInRevert') },
      ]),
      BinPayloads: [OUT, IN],
      TransOptions: options,
      ...extra,
    };
  }

  it('normal: both actions run with the payload bytes unchanged and dtm-* metadata', async () => {
    const gid = gidFor('saga-grpc-normal');
    assert.deepEqual(await dtm.call('Submit', saga(gid)), {});
    await waitFor('succeed', async () => (await dtx.status(gid)) === 'succeed');
    assert.deepEqual(await dtx.branchStatuses(gid), ['prepared', 'succeed', 'prepared', 'succeed']);
    assert.deepEqual(busi.callsOf(gid), ['TransOut action', 'TransIn action']);
    const [out, inn] = busi.calls.filter((c) => c.gid === gid);
    assert.ok(out!.body.equals(OUT), 'TransOut got its payload byte for byte');
    assert.ok(inn!.body.equals(IN), 'TransIn got its payload byte for byte');
    for (const [c, branchId] of [
      [out!, '01'],
      [inn!, '02'],
    ] as const) {
      assert.equal(c.metadata['dtm-gid'], gid);
      assert.equal(c.metadata['dtm-trans_type'], 'saga');
      assert.equal(c.metadata['dtm-branch_id'], branchId);
      assert.equal(c.metadata['dtm-op'], 'action');
      assert.equal(c.metadata['dtm-dtm'], '');
    }
    const t = (await dtx.query(gid)).transaction;
    assert.equal(t.protocol, 'grpc');
    const stored = (await dtx.query(gid)).branches.map((b: { bin_data: string }) => b.bin_data);
    assert.deepEqual(
      stored,
      [OUT, OUT, IN, IN].map((b) => b.toString('base64')),
    );
  });

  it('dtx compensate_delay in the Steps JSON: the delayed compensation waits, a bad one is INVALID_ARGUMENT', async () => {
    const gid = gidFor('saga-grpc-delay');
    const steps = (delay: unknown) =>
      JSON.stringify([
        { action: busi.url('TransOut'), compensate: busi.url('TransOutRevert'), compensate_delay: delay },
        { action: busi.url('TransIn'), compensate: busi.url('TransInRevert') },
      ]);
    busi.setOnce('TransIn', { code: GrpcStatus.ABORTED, details: 'reason:Insufficient balance' });
    const err = await dtm.error('Submit', saga(gid, { Steps: steps(600) }, { WaitResult: true }));
    assert.equal(err.code, GrpcStatus.ABORTED, err.details);
    assert.deepEqual(busi.callsOf(gid), ['TransOut action', 'TransIn action', 'TransInRevert compensate']);
    const t = (await dtx.query(gid)).transaction;
    assert.equal(t.status, 'aborting');
    assert.deepEqual(t.compensate_delays, [600, 0]);
    await dtx.cronFor(gid, 601, 700);
    assert.deepEqual(busi.callsOf(gid).slice(3), ['TransOutRevert compensate']);
    assert.equal(await dtx.status(gid), 'failed');

    const bad = await dtm.error('Submit', saga(gidFor('saga-grpc-delay-bad'), { Steps: steps(-5) }));
    assert.equal(bad.code, GrpcStatus.INVALID_ARGUMENT, bad.details);
    assert.match(bad.details, /^Steps\[0\]\.compensate_delay: expected an integer/); // the proto field name, as gRPC errors name it
  });

  it('rollback: Aborted fails the action, FailedPrecondition holds the compensation until the cron', async () => {
    const gid = gidFor('saga-grpc-rollback');
    busi.setOnce('TransIn', { code: GrpcStatus.ABORTED, details: 'reason:Insufficient balance' });
    busi.setOnce('TransOutRevert', 'ONGOING');
    // with wait_result, a saga not finished by the pass answers FAILURE (ABORTED), with its reason
    const err = await dtm.error('Submit', saga(gid, {}, { WaitResult: true }));
    assert.equal(err.code, GrpcStatus.ABORTED, err.details);
    assert.match(err.details, /Insufficient balance/);
    assert.equal(await dtx.status(gid), 'aborting');
    await dtx.cronFor(gid);
    assert.equal(await dtx.status(gid), 'failed');
    assert.deepEqual(await dtx.branchStatuses(gid), ['succeed', 'succeed', 'succeed', 'failed']);
    assert.deepEqual(busi.callsOf(gid), [
      'TransOut action',
      'TransIn action',
      'TransInRevert compensate',
      'TransOutRevert compensate',
      'TransOutRevert compensate',
    ]);
    const reason = (await dtx.query(gid)).transaction.rollback_reason as string;
    assert.match(reason, /Insufficient balance/);
    assert.ok(reason.includes(busi.url('TransIn')), reason);
  });

  it('concurrent: both actions run, and succeed', async () => {
    const gid = gidFor('saga-grpc-concurrent');
    await dtm.call('Submit', saga(gid, { CustomedData: '{"concurrent":true}' }, { WaitResult: true }));
    assert.equal(await dtx.status(gid), 'succeed');
    assert.deepEqual([...busi.callsOf(gid)].sort(), ['TransIn action', 'TransOut action']);
  });

  it('concurrent with an order: step 2 waits for step 1', async () => {
    const gid = gidFor('saga-grpc-order');
    const cd = JSON.stringify({ orders: { 1: [0] }, concurrent: true });
    await dtm.call('Submit', saga(gid, { CustomedData: cd }, { WaitResult: true }));
    assert.equal(await dtx.status(gid), 'succeed');
    assert.deepEqual(busi.callsOf(gid), ['TransOut action', 'TransIn action']);
  });

  it('committed ongoing: FailedPrecondition keeps it submitted, Submit answers FailedPrecondition; the cron finishes it', async () => {
    const gid = gidFor('saga-grpc-ongoing');
    busi.setOnce('TransOut', 'ONGOING');
    const err = await dtm.error('Submit', saga(gid, {}, { WaitResult: true }));
    assert.equal(err.code, GrpcStatus.FAILED_PRECONDITION, err.details);
    assert.match(err.details, /^transaction '.*' is still submitted .*will be retried.* ONGOING$/);
    assert.equal(await dtx.status(gid), 'submitted');
    assert.deepEqual(await dtx.branchStatuses(gid), ['prepared', 'prepared', 'prepared', 'prepared']);
    await dtx.cronFor(gid);
    assert.equal(await dtx.status(gid), 'succeed');
    assert.deepEqual(await dtx.branchStatuses(gid), ['prepared', 'succeed', 'prepared', 'succeed']);
  });

  it('Aborted with the exact message ONGOING is ONGOING (servers before DTM v1.10)', async () => {
    const gid = gidFor('saga-grpc-legacy-ongoing');
    busi.setOnce('TransOut', { code: GrpcStatus.ABORTED, details: 'ONGOING' });
    const err = await dtm.error('Submit', saga(gid, {}, { WaitResult: true }));
    assert.equal(err.code, GrpcStatus.FAILED_PRECONDITION, 'not rolled back');
    assert.equal(await dtx.status(gid), 'submitted');
    assert.deepEqual(await dtx.branchStatuses(gid), ['prepared', 'prepared', 'prepared', 'prepared']);
    await dtx.cronFor(gid);
    assert.equal(await dtx.status(gid), 'succeed');
  });

  it('wait_result: the reply comes after the saga finished', async () => {
    const gid = gidFor('saga-grpc-wait');
    await dtm.call('Submit', saga(gid, {}, { WaitResult: true }));
    assert.equal(await dtx.status(gid), 'succeed');
    assert.deepEqual(await dtx.branchStatuses(gid), ['prepared', 'succeed', 'prepared', 'succeed']);
  });

  it('an empty action succeeds without a call', async () => {
    const gid = gidFor('saga-grpc-empty-url');
    const steps = JSON.stringify([
      { action: busi.url('TransOut'), compensate: busi.url('TransOutRevert') },
      { action: '', compensate: '' },
    ]);
    await dtm.call('Submit', saga(gid, { Steps: steps }, { WaitResult: true }));
    assert.equal(await dtx.status(gid), 'succeed');
    assert.deepEqual(busi.callsOf(gid), ['TransOut action']);
  });

  it('request_timeout is stored and becomes the deadline of the branch calls', async () => {
    const gid = gidFor('saga-grpc-request-timeout');
    await dtm.call('Submit', saga(gid, {}, { WaitResult: true, RequestTimeout: 6 }));
    assert.equal(await dtx.status(gid), 'succeed');
    const t = (await dtx.query(gid)).transaction;
    assert.equal(t.request_timeout, 6);
    assert.equal(JSON.parse(t.options).request_timeout, 6);
    // the deadline travels as grpc-timeout; the default would be 3 s (RequestTimeout)
    for (const c of busi.calls.filter((x) => x.gid === gid)) {
      assert.ok(c.msLeft > 3000 && c.msLeft <= 6000, `${c.name}: ${c.msLeft} ms left`);
    }
  });

  it('rollback with wait_result: the Submit error is ABORTED and carries the reason', async () => {
    const gid = gidFor('saga-grpc-rollback-wait');
    busi.setOnce('TransIn', { code: GrpcStatus.ABORTED, details: 'reason:Insufficient balance' });
    const err = await dtm.error('Submit', saga(gid, {}, { WaitResult: true }));
    assert.equal(err.code, GrpcStatus.ABORTED);
    assert.match(err.details, /Insufficient balance/);
    assert.equal(await dtx.status(gid), 'failed');
    assert.deepEqual(await dtx.branchStatuses(gid), ['succeed', 'succeed', 'succeed', 'failed']);
  });

  it('branch_headers arrive as metadata', async () => {
    const gid = gidFor('saga-grpc-headers');
    await dtm.call('Submit', saga(gid, {}, { WaitResult: true, BranchHeaders: { test_header: 'test' } }));
    assert.equal(await dtx.status(gid), 'succeed');
    const calls = busi.calls.filter((c) => c.gid === gid);
    assert.equal(calls.length, 2);
    for (const c of calls) assert.equal(c.metadata.test_header, 'test', c.name);
  });

  it('branch_headers are sent again on the cron retry', async () => {
    const gid = gidFor('saga-grpc-cron-headers');
    busi.setOnce('TransIn', 'ERROR');
    const err = await dtm.error('Submit', saga(gid, {}, { WaitResult: true, BranchHeaders: { test_header: 'test' } }));
    assert.equal(err.code, GrpcStatus.FAILED_PRECONDITION, err.details);
    assert.equal(await dtx.status(gid), 'submitted');
    await dtx.cronFor(gid);
    assert.equal(await dtx.status(gid), 'succeed');
    const ins = busi.calls.filter((c) => c.gid === gid && c.name === 'TransIn');
    assert.equal(ins.length, 2);
    for (const c of ins) assert.equal(c.metadata.test_header, 'test');
  });

  it('every code other than OK, Aborted and FailedPrecondition is retried', async () => {
    for (const code of [GrpcStatus.UNAVAILABLE, GrpcStatus.UNKNOWN, GrpcStatus.DEADLINE_EXCEEDED]) {
      const gid = gidFor('saga-grpc-retried');
      busi.setOnce('TransOut', { code, details: 'not now' });
      await dtm.error('Submit', saga(gid, {}, { WaitResult: true }));
      assert.equal(await dtx.status(gid), 'submitted', `code ${code}`);
      assert.deepEqual(await dtx.branchStatuses(gid), ['prepared', 'prepared', 'prepared', 'prepared']);
      await dtx.cronFor(gid);
      assert.equal(await dtx.status(gid), 'succeed', `code ${code}`);
    }
  });

  it('an http branch inside a gRPC saga is called over HTTP (spec §5.1)', async () => {
    const gid = gidFor('saga-grpc-mixed');
    const steps = JSON.stringify([
      { action: `${http.url}/TransOut`, compensate: `${http.url}/TransOutRevert` },
      { action: busi.url('TransIn'), compensate: busi.url('TransInRevert') },
    ]);
    await dtm.call('Submit', saga(gid, { Steps: steps, BinPayloads: [Buffer.from('{"amount":30}'), IN] }, {}));
    await waitFor('succeed', async () => (await dtx.status(gid)) === 'succeed');
    assert.deepEqual(http.callsOf(gid), ['TransOut action']);
    assert.deepEqual(busi.callsOf(gid), ['TransIn action']);
  });
});

describe('gRPC branch channels', () => {
  let dtx: TestDtx;
  let busi: GrpcBusi;
  let dtm: DtmGrpcClient;
  let proxy: Server;
  let proxyPort = 0;
  const accepted: Socket[] = [];

  before(async () => {
    dtx = await startTestDtx();
    busi = await new GrpcBusi().start();
    dtm = new DtmGrpcClient(dtx.grpc);
    // a TCP relay in front of the busi that counts the connections the coordinator opens
    const [host, port] = busi.address.split(':') as [string, string];
    proxy = createServer((sock) => {
      accepted.push(sock);
      const up = connect(Number(port), host);
      sock.pipe(up).pipe(sock);
      const end = () => {
        sock.destroy();
        up.destroy();
      };
      sock.on('error', end).on('close', end);
      up.on('error', end).on('close', end);
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    proxyPort = (proxy.address() as { port: number }).port;
  });
  after(async () => {
    dtm.close();
    await dtx.stop();
    for (const s of accepted) s.destroy();
    await new Promise((resolve) => proxy.close(resolve));
    await busi.stop();
  });

  it('one channel per target: many sagas to one address share one connection', async () => {
    const url = (m: string) => `127.0.0.1:${proxyPort}/busi.Busi/${m}`;
    const gids: string[] = [];
    for (let i = 0; i < 10; i++) {
      const gid = gidFor('saga-grpc-channel');
      gids.push(gid);
      await dtm.call('Submit', {
        Gid: gid,
        TransType: 'saga',
        Steps: JSON.stringify([
          { action: url('TransOut'), compensate: url('TransOutRevert') },
          { action: url('TransIn'), compensate: url('TransInRevert') },
        ]),
        BinPayloads: [busiReq(1), busiReq(1)],
        TransOptions: { WaitResult: true },
      });
    }
    await Promise.all(
      gids.map(async (gid) =>
        dtm.call('Submit', {
          Gid: `${gid}-c`,
          TransType: 'saga',
          Steps: JSON.stringify([{ action: url('TransOut'), compensate: url('TransOutRevert') }]),
          BinPayloads: [busiReq(1)],
          TransOptions: { WaitResult: true },
        }),
      ),
    );
    for (const gid of gids) assert.equal(await dtx.status(gid), 'succeed');
    assert.equal(busi.calls.length, 30);
    assert.equal(accepted.length, 1, 'the coordinator opened one connection to the target');
  });
});
