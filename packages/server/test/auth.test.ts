/**
 * Issue 11 §1, §2, §5 against real servers on loopback: every route of every API (HTTP, JSON-RPC, gRPC) × no
 * token / a wrong one / a client token / an admin token; two tokens of a role both working (rotation); failures
 * rate-limited per source address (127.0.0.1 refused, 127.0.0.2 not); HTTPS, gRPC over TLS and mTLS with
 * certificates made by the openssl CLI in the test; bad TLS files stopping the start naming the key; the start-up
 * line and the warning of an open coordinator on a non-loopback address.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { GrpcStatus } from '@dtx/protocol';
import { credentials } from '@grpc/grpc-js';
import { Agent, request } from 'undici';
import { Authenticator, AuthOutcome } from '../src/api/auth.js';
import { ConfigError, DEFAULT_CONFIG, type DtxConfig, loadConfig } from '../src/config.js';
import { FakeClock } from '../src/core/clock.js';
import { createLogger } from '../src/observe/logger.js';
import { isLoopbackHost } from '../src/server.js';
import { issueCert, makeCa } from './support/certs.js';
import { startTestDtx, type TestDtx } from './support/dtx.js';
import { DtmGrpcClient } from './support/grpc-busi.js';
import { call } from './support/http.js';

const CLIENT = 'client-token-0123456789abcdef';
const CLIENT2 = 'client-token-rotated-0123456789';
const ADMIN = 'admin-token-0123456789abcdef';
const ADMIN2 = 'admin-token-rotated-0123456789';
const WRONG = 'wrong-token-0123456789abcdef';

const authConfig = (a: Partial<DtxConfig['Auth']>): DtxConfig['Auth'] => ({ ...DEFAULT_CONFIG.Auth, ...a });

type Who = 'none' | 'wrong' | 'client' | 'admin';
const BEARER: Record<Who, Record<string, string>> = {
  none: {},
  wrong: { authorization: `Bearer ${WRONG}` },
  client: { authorization: `Bearer ${CLIENT}` },
  admin: { authorization: `Bearer ${ADMIN}` },
};
const WHO: Who[] = ['none', 'wrong', 'client', 'admin'];

/** Every HTTP route and what it needs. */
const HTTP_ROUTES: { method: string; path: string; body?: unknown; role: 'open' | 'client' | 'admin' }[] = [
  { method: 'GET', path: '/api/ping', role: 'open' },
  { method: 'GET', path: '/api/dtmsvr/version', role: 'client' },
  { method: 'GET', path: '/api/dtmsvr/newGid', role: 'client' },
  { method: 'POST', path: '/api/dtmsvr/prepare', body: { gid: 'auth-p', trans_type: 'msg' }, role: 'client' },
  { method: 'POST', path: '/api/dtmsvr/submit', body: { gid: 'auth-s', trans_type: 'saga' }, role: 'client' },
  { method: 'POST', path: '/api/dtmsvr/abort', body: { gid: 'auth-a', trans_type: 'tcc' }, role: 'client' },
  { method: 'POST', path: '/api/dtmsvr/registerBranch', body: { gid: 'auth-r' }, role: 'client' },
  { method: 'POST', path: '/api/dtmsvr/registerXaBranch', body: { gid: 'auth-r' }, role: 'client' },
  { method: 'POST', path: '/api/dtmsvr/registerTccBranch', body: { gid: 'auth-r' }, role: 'client' },
  { method: 'POST', path: '/api/dtmsvr/prepareWorkflow', body: { gid: 'auth-w' }, role: 'client' },
  { method: 'GET', path: '/api/dtmsvr/query?gid=auth-q', role: 'client' },
  { method: 'GET', path: '/api/dtmsvr/all', role: 'admin' },
  { method: 'POST', path: '/api/dtmsvr/forceStop', body: { gid: 'auth-f' }, role: 'admin' },
  { method: 'GET', path: '/api/dtmsvr/resetCronTime', role: 'admin' },
  { method: 'POST', path: '/api/dtmsvr/resetNextCronTime', body: { gid: 'auth-n' }, role: 'admin' },
  { method: 'GET', path: '/api/dtmsvr/subscribe?topic=t&url=http://127.0.0.1:1/x', role: 'admin' },
  { method: 'GET', path: '/api/dtmsvr/unsubscribe?topic=t&url=http://127.0.0.1:1/x', role: 'admin' },
  { method: 'DELETE', path: '/api/dtmsvr/topic/t', role: 'admin' },
  { method: 'GET', path: '/api/dtmsvr/scanKV?cat=topics', role: 'admin' },
  { method: 'GET', path: '/api/dtmsvr/queryKV?cat=topics&key=t', role: 'admin' },
  { method: 'POST', path: '/api/dtx-test/cronOnce', body: {}, role: 'admin' },
];

/** The status expected of a route for a caller; `pass` means the call reached its handler (any status of its own). */
function expected(role: 'open' | 'client' | 'admin', who: Who): number | 'pass' {
  if (role === 'open') return 'pass';
  if (who === 'none' || who === 'wrong') return 401;
  if (role === 'admin' && who === 'client') return 403;
  return 'pass';
}

const REFUSALS = new Set([401, 403, 429]);

/** The status of a GET sent from the local address `from` (another loopback address). */
function statusFrom(from: string, url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpGet(url, { localAddress: from, headers, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
  });
}

describe('auth: every route × role', () => {
  let dtx: TestDtx;
  let grpc: DtmGrpcClient;
  const failures: string[] = [];
  before(async () => {
    dtx = await startTestDtx(
      // a high limit: this suite makes many failed calls from one address on purpose
      { Auth: authConfig({ Token: `${CLIENT},${CLIENT2}`, AdminToken: `${ADMIN},${ADMIN2}`, MaxFailures: 100_000 }) },
      { onAuthFailure: (t) => failures.push(t) },
    );
    grpc = new DtmGrpcClient(dtx.grpc);
  });
  after(async () => {
    grpc?.close();
    await dtx?.stop();
  });

  for (const route of HTTP_ROUTES) {
    it(`HTTP ${route.method} ${route.path.split('?')[0]} (${route.role})`, async () => {
      for (const who of WHO) {
        const r = await call(route.method, `${dtx.base}${route.path}`, route.body, BEARER[who]);
        const want = expected(route.role, who);
        if (want === 'pass') {
          assert.ok(!REFUSALS.has(r.status), `${who}: got ${r.status} ${r.text}`);
        } else {
          assert.equal(r.status, want, `${who}: ${r.text}`);
          // no detail on why
          assert.deepEqual(r.json, { message: want === 401 ? 'unauthorized' : 'forbidden' });
        }
      }
    });
  }

  it('an unknown route answers 404 to anyone (nothing to protect, nothing said)', async () => {
    assert.equal((await call('GET', `${dtx.base}/api/dtmsvr/nope`)).status, 404);
  });

  it('HTTP: the Bearer scheme is case-insensitive; another scheme or a bare token is refused', async () => {
    assert.equal(
      (await call('GET', `${dtx.api}/newGid`, undefined, { authorization: `bearer ${CLIENT}` })).status,
      200,
    );
    assert.equal((await call('GET', `${dtx.api}/newGid`, undefined, { authorization: `Basic ${CLIENT}` })).status, 401);
    assert.equal((await call('GET', `${dtx.api}/newGid`, undefined, { authorization: CLIENT })).status, 401);
  });

  it('rotation: both client tokens and both admin tokens work', async () => {
    for (const t of [CLIENT, CLIENT2, ADMIN, ADMIN2]) {
      const r = await call('GET', `${dtx.api}/newGid`, undefined, { authorization: `Bearer ${t}` });
      assert.equal(r.status, 200, t);
    }
    for (const t of [ADMIN, ADMIN2]) {
      assert.equal((await call('GET', `${dtx.api}/all`, undefined, { authorization: `Bearer ${t}` })).status, 200);
    }
    assert.equal((await call('GET', `${dtx.api}/all`, undefined, { authorization: `Bearer ${CLIENT2}` })).status, 403);
  });

  it('a refused call with a body still gets its answer (the body is read first)', async () => {
    const big = JSON.stringify({ gid: 'x', trans_type: 'saga', steps: [], payloads: ['y'.repeat(32 * 1024)] });
    const r = await call('POST', `${dtx.api}/submit`, big);
    assert.equal(r.status, 401);
    const huge = 'z'.repeat(1024 * 1024);
    const r2 = await call('POST', `${dtx.api}/submit`, huge);
    assert.equal(r2.status, 401);
  });

  it('JSON-RPC: every method needs a client or admin token (-32001 without)', async () => {
    for (const method of ['newGid', 'prepare', 'submit', 'abort', 'registerBranch']) {
      for (const who of WHO) {
        const r = await call(
          'POST',
          `${dtx.base}/api/json-rpc`,
          { jsonrpc: '2.0', id: '1', method, params: { gid: `jr-${method}`, trans_type: 'saga' } },
          BEARER[who],
        );
        assert.equal(r.status, 200);
        if (who === 'none' || who === 'wrong') {
          assert.deepEqual(r.json.error, { code: -32001, message: 'unauthorized' }, `${method} ${who}`);
        } else {
          assert.notEqual(r.json.error?.code, -32001, `${method} ${who}: ${r.text}`);
          assert.equal(r.json.id, '1');
        }
      }
    }
  });

  const GRPC_METHODS: { name: string; request: Record<string, unknown>; role: 'client' | 'admin' }[] = [
    { name: 'NewGid', request: {}, role: 'client' },
    { name: 'Submit', request: { Gid: 'g-s', TransType: 'saga' }, role: 'client' },
    { name: 'Prepare', request: { Gid: 'g-p', TransType: 'msg' }, role: 'client' },
    { name: 'Abort', request: { Gid: 'g-a', TransType: 'tcc' }, role: 'client' },
    { name: 'RegisterBranch', request: { Gid: 'g-r' }, role: 'client' },
    { name: 'PrepareWorkflow', request: { Gid: 'g-w' }, role: 'client' },
    { name: 'Subscribe', request: { Topic: 't', URL: 'http://127.0.0.1:1/x' }, role: 'admin' },
    { name: 'Unsubscribe', request: { Topic: 't', URL: 'http://127.0.0.1:1/x' }, role: 'admin' },
    { name: 'DeleteTopic', request: { Topic: 't' }, role: 'admin' },
  ];
  const GRPC_REFUSALS = new Set<number>([
    GrpcStatus.UNAUTHENTICATED,
    GrpcStatus.PERMISSION_DENIED,
    GrpcStatus.RESOURCE_EXHAUSTED,
  ]);
  for (const m of GRPC_METHODS) {
    it(`gRPC ${m.name} (${m.role})`, async () => {
      for (const who of WHO) {
        let code: number = GrpcStatus.OK;
        let details = '';
        try {
          await grpc.call(m.name, m.request, BEARER[who]);
        } catch (err) {
          code = (err as { code: number }).code;
          details = (err as { details: string }).details;
        }
        const want = expected(m.role, who);
        if (want === 401) assert.deepEqual([code, details], [GrpcStatus.UNAUTHENTICATED, 'unauthorized'], who);
        else if (want === 403) assert.deepEqual([code, details], [GrpcStatus.PERMISSION_DENIED, 'forbidden'], who);
        else assert.ok(!GRPC_REFUSALS.has(code), `${who}: ${code} ${details}`);
      }
    });
  }

  it('every refusal called onAuthFailure with its transport', () => {
    for (const t of ['http', 'jsonrpc', 'grpc']) assert.ok(failures.includes(t), t);
    assert.ok(failures.every((t) => t === 'http' || t === 'jsonrpc' || t === 'grpc'));
  });
});

describe('auth: rate limit of failures per address', () => {
  let dtx: TestDtx;
  let grpc: DtmGrpcClient;
  before(async () => {
    dtx = await startTestDtx({
      Auth: authConfig({ Token: CLIENT, AdminToken: ADMIN, MaxFailures: 3, BlockSeconds: 600 }),
    });
    grpc = new DtmGrpcClient(dtx.grpc);
  });
  after(async () => {
    grpc?.close();
    await dtx?.stop();
  });

  it('after MaxFailures failures an address gets 429 (even with a right token); another address does not', async () => {
    for (let i = 0; i < 3; i++)
      assert.equal((await call('GET', `${dtx.api}/newGid`, undefined, BEARER.wrong)).status, 401);
    const limited = await call('GET', `${dtx.api}/newGid`, undefined, BEARER.wrong);
    assert.equal(limited.status, 429);
    assert.equal(limited.json.message, 'too many failed authentication attempts: retry later');
    assert.equal((await call('GET', `${dtx.api}/newGid`, undefined, BEARER.client)).status, 429);
    // the same block on JSON-RPC and gRPC, which see the same address
    const rpc = await call(
      'POST',
      `${dtx.base}/api/json-rpc`,
      { jsonrpc: '2.0', id: '1', method: 'newGid' },
      BEARER.client,
    );
    assert.equal(rpc.json.error.code, -32029);
    const e = await grpc.error('NewGid', {}, BEARER.client);
    assert.equal(e.code, GrpcStatus.RESOURCE_EXHAUSTED);
    // open routes stay open
    assert.equal((await call('GET', `${dtx.base}/api/ping`)).status, 200);
    assert.equal(await statusFrom('127.0.0.2', `${dtx.api}/newGid`, BEARER.client), 200);
  });
});

describe('auth: Authenticator', () => {
  it('blocks for BlockSeconds, then lets the address try again', () => {
    const clock = new FakeClock();
    const a = new Authenticator({ tokens: [CLIENT], adminTokens: [], maxFailures: 2, blockSeconds: 30, clock });
    const addr = () => '10.0.0.1';
    const bad = `Bearer ${WRONG}`;
    assert.equal(a.check(bad, 'client', 'http', addr, null), AuthOutcome.Unauthenticated);
    assert.equal(a.check(bad, 'client', 'http', addr, null), AuthOutcome.Unauthenticated);
    assert.equal(a.check(`Bearer ${CLIENT}`, 'client', 'http', addr, null), AuthOutcome.Limited);
    clock.advance(30_001);
    assert.equal(a.check(`Bearer ${CLIENT}`, 'client', 'http', addr, null), AuthOutcome.Ok);
  });

  it('tracks at most MaxTrackedAddresses addresses', () => {
    const a = new Authenticator({ tokens: [CLIENT], adminTokens: [], maxTracked: 5, clock: new FakeClock() });
    for (let i = 0; i < 50; i++) a.check(undefined, 'client', 'grpc', (n: number) => `10.0.0.${n}`, i);
    assert.equal(a.trackedAddresses, 5);
  });

  it('metrics: its own token or an admin token; or open with MetricsOpen', () => {
    const a = new Authenticator({
      tokens: [CLIENT],
      adminTokens: [ADMIN],
      metricsTokens: ['metrics-token-0123456789'],
    });
    const addr = () => '127.0.0.1';
    assert.equal(a.check('Bearer metrics-token-0123456789', 'metrics', 'http', addr, 0), AuthOutcome.Ok);
    assert.equal(a.check(`Bearer ${ADMIN}`, 'metrics', 'http', addr, 0), AuthOutcome.Ok);
    assert.equal(a.check(`Bearer ${CLIENT}`, 'metrics', 'http', addr, 0), AuthOutcome.Forbidden);
    assert.equal(a.check('Bearer metrics-token-0123456789', 'client', 'http', addr, 0), AuthOutcome.Forbidden);
    const open = new Authenticator({ tokens: [CLIENT], adminTokens: [ADMIN], metricsOpen: true });
    assert.equal(open.check(undefined, 'metrics', 'http', addr, 0), AuthOutcome.Ok);
    assert.equal(open.check(undefined, 'admin', 'http', addr, 0), AuthOutcome.Unauthenticated);
  });
});

describe('auth: configuration', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'dtx-auth-conf-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('tokens from env (comma-separated) and from a YAML list', () => {
    const env = loadConfig(undefined, { AUTH_TOKEN: `${CLIENT}, ${CLIENT2}`, AUTH_ADMIN_TOKEN: ADMIN }).config;
    assert.equal(env.Auth.Token, `${CLIENT}, ${CLIENT2}`);
    assert.equal(env.Auth.AdminToken, ADMIN);
    const file = join(dir, 'conf.yml');
    writeFileSync(file, `Auth:\n  Token:\n    - ${CLIENT}\n    - ${CLIENT2}\n  AdminToken: ${ADMIN}\n`);
    assert.equal(loadConfig(file, {}).config.Auth.Token, `${CLIENT},${CLIENT2}`);
  });

  it('refuses a short token, a shared token and a TLS key without its certificate, naming the key', () => {
    assert.throws(() => loadConfig(undefined, { AUTH_TOKEN: 'short' }), /Auth\.Token: a token of 5 characters/);
    assert.throws(
      () => loadConfig(undefined, { AUTH_TOKEN: CLIENT, AUTH_ADMIN_TOKEN: CLIENT }),
      /Auth\.AdminToken: the same token is also in Auth\.Token/,
    );
    assert.throws(() => loadConfig(undefined, { HTTP_TLS_KEY_FILE: '/x.pem' }), /HttpTls\.CertFile: must be set/);
    assert.throws(() => loadConfig(undefined, { GRPC_TLS_CLIENT_CA_FILE: '/x.pem' }), /GrpcTls\.ClientCaFile/);
  });

  it('is loopback: 127.0.0.0/8, ::1, localhost; not 0.0.0.0 or ::', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', '::ffff:127.0.0.1'])
      assert.ok(isLoopbackHost(h), h);
    for (const h of ['0.0.0.0', '::', '10.1.2.3', '192.168.0.1', 'example.com']) assert.ok(!isLoopbackHost(h), h);
  });
});

describe('start-up line and warning', () => {
  const lines = (out: string[]) =>
    out
      .join('')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  it('an open coordinator on 0.0.0.0 warns once; the start line says auth off', async () => {
    const out: string[] = [];
    const dtx = await startTestDtx({ HttpHost: '0.0.0.0' }, { log: createLogger('info', (l) => out.push(l)) });
    await dtx.stop();
    const logged = lines(out);
    const warnings = logged.filter((l) => String(l.msg).startsWith('NO AUTHENTICATION'));
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0]!.level, 'warn');
    const started = logged.find((l) => l.msg === 'dtx started')!;
    assert.deepEqual([started.auth, started.httpTls, started.grpcTls], ['off', 'off', 'off']);
  });

  it('no warning on loopback, nor with tokens; the start line says auth on', async () => {
    for (const overrides of [{}, { HttpHost: '0.0.0.0', Auth: authConfig({ Token: CLIENT }) }]) {
      const out: string[] = [];
      const dtx = await startTestDtx(overrides, { log: createLogger('info', (l) => out.push(l)) });
      await dtx.stop();
      const logged = lines(out);
      assert.equal(logged.filter((l) => String(l.msg).startsWith('NO AUTHENTICATION')).length, 0);
      const started = logged.find((l) => l.msg === 'dtx started')!;
      assert.equal(started.auth, 'Auth' in overrides ? 'on' : 'off');
    }
  });
});

describe('TLS and mTLS', () => {
  let dir: string;
  const f = (name: string) => join(dir, name);
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'dtx-tls-'));
    // a CA, a server certificate for 127.0.0.1 / localhost, a client certificate, all signed by the CA
    makeCa(dir, 'ca', 'dtx test CA');
    issueCert(dir, {
      name: 'server',
      cn: 'localhost',
      ca: 'ca',
      ext: 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth',
    });
    issueCert(dir, { name: 'client', cn: 'dtx test client', ca: 'ca', ext: 'extendedKeyUsage=clientAuth' });
    // another CA that signed nothing here
    makeCa(dir, 'other', 'other CA');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const tls = (t: Partial<DtxConfig['HttpTls']>) => ({ ...DEFAULT_CONFIG.HttpTls, ...t });
  const get = async (url: string, connect: Record<string, unknown>) => {
    const agent = new Agent({ connect });
    try {
      const r = await request(url, { dispatcher: agent });
      return { status: r.statusCode, text: await r.body.text() };
    } finally {
      await agent.close();
    }
  };
  const grpcNewGid = async (address: string, creds: ReturnType<typeof credentials.createSsl>) => {
    const c = new DtmGrpcClient(address, creds);
    try {
      return await c.call<{ Gid: string }>('NewGid', {});
    } finally {
      c.close();
    }
  };

  it('HTTPS: trusted CA succeeds, untrusted fails verification; gRPC shares the key', async () => {
    const dtx = await startTestDtx({ HttpTls: tls({ CertFile: f('server.pem'), KeyFile: f('server.key') }) });
    try {
      const https = `https://127.0.0.1:${dtx.server.httpPort}/api/ping`;
      assert.equal((await get(https, { ca: readFileSync(f('ca.pem')) })).status, 200);
      await assert.rejects(get(https, {}), (e: Error & { code?: string }) =>
        /UNABLE_TO_VERIFY|SELF_SIGNED|UNABLE_TO_GET_ISSUER|unable to (get|verify)/i.test(`${e.code} ${e.message}`),
      );
      await assert.rejects(get(https, { ca: readFileSync(f('other.pem')) }));
      // plain HTTP on the TLS port is not answered as HTTP
      await assert.rejects(call('GET', `http://127.0.0.1:${dtx.server.httpPort}/api/ping`));
      const ok = await grpcNewGid(dtx.grpc, credentials.createSsl(readFileSync(f('ca.pem'))));
      assert.ok(ok.Gid.length > 0);
      await assert.rejects(
        grpcNewGid(dtx.grpc, credentials.createSsl(readFileSync(f('other.pem')))),
        (e: { code: number }) => e.code === GrpcStatus.UNAVAILABLE,
      );
    } finally {
      await dtx.stop();
    }
  });

  it('mTLS: without a client certificate refused, with one accepted (HTTPS and gRPC)', async () => {
    const files = { CertFile: f('server.pem'), KeyFile: f('server.key'), ClientCaFile: f('ca.pem') };
    const dtx = await startTestDtx({ HttpTls: tls(files), GrpcTls: tls(files) });
    try {
      const https = `https://127.0.0.1:${dtx.server.httpPort}/api/ping`;
      const ca = readFileSync(f('ca.pem'));
      await assert.rejects(get(https, { ca }));
      const r = await get(https, { ca, cert: readFileSync(f('client.pem')), key: readFileSync(f('client.key')) });
      assert.equal(r.status, 200);
      // a client certificate from another CA is refused
      await assert.rejects(get(https, { ca, cert: readFileSync(f('other.pem')), key: readFileSync(f('other.key')) }));
      await assert.rejects(grpcNewGid(dtx.grpc, credentials.createSsl(ca)));
      const ok = await grpcNewGid(
        dtx.grpc,
        credentials.createSsl(ca, readFileSync(f('client.key')), readFileSync(f('client.pem'))),
      );
      assert.ok(ok.Gid.length > 0);
    } finally {
      await dtx.stop();
    }
  });

  it('a missing or bad file stops the start naming the key', async () => {
    writeFileSync(f('junk.pem'), 'not a certificate\n');
    const cases: [Partial<DtxConfig>, RegExp][] = [
      [{ HttpTls: tls({ CertFile: f('missing.pem'), KeyFile: f('server.key') }) }, /^HttpTls\.CertFile: cannot read/],
      [
        { HttpTls: tls({ CertFile: f('junk.pem'), KeyFile: f('server.key') }) },
        /^HttpTls\.CertFile: .* holds no PEM certificate/,
      ],
      [
        { HttpTls: tls({ CertFile: f('server.pem'), KeyFile: f('client.key') }) },
        /^HttpTls\.KeyFile: .* not a PEM private key matching/,
      ],
      [
        { GrpcTls: tls({ CertFile: f('server.pem'), KeyFile: f('server.key'), ClientCaFile: f('junk.pem') }) },
        /^GrpcTls\.ClientCaFile:/,
      ],
    ];
    for (const [overrides, message] of cases) {
      await assert.rejects(startTestDtx(overrides), (e: Error) => e instanceof ConfigError && message.test(e.message));
    }
  });
});
