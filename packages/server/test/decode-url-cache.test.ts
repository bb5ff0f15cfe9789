import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeTrans } from '../src/api/decode.js';
import { UrlPolicy } from '../src/branch/url-policy.js';
import { InputError } from '../src/core/errors.js';

// decodeTrans keeps the checked form of http(s) branch URLs it has seen (a submit's URLs repeat from one to the
// next): a URL seen before must still decode to the same form, and every other check must still apply to it.

function saga(action: string, compensate: string, protocol?: string): unknown {
  return {
    gid: 'cache-gid',
    trans_type: 'saga',
    ...(protocol ? { protocol } : {}),
    steps: [{ action, compensate }],
    payloads: ['{}'],
  };
}

function fieldOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof InputError, `expected an InputError, got ${String(err)}`);
    return err.field;
  }
  assert.fail('expected the body to be refused');
}

describe('decodeTrans: branch URLs seen before', () => {
  it('decode to the same normalized form the second time', () => {
    const url = 'http://127.0.0.1:1/a b/é?x=1';
    const first = decodeTrans(saga(url, url)).steps[0];
    const again = decodeTrans(saga(url, url)).steps[0];
    assert.equal(first?.action, 'http://127.0.0.1:1/a%20b/%C3%A9?x=1');
    assert.deepEqual(again, first);
  });

  it('are still refused by the policy, naming the field they are in', () => {
    const url = 'http://127.0.0.1:1/ok';
    decodeTrans(saga(url, url));
    const deny = new UrlPolicy([], ['127.0.0.0/8']);
    const limits = { maxSteps: 1000, maxBranchHeaders: 32, maxBranchHeadersBytes: 8192, urlPolicy: deny };
    assert.equal(
      fieldOf(() => decodeTrans(saga('http://127.0.0.2:1/ok', url), { escapeGid: true, limits })),
      'steps[0].action',
    );
    assert.equal(
      fieldOf(() => decodeTrans(saga('http://[::1]:1/ok', url), { escapeGid: true, limits })),
      'steps[0].compensate',
    );
  });

  it('a refused URL stays refused and names its field each time', () => {
    const bad = 'http://127.0.0.1:1/x#frag';
    assert.equal(
      fieldOf(() => decodeTrans(saga(bad, 'http://127.0.0.1:1/c'))),
      'steps[0].action',
    );
    assert.equal(
      fieldOf(() => decodeTrans(saga('http://127.0.0.1:1/c', bad))),
      'steps[0].compensate',
    );
  });

  it('a URL longer than the cached ones and more URLs than the cache holds still decode', () => {
    const long = `http://127.0.0.1:1/${'a'.repeat(600)}`;
    assert.equal(decodeTrans(saga(long, long)).steps[0]?.action, long);
    for (let i = 0; i < 2100; i++) {
      const u = `http://127.0.0.1:1/n${i}`;
      assert.equal(decodeTrans(saga(u, u)).steps[0]?.compensate, u);
    }
    assert.equal(decodeTrans(saga('http://127.0.0.1:1/n0', long)).steps[0]?.action, 'http://127.0.0.1:1/n0');
  });

  it('an http URL seen in an http transaction is accepted in a grpc one too, and a gRPC URL is not cached as http', () => {
    const url = 'http://127.0.0.1:1/both';
    decodeTrans(saga(url, url));
    assert.equal(decodeTrans(saga(url, url, 'grpc')).steps[0]?.action, url);
    const grpcUrl = '127.0.0.1:1/pkg.Svc/Method';
    assert.equal(decodeTrans(saga(grpcUrl, grpcUrl, 'grpc')).steps[0]?.action, grpcUrl);
    assert.equal(
      fieldOf(() => decodeTrans(saga(grpcUrl, url))),
      'steps[0].action',
    );
  });
});
