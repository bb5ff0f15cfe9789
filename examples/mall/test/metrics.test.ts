/**
 * The Prometheus metrics of the services (tutorial chapter 8): go-zero v1.3.2's names, labels and buckets, so the
 * tutorial's Grafana queries work unchanged, counted over real requests, plus the process's default metrics.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { ServiceName } from '../src/services.js';
import { type Mall, post, startMall } from './support/mall.js';

const BUCKETS = ['5', '10', '25', '50', '100', '250', '500', '1000', '+Inf'];

let mall: Mall;
let uid: number;
let auth: Record<string, string>;
const mobile = `1${String(process.pid).slice(-4).padStart(4, '0')}${String(Date.now()).slice(-6)}`;

before(async () => {
  mall = await startMall({ metrics: true });
  // register + login (200), a second login (200), a login with the wrong password (400), a 404.
  ({ uid, auth } = await mall.login(mobile));
  const ok = await post(`${mall.api('user')}/api/user/login`, { mobile, password: '123456' });
  assert.equal(ok.status, 200, ok.text);
  const bad = await post(`${mall.api('user')}/api/user/login`, { mobile, password: 'wrong' });
  assert.equal(bad.status, 400, bad.text);
  assert.equal((await post(`${mall.api('user')}/api/user/no/such/route`, {})).status, 404);
  // A product (200), one without a token (401), and an order through the saga (200).
  const p = await post(
    `${mall.api('product')}/api/product/create`,
    { name: 'phone', desc: 'a phone', stock: 1, amount: 100, status: 1 },
    auth,
  );
  assert.equal(p.status, 200, p.text);
  assert.equal((await post(`${mall.api('product')}/api/product/detail`, { id: p.json.id })).status, 401);
  const o = await post(`${mall.api('order')}/api/order/create`, { uid, pid: p.json.id, amount: 100, status: 0 }, auth);
  assert.equal(o.status, 200, o.text);
});
after(async () => mall?.stop());

/** The exposition of a service's metrics URL: its text and its samples, `name{labels}` → value. */
async function scrape(name: ServiceName): Promise<{ text: string; samples: Map<string, number> }> {
  const res = await fetch(mall.metricsUrl(name));
  assert.equal(res.status, 200, name);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(\S+?(?:\{.*\})?) (\S+)$/.exec(line);
    assert.ok(m, `a sample line: ${line}`);
    samples.set(m[1]!, Number(m[2]));
  }
  return { text, samples };
}

const sample = (samples: Map<string, number>, key: string): number => {
  const v = samples.get(key);
  assert.ok(
    v !== undefined,
    `no sample ${key} in\n${[...samples.keys()].filter((k) => !k.startsWith('process_') && !k.startsWith('nodejs_')).join('\n')}`,
  );
  return v;
};

/** Asserts a histogram series has go-zero's buckets, cumulative, with `+Inf` = `_count` = `count`. */
function assertHistogram(samples: Map<string, number>, metric: string, label: string, count: number) {
  const values = BUCKETS.map((le) => sample(samples, `${metric}_bucket{le="${le}",${label}}`));
  for (let i = 1; i < values.length; i++) assert.ok(values[i]! >= values[i - 1]!, `${metric} buckets are cumulative`);
  assert.equal(values.at(-1), count, `${metric}{${label}} +Inf`);
  assert.equal(sample(samples, `${metric}_count{${label}}`), count, `${metric}{${label}} count`);
  assert.ok(sample(samples, `${metric}_sum{${label}}`) >= 0);
  const les = [...samples.keys()]
    .filter((k) => k.startsWith(`${metric}_bucket{`) && k.endsWith(`,${label}}`))
    .map((k) => /le="([^"]+)"/.exec(k)?.[1]);
  assert.deepEqual(les, BUCKETS, `${metric} has exactly go-zero's buckets`);
}

test('user-api: http_server_requests_* per route path, with the HTTP status as code', async () => {
  const { text, samples } = await scrape('user-api');
  assert.match(text, /^# TYPE http_server_requests_duration_ms histogram$/m);
  assert.match(text, /^# TYPE http_server_requests_code_total counter$/m);
  assertHistogram(samples, 'http_server_requests_duration_ms', 'path="/api/user/login"', 3);
  assert.ok(samples.has('http_server_requests_duration_ms_bucket{le="5",path="/api/user/login"}'));
  assert.equal(sample(samples, 'http_server_requests_code_total{path="/api/user/login",code="200"}'), 2);
  assert.equal(sample(samples, 'http_server_requests_code_total{path="/api/user/login",code="400"}'), 1);
  assert.equal(sample(samples, 'http_server_requests_code_total{path="/api/user/register",code="200"}'), 1);
  assertHistogram(samples, 'http_server_requests_duration_ms', 'path="/api/user/register"', 1);
  // The router's 404 is not a route: not counted, and no URL becomes a label value.
  assert.doesNotMatch(text, /no\/such\/route/);
  assert.ok(![...samples.keys()].some((k) => k.includes('code="404"')));
});

test('user-api: rpc_client_requests_* per full method, with the gRPC code (100 included)', async () => {
  const { text, samples } = await scrape('user-api');
  assert.match(text, /^# TYPE rpc_client_requests_duration_ms histogram$/m);
  assert.match(text, /^# TYPE rpc_client_requests_code_total counter$/m);
  assert.equal(sample(samples, 'rpc_client_requests_code_total{method="/user.User/Login",code="0"}'), 2);
  assert.equal(sample(samples, 'rpc_client_requests_code_total{method="/user.User/Login",code="100"}'), 1);
  assert.equal(sample(samples, 'rpc_client_requests_code_total{method="/user.User/Register",code="0"}'), 1);
  assertHistogram(samples, 'rpc_client_requests_duration_ms', 'method="/user.User/Login"', 3);
});

test('user-rpc: rpc_server_requests_* per full method, with the numeric gRPC code', async () => {
  const { text, samples } = await scrape('user-rpc');
  assert.match(text, /^# TYPE rpc_server_requests_duration_ms histogram$/m);
  assert.match(text, /^# TYPE rpc_server_requests_code_total counter$/m);
  assert.equal(sample(samples, 'rpc_server_requests_code_total{method="/user.User/Login",code="0"}'), 2);
  assert.equal(sample(samples, 'rpc_server_requests_code_total{method="/user.User/Login",code="100"}'), 1);
  assertHistogram(samples, 'rpc_server_requests_duration_ms', 'method="/user.User/Login"', 3);
  assert.equal(sample(samples, 'rpc_server_requests_code_total{method="/user.User/Register",code="0"}'), 1);
  // order.Create (the saga's first step) asked the user rpc whether the user exists.
  assert.equal(sample(samples, 'rpc_server_requests_code_total{method="/user.User/UserInfo",code="0"}'), 1);
  // A server records no http metrics.
  assert.doesNotMatch(text, /^http_server_requests/m);
});

test('order-rpc and product-rpc: the saga branches the coordinator called are measured as any rpc', async () => {
  const order = await scrape('order-rpc');
  assertHistogram(order.samples, 'rpc_server_requests_duration_ms', 'method="/order.Order/Create"', 1);
  assert.equal(sample(order.samples, 'rpc_server_requests_duration_ms_count{method="/order.Order/Create"}'), 1);
  assert.equal(sample(order.samples, 'rpc_server_requests_code_total{method="/order.Order/Create",code="0"}'), 1);
  assert.equal(sample(order.samples, 'rpc_server_requests_code_total{method="/order.Order/DetailByGid",code="0"}'), 1);
  assert.equal(sample(order.samples, 'rpc_client_requests_code_total{method="/user.User/UserInfo",code="0"}'), 1);
  assert.ok(![...order.samples.keys()].some((k) => k.includes('CreateRevert')), 'nothing was compensated');
  const product = await scrape('product-rpc');
  assertHistogram(product.samples, 'rpc_server_requests_duration_ms', 'method="/product.Product/DecrStock"', 1);
  assert.equal(sample(product.samples, 'rpc_server_requests_code_total{method="/product.Product/Create",code="0"}'), 1);
});

test("product-api and order-api: a 401 is counted as the route's code 401", async () => {
  const product = await scrape('product-api');
  assert.equal(sample(product.samples, 'http_server_requests_code_total{path="/api/product/create",code="200"}'), 1);
  assert.equal(sample(product.samples, 'http_server_requests_code_total{path="/api/product/detail",code="401"}'), 1);
  assert.ok(!product.samples.has('rpc_client_requests_code_total{method="/product.Product/Detail",code="0"}'));
  const order = await scrape('order-api');
  assert.equal(sample(order.samples, 'http_server_requests_code_total{path="/api/order/create",code="200"}'), 1);
  assertHistogram(order.samples, 'http_server_requests_duration_ms', 'path="/api/order/create"', 1);
});

test('every service serves the process default metrics, and only GET of its path', async () => {
  for (const name of ['user-api', 'user-rpc', 'order-rpc', 'pay-api'] as const) {
    const { text, samples } = await scrape(name);
    assert.match(text, /^# TYPE process_cpu_user_seconds_total counter$/m, name);
    assert.ok(sample(samples, 'process_cpu_user_seconds_total') > 0, name);
    assert.ok(sample(samples, 'process_resident_memory_bytes') > 0, name);
    assert.ok(sample(samples, 'nodejs_heap_size_used_bytes') > 0, name);
  }
  const url = mall.metricsUrl('user-api');
  assert.equal((await fetch(url, { method: 'POST' })).status, 404);
  assert.equal((await fetch(url.replace(/\/metrics$/, '/other'))).status, 404);
  assert.equal((await fetch(`${url}?x=1`)).status, 200);
});
