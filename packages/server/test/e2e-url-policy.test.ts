import assert from 'node:assert/strict';
import { type AddressInfo, createServer, type Server } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { LookupAll } from '../src/branch/url-policy.js';
import { DEFAULT_CONFIG } from '../src/config.js';
import { createLogger } from '../src/observe/logger.js';
import { Busi } from './support/busi.js';
import { startTestDtx, type TestDtx } from './support/dtx.js';
import { DtmGrpcClient } from './support/grpc-busi.js';
import { call } from './support/http.js';
import { waitFor } from './support/poll.js';
import { gidFor, sagaBody } from './support/trans.js';

// Spec §5 with dtx's branch-URL policy and redaction: every address below is loopback; 127.0.0.2 stands for a
// denied range (a listener there counts connections, which must stay at zero).

const lookup: LookupAll = (hostname, cb) => {
  const map: Record<string, string> = { 'metadata.test': '127.0.0.2', 'busi.test': '127.0.0.1' };
  const a = map[hostname];
  if (!a) cb(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }), []);
  else setImmediate(() => cb(null, [{ address: a, family: 4 }]));
};

const SECRET = 'Bearer tok-7f3a91c2e5';
const COOKIE = 'session=c00k1e-8d2b';
const API_KEY = 'k3y-55aa';

describe('e2e: branch-URL policy and redaction', () => {
  const busi = new Busi();
  let dtx: TestDtx;
  let dtm: DtmGrpcClient;
  let denied: Server;
  let deniedPort = 0;
  let deniedConnections = 0;
  const logs: string[] = [];

  before(async () => {
    await busi.start();
    denied = createServer((s) => {
      deniedConnections++;
      s.destroy();
    });
    await new Promise<void>((resolve) => denied.listen(0, '127.0.0.2', resolve));
    deniedPort = (denied.address() as AddressInfo).port;
    dtx = await startTestDtx(
      {
        BranchUrl: { Allow: '', Deny: '127.0.0.2/32,*.blocked.test' },
        Redact: { Headers: 'X-Api-Key', BranchReplies: false },
        LogLevel: 'debug',
      },
      { lookup, log: createLogger('debug', (line) => logs.push(line)) },
    );
    dtm = new DtmGrpcClient(dtx.grpc);
  });
  after(async () => {
    dtm.close();
    await dtx.stop();
    await busi.stop();
    denied.close();
  });

  it('submit, prepare, registerBranch and subscribe refuse a denied URL with a 400 naming it and the rule', async () => {
    const gid = gidFor('deny');
    const body = {
      gid,
      trans_type: 'saga',
      steps: [
        { action: `${busi.url}/TransOut`, compensate: `${busi.url}/TransOutRevert` },
        { action: `${busi.url}/TransIn`, compensate: 'http://169.254.169.254/latest' },
      ],
      payloads: ['{}', '{}'],
    };
    const r = await call('POST', `${dtx.api}/submit`, body);
    assert.equal(r.status, 400, r.text);
    assert.match(
      r.text,
      /steps\[1\]\.compensate: http:\/\/169\.254\.169\.254\/latest is denied by BranchUrl.Deny \(default\) 169\.254\.169\.254/,
    );
    const p = await call('POST', `${dtx.api}/prepare`, {
      gid: gidFor('deny'),
      trans_type: 'msg',
      steps: [{ action: `${busi.url}/TransOut` }],
      payloads: ['{}'],
      query_prepared: 'http://x.blocked.test/q',
    });
    assert.equal(p.status, 400, p.text);
    assert.match(p.text, /query_prepared: http:\/\/x\.blocked\.test\/q is denied by BranchUrl.Deny \*\.blocked\.test/);
    const tcc = gidFor('tcc');
    assert.equal((await call('POST', `${dtx.api}/prepare`, { gid: tcc, trans_type: 'tcc' })).status, 200);
    const b = await call('POST', `${dtx.api}/registerBranch`, {
      gid: tcc,
      trans_type: 'tcc',
      branch_id: '01',
      confirm: `http://127.0.0.2:${deniedPort}/c`,
      cancel: `${busi.url}/cancel`,
      data: '{}',
    });
    assert.equal(b.status, 400, b.text);
    assert.match(b.text, /confirm: http:\/\/127\.0\.0\.2:\d+\/c is denied by BranchUrl.Deny 127\.0\.0\.2\/32/);
    const s = await call(
      'GET',
      `${dtx.api}/subscribe?topic=t1&url=${encodeURIComponent('http://[fe80::1]/x')}&remark=r`,
    );
    assert.equal(s.status, 400, s.text);
    assert.match(s.text, /url: http:\/\/\[fe80::1\]\/x is denied by BranchUrl.Deny \(default\) fe80::\/10/);
    // the coordinator keeps serving
    assert.equal((await call('GET', `${dtx.api}/newGid`)).status, 200);
  });

  it('gRPC and JSON-RPC refuse it too (INVALID_ARGUMENT; -32603, as DTM answers bad input)', async () => {
    const e = await dtm.error('Submit', {
      Gid: gidFor('g'),
      TransType: 'saga',
      Steps: JSON.stringify([{ action: `127.0.0.2:${deniedPort}/busi.Busi/TransOut` }]),
      BinPayloads: [Buffer.from('{}')],
    });
    assert.equal(e.code, 3);
    assert.match(
      e.details,
      /Steps\[0\]\.action: 127\.0\.0\.2:\d+\/busi\.Busi\/TransOut is denied by BranchUrl.Deny 127\.0\.0\.2\/32/i,
    );
    const sub = await dtm.error('Subscribe', { Topic: 't', URL: 'http://169.254.169.254/', Remark: '' });
    assert.equal(sub.code, 3);
    assert.match(sub.details, /169\.254\.169\.254/);
    const j = await call('POST', `${dtx.base}/api/json-rpc`, {
      jsonrpc: '2.0',
      id: '1',
      method: 'submit',
      params: {
        gid: gidFor('j'),
        trans_type: 'saga',
        steps: [{ action: 'http://169.254.169.254/a' }],
        payloads: ['{}'],
      },
    });
    const err = (j.json as { error?: { code: number; message: string } }).error;
    assert.ok(err, j.text);
    assert.equal(err.code, -32603);
    assert.match(err.message, /steps\[0\]\.action: http:\/\/169\.254\.169\.254\/a is denied/);
  });

  it('a name resolving into a denied range at call time: the branch fails visibly, no connection is made', async () => {
    const gid = gidFor('dns');
    const body = {
      gid,
      trans_type: 'saga',
      steps: [{ action: `http://metadata.test:${deniedPort}/api/TransOut`, compensate: `${busi.url}/TransOutRevert` }],
      payloads: ['{}'],
    };
    const r = await call('POST', `${dtx.api}/submit`, body);
    assert.equal(r.status, 200, r.text);
    await waitFor('the refusal in the log', () =>
      logs.some(
        (l) => l.includes(gid) && l.includes('refused by the branch-URL policy: metadata.test resolves to 127.0.0.2'),
      ),
    );
    assert.equal(await dtx.status(gid), 'submitted', 'kept, retried later: nothing acknowledged is lost');
    assert.equal(deniedConnections, 0);
  });

  it('secret header values are *** in /query, /all and the options text; the branch still gets the real ones', async () => {
    const gid = gidFor('redact');
    const r = await call('POST', `${dtx.api}/submit`, {
      ...sagaBody(busi, gid),
      branch_headers: { Authorization: SECRET, cookie: COOKIE, 'x-api-key': API_KEY, 'X-Trace': 'visible' },
      wait_result: true,
    });
    assert.equal(r.status, 200, r.text);
    const q = await call('GET', `${dtx.api}/query?gid=${gid}`);
    const a = await call('GET', `${dtx.api}/all?gid=${gid}`);
    const page = await call('GET', `${dtx.api}/all?limit=100`);
    for (const text of [q.text, a.text, page.text]) {
      for (const secret of [SECRET, COOKIE, API_KEY]) assert.ok(!text.includes(secret), `${secret} shown: ${text}`);
    }
    const t = (q.json as { transaction: Record<string, any> }).transaction;
    assert.deepEqual(t.branch_headers, {
      Authorization: '***',
      cookie: '***',
      'x-api-key': '***',
      'X-Trace': 'visible',
    });
    assert.equal(JSON.parse(t.options).branch_headers.Authorization, '***');
    const sent = busi.calls.find((c) => c.query.gid === gid);
    assert.equal(sent?.headers.authorization, SECRET);
    assert.equal(sent?.headers['x-api-key'], API_KEY);
    assert.ok(
      !logs.some((l) => l.includes(SECRET) || l.includes(COOKIE) || l.includes(API_KEY)),
      'a secret in the log',
    );
  });

  it('a branch reply kept as rollback_reason is cut to 1 KiB', async () => {
    const gid = gidFor('long');
    busi.setOnce('TransOut', { status: 409, body: `FAILURE ${'x'.repeat(5000)}` });
    const r = await call('POST', `${dtx.api}/submit`, { ...sagaBody(busi, gid), wait_result: true });
    assert.notEqual(r.status, 200);
    const t = (await dtx.query(gid)).transaction;
    assert.equal(t.status, 'failed');
    assert.ok(Buffer.byteLength(t.rollback_reason, 'utf8') <= 1024 + 200, `${t.rollback_reason.length}`);
    assert.match(t.rollback_reason, /^url:.*return failed: FAILURE x+… FAILURE$/);
  });
});

describe('e2e: Redact.BranchReplies', () => {
  const busi = new Busi();
  let dtx: TestDtx;
  const logs: string[] = [];
  before(async () => {
    await busi.start();
    dtx = await startTestDtx(
      { Redact: { ...DEFAULT_CONFIG.Redact, BranchReplies: true }, LogLevel: 'debug' },
      { log: createLogger('debug', (line) => logs.push(line)) },
    );
  });
  after(async () => {
    await dtx.stop();
    await busi.stop();
  });

  it('keeps no reply body: the rollback reason and the log show the status only', async () => {
    const gid = gidFor('hide');
    busi.setOnce('TransOut', { status: 409, body: 'FAILURE internal-detail-4c1e' });
    await call('POST', `${dtx.api}/submit`, { ...sagaBody(busi, gid), wait_result: true });
    const gid2 = gidFor('hide2');
    busi.setOnce('TransOut', { status: 500, body: 'stack trace internal-detail-4c1e' });
    await call('POST', `${dtx.api}/submit`, { ...sagaBody(busi, gid2) });
    await waitFor('the failed call logged', () => logs.some((l) => l.includes(gid2) && l.includes('http status 500')));
    const t = (await dtx.query(gid)).transaction;
    assert.equal(t.status, 'failed');
    assert.match(t.rollback_reason, /return failed: http status 409/);
    const all = [JSON.stringify(t), ...logs].join('\n');
    assert.ok(!all.includes('internal-detail-4c1e'), all);
  });
});
