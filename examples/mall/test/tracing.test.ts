/**
 * One trace across the mall and dtx: every service exports its spans to a real OTLP/HTTP collector, and the
 * W3C trace context goes from the order api through dtx to the saga's branches and the rpcs they call.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type Mall, post, startMall, waitFor } from './support/mall.js';
import { type Span, startCollector } from './support/otlp-collector.js';

let collector: Awaited<ReturnType<typeof startCollector>>;
before(async () => {
  collector = await startCollector();
});
after(async () => collector?.close());

/** The chain of `span` up to its root, as `service name` strings (root last). */
function ancestry(spans: Span[], span: Span): string[] {
  const byId = new Map(spans.map((s) => [s.spanId, s]));
  const chain: string[] = [];
  for (let s: Span | undefined = span; s !== undefined; s = byId.get(s.parentSpanId)) {
    chain.push(`${s.service} ${s.name}`);
    if (s.parentSpanId === '') break;
  }
  return chain;
}

async function orderTrace(mall: Mall): Promise<{ trace: Span[]; create: Span; decr: Span }> {
  const mark = collector.spans.length;
  const fresh = () => collector.spans.slice(mark);
  const { uid, auth } = await mall.login();
  const p = await post(
    `${mall.api('product')}/api/product/create`,
    { name: 'p', desc: '', stock: 1, amount: 1, status: 1 },
    auth,
  );
  const r = await post(`${mall.api('order')}/api/order/create`, { uid, pid: p.json.id, amount: 1, status: 0 }, auth);
  assert.equal(r.status, 200, r.text);
  const api = await waitFor(
    async () => fresh().find((s) => s.service === 'order.api' && s.name === '/api/order/create'),
    'the order api span',
  );
  const inTrace = () => fresh().filter((s) => s.traceId === api.traceId);
  const [create, decr] = await waitFor(
    async () => {
      const c = inTrace().find((s) => s.service === 'order.rpc' && s.name === '/order.Order/Create');
      const d = inTrace().find((s) => s.service === 'product.rpc' && s.name === '/product.Product/DecrStock');
      const user = inTrace().find((s) => s.service === 'user.rpc' && s.name === '/user.User/UserInfo');
      // Complete once each branch's chain of parents reaches the api span (exporters send in batches).
      const complete = (x: Span | undefined) =>
        x !== undefined && ancestry(inTrace(), x).at(-1) === `order.api ${api.name}`;
      return complete(c) && complete(d) && user ? [c!, d!] : undefined;
    },
    'the branch spans in the api request trace, with all their parents',
    20_000,
  );
  assert.equal(api.parentSpanId, '', 'the api request starts the trace');
  return { trace: inTrace(), create: create!, decr: decr! };
}

test('with dtx exporting too: api → dtx submit → dtx branch call → branch rpc → the rpc it calls, one trace', async (t) => {
  const mall = await startMall({
    services: { Telemetry: { Endpoint: collector.url } },
    dtx: { Tracing: { Exporter: 'otlp', Endpoint: collector.url, ServiceName: 'dtx', SampleRatio: 1 } },
  });
  t.after(() => mall.stop());
  const { trace, create, decr } = await orderTrace(mall);
  for (const branch of [create, decr]) {
    const chain = ancestry(trace, branch);
    assert.equal(chain.at(-1), 'order.api /api/order/create', chain.join(' ← '));
    assert.ok(
      chain.some((s) => s.startsWith('dtx ')),
      `a dtx span between the api and the branch: ${chain.join(' ← ')}`,
    );
  }
  const userInfo = trace.find(
    (s) =>
      s.service === 'user.rpc' &&
      s.name === '/user.User/UserInfo' &&
      ancestry(trace, s).includes('order.rpc /order.Order/Create'),
  );
  assert.ok(userInfo, 'order.Create called user.rpc inside the same trace');
});

test('with dtx not exporting: the context still crosses dtx, so the branch is a child of the api request', async (t) => {
  const mall = await startMall({ services: { Telemetry: { Endpoint: collector.url } } });
  t.after(() => mall.stop());
  const { trace, create } = await orderTrace(mall);
  const chain = ancestry(trace, create);
  assert.equal(chain.at(-1), 'order.api /api/order/create', chain.join(' ← '));
  assert.ok(!chain.some((s) => s.startsWith('dtx ')), chain.join(' ← '));
});
