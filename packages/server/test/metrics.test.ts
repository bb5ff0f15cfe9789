import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { silentLogger } from '../src/observe/logger.js';
import { apiLabelOf, DtxMetrics, MAX_CHILDREN, OVERFLOW } from '../src/observe/metrics.js';
import { measuredStore } from '../src/store/measured-store.js';
import { MemoryStore } from '../src/store/memory/memory-store.js';
import { at, makeTrans } from './store-conformance.js';
import { parseSamples, sampleKey } from './support/prom.js';

/** What the metrics read the time from. */
type Clock = { now(): number };

/** A clock the test moves. */
function manualClock(start: number): Clock & { ms: number } {
  const c = { ms: start, now: () => c.ms };
  return c;
}

function metricsOn(clock: Clock, refreshSeconds = 5): DtxMetrics {
  return new DtxMetrics({
    clock,
    log: silentLogger,
    refreshSeconds,
    serverInfo: { gin_version: 'g', grpc_version: 'r' },
  });
}

describe('DtxMetrics', () => {
  it('store gauges: unfinished by type and status, oldest age and cron lag from a fake clock, cached', async () => {
    const clock = manualClock(at(100));
    const store = new MemoryStore();
    await store.saveNew(makeTrans('a', { status: 'submitted', createTime: at(10), nextCronTime: at(70) }), []);
    await store.saveNew(makeTrans('b', { status: 'submitted', createTime: at(40), nextCronTime: at(90) }), []);
    await store.saveNew(
      makeTrans('c', { transType: 'msg', status: 'prepared', createTime: at(50), nextCronTime: at(200) }),
      [],
    );
    await store.saveNew(makeTrans('d', { status: 'succeed', createTime: at(1), nextCronTime: at(1) }), []);
    const m = metricsOn(clock, 5);
    m.setStore(store);
    const s = parseSamples(await m.text());
    assert.equal(s.get(sampleKey('dtx_unfinished_transactions', { trans_type: 'saga', status: 'submitted' })), 2);
    assert.equal(s.get(sampleKey('dtx_unfinished_transactions', { trans_type: 'msg', status: 'prepared' })), 1);
    assert.equal(s.get('dtx_oldest_unfinished_age_seconds'), 90);
    assert.equal(s.get('dtx_cron_lag_seconds'), 30, 'a has been due since at(70)');
    // within the refresh interval the cached counts stay; past it they are read again
    await store.changeStatus('a', 'submitted', 'succeed', {}, at(101));
    clock.ms = at(104);
    assert.equal(parseSamples(await m.text()).get('dtx_cron_lag_seconds'), 34, 'cached counts, current clock');
    clock.ms = at(106);
    const fresh = parseSamples(await m.text());
    assert.equal(fresh.get(sampleKey('dtx_unfinished_transactions', { trans_type: 'saga', status: 'submitted' })), 1);
    assert.equal(fresh.get('dtx_cron_lag_seconds'), 16, 'b has been due since at(90)');
    assert.equal(fresh.get('dtx_oldest_unfinished_age_seconds'), 66);
  });

  it('no store, no provider: gauges are 0 or absent, and a failing store keeps the last counts', async () => {
    const clock = manualClock(at(0));
    const m = metricsOn(clock, 1);
    let s = parseSamples(await m.text());
    assert.equal(s.get('dtx_cron_lag_seconds'), 0);
    assert.equal(s.get('dtx_oldest_unfinished_age_seconds'), 0);
    const store = new MemoryStore();
    await store.saveNew(makeTrans('a', { createTime: at(0), nextCronTime: at(0) }), []);
    m.setStore(store);
    clock.ms = at(5);
    assert.equal(parseSamples(await m.text()).get('dtx_cron_lag_seconds'), 5);
    store.countUnfinished = () => Promise.reject(new Error('down'));
    clock.ms = at(10);
    s = parseSamples(await m.text());
    assert.equal(s.get(sampleKey('dtx_unfinished_transactions', { trans_type: 'saga', status: 'submitted' })), 1);
  });

  it('label tuples past MAX_CHILDREN are counted under _other', async () => {
    const m = metricsOn(manualClock(0));
    for (let i = 0; i < MAX_CHILDREN + 5; i++) m.branchCall('tcc', `b${i}`, 'try', 'http', 0.01, 'SUCCESS');
    const s = parseSamples(await m.text());
    const series = [...s.keys()].filter((k) => k.startsWith('dtm_branch_process_total{'));
    assert.equal(series.length, MAX_CHILDREN + 1);
    assert.equal(
      s.get(
        sampleKey('dtm_branch_process_total', {
          model: OVERFLOW,
          branchid: OVERFLOW,
          branchtype: OVERFLOW,
          status: OVERFLOW,
        }),
      ),
      5,
    );
  });

  it('histograms: cumulative buckets, sum and count; label values escaped', async () => {
    const m = metricsOn(manualClock(0));
    m.branchCall('saga', '01', 'a"b\\c', 'grpc', 0.003, 'TIMEOUT');
    m.branchCall('saga', '01', 'a"b\\c', 'grpc', 0.2, 'ERROR');
    const text = await m.text();
    const s = parseSamples(text);
    const l = { trans_type: 'saga', op: 'a\\"b\\\\c', protocol: 'grpc' };
    assert.equal(s.get(sampleKey('dtx_branch_call_duration_seconds_count', l)), 2);
    assert.equal(s.get(sampleKey('dtx_branch_call_duration_seconds_sum', l)), 0.203);
    assert.equal(s.get(sampleKey('dtx_branch_call_duration_seconds_bucket', { ...l, le: '0.0025' })), 0);
    assert.equal(s.get(sampleKey('dtx_branch_call_duration_seconds_bucket', { ...l, le: '0.005' })), 1);
    assert.equal(s.get(sampleKey('dtx_branch_call_duration_seconds_bucket', { ...l, le: '0.25' })), 2);
    assert.equal(s.get(sampleKey('dtx_branch_call_duration_seconds_bucket', { ...l, le: '+Inf' })), 2);
    assert.equal(
      s.get(sampleKey('dtx_branch_failures_total', { trans_type: 'saga', op: 'a\\"b\\\\c', reason: 'timeout' })),
      1,
    );
    assert.equal(
      s.get(sampleKey('dtx_branch_failures_total', { trans_type: 'saga', op: 'a\\"b\\\\c', reason: 'error' })),
      1,
    );
  });

  it("the api label is the route pattern's last fixed segment, lower-cased; no route is 'unknown'", () => {
    assert.equal(apiLabelOf('/api/dtmsvr/registerBranch'), 'registerbranch');
    assert.equal(apiLabelOf('/api/dtmsvr/topic/:topicName'), 'topic');
    assert.equal(apiLabelOf('/api/json-rpc'), 'json-rpc');
    assert.equal(apiLabelOf(undefined), 'unknown');
  });

  it('measuredStore times writes under their operation and passes reads through', async () => {
    const m = metricsOn(manualClock(0));
    const store = measuredStore(new MemoryStore(), m);
    await store.saveNew(makeTrans('x'), []);
    await assert.rejects(store.saveNew(makeTrans('x'), []));
    assert.equal((await store.findTrans('x'))?.gid, 'x');
    const s = parseSamples(await m.text());
    assert.equal(
      s.get(sampleKey('dtx_store_write_duration_seconds_count', { op: 'saveNew' })),
      2,
      'a failed write too',
    );
    assert.equal(s.get(sampleKey('dtx_store_write_duration_seconds_count', { op: 'changeStatus' })), 0);
  });
});
