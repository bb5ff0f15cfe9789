import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { DEFAULT_CONFIG } from '../src/config.js';
import { Busi } from './support/busi.js';
import { startTestDtx, type TestDtx } from './support/dtx.js';
import { DtmGrpcClient } from './support/grpc-busi.js';
import { call } from './support/http.js';
import { waitFor } from './support/poll.js';
import { metricNames, parseSamples, sampleKey } from './support/prom.js';
import { gidFor, msgBody, sagaBody } from './support/trans.js';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));

/** Every metric name a PromQL expression mentions (identifiers followed by `{`, `[`, `)` or an operator). */
function namesIn(expr: string): string[] {
  const noStrings = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  const noGroups = noStrings.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '');
  return [...noGroups.matchAll(/\b(dtm_[a-z0-9_]+|dtx_[a-z0-9_]+|process_[a-z0-9_]+|nodejs_[a-z0-9_]+)\b/g)].map(
    (m) => m[1]!,
  );
}

// A scripted scenario against a real dtx (SQLite) and real loopback HTTP branches, then exact samples of
// `GET /api/metrics`; the Grafana dashboard and the Prometheus rules are checked against the same scrape.
describe('metrics: GET /api/metrics after a scripted scenario', () => {
  let dtx: TestDtx;
  let busi: Busi;
  let text = '';
  let s: Map<string, number>;
  const release: (() => void)[] = [];
  const gids = {
    ok: gidFor('m-ok'),
    rollback: gidFor('m-rollback'),
    error: gidFor('m-error'),
    timeout: gidFor('m-timeout'),
    prepared: gidFor('m-prepared'),
  };

  before(async () => {
    busi = await new Busi().start();
    dtx = await startTestDtx({
      AlertWebHook: `${busi.url}/Alert`,
      AlertRetryLimit: 0,
      // stuck at the first failed attempt: 3 and 4 each send a stuck alert, then a recovered one
      Stuck: { FailedAttempts: 1, UnfinishedAfter: 0 },
      // read once: the gauges below are those of the first scrape, and the second must show the cache
      Metrics: { Enabled: true, UnfinishedRefreshInterval: 3600 },
    });
    const submit = (body: Record<string, unknown>) => call('POST', `${dtx.api}/submit`, body);
    // 1. succeeds
    assert.equal((await submit(sagaBody(busi, gids.ok, { wait_result: true }))).status, 200);
    // 2. rolls back: the second action answers FAILURE, both compensations run
    busi.setOnce('TransIn', 'FAILURE');
    assert.equal((await submit(sagaBody(busi, gids.rollback, { wait_result: true }))).status, 409);
    // 3. the first action answers HTTP 500 once; the cron's retry finishes it
    busi.answer = (c) =>
      c.query.gid === gids.error && c.name === 'TransOut' ? { status: 500, body: 'boom' } : undefined;
    assert.equal((await submit(sagaBody(busi, gids.error, { wait_result: true }))).status, 425);
    busi.answer = undefined;
    await dtx.cronFor(gids.error, 60);
    // 4. the first action does not answer within its 1 s request_timeout once; the cron's retry finishes it
    let hung = false;
    busi.onCall = async (c) => {
      if (c.query.gid !== gids.timeout || c.name !== 'TransOut' || hung) return;
      hung = true;
      await new Promise<void>((r) => release.push(r));
    };
    assert.equal((await submit(sagaBody(busi, gids.timeout, { wait_result: true, request_timeout: 1 }))).status, 425);
    for (const r of release.splice(0)) r();
    busi.onCall = undefined;
    await dtx.cronFor(gids.timeout, 60);
    // 5. one msg left prepared (unfinished), one gRPC call, one auth failure reported by the hook
    assert.equal((await call('POST', `${dtx.api}/prepare`, msgBody(busi, gids.prepared))).status, 200);
    const grpc = new DtmGrpcClient(dtx.grpc);
    await grpc.call('NewGid', {});
    grpc.close();
    dtx.server.metrics!.authFailure('http');
    // alert deliveries are fire-and-forget: stuck, then recovered, for 3 and 4
    await waitFor('four alerts delivered', () => busi.calls.filter((c) => c.name === 'Alert').length === 4);
    await waitFor('alert deliveries counted', async () => {
      const r = await call('GET', `${dtx.base}/api/metrics`);
      return parseSamples(String(r.text)).get(sampleKey('dtx_alert_deliveries_total', { result: 'ok' })) === 4;
    });
    const r = await fetch(`${dtx.base}/api/metrics`);
    assert.equal(r.status, 200);
    assert.match(String(r.headers.get('content-type')), /^text\/plain; version=0\.0\.4/);
    text = await r.text();
    s = parseSamples(text);
  });

  after(async () => {
    for (const r of release) r();
    await dtx?.stop();
    await busi?.stop();
  });

  const v = (name: string, labels: Record<string, string> = {}) => s.get(sampleKey(name, labels));

  it("DTM's server metrics: info, requests by bounded route name, durations", () => {
    const info = [...s.keys()].filter((k) => k.startsWith('dtm_server_info{'));
    assert.equal(info.length, 1);
    assert.match(info[0]!, /gin_version="fastify\/\d+\.\d+\.\d+",grpc_version="grpc-js\/\d+\.\d+\.\d+"/);
    assert.equal(s.get(info[0]!), 1);
    assert.equal(v('dtm_server_process_total', { type: 'http', api: 'submit', status: 'ok' }), 1);
    assert.equal(v('dtm_server_process_total', { type: 'http', api: 'submit', status: 'fail' }), 3);
    assert.equal(v('dtm_server_process_total', { type: 'http', api: 'prepare', status: 'ok' }), 1);
    assert.equal(v('dtm_server_process_total', { type: 'grpc', api: 'newgid', status: 'ok' }), 1);
    assert.equal(v('dtm_server_response_duration_count', { type: 'http', api: 'submit' }), 4);
    assert.equal(v('dtm_server_response_duration_count', { type: 'grpc', api: 'newgid' }), 1);
    // the route's name, never the query string (DTM's `query?gid=...`)
    for (const k of s.keys()) {
      if (k.startsWith('dtm_server_process_total')) assert.doesNotMatch(k, /api="[^"]*[?=/]/, k);
    }
  });

  it("DTM's transaction and branch metrics", () => {
    assert.equal(v('dtm_transaction_process_total', { model: 'saga', status: 'ok' }), 1);
    assert.equal(v('dtm_transaction_process_total', { model: 'saga', status: 'fail' }), 3);
    // passes: one each for the first two, two each (submit, cron) for the others
    assert.equal(v('dtm_transaction_handled_duration_count', { model: 'saga' }), 6);
    const b = (branchid: string, branchtype: string, status: string) =>
      v('dtm_branch_process_total', { model: 'saga', branchid, branchtype, status });
    assert.equal(b('01', 'action', 'ok'), 4);
    assert.equal(b('01', 'action', 'fail'), 2);
    assert.equal(b('02', 'action', 'ok'), 3);
    assert.equal(b('02', 'action', 'fail'), 1);
    assert.equal(b('02', 'compensate', 'ok'), 1);
    assert.equal(b('01', 'compensate', 'ok'), 1);
  });

  it('dtx branch metrics: call durations by trans_type/op/protocol, failures by reason', () => {
    const d = (op: string) => v('dtx_branch_call_duration_seconds_count', { trans_type: 'saga', op, protocol: 'http' });
    assert.equal(d('action'), 10);
    assert.equal(d('compensate'), 2);
    const f = (reason: string) => v('dtx_branch_failures_total', { trans_type: 'saga', op: 'action', reason });
    assert.equal(f('failure'), 1);
    assert.equal(f('error'), 1);
    assert.equal(f('timeout'), 1);
    assert.equal(f('ongoing'), undefined);
  });

  it('dtx transaction metrics: finished by outcome, retries, unfinished, oldest age, cron lag, stuck', () => {
    assert.equal(v('dtx_transactions_finished_total', { trans_type: 'saga', outcome: 'succeed' }), 3);
    assert.equal(v('dtx_transactions_finished_total', { trans_type: 'saga', outcome: 'failed' }), 1);
    assert.equal(v('dtx_retries_total', { trans_type: 'saga' }), 2);
    assert.equal(v('dtx_unfinished_transactions', { trans_type: 'msg', status: 'prepared' }), 1);
    assert.equal(
      [...s.keys()].filter((k) => k.startsWith('dtx_unfinished_transactions{')).length,
      1,
      'only the prepared msg is unfinished',
    );
    assert.ok(v('dtx_oldest_unfinished_age_seconds')! >= 0);
    assert.equal(v('dtx_cron_lag_seconds'), 0, 'the prepared msg is not due yet');
    // the service's own counts: 3 and 4 were stuck and have ended, the prepared msg has failed no attempt
    assert.equal(v('dtx_stuck_transactions', { reason: 'attempts' }), 0);
    assert.equal(v('dtx_stuck_transactions', { reason: 'age' }), 0);
  });

  it('dtx store, alert and auth metrics', () => {
    // saveNew: four sagas and the msg
    assert.equal(v('dtx_store_write_duration_seconds_count', { op: 'saveNew' }), 5);
    // changeStatus: ok 1, rollback 2 (aborting, failed), error 1, timeout 1
    assert.equal(v('dtx_store_write_duration_seconds_count', { op: 'changeStatus' }), 5);
    const batches = v('dtx_store_batch_size_count')!;
    assert.ok(batches > 0);
    assert.ok(v('dtx_store_batch_size_sum')! >= batches, 'a batch carries at least one write');
    assert.equal(v('dtx_alert_deliveries_total', { result: 'ok' }), 4);
    assert.equal(v('dtx_alert_deliveries_total', { result: 'fail' }), undefined);
    assert.equal(v('dtx_auth_failures_total', { transport: 'http' }), 1);
  });

  it('standard process metrics are exposed', () => {
    assert.ok(v('process_cpu_user_seconds_total')! > 0);
    assert.ok(v('nodejs_heap_size_used_bytes')! > 0);
  });

  it('the unfinished gauges are cached between scrapes', async () => {
    await call('POST', `${dtx.api}/prepare`, msgBody(busi, gidFor('m-prepared-2')));
    const again = parseSamples(String((await call('GET', `${dtx.base}/api/metrics`)).text));
    assert.equal(again.get(sampleKey('dtx_unfinished_transactions', { trans_type: 'msg', status: 'prepared' })), 1);
  });

  it('the Grafana dashboard and the Prometheus alert rules name only metrics this scrape exposes', () => {
    const exposed = metricNames(text);
    const dashboard = JSON.parse(readFileSync(`${ROOT}ops/grafana/dtx-dashboard.json`, 'utf8')) as {
      panels: { title: string; targets?: { expr: string }[] }[];
    };
    const exprs: [string, string][] = [];
    for (const p of dashboard.panels) for (const t of p.targets ?? []) exprs.push([`panel ${p.title}`, t.expr]);
    const rules = parseYaml(readFileSync(`${ROOT}ops/prometheus/dtx-alerts.yml`, 'utf8')) as {
      groups: { name: string; rules: { alert: string; expr: string; for?: string }[] }[];
    };
    const alerts = rules.groups.flatMap((g) => g.rules);
    for (const r of alerts) exprs.push([`alert ${r.alert}`, r.expr]);
    assert.ok(dashboard.panels.length >= 8, 'a dashboard with panels');
    for (const want of ['DtxStuckTransactions', 'DtxBranchFailureRate', 'DtxCronLag', 'DtxUnfinishedGrowing']) {
      assert.ok(
        alerts.some((a) => a.alert === want),
        `alert ${want}`,
      );
    }
    for (const [where, expr] of exprs) {
      const names = namesIn(expr);
      assert.ok(names.length > 0, `${where}: names a metric: ${expr}`);
      for (const n of names) assert.ok(exposed.has(n), `${where}: ${n} is not in /api/metrics`);
    }
  });
});

describe('metrics: off with Metrics.Enabled false', () => {
  it('/api/metrics answers 404 and the server works', async () => {
    const busi = await new Busi().start();
    const dtx = await startTestDtx({ Metrics: { Enabled: false, UnfinishedRefreshInterval: 5 } });
    try {
      assert.equal((await call('GET', `${dtx.base}/api/metrics`)).status, 404);
      const gid = gidFor('m-off');
      assert.equal((await call('POST', `${dtx.api}/submit`, sagaBody(busi, gid, { wait_result: true }))).status, 200);
      assert.equal(dtx.server.metrics, undefined);
    } finally {
      await dtx.stop();
      await busi.stop();
    }
  });
});

// The wiring of startServer: dtx_stuck_transactions from the store's stuck rows, dtx_auth_failures_total from the
// token check of a real request.
describe('metrics: stuck transactions and auth failures as a running server counts them', () => {
  const ADMIN = 'admin-token-0123456789abcdef';
  const auth = { authorization: `Bearer ${ADMIN}` };
  let dtx: TestDtx;
  let busi: Busi;

  before(async () => {
    busi = await new Busi().start();
    dtx = await startTestDtx({
      Stuck: { FailedAttempts: 1, UnfinishedAfter: 0 },
      Auth: { ...DEFAULT_CONFIG.Auth, AdminToken: ADMIN },
    });
  });
  after(async () => {
    await dtx?.stop();
    await busi?.stop();
  });

  it('counts a saga whose branch keeps failing as stuck, and a request without a token as an auth failure', async () => {
    const gid = gidFor('m-stuck');
    busi.answer = (c) => (c.query.gid === gid ? { status: 500, body: 'down' } : undefined);
    const r = await call('POST', `${dtx.api}/submit`, sagaBody(busi, gid, { wait_result: true }), auth);
    assert.equal(r.status, 425, r.text);
    assert.equal((await call('GET', `${dtx.api}/all`)).status, 401);
    const scrape = await call('GET', `${dtx.base}/api/metrics`, undefined, auth);
    assert.equal(scrape.status, 200, scrape.text);
    const m = parseSamples(String(scrape.text));
    assert.equal(m.get(sampleKey('dtx_stuck_transactions', { reason: 'attempts' })), 1);
    assert.equal(m.get(sampleKey('dtx_auth_failures_total', { transport: 'http' })), 1);
    const stuck = await call('GET', `${dtx.api}/stuck`, undefined, auth);
    assert.deepEqual(
      stuck.json.transactions.map((t: { gid: string }) => t.gid),
      [gid],
    );
  });
});
