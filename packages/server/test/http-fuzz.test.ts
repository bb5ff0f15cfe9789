import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { BranchCall, BranchCaller } from '../src/branch/caller.js';
import { DispatchingCaller } from '../src/branch/dispatch.js';
import { Busi } from './support/busi.js';
import { startTestDtx, type TestDtx } from './support/dtx.js';
import { call } from './support/http.js';
import { seededRandom } from './support/random.js';
import { gidFor, sagaBody } from './support/trans.js';

// Seeded fuzzing of every HTTP route and JSON-RPC method: mutated valid bodies, query strings and raw bytes. Every
// reply must be below 500 (the store is up, so not even 503), and the server must still serve a saga at the end.
// Reproduce a run with DTX_FUZZ_SEED=<the printed seed>.
//
// Network safety: the branch URLs of the generated bodies come whole from LOOPBACK_URLS (the test's branch server
// and a closed loopback port); structural mutations never touch a URL field's text, they only swap it for another
// URL of that set. Byte-level mutations (flips, truncations, random bytes) could still turn a host into any other
// host, so the server's branch caller is wrapped: a call whose host is not loopback is refused before any
// connection is made, and the test fails if one was ever attempted.

const ITERATIONS = 10_000;
const BUDGET_MS = 25_000;

const LOOPBACK_HOST = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|localhost|\[::1\])$/i;

/** True when a branch URL (http(s), or gRPC `host:port/...`) points at a loopback host. */
function isLoopback(url: string): boolean {
  try {
    if (/^https?:\/\//i.test(url)) return LOOPBACK_HOST.test(new URL(url).hostname);
  } catch {
    return false;
  }
  const host = url.split('/')[0]!.replace(/:\d*$/, '');
  return LOOPBACK_HOST.test(host);
}

/**
 * The real caller for loopback URLs (and '', which it answers SUCCESS without a call); anything else is refused
 * without touching the network, and counted.
 */
class LoopbackOnlyCaller implements BranchCaller {
  readonly refused: string[] = [];
  private readonly real = new DispatchingCaller({});
  call(c: BranchCall) {
    if (c.url !== '' && !isLoopback(c.url)) {
      this.refused.push(c.url);
      return Promise.reject(new Error(`the fuzz test refuses a non-loopback branch URL: ${c.url}`));
    }
    return this.real.call(c);
  }
  close() {
    return this.real.close();
  }
}

describe('HTTP fuzz: no mutated request gets a 5xx, and the server keeps serving', () => {
  // a fixed default keeps the suite deterministic; set DTX_FUZZ_SEED to explore others (or repeat a failing one)
  const seed = Number(process.env.DTX_FUZZ_SEED ?? 20261202) >>> 0;
  let dtx: TestDtx;
  let busi: Busi;
  const caller = new LoopbackOnlyCaller();

  before(async () => {
    console.log(`http-fuzz seed ${seed} (DTX_FUZZ_SEED=${seed} to reproduce)`);
    dtx = await startTestDtx({}, { caller });
    busi = await new Busi().start();
  });
  after(async () => {
    await dtx?.stop();
    await busi?.stop();
  });

  it(`${ITERATIONS} mutated requests to every route and JSON-RPC method answer below 500`, async () => {
    const r = seededRandom(seed);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
    const LOOPBACK_URLS = [
      `${busi.url}/TransOut`,
      `${busi.url}/TransIn`,
      `${busi.url}/TransOutRevert`,
      `${busi.url}/QueryPrepared`,
      'http://127.0.0.1:1/closed',
      `http://127.0.0.1:1/${'p'.repeat(9000)}`,
      'http://127.0.0.1:1/x?y=1#frag',
      'http://127.0.0.1:1/nul\u0000',
      'http://127.0.0.1:1/lone\ud800',
      '127.0.0.1:1/busi.Busi/TransOut',
      'topic://fuzz-topic',
      '',
    ];
    const URL_KEYS = new Set(['action', 'compensate', 'query_prepared', 'confirm', 'cancel', 'url']);
    const deep = (n: number): unknown => {
      let v: unknown = 'x';
      for (let i = 0; i < n; i++) v = [v];
      return v;
    };
    const weird = (): unknown =>
      pick<() => unknown>([
        () => 1e20,
        () => -1,
        () => 1.5,
        () => 2 ** 53 + 2,
        () => -1e300,
        () => 0,
        () => true,
        () => null,
        () => [],
        () => ({}),
        () => 'a\u0000b',
        () => '\ud800',
        () => '\udc00x',
        () => 'é✓😀',
        () => 'x'.repeat(Math.floor(r() * 200_000)),
        () => deep(1 + Math.floor(r() * 3000)),
        () => ({ a: deep(50) }),
        () => '{"orders":{"0":[1],"1":[0]}}',
        () => '{"orders":{"1":[1]}}',
        () => '{"orders":{"9":[0]},"concurrent":true}',
        () => Array.from({ length: 1 + Math.floor(r() * 1200) }, () => ({ action: pick(LOOPBACK_URLS) })),
        () => Object.fromEntries(Array.from({ length: Math.floor(r() * 40) }, (_, i) => [`x-h${i}`, 'v'])),
        () => ({ 'bad header': 'x', 'x-a': 'a\r\nb' }),
        () => pick(['saga', 'tcc', 'msg', 'xa', 'workflow', 'SAGA', '']),
        () => pick(['http', 'grpc', 'json-rpc', 'soap']),
      ])();
    /** Mutate a JSON value in place (a few times); URL fields only ever get another loopback URL. */
    const mutate = (v: unknown, depth = 0): unknown => {
      if (depth > 4 || r() < 0.3) return weird();
      if (Array.isArray(v)) {
        if (v.length > 0 && r() < 0.7) {
          const i = Math.floor(r() * v.length);
          v[i] = mutate(v[i], depth + 1);
        } else if (r() < 0.5) v.push(weird());
        else v.pop();
        return v;
      }
      if (v && typeof v === 'object') {
        const o = v as Record<string, unknown>;
        const keys = Object.keys(o);
        const k = keys.length > 0 ? pick(keys) : 'x';
        const roll = r();
        if (URL_KEYS.has(k)) o[k] = pick(LOOPBACK_URLS);
        else if (roll < 0.15) delete o[k];
        else if (roll < 0.25) o[k.toUpperCase()] = o[k];
        else if (roll < 0.35) o[`unknown_${Math.floor(r() * 10)}`] = weird();
        else o[k] = mutate(o[k], depth + 1);
        return o;
      }
      return weird();
    };

    const tccGid = gidFor('fuzz-tcc');
    assert.equal((await call('POST', `${dtx.api}/prepare`, { gid: tccGid, trans_type: 'tcc' })).status, 200);
    const transBody = (): Record<string, unknown> => {
      const gid = gidFor('fuzz');
      const type = pick(['saga', 'msg', 'tcc', 'xa']);
      const steps = Array.from({ length: 1 + Math.floor(r() * 3) }, () => ({
        action: pick(LOOPBACK_URLS),
        compensate: pick(LOOPBACK_URLS),
      }));
      return {
        ...sagaBody(busi, gid),
        trans_type: type,
        steps,
        payloads: steps.map(() => '{"amount":30}'),
        query_prepared: `${busi.url}/QueryPrepared`,
        wait_result: r() < 0.2,
        custom_data: pick(['', '{"concurrent":true,"orders":{"1":[0]}}', '{"delay":0}']),
        branch_headers: { 'x-fuzz': '1' },
        rollback_reason: 'fuzz',
      };
    };
    const branchBody = (): Record<string, unknown> => ({
      gid: pick([tccGid, gidFor('fuzz-none')]),
      trans_type: pick(['tcc', 'xa']),
      branch_id: `b${Math.floor(r() * 50)}`,
      confirm: pick(LOOPBACK_URLS),
      cancel: pick(LOOPBACK_URLS),
      url: pick(LOOPBACK_URLS),
      data: 'payload \u0000 bytes may hold anything',
    });
    const bodyRoutes: [string, () => unknown][] = [
      ['prepare', transBody],
      ['submit', transBody],
      ['abort', transBody],
      ['prepareWorkflow', transBody],
      ['forceStop', () => ({ gid: pick([tccGid, gidFor('fuzz-none')]) })],
      ['resetNextCronTime', () => ({ gid: pick([tccGid, gidFor('fuzz-none')]) })],
      ['registerBranch', branchBody],
      ['registerXaBranch', branchBody],
      ['registerTccBranch', branchBody],
    ];
    const rpcMethods: [string, () => unknown][] = [
      ['newGid', () => ({})],
      ['prepare', transBody],
      ['submit', transBody],
      ['abort', transBody],
      ['registerBranch', branchBody],
      ['nope', () => ({})],
    ];
    const queryRoutes: [string, string[]][] = [
      ['query', ['gid']],
      ['all', ['gid', 'position', 'limit', 'status', 'transType', 'createTimeStart', 'createTimeEnd']],
      ['resetCronTime', ['timeout', 'limit']],
      ['subscribe', ['topic', 'url', 'remark']],
      ['unsubscribe', ['topic', 'url']],
      ['scanKV', ['cat', 'position', 'limit']],
      ['queryKV', ['cat', 'key']],
      ['version', []],
      ['newGid', []],
    ];
    const queryValue = (key: string): string => {
      if (key === 'url') return pick(LOOPBACK_URLS.filter((u) => u.startsWith('http')));
      return pick<() => string>([
        () => String(Math.floor(r() * 200)),
        () => pick(['1e20', '1e14', '1e24', '-1', '0', '1.5', 'NaN', 'Infinity', '100000000000000000000000']),
        () => pick(['topics', 'fuzz-topic', tccGid, 'succeed', 'saga']),
        () => 'a\u0000b',
        () => '\ud800',
        () => 't'.repeat(Math.floor(r() * 300)),
        () => '%zz%',
        () => '',
      ])();
    };
    const enc = (s: string) => {
      try {
        return encodeURIComponent(s);
      } catch {
        return '%ED%A0%80'; // a lone surrogate's (invalid) UTF-8
      }
    };

    /** One random request: method, URL, body (string or bytes) or undefined. */
    const next = (): [string, string, string | Buffer | undefined] => {
      const kind = r();
      if (kind < 0.45) {
        const [route, make] = pick(bodyRoutes);
        const v = make();
        for (let i = Math.floor(r() * 3); i > 0; i--) mutate(v);
        let text = JSON.stringify(v);
        if (r() < 0.1) text = text.slice(0, Math.floor(r() * text.length)); // truncated
        if (r() < 0.05) text = text.replace('"gid":', '"gid":"dup","gid":'); // duplicated key
        if (r() < 0.05) {
          const b = Buffer.from(text); // a flipped byte: the guarded caller covers a URL it may hit
          if (b.length > 0) b[Math.floor(r() * b.length)] = Math.floor(r() * 256);
          return ['POST', `${dtx.api}/${route}`, b];
        }
        return ['POST', `${dtx.api}/${route}`, text];
      }
      if (kind < 0.65) {
        const [route, keys] = pick(queryRoutes);
        const parts: string[] = [];
        for (const k of keys) if (r() < 0.6) parts.push(`${k}=${enc(queryValue(k))}`);
        if (keys.length > 0 && r() < 0.2) parts.push(`${pick(keys)}=${enc(queryValue(pick(keys)))}`); // repeated
        return ['GET', `${dtx.api}/${route}?${parts.join('&')}`, undefined];
      }
      if (kind < 0.85) {
        const [method, make] = pick(rpcMethods);
        const v: Record<string, unknown> = { jsonrpc: '2.0', id: `f${Math.floor(r() * 1e6)}`, method, params: make() };
        for (let i = Math.floor(r() * 3); i > 0; i--) mutate(r() < 0.7 ? v.params : v);
        return ['POST', `${dtx.base}/api/json-rpc`, JSON.stringify(v)];
      }
      if (kind < 0.9) return ['DELETE', `${dtx.api}/topic/${enc(queryValue('topic'))}`, undefined];
      if (kind < 0.95) {
        const bytes = Buffer.from(Array.from({ length: Math.floor(r() * 2000) }, () => Math.floor(r() * 256)));
        return [
          'POST',
          `${pick([dtx.api, `${dtx.base}/api`])}/${pick(['submit', 'prepare', 'json-rpc', 'registerBranch'])}`,
          bytes,
        ];
      }
      return [pick(['GET', 'POST', 'PUT']), `${dtx.api}/${enc(queryValue('x'))}`, undefined];
    };

    const started = Date.now();
    let sent = 0;
    const statuses = new Map<number, number>();
    while (sent < ITERATIONS && Date.now() - started < BUDGET_MS) {
      const batch = Array.from({ length: 8 }, next);
      const replies = await Promise.all(
        batch.map(async ([method, url, body]) => {
          const reply = await call(method, url, body);
          return { method, url, body, reply };
        }),
      );
      for (const { method, url, body, reply } of replies) {
        sent++;
        statuses.set(reply.status, (statuses.get(reply.status) ?? 0) + 1);
        const what = () =>
          `seed ${seed}: ${method} ${url.slice(0, 300)} ${String(body ?? '').slice(0, 300)} → ${reply.status} ${reply.text.slice(0, 300)}`;
        assert.ok(reply.status < 500, what());
        if (url.endsWith('/api/json-rpc') && reply.status === 200 && reply.json?.error) {
          assert.ok(!/is not a function|Cannot read prop|undefined/.test(reply.json.error.message), what());
        }
      }
    }
    console.log(`http-fuzz: ${sent} requests in ${Date.now() - started} ms; statuses ${JSON.stringify([...statuses])}`);
    assert.ok(sent >= 1000, `at least 1000 requests were sent (${sent})`);
    assert.deepEqual(caller.refused, [], 'no branch call to a non-loopback host was attempted');
  });

  it('still serving: a saga succeeds', async () => {
    const gid = gidFor('fuzz-after');
    const r = await call('POST', `${dtx.api}/submit`, sagaBody(busi, gid, { wait_result: true }));
    assert.equal(r.status, 200, r.text);
    assert.equal(await dtx.status(gid), 'succeed');
    assert.equal((await call('GET', `${dtx.base}/api/ping`)).status, 200);
  });
});
