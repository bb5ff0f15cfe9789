import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { Busi, type BusiCall } from './support/busi.js';
import { startTestDtx, type TestDtx } from './support/dtx.js';
import { call } from './support/http.js';
import { waitFor } from './support/poll.js';
import { gidFor } from './support/trans.js';

// Spec §3 (the JSON-RPC API at POST /api/json-rpc) and §5.3 (JSON-RPC branches), after DTM's
// msg_jrpc_test.go and tcc_jrpc_test.go.
describe('JSON-RPC', () => {
  let dtx: TestDtx;
  let busi: Busi;
  let seq = 0;
  before(async () => {
    dtx = await startTestDtx();
    busi = await new Busi().start();
  });
  beforeEach(() => busi.reset());
  after(async () => {
    await dtx.stop();
    await busi.stop();
  });

  /** One JSON-RPC request to the coordinator; the reply must be HTTP 200. */
  async function rpc(method: string, params: unknown, id: unknown = `id-${++seq}`) {
    const r = await call('POST', `${dtx.base}/api/json-rpc`, { jsonrpc: '2.0', id, method, params });
    assert.equal(r.status, 200, r.text);
    return r.json as { jsonrpc: string; id: unknown; error: { code: number; message: string } | null; result: any };
  }
  /** The same with a raw body. */
  async function rpcRaw(body: string) {
    const r = await call('POST', `${dtx.base}/api/json-rpc`, body);
    assert.equal(r.status, 200, r.text);
    return r.json as { error: { code: number; message: string } | null; result: unknown; id: unknown };
  }

  /** The JSON-RPC branch URL of the busi: the method travels in the query. */
  const jrpcUrl = (method: string) => `${busi.url}/json-rpc?method=${method}`;
  const jrpcCalls = (gid: string): BusiCall[] =>
    busi.calls.filter((c) => c.name === 'json-rpc' && c.body.includes(JSON.stringify(gid)));
  const jrpcReply = (error: { code: number; message: string } | null) => ({
    status: 200,
    body: JSON.stringify({ jsonrpc: '2.0', id: 'x', error, result: error ? null : { dtm_result: 'SUCCESS' } }),
  });

  /** A msg with an HTTP branch and a JSON-RPC branch, as TestMsgJrpcNormal builds it. */
  const msg = (gid: string, extra: Record<string, unknown> = {}) => ({
    gid,
    trans_type: 'msg',
    protocol: 'json-rpc',
    steps: [{ action: `${busi.url}/TransOut` }, { action: jrpcUrl('TransIn') }],
    payloads: ['{"amount":30}', '{"amount":30}'],
    query_prepared: `${busi.url}/QueryPrepared`,
    ...extra,
  });

  it('normal: a msg submitted over JSON-RPC calls its HTTP branch over HTTP and its JSON-RPC branch', async () => {
    const gid = gidFor('msg-jrpc-normal');
    const r = await rpc('submit', msg(gid), 'no-use');
    assert.deepEqual(r, { jsonrpc: '2.0', id: 'no-use', error: null, result: null });
    await waitFor('succeed', async () => (await dtx.status(gid)) === 'succeed');
    assert.deepEqual(await dtx.branchStatuses(gid), ['succeed', 'succeed']);
    assert.equal((await dtx.query(gid)).transaction.protocol, 'json-rpc');
    assert.deepEqual(busi.callsOf(gid), ['TransOut action'], 'the plain HTTP branch, with the query parameters');
    const [j] = jrpcCalls(gid);
    assert.ok(j, 'the JSON-RPC branch was called');
    assert.equal(j.method, 'POST');
    assert.deepEqual(j.query, { method: 'TransIn' }, 'the URL is called as written');
    assert.equal(j.headers['content-type'], 'application/json');
    const body = JSON.parse(j.body);
    assert.equal(body.jsonrpc, '2.0');
    assert.equal(body.method, 'TransIn');
    assert.equal(typeof body.id, 'string');
    assert.ok(body.id.length > 0);
    assert.deepEqual(body.params, { amount: 30, gid, trans_type: 'msg', branch_id: '02', op: 'action' });
  });

  it('results: error objects are retried (OTHER, ONGOING, FAILURE in a msg); then it succeeds', async () => {
    const gid = gidFor('msg-jrpc-results');
    busi.setOnce(
      'json-rpc',
      jrpcReply({ code: -32603, message: 'OTHER' }),
      jrpcReply({ code: -32902, message: 'ONGOING' }),
      jrpcReply({ code: -32901, message: 'FAILURE' }),
    );
    await rpc('submit', msg(gid, { wait_result: true }));
    assert.equal(await dtx.status(gid), 'submitted');
    await dtx.cronFor(gid, 180);
    assert.equal(await dtx.status(gid), 'submitted');
    await dtx.cronFor(gid, 180);
    assert.equal(await dtx.status(gid), 'submitted');
    assert.deepEqual(await dtx.branchStatuses(gid), ['succeed', 'prepared']);
    await dtx.cronFor(gid, 180);
    assert.equal(await dtx.status(gid), 'succeed');
    assert.equal(jrpcCalls(gid).length, 4);
  });

  it('the error codes -32901 and -32902 are read even without the words in the message', async () => {
    // a saga: FAILURE (-32901) rolls back, ONGOING (-32902) leaves the branch to a later, backed-off retry
    const gid = gidFor('saga-jrpc-codes');
    busi.setOnce(
      'json-rpc',
      jrpcReply({ code: -32902, message: 'later' }),
      jrpcReply({ code: -32901, message: 'no money' }),
    );
    const saga = {
      gid,
      trans_type: 'saga',
      protocol: 'json-rpc',
      steps: [{ action: jrpcUrl('TransOut'), compensate: `${busi.url}/TransOutRevert` }],
      payloads: ['{"amount":30}'],
      wait_result: true,
    };
    const r1 = await rpc('submit', saga);
    assert.equal(r1.error?.code, -32902, 'wait_result: not finished, ONGOING');
    assert.equal(await dtx.status(gid), 'submitted');
    const before = (await dtx.query(gid)).transaction.next_cron_interval;
    await dtx.cronFor(gid);
    assert.equal(await dtx.status(gid), 'failed');
    assert.equal(before, 20, 'ONGOING backs off like an error (DTM keeps the interval)');
    assert.deepEqual(await dtx.branchStatuses(gid), ['succeed', 'failed']);
    assert.match((await dtx.query(gid)).transaction.rollback_reason, /no money/);
  });

  it('a JSON-RPC branch whose payload is not a JSON object is a retried error', async () => {
    const gid = gidFor('msg-jrpc-bad-payload');
    const r = await rpc('submit', msg(gid, { payloads: ['{"amount":30}', '[1,2]'], wait_result: true }));
    assert.equal(r.error?.code, -32902, JSON.stringify(r)); // still submitted: ONGOING (DTM: -32603)
    assert.equal(await dtx.status(gid), 'submitted');
    assert.deepEqual(jrpcCalls(gid), []);
  });

  it('repeated: submitting a finished msg again is -32901', async () => {
    const gid = gidFor('msg-jrpc-repeated');
    assert.equal((await rpc('submit', msg(gid, { wait_result: true }))).error, null);
    assert.equal(await dtx.status(gid), 'succeed');
    const r = await rpc('submit', msg(gid));
    assert.deepEqual(r.error, { code: -32901, message: "current status 'succeed', cannot sumbmit. FAILURE" });
  });

  it('prepare, then abort: the msg fails', async () => {
    const gid = gidFor('msg-jrpc-abort');
    assert.equal((await rpc('prepare', msg(gid))).error, null);
    assert.equal(await dtx.status(gid), 'prepared');
    assert.equal((await rpc('abort', { gid, trans_type: 'msg' })).error, null);
    assert.equal(await dtx.status(gid), 'failed');
  });

  it('tcc with the coordinator reached over JSON-RPC (TestTccJrpcNormal)', async () => {
    const gid = gidFor('tcc-jrpc-normal');
    assert.equal((await rpc('prepare', { gid, trans_type: 'tcc', protocol: 'json-rpc' })).error, null);
    for (const [id, name] of [
      ['01', 'TransOut'],
      ['02', 'TransIn'],
    ]) {
      const r = await rpc('registerBranch', {
        gid,
        branch_id: id,
        trans_type: 'tcc',
        data: '{"amount":30}',
        confirm: `${busi.url}/${name}Confirm`,
        cancel: `${busi.url}/${name}Revert`,
      });
      assert.equal(r.error, null, JSON.stringify(r));
    }
    const r = await rpc('submit', { gid, trans_type: 'tcc', protocol: 'json-rpc', wait_result: true });
    assert.equal(r.error, null, JSON.stringify(r));
    assert.equal(await dtx.status(gid), 'succeed');
    assert.deepEqual(await dtx.branchStatuses(gid), ['prepared', 'succeed', 'prepared', 'succeed']);
    assert.deepEqual(busi.callsOf(gid), ['TransInConfirm confirm', 'TransOutConfirm confirm']);
  });

  it('abnormal requests get the exact error codes, always with HTTP 200 (TestMsgJprcAbnormal)', async () => {
    const e1 = await rpcRaw('{"jsonrpc":"2.0","id":"1","method":"newGid",');
    assert.equal(e1.error?.code, -32700);
    assert.match(e1.error!.message, /^Parse json error: /);
    assert.equal((await rpcRaw('not json at all')).error?.code, -32700);
    assert.equal((await rpcRaw('[{"jsonrpc":"2.0","id":"1","method":"newGid"}]')).error?.code, -32700);
    const numeric = await rpc('newGid', '', 1);
    assert.deepEqual(numeric.error, { code: -32700, message: 'Parse json error: id: expected a string, got number' });

    const v1 = await call('POST', `${dtx.base}/api/json-rpc`, { jsonrpc: '1.0', id: 'a', method: 'newGid' });
    assert.equal(v1.json.error.code, -32600);
    assert.match(v1.json.error.message, /^Bad json request: /);
    assert.equal((await rpc('newGid', '', '')).error?.code, -32600, 'an empty id');
    assert.equal((await rpcRaw('{"jsonrpc":"2.0","method":"newGid"}')).error?.code, -32600, 'no id');

    assert.deepEqual((await rpc('nope', {})).error, { code: -32601, message: 'Method not found: nope' });
    assert.equal((await rpc('toString', {})).error?.code, -32601, 'not an inherited property');
    assert.equal((await rpc('query', { gid: 'x' })).error?.code, -32601, 'not served over JSON-RPC');

    const reg = await rpc('registerBranch', { gid: gidFor('jrpc'), branch_id: '01', trans_type: 'not-exists' });
    assert.deepEqual(reg.error, { code: -32603, message: 'trans_type: unknow trans type: not-exists' });
    const bad = await rpc('submit', 'x');
    assert.deepEqual(bad.error, { code: -32603, message: 'params: expected a JSON object' });
    const badUrl = await rpc('submit', msg(gidFor('jrpc'), { steps: [{ action: 'ftp://x' }], payloads: ['{}'] }));
    assert.equal(badUrl.error?.code, -32603);
    assert.match(badUrl.error!.message, /^steps\[0\]\.action: /);
  });

  it('newGid with params "" answers a gid (TestMsgJprcAbnormal2)', async () => {
    const r = await rpc('newGid', '');
    assert.equal(r.error, null);
    assert.equal(r.result.gid.length, 22);
  });

  it('a body over HttpBodyLimit is refused as a JSON-RPC error, still HTTP 200', async () => {
    const small = await startTestDtx({ HttpBodyLimit: 1024 });
    try {
      const body = JSON.stringify({ jsonrpc: '2.0', id: '1', method: 'newGid', params: 'x'.repeat(2000) });
      const r = await call('POST', `${small.base}/api/json-rpc`, body);
      assert.equal(r.status, 200);
      assert.deepEqual(r.json.error, {
        code: -32600,
        message: 'Bad json request: request body is larger than HttpBodyLimit (1024 bytes)',
      });
    } finally {
      await small.stop();
    }
  });

  it('the HTTP API is unchanged beside it', async () => {
    assert.equal((await call('GET', `${dtx.base}/api/json-rpc`)).status, 404);
    assert.equal((await call('GET', `${dtx.api}/newGid`)).status, 200);
  });
});
