// The exact gRPC requests DtxGrpcClient sends (spec §4.1, §4.2, §12.5) and how it reads the coordinator's status
// codes (spec §4.3), pinned against a recording stand-in for dtmgimp.Dtm and a real grpc-js branch service.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { type DtmBranchRequest, type DtmRequest, GrpcStatus } from '@dtx/protocol';
import { DtxGrpcClient, grpcBranchService, splitGrpcUrl, toDtmRequest } from '../src/grpc/index.js';
import { CoordinatorError, DtxError, FailureError, generateGid, OngoingError, Tcc } from '../src/index.js';
import {
  busiReq,
  busiService,
  type FakeGrpcCoordinator,
  freePort,
  type GrpcTestServer,
  metadataOf,
  startFakeGrpcCoordinator,
  startGrpcServer,
} from './support/grpc-services.js';

const busi = busiService();

describe('DtxGrpcClient requests', () => {
  let fake: FakeGrpcCoordinator;
  let client: DtxGrpcClient;
  let branches: GrpcTestServer;
  let answer: (method: string) => { code: number; details: string } | undefined = () => undefined;
  const tries: { method: string; metadata: Record<string, string>; amount: number }[] = [];
  let tryOutcome: () => unknown = () => undefined;

  before(async () => {
    fake = await startFakeGrpcCoordinator((c) => answer(c.method));
    client = new DtxGrpcClient(fake.address, { metadata: { authorization: 'Bearer t' } });
    branches = await startGrpcServer((s) =>
      s.addService(
        busi,
        grpcBranchService(
          {
            TransInTry: (ctx) => {
              tries.push({ method: 'TransInTry', metadata: metadataOf(ctx.metadata), amount: ctx.request.Amount });
              return tryOutcome() as undefined;
            },
            QueryPrepared: () => tryOutcome() as undefined,
          },
          { logger: { warn() {}, error() {} } },
        ),
      ),
    );
  });
  after(async () => {
    await client.close();
    await fake.close();
    await branches.close();
  });
  beforeEach(() => {
    fake.calls.length = 0;
    tries.length = 0;
    answer = () => undefined;
    tryOutcome = () => undefined;
  });

  const url = (m: string) => `${branches.address}/busi.Busi/${m}`;

  test('compensateDelay travels in the Steps JSON text of the step that has one', () => {
    const r = toDtmRequest(
      client
        .saga('g-grpc-delay')
        .add(url('TransOut'), url('TransOutRevert'), busiReq(busi, 30), { compensateDelay: 600 })
        .add(url('TransIn'), url('TransInRevert'), busiReq(busi, 31))
        .toParts(),
    );
    assert.equal(
      r.Steps,
      JSON.stringify([
        { action: url('TransOut'), compensate: url('TransOutRevert'), compensate_delay: 600 },
        { action: url('TransIn'), compensate: url('TransInRevert') },
      ]),
    );
  });

  test('a saga is one Submit with Steps as JSON text, BinPayloads as the bytes and the options', async () => {
    await client
      .saga('g-grpc-saga', {
        waitResult: true,
        timeoutToFail: 60,
        retryInterval: 7,
        retryLimit: 2,
        branchHeaders: { 'x-a': 'b' },
      })
      .add(url('TransOut'), url('TransOutRevert'), busiReq(busi, 30))
      .add(url('TransIn'), url('TransInRevert'), busiReq(busi, 31))
      .addBranchOrder(1, [0])
      .submit();
    assert.equal(fake.calls.length, 1);
    const [c] = fake.calls;
    assert.equal(c?.method, 'Submit');
    assert.equal(c?.metadata.authorization, 'Bearer t');
    const r = c?.request as DtmRequest;
    assert.equal(r.Gid, 'g-grpc-saga');
    assert.equal(r.TransType, 'saga');
    assert.deepEqual(JSON.parse(r.Steps), [
      { action: url('TransOut'), compensate: url('TransOutRevert') },
      { action: url('TransIn'), compensate: url('TransInRevert') },
    ]);
    assert.deepEqual(
      r.BinPayloads.map((b) => busi.TransIn!.requestDeserialize(Buffer.from(b)).Amount),
      [30, 31],
    );
    assert.equal(r.CustomedData, '{"orders":{"1":[0]},"concurrent":true}');
    assert.deepEqual(r.TransOptions, {
      WaitResult: true,
      TimeoutToFail: 60,
      RetryInterval: 7,
      BranchHeaders: { 'x-a': 'b' },
      RequestTimeout: 0,
      RetryLimit: 2,
    });
    assert.equal(r.QueryPrepared, '');
  });

  test('a msg: Prepare with QueryPrepared, Submit with the delay; concurrent is refused before any call', async () => {
    const msg = client.msg('g-grpc-msg').add(url('TransIn'), busiReq(busi, 5)).delay(3);
    await msg.prepare(url('QueryPrepared'));
    await msg.submit();
    assert.deepEqual(
      fake.calls.map((c) => c.method),
      ['Prepare', 'Submit'],
    );
    const sub = fake.calls[1]?.request as DtmRequest;
    assert.equal(sub.TransType, 'msg');
    assert.equal(sub.QueryPrepared, url('QueryPrepared'));
    assert.equal(sub.CustomedData, '{"delay":3}');
    assert.deepEqual(JSON.parse(sub.Steps), [{ action: url('TransIn') }]);
    fake.calls.length = 0;
    await assert.rejects(
      client.msg('g-grpc-msg-2', { concurrent: true }).add(url('TransIn')).submit(),
      (err) => err instanceof DtxError && /concurrent option is not available over gRPC/.test(err.message),
    );
    assert.equal(fake.calls.length, 0);
  });

  test('tcc: Prepare, RegisterBranch with Data{confirm,cancel} and BusiPayload, the try with dtm-* metadata, Submit', async () => {
    const gid = generateGid();
    await client.tccGlobalTransaction(
      gid,
      async (tcc) => {
        await tcc.callBranch(busiReq(busi, 30), url('TransInTry'), url('TransInConfirm'), url('TransInCancel'));
      },
      { branchHeaders: { 'x-trace': 't1' } },
    );
    assert.deepEqual(
      fake.calls.map((c) => c.method),
      ['Prepare', 'RegisterBranch', 'Submit'],
    );
    const prep = fake.calls[0]?.request as DtmRequest;
    assert.equal(prep.TransType, 'tcc');
    assert.equal(prep.Steps, 'null');
    const reg = fake.calls[1]?.request as DtmBranchRequest;
    assert.equal(reg.Gid, gid);
    assert.equal(reg.TransType, 'tcc');
    assert.equal(reg.BranchID, '01');
    assert.deepEqual(reg.Data, { confirm: url('TransInConfirm'), cancel: url('TransInCancel') });
    assert.equal(busi.TransIn!.requestDeserialize(Buffer.from(reg.BusiPayload)).Amount, 30);
    assert.equal(tries.length, 1);
    const md = tries[0]!.metadata;
    assert.deepEqual(
      [md['dtm-gid'], md['dtm-trans_type'], md['dtm-branch_id'], md['dtm-op'], md['dtm-dtm'], md['x-trace']],
      [gid, 'tcc', '01', 'try', fake.address, 't1'],
    );
    assert.equal(tries[0]!.amount, 30);
  });

  test('tcc: a try answering Aborted aborts with the reason and rethrows a FailureError; FailedPrecondition is Ongoing', async () => {
    tryOutcome = () => {
      throw new FailureError('insufficient balance');
    };
    await assert.rejects(
      client.tccGlobalTransaction(generateGid(), (tcc) =>
        tcc.callBranch(busiReq(busi, 1), url('TransInTry'), url('TransInConfirm'), url('TransInCancel')),
      ),
      (err) => err instanceof FailureError && err.message === 'insufficient balance',
    );
    assert.deepEqual(
      fake.calls.map((c) => c.method),
      ['Prepare', 'RegisterBranch', 'Abort'],
    );
    assert.equal((fake.calls[2]?.request as DtmRequest).RollbackReason, 'insufficient balance');

    tryOutcome = () => {
      throw new OngoingError('later');
    };
    await assert.rejects(
      client.tccGlobalTransaction(generateGid(), (tcc) =>
        tcc.callBranch(busiReq(busi, 1), url('TransInTry'), url('TransInConfirm'), url('TransInCancel')),
      ),
      OngoingError,
    );
    tryOutcome = () => {
      throw new Error('db down');
    };
    await assert.rejects(
      client.tccGlobalTransaction(generateGid(), (tcc) =>
        tcc.callBranch(busiReq(busi, 1), url('TransInTry'), url('TransInConfirm'), url('TransInCancel')),
      ),
      /the try of branch 01 \(.*TransInTry\) answered gRPC Unknown: db down/,
    );
  });

  test('coordinator statuses: Aborted → FailureError, FailedPrecondition → OngoingError, others → CoordinatorError', async () => {
    answer = () => ({ code: GrpcStatus.ABORTED, details: 'not prepared FAILURE' });
    await assert.rejects(client.saga('g1').add(url('TransIn'), '').submit(), (err) => {
      assert.ok(err instanceof FailureError);
      assert.equal(err.message, 'not prepared FAILURE');
      return true;
    });
    answer = () => ({ code: GrpcStatus.FAILED_PRECONDITION, details: 'ONGOING' });
    await assert.rejects(client.saga('g2').submit(), OngoingError);
    answer = () => ({ code: GrpcStatus.INVALID_ARGUMENT, details: 'Steps: not JSON' });
    await assert.rejects(client.saga('g3').submit(), (err) => {
      assert.ok(err instanceof CoordinatorError);
      assert.match(err.message, /^Submit: the coordinator at .* answered gRPC InvalidArgument: Steps: not JSON$/);
      assert.equal((err.cause as { code?: number }).code, GrpcStatus.INVALID_ARGUMENT);
      return true;
    });
  });

  test('newGid asks the coordinator', async () => {
    assert.equal(await client.newGid(), 'fake-gid');
    assert.equal(fake.calls[0]?.method, 'NewGid');
  });

  test('an unreachable coordinator is a CoordinatorError saying so', async () => {
    const gone = new DtxGrpcClient(`127.0.0.1:${await freePort()}`, { requestTimeoutMs: 2_000 });
    try {
      await assert.rejects(
        gone.newGid(),
        (err) => err instanceof CoordinatorError && /cannot reach the coordinator/.test(err.message),
      );
    } finally {
      await gone.close();
    }
  });

  test('payloads must be bytes; URLs must be host:port/pkg.Svc/Method; addresses must be gRPC ones', () => {
    assert.throws(
      () => client.saga().add(url('TransIn'), '', { amount: 1 } as unknown as Uint8Array),
      /gRPC payload is the protobuf bytes/,
    );
    assert.deepEqual(splitGrpcUrl('localhost:58081/busi.Busi/TransIn'), {
      target: 'localhost:58081',
      method: '/busi.Busi/TransIn',
    });
    assert.throws(() => splitGrpcUrl('localhost:58081'), /expected host:port\/package.Service\/Method/);
    assert.throws(() => splitGrpcUrl('etcd://e:2379/svc/busi.Busi/X'), /resolved by the coordinator only/);
    assert.throws(() => new DtxGrpcClient('http://127.0.0.1:36789/api/dtmsvr'), /use DtxClient/);
    assert.throws(() => new DtxGrpcClient('etcd://127.0.0.1:2379/dtmservice'), /does not resolve discovery targets/);
    assert.equal(toDtmRequest({ gid: 'g', transType: 'tcc' }).Steps, 'null');
  });

  test('Tcc.fromMetadata continues a TCC of this coordinator, and refuses another one', () => {
    const md = {
      'dtm-gid': 'g',
      'dtm-trans_type': 'tcc',
      'dtm-branch_id': '02',
      'dtm-op': 'try',
      'dtm-dtm': client.address,
    };
    assert.equal(Tcc.fromMetadata(md, client).gid, 'g');
    assert.throws(
      () => Tcc.fromMetadata({ ...md, 'dtm-dtm': '10.0.0.1:36790' }, client),
      /pass a client of that coordinator/,
    );
    assert.throws(() => Tcc.fromMetadata({ ...md, 'dtm-trans_type': 'saga' }, client), /cannot continue a TCC/);
  });
});
