import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '../src/observe/logger.js';
import { Busi } from './support/busi.js';
import { startTestDtx, type TestDtx } from './support/dtx.js';
import { DtmGrpcClient } from './support/grpc-busi.js';
import { call } from './support/http.js';
import { waitFor } from './support/poll.js';
import { gidFor, sagaBody } from './support/trans.js';

type Line = Record<string, unknown>;

/** A dtx whose logger (level info) writes into `lines`. */
async function capturing(accessLog: boolean): Promise<{ dtx: TestDtx; lines: Line[] }> {
  const lines: Line[] = [];
  const log = createLogger('info', (l) => lines.push(JSON.parse(l) as Line));
  const config = structuredClone((await import('../src/config.js')).DEFAULT_CONFIG.Log);
  const dtx = await startTestDtx({ Log: { ...config, AccessLog: accessLog } }, { log });
  return { dtx, lines };
}

describe('access log (Log.AccessLog)', () => {
  let busi: Busi;
  let dtx: TestDtx;
  let lines: Line[];
  const requests = () => lines.filter((l) => l.msg === 'request');
  before(async () => {
    busi = await new Busi().start();
    ({ dtx, lines } = await capturing(true));
  });
  after(async () => {
    await dtx.stop();
    await busi.stop();
  });

  it('one info line per HTTP request: method, route pattern, status, duration_ms and the gid', async () => {
    const gid = gidFor('al-http');
    await call('POST', `${dtx.api}/submit`, sagaBody(busi, gid, { wait_result: true }));
    await call('GET', `${dtx.api}/query?gid=${gid}`);
    await call('GET', `${dtx.base}/no/such/route?gid=x`);
    const [submit, query, missing] = requests().slice(-3);
    assert.equal(submit!.level, 'info');
    assert.deepEqual(
      { ...submit, ts: undefined, duration_ms: undefined },
      {
        ts: undefined,
        level: 'info',
        msg: 'request',
        transport: 'http',
        method: 'POST',
        route: '/api/dtmsvr/submit',
        status: 200,
        duration_ms: undefined,
        gid,
      },
    );
    assert.equal(typeof submit!.duration_ms, 'number');
    assert.ok((submit!.duration_ms as number) >= 0);
    assert.equal(query!.route, '/api/dtmsvr/query');
    assert.equal(query!.gid, gid);
    assert.equal(query!.status, 200);
    // the route pattern, never the URL: an unknown path has none
    assert.equal(missing!.route, '');
    assert.equal(missing!.status, 404);
  });

  it('a refused request is logged with its 4xx status', async () => {
    await call('POST', `${dtx.api}/submit`, { gid: 'x', trans_type: 'nope' });
    const last = requests().at(-1)!;
    assert.equal(last.route, '/api/dtmsvr/submit');
    assert.equal(last.status, 400);
  });

  it('JSON-RPC requests carry the gid of their params', async () => {
    const gid = gidFor('al-jrpc');
    await call('POST', `${dtx.base}/api/json-rpc`, {
      jsonrpc: '2.0',
      id: '1',
      method: 'submit',
      params: { ...sagaBody(busi, gid), protocol: 'json-rpc', wait_result: true },
    });
    const last = requests().at(-1)!;
    assert.equal(last.route, '/api/json-rpc');
    assert.equal(last.gid, gid);
    assert.equal(last.status, 200);
  });

  it('gRPC calls: method, status code name, duration_ms and the gid', async () => {
    const grpc = new DtmGrpcClient(dtx.grpc);
    try {
      await grpc.call('NewGid', {});
      const gid = gidFor('al-grpc');
      await grpc.error('Prepare', { Gid: gid, TransType: 'nope' });
      const [ok, refused] = requests()
        .filter((l) => l.transport === 'grpc')
        .slice(-2);
      assert.equal(ok!.method, '/dtmgimp.Dtm/NewGid');
      assert.equal(ok!.route, 'newgid');
      assert.equal(ok!.status, 'OK');
      assert.equal(ok!.gid, undefined);
      assert.equal(typeof ok!.duration_ms, 'number');
      assert.equal(refused!.route, 'prepare');
      assert.equal(refused!.gid, gid);
      assert.notEqual(refused!.status, 'OK');
    } finally {
      grpc.close();
    }
  });

  it('every line about a failed branch carries gid, trans_type, branch_id and op', async () => {
    const gid = gidFor('al-fail');
    busi.setOnce('TransOut', 'ERROR');
    await call('POST', `${dtx.api}/submit`, sagaBody(busi, gid, { wait_result: true }));
    const line = await waitFor('the retry line', () => lines.find((l) => l.gid === gid && l.msg !== 'request'));
    assert.equal(line.trans_type, 'saga');
    assert.equal(line.branch_id, '01');
    assert.equal(line.op, 'action');
    for (const l of lines.filter((x) => x.gid === gid && x.msg !== 'request')) {
      assert.equal(l.trans_type, 'saga', JSON.stringify(l));
    }
  });
});

describe('access log off (Log.AccessLog: false)', () => {
  it('writes no request lines', async () => {
    const busi = await new Busi().start();
    const { dtx, lines } = await capturing(false);
    try {
      const gid = gidFor('al-off');
      assert.equal((await call('POST', `${dtx.api}/submit`, sagaBody(busi, gid, { wait_result: true }))).status, 200);
      assert.equal((await call('GET', `${dtx.api}/query?gid=${gid}`)).status, 200);
      assert.deepEqual(
        lines.filter((l) => l.msg === 'request'),
        [],
      );
      assert.ok(
        lines.some((l) => l.msg === 'dtx started'),
        'the logger is the one capturing',
      );
    } finally {
      await dtx.stop();
      await busi.stop();
    }
  });
});
