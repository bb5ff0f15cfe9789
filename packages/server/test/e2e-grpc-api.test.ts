import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { GrpcStatus } from '@dtx/protocol';
import { startTestDtx, type TestDtx } from './support/dtx.js';
import { busiReq, DtmGrpcClient, GrpcBusi } from './support/grpc-busi.js';
import { call } from './support/http.js';
import { gidFor } from './support/trans.js';

/** Protobuf wire encoding by hand, for messages the .proto no longer describes (field 4). */
function varint(n: number): number[] {
  const out: number[] = [];
  let v = n;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return out;
}
function lenField(field: number, bytes: Buffer | string): Buffer {
  const b = typeof bytes === 'string' ? Buffer.from(bytes) : bytes;
  return Buffer.from([...varint((field << 3) | 2), ...varint(b.length), ...b]);
}
function intField(field: number, n: number): Buffer {
  return Buffer.from([...varint(field << 3), ...varint(n)]);
}

// Spec §4: the dtmgimp.Dtm service itself — NewGid, the request mapping of §4.2, topics over gRPC
// (topic_test.go), and the methods dtx does not serve yet.
describe('gRPC API', () => {
  let dtx: TestDtx;
  let busi: GrpcBusi;
  let dtm: DtmGrpcClient;
  before(async () => {
    dtx = await startTestDtx();
    busi = await new GrpcBusi().start();
    dtm = new DtmGrpcClient(dtx.grpc);
  });
  after(async () => {
    dtm.close();
    await dtx.stop();
    await busi.stop();
  });

  it('serves on its own port beside HTTP', () => {
    assert.ok(dtx.server.grpcPort > 0);
    assert.notEqual(dtx.server.grpcPort, dtx.server.httpPort);
  });

  it('NewGid answers a fresh 22-character gid, like the HTTP route', async () => {
    const a = await dtm.call<{ Gid: string }>('NewGid');
    const b = await dtm.call<{ Gid: string }>('NewGid');
    assert.match(a.Gid, /^[2-9A-HJ-NP-Za-km-z]{22}$/);
    assert.notEqual(a.Gid, b.Gid);
    const h = await call('GET', `${dtx.api}/newGid`);
    assert.equal(h.json.gid.length, 22);
  });

  it('Submit with only a gid is refused: INVALID_ARGUMENT naming TransType (TestGrpcPanic)', async () => {
    const err = await dtm.error('Submit', { Gid: gidFor('grpc-panic') });
    assert.equal(err.code, GrpcStatus.INVALID_ARGUMENT);
    assert.equal(err.details, 'TransType: required (one of saga, tcc, msg, xa, workflow)');
  });

  it('PrepareWorkflow without CustomedData is refused: INVALID_ARGUMENT naming it', async () => {
    const err = await dtm.error('PrepareWorkflow', { Gid: gidFor('grpc-wf'), TransType: 'workflow' });
    assert.equal(err.code, GrpcStatus.INVALID_ARGUMENT);
    assert.match(err.details, /^CustomedData: required for a workflow/);
  });

  it('Steps given as the text null (tcc, xa) or left empty means no steps', async () => {
    for (const steps of ['null', '', ' null ']) {
      const gid = gidFor('grpc-steps-null');
      await dtm.call('Prepare', { Gid: gid, TransType: 'tcc', Steps: steps });
      assert.equal(await dtx.status(gid), 'prepared', JSON.stringify(steps));
      assert.deepEqual(await dtx.branchStatuses(gid), []);
    }
  });

  it('the gid is not escaped over gRPC (HTTP strips \\n \\r ;)', async () => {
    const gid = `${gidFor('grpc-gid')};x`;
    await dtm.call('Prepare', { Gid: gid, TransType: 'tcc', Steps: 'null' });
    assert.equal((await dtx.query(gid)).transaction?.gid, undefined, 'HTTP strips ; from the query gid');
    const all = await call('GET', `${dtx.api}/all?gid=${encodeURIComponent(gid)}`);
    assert.equal(all.json.transactions[0].gid, gid);
  });

  it('TransOptions map to the stored options; the protocol is grpc whatever was sent', async () => {
    const gid = gidFor('grpc-options');
    await dtm.call('Prepare', {
      Gid: gid,
      TransType: 'msg',
      Steps: JSON.stringify([{ action: busi.url('TransOut') }]),
      BinPayloads: [busiReq(1)],
      QueryPrepared: busi.url('QueryPrepared'),
      CustomedData: '{"delay":0}',
      TransOptions: {
        WaitResult: true,
        TimeoutToFail: 120,
        RetryInterval: 15,
        RequestTimeout: 7,
        RetryLimit: 2,
        BranchHeaders: { 'x-a': 'b' },
      },
    });
    const t = (await dtx.query(gid)).transaction;
    assert.equal(t.protocol, 'grpc');
    assert.equal(t.custom_data, '{"delay":0}');
    assert.equal(t.query_prepared, busi.url('QueryPrepared'));
    assert.deepEqual(JSON.parse(t.options), {
      wait_result: true,
      timeout_to_fail: 120,
      request_timeout: 7,
      retry_interval: 15,
      branch_headers: { 'x-a': 'b' },
      concurrent: false,
      retry_limit: 2,
    });
  });

  it('field 4 of DtmTransOptions (the removed PassthroughHeaders) is accepted and ignored', async () => {
    const gid = gidFor('grpc-field4');
    const options = Buffer.concat([intField(1, 1), intField(2, 120), lenField(4, 'x-a'), lenField(4, 'x-b')]);
    const request = Buffer.concat([lenField(1, gid), lenField(2, 'tcc'), lenField(3, options), lenField(7, 'null')]);
    const reply = await dtm.raw('/dtmgimp.Dtm/Prepare', request);
    assert.equal(reply.length, 0, 'google.protobuf.Empty');
    const t = (await dtx.query(gid)).transaction;
    assert.equal(t.status, 'prepared');
    assert.deepEqual(JSON.parse(t.options), { wait_result: true, timeout_to_fail: 120, concurrent: false });
  });

  it('zero options of a Submit do not override what Prepare stored', async () => {
    const gid = gidFor('grpc-zero-options');
    await dtm.call('Prepare', {
      Gid: gid,
      TransType: 'msg',
      Steps: JSON.stringify([{ action: busi.url('TransOut') }]),
      BinPayloads: [busiReq(1)],
      QueryPrepared: busi.url('QueryPrepared'),
      TransOptions: { RequestTimeout: 9 },
    });
    await dtm.call('Submit', { Gid: gid, TransType: 'msg', Steps: 'null', TransOptions: { WaitResult: true } });
    assert.equal(await dtx.status(gid), 'succeed');
    const out = busi.calls.find((c) => c.gid === gid)!;
    assert.ok(out.msLeft > 3000, `the stored 9 s request_timeout applies (${out.msLeft} ms left)`);
  });

  describe('topics over gRPC (TestTopicNormal)', () => {
    it('subscribe, unsubscribe and delete, with their errors', async () => {
      const topic = gidFor('grpc-topic');
      const u1 = busi.url('TransOut');
      const u2 = busi.url('TransIn');
      const err = async (method: string, req: Record<string, unknown>, code: number, details: string) => {
        const e = await dtm.error(method, req);
        assert.deepEqual([e.code, e.details], [code, details], `${method} ${JSON.stringify(req)}`);
      };
      await dtm.call('Subscribe', { Topic: topic, URL: u1, Remark: 'r1' });
      await err('Subscribe', { Topic: topic, URL: u1 }, GrpcStatus.ALREADY_EXISTS, 'this url exists');
      await err('Subscribe', { Topic: '', URL: u1 }, GrpcStatus.INVALID_ARGUMENT, 'Topic: empty topic');
      await err('Subscribe', { Topic: topic, URL: '' }, GrpcStatus.INVALID_ARGUMENT, 'URL: empty url');
      await dtm.call('Subscribe', { Topic: topic, URL: u2, Remark: 'r2' });
      const kv = await call('GET', `${dtx.api}/queryKV?cat=topics&key=${topic}`);
      assert.deepEqual(JSON.parse(kv.json.kv[0].v), [
        { url: u1, remark: 'r1' },
        { url: u2, remark: 'r2' },
      ]);

      await dtm.call('Unsubscribe', { Topic: topic, URL: u1 });
      await err('Unsubscribe', { Topic: topic, URL: u1 }, GrpcStatus.NOT_FOUND, 'no such an url ');
      await err('Unsubscribe', { Topic: '', URL: u1 }, GrpcStatus.INVALID_ARGUMENT, 'Topic: empty topic');
      await err('Unsubscribe', { Topic: topic, URL: '' }, GrpcStatus.INVALID_ARGUMENT, 'URL: empty url');
      await err('Unsubscribe', { Topic: `${topic}-none`, URL: u1 }, GrpcStatus.NOT_FOUND, 'no such a topic');
      await dtm.call('Unsubscribe', { Topic: topic, URL: u2 });
      await err('Unsubscribe', { Topic: topic, URL: u2 }, GrpcStatus.NOT_FOUND, 'this topic is empty');

      await err('DeleteTopic', { Topic: `${topic}-none` }, GrpcStatus.NOT_FOUND, 'storage: NotFound');
      await dtm.call('DeleteTopic', { Topic: topic });
      const gone = await call('GET', `${dtx.api}/queryKV?cat=topics&key=${topic}`);
      assert.deepEqual(gone.json.kv, []);
    });

    it('concurrent subscribes: at least one wins; the version counts every successful change', async () => {
      const topic = gidFor('grpc-topic-concurrent');
      const urls = Array.from({ length: 20 }, (_, i) => `${busi.address}/busi.Busi/TransOut${i}`);
      const results = await Promise.allSettled(urls.map((URL) => dtm.call('Subscribe', { Topic: topic, URL })));
      const ok = urls.filter((_, i) => results[i]!.status === 'fulfilled');
      assert.ok(ok.length >= 1);
      for (const URL of ok) await dtm.call('Unsubscribe', { Topic: topic, URL });
      const kv = await call('GET', `${dtx.api}/queryKV?cat=topics&key=${topic}`);
      assert.equal(kv.json.kv[0].version, 2 * ok.length);
    });
  });
});
