import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { type AddressInfo, createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { BranchCall } from '../src/branch/caller.js';
import { GrpcBranchCaller } from '../src/branch/grpc-caller.js';
import { HttpBranchCaller } from '../src/branch/http-caller.js';
import { JsonRpcBranchCaller } from '../src/branch/json-rpc-caller.js';
import { type LookupAll, targetOf, UrlPolicy, UrlPolicyError } from '../src/branch/url-policy.js';
import { ConfigError, DEFAULT_CONFIG, type DtxConfig, loadConfig, validate } from '../src/config.js';
import type { TransGlobal } from '../src/core/model.js';
import { issueCert, makeCa } from './support/certs.js';

/** A resolver for tests: names map to fixed (loopback or never-dialled) addresses; every lookup is recorded. */
function testLookup(names: Record<string, string[]>): LookupAll & { asked: string[] } {
  const asked: string[] = [];
  const fn = ((hostname: string, cb: Parameters<LookupAll>[1]) => {
    asked.push(hostname);
    const a = names[hostname];
    if (!a) {
      cb(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }), []);
      return;
    }
    setImmediate(() =>
      cb(
        null,
        a.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })),
      ),
    );
  }) as LookupAll & { asked: string[] };
  fn.asked = asked;
  return fn;
}

/** A TCP listener on a loopback address that only counts the connections it receives. */
async function countingListener(host: string): Promise<{ server: TcpServer; port: number; connections: () => number }> {
  let n = 0;
  const server = createTcpServer((s) => {
    n++;
    s.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return { server, port: (server.address() as AddressInfo).port, connections: () => n };
}

function trans(): TransGlobal {
  return {
    gid: 'g1',
    transType: 'saga',
    status: 'submitted',
    queryPrepared: '',
    protocol: 'http',
    createTime: 0,
    updateTime: 0,
    options: '{}',
    customData: '',
    nextCronInterval: 10,
    nextCronTime: 0,
    owner: '',
    extData: '',
    result: '',
    rollbackReason: '',
    opts: {},
  } as unknown as TransGlobal;
}

function callOf(url: string, payload = '{}'): BranchCall {
  return { trans: trans(), url, branchId: '01', op: 'action', payload: Buffer.from(payload), timeoutMs: 3000 };
}

describe('branch-URL policy: the matcher', () => {
  const def = new UrlPolicy();

  it('denies the cloud metadata addresses and link-local by default, naming the rule', () => {
    assert.equal(
      def.checkUrl('http://169.254.169.254/latest/meta-data'),
      'http://169.254.169.254/latest/meta-data is denied by BranchUrl.Deny (default) 169.254.169.254',
    );
    assert.match(
      def.checkUrl('http://169.254.10.1/x') ?? '',
      /denied by BranchUrl.Deny \(default\) 169\.254\.0\.0\/16/,
    );
    assert.match(def.checkUrl('http://[fd00:ec2::254]/x') ?? '', /fd00:ec2::254/);
    assert.match(def.checkUrl('http://[fe80::1]:8080/x') ?? '', /fe80::\/10/);
    assert.match(def.checkUrl('https://METADATA.google.internal./x') ?? '', /metadata\.google\.internal/);
    // an IPv4-mapped IPv6 literal is the IPv4 address
    assert.match(def.checkUrl('http://[::ffff:169.254.169.254]/x') ?? '', /169\.254\.169\.254/);
    // gRPC and discovery targets
    assert.match(def.checkUrl('169.254.169.254:50051/busi.Busi/TransOut') ?? '', /169\.254/);
    assert.match(def.checkUrl('etcd://169.254.1.1:2379/svc/busi.Busi/TransOut') ?? '', /169\.254\.0\.0\/16/);
  });

  it('allows everything else when Allow is empty', () => {
    for (const u of [
      'http://127.0.0.1:8080/api',
      'https://api.example.com/x',
      'localhost:50051/busi.Busi/TransOut',
      'discovery:///busi/busi.Busi/TransOut',
      'http://[::1]:1/x',
      'http://169.253.255.255/x',
      'http://metadata.google.internal.example/x',
    ]) {
      assert.equal(def.checkUrl(u), undefined, u);
    }
  });

  it('matches host patterns, CIDRs and schemes of Deny', () => {
    const p = UrlPolicy.fromConfig('', '*.internal.example, 10.0.0.0/8, fc00::/7, grpc://, https://bad.example');
    assert.match(p.checkUrl('http://a.internal.example/x') ?? '', /\*\.internal\.example/);
    assert.match(p.checkUrl('http://a.b.internal.example/x') ?? '', /\*\.internal\.example/);
    assert.equal(p.checkUrl('http://internal.example/x'), undefined, 'the pattern does not match the domain itself');
    assert.match(p.checkUrl('http://10.200.3.4/x') ?? '', /10\.0\.0\.0\/8/);
    assert.equal(p.checkUrl('http://11.0.0.1/x'), undefined);
    assert.match(p.checkUrl('http://[fd12::1]/x') ?? '', /fc00::\/7/);
    assert.match(p.checkUrl('127.0.0.1:50051/busi.Busi/TransOut') ?? '', /grpc:\/\//);
    assert.match(p.checkUrl('https://bad.example/x') ?? '', /https:\/\/bad\.example/);
    assert.equal(p.checkUrl('http://bad.example/x'), undefined, 'a scheme-qualified entry needs its scheme');
  });

  it('with Allow set, refuses what it does not name', () => {
    const p = UrlPolicy.fromConfig(['https://', '*.corp.example', '127.0.0.0/8'], []);
    assert.equal(p.checkUrl('https://orders.corp.example/x'), undefined);
    assert.equal(p.checkUrl('https://127.0.0.1:1/x'), undefined);
    assert.match(p.checkUrl('http://orders.corp.example/x') ?? '', /not allowed by BranchUrl.Allow \(scheme http:\/\//);
    assert.match(p.checkUrl('https://10.1.1.1/x') ?? '', /is not allowed by BranchUrl.Allow \(\*\.corp\.example, 127/);
    // a name no entry matches may still resolve into an allowed range: decided when connecting
    assert.equal(p.checkUrl('https://localhost/x'), undefined);
    assert.equal(p.checkAddress('https', 'localhost', '127.0.0.1'), undefined);
    assert.match(
      p.checkAddress('https', 'localhost', '10.0.0.1') ?? '',
      /resolves to 10\.0\.0\.1, which is not allowed/,
    );
    // deny wins
    const q = UrlPolicy.fromConfig('169.254.0.0/16', '');
    assert.match(q.checkUrl('http://169.254.169.254/') ?? '', /denied/);
    // only host names in Allow: an unmatched name is refused at once
    const names = UrlPolicy.fromConfig('api.example.com', '');
    assert.match(
      names.checkUrl('http://other.example.com/') ?? '',
      /not allowed by BranchUrl.Allow \(api\.example\.com\)/,
    );
  });

  it('refuses bad entries naming them', () => {
    assert.throws(
      () => UrlPolicy.fromConfig('10.0.0.0/33', ''),
      /BranchUrl.Allow: '10.0.0.0\/33' has a bad prefix length/,
    );
    assert.throws(() => UrlPolicy.fromConfig('', 'ftp://'), /BranchUrl.Deny: 'ftp:\/\/' names an unknown scheme/);
    assert.throws(() => UrlPolicy.fromConfig('', 'a..b'), /is not a scheme/);
    assert.throws(() => UrlPolicy.fromConfig('', 'a.b/x'), /neither a host name nor a CIDR/);
  });

  it('gives a URL the same verdict every time, long or short, cached or not', () => {
    const p = UrlPolicy.fromConfig('', '10.0.0.0/8');
    const long = 'a'.repeat(1000);
    for (let i = 0; i < 2; i++) {
      assert.match(p.checkUrl(`http://10.1.2.3/${long}`) ?? '', /is denied by BranchUrl.Deny 10.0.0.0\/8/);
      assert.equal(p.checkUrl(`http://11.1.2.3/${long}`), undefined);
      assert.match(p.checkUrl('http://10.1.2.3/x') ?? '', /is denied by BranchUrl.Deny 10.0.0.0\/8/);
      assert.equal(p.checkUrl('http://11.1.2.3/x'), undefined);
    }
  });

  it('splits URLs into scheme and hosts', () => {
    assert.deepEqual(targetOf('http://[::1]:80/x'), { scheme: 'http', hosts: ['::1'] });
    assert.deepEqual(targetOf('etcd://h1:2379,h2:2379/svc/p.S/M'), { scheme: 'etcd', hosts: ['h1', 'h2'] });
    assert.deepEqual(targetOf('discovery:///svc/p.S/M'), { scheme: 'discovery', hosts: [] });
    assert.deepEqual(targetOf('[::1]:50051/p.S/M'), { scheme: 'grpc', hosts: ['::1'] });
    assert.equal(targetOf('topic://t'), undefined);
  });

  it('lookup: a name resolving into a denied range is refused without an address to connect to', async () => {
    const look = new UrlPolicy().lookupFor('http', testLookup({ 'metadata.test': ['169.254.169.254'] }));
    const res = await new Promise<{ err: Error | null; address: string }>((resolve) =>
      look('metadata.test', { all: false }, (err, address) => resolve({ err, address })),
    );
    assert.ok(res.err instanceof UrlPolicyError);
    assert.equal(res.address, '');
    assert.match(
      res.err.message,
      /metadata\.test resolves to 169\.254\.169\.254, which is denied by BranchUrl.Deny \(default\) 169\.254\.169\.254/,
    );
  });

  it('config: lists from env and YAML, bad entries and a denied AlertWebHook are ConfigErrors', () => {
    const { config } = loadConfig(undefined, {
      BRANCH_URL_DENY: '10.0.0.0/8, *.x.example',
      REDACT_HEADERS: 'X-Api-Key',
    });
    assert.equal(config.BranchUrl.Deny, '10.0.0.0/8, *.x.example');
    assert.equal(config.Redact.Headers, 'X-Api-Key');
    const bad: DtxConfig = structuredClone(DEFAULT_CONFIG);
    bad.BranchUrl.Allow = '1.2.3.4/40';
    assert.throws(
      () => validate(bad),
      (e: Error) => e instanceof ConfigError && /BranchUrl.Allow/.test(e.message),
    );
    const hook: DtxConfig = structuredClone(DEFAULT_CONFIG);
    hook.AlertWebHook = 'http://169.254.169.254/alert';
    assert.throws(() => validate(hook), /AlertWebHook: http:\/\/169\.254\.169\.254\/alert is denied/);
  });
});

describe('branch-URL policy at call time (loopback only)', () => {
  // 127.0.0.2 and 127.0.0.3 stand for a denied and a not-allowed range: loopback, so nothing leaves the host
  let denied: Awaited<ReturnType<typeof countingListener>>;
  let other: Awaited<ReturnType<typeof countingListener>>;
  let ok: Server;
  let okPort = 0;
  let okCalls = 0;

  before(async () => {
    denied = await countingListener('127.0.0.2');
    other = await countingListener('127.0.0.3');
    ok = createHttpServer((_req, res) => {
      okCalls++;
      res.end('{"dtm_result":"SUCCESS"}');
    });
    await new Promise<void>((resolve) => ok.listen(0, '127.0.0.1', resolve));
    okPort = (ok.address() as AddressInfo).port;
  });
  after(async () => {
    denied.server.close();
    other.server.close();
    ok.close();
  });

  it('HTTP: a name resolving into a denied range fails visibly and no connection is attempted', async () => {
    const lookup = testLookup({ 'metadata.test': ['127.0.0.2'] });
    const caller = new HttpBranchCaller({ policy: UrlPolicy.fromConfig('', '127.0.0.2/32'), lookup });
    try {
      const out = await caller.call(callOf(`http://metadata.test:${denied.port}/api/x`));
      assert.equal(out.result, 'ERROR');
      assert.match(
        out.message,
        /refused by the branch-URL policy: metadata\.test resolves to 127\.0\.0\.2, which is denied by BranchUrl.Deny 127\.0\.0\.2\/32/,
      );
      assert.deepEqual(lookup.asked, ['metadata.test']);
      // an IP literal in the range is refused in the connector
      const lit = await caller.call(callOf(`http://127.0.0.2:${denied.port}/api/x`));
      assert.equal(lit.result, 'ERROR');
      assert.match(lit.message, /127\.0\.0\.2 is denied by BranchUrl.Deny 127\.0\.0\.2\/32/);
      assert.equal(denied.connections(), 0);
    } finally {
      await caller.close();
    }
  });

  it('HTTP and JSON-RPC: an Allow-list miss is refused, an allowed name is called', async () => {
    const lookup = testLookup({ 'other.test': ['127.0.0.3'], 'ok.test': ['127.0.0.1'] });
    const policy = UrlPolicy.fromConfig('127.0.0.1/32', '');
    const http = new HttpBranchCaller({ policy, lookup });
    const rpc = new JsonRpcBranchCaller({ policy, lookup });
    try {
      const miss = await http.call(callOf(`http://other.test:${other.port}/x`));
      assert.equal(miss.result, 'ERROR');
      assert.match(
        miss.message,
        /other\.test resolves to 127\.0\.0\.3, which is not allowed by BranchUrl.Allow \(127\.0\.0\.1\/32\)/,
      );
      const rpcMiss = await rpc.call(callOf(`http://other.test:${other.port}/rpc?method=a`));
      assert.equal(rpcMiss.result, 'ERROR');
      assert.match(rpcMiss.message, /not allowed by BranchUrl.Allow/);
      assert.equal(other.connections(), 0);
      const before = okCalls;
      const hit = await http.call(callOf(`http://ok.test:${okPort}/x`));
      assert.equal(hit.result, 'SUCCESS', hit.message);
      assert.equal(okCalls, before + 1);
    } finally {
      await http.close();
      await rpc.close();
    }
  });

  it('gRPC (plain and discovery-resolved): the resolved addresses are checked before a channel dials', async () => {
    const lookup = testLookup({ 'metadata.test': ['127.0.0.2'] });
    const resolver = { resolve: async () => `127.0.0.2:${denied.port}` };
    const caller = new GrpcBranchCaller({ resolver, policy: UrlPolicy.fromConfig('', '127.0.0.2/32'), lookup });
    try {
      const byName = await caller.call(callOf(`metadata.test:${denied.port}/busi.Busi/TransOut`));
      assert.equal(byName.result, 'ERROR');
      assert.match(byName.message, /refused by the branch-URL policy: metadata\.test resolves to 127\.0\.0\.2/);
      const byDiscovery = await caller.call(callOf('discovery:///busi/busi.Busi/TransOut'));
      assert.equal(byDiscovery.result, 'ERROR');
      assert.match(byDiscovery.message, /refused by the branch-URL policy: 127\.0\.0\.2 is denied/);
      assert.equal(denied.connections(), 0);
    } finally {
      await caller.close();
    }
  });

  it('redirects are not followed: a 302 is an error and its target sees no request', async () => {
    let targetCalls = 0;
    const target = createHttpServer((_req, res) => {
      targetCalls++;
      res.end('{"dtm_result":"SUCCESS"}');
    });
    await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
    const to = `http://127.0.0.1:${(target.address() as AddressInfo).port}/api/x`;
    const redirect = createHttpServer((_req, res) => {
      res.writeHead(302, { location: to });
      res.end();
    });
    await new Promise<void>((resolve) => redirect.listen(0, '127.0.0.1', resolve));
    const caller = new HttpBranchCaller();
    try {
      const out = await caller.call(callOf(`http://127.0.0.1:${(redirect.address() as AddressInfo).port}/api/x`));
      assert.equal(out.result, 'ERROR');
      assert.match(out.message, /http status 302/);
      assert.equal(targetCalls, 0);
    } finally {
      await caller.close();
      target.close();
      redirect.close();
    }
  });
});

describe('outbound TLS (BranchTls.CaFile)', () => {
  let dir: string;
  let server: ReturnType<typeof createHttpsServer>;
  let url = '';
  let ca = '';

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dtx-tls-'));
    // a private CA and a server certificate for 127.0.0.1 signed by it
    makeCa(dir, 'ca', 'dtx test CA');
    issueCert(dir, { name: 'srv', cn: '127.0.0.1', ca: 'ca', ext: 'subjectAltName=IP:127.0.0.1' });
    ca = readFileSync(join(dir, 'ca.pem'), 'utf8');
    server = createHttpsServer(
      { key: readFileSync(join(dir, 'srv.key')), cert: readFileSync(join(dir, 'srv.pem')) },
      (_req, res) => res.end('{"dtm_result":"SUCCESS"}'),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/api/x`;
  });
  after(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('verifies certificates: without the CA the call fails with a certificate error', async () => {
    const caller = new HttpBranchCaller();
    try {
      const out = await caller.call(callOf(url));
      assert.equal(out.result, 'ERROR');
      assert.match(out.message, /certificate/i);
    } finally {
      await caller.close();
    }
  });

  it('trusts the private CA of BranchTls.CaFile', async () => {
    const caller = new HttpBranchCaller({ ca });
    try {
      const out = await caller.call(callOf(url));
      assert.equal(out.result, 'SUCCESS', out.message);
    } finally {
      await caller.close();
    }
  });
});
