import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PROTO_LOADER_OPTIONS, type TransType, WORKFLOW_PROTO } from '@dtx/protocol';
import { loadSync } from '@grpc/proto-loader';
import type { BranchCall, BranchCaller, BranchOutcome } from '../src/branch/caller.js';
import { FakeClock } from '../src/core/clock.js';
import { DEFAULT_CORE_CONFIG } from '../src/core/core-config.js';
import { Cron } from '../src/core/cron.js';
import { FailureError, OngoingError } from '../src/core/errors.js';
import { type PassDeps, resetInterval } from '../src/core/pass.js';
import type { AlertPayload } from '../src/core/ports.js';
import { Processor } from '../src/core/processor.js';
import { Retention } from '../src/core/retention.js';
import { TransService } from '../src/core/service.js';
import { Topics } from '../src/core/topics.js';
import type { TransInput } from '../src/core/trans-input.js';
import { silentLogger } from '../src/observe/logger.js';
import { MemoryStore } from '../src/store/memory/memory-store.js';
import { waitFor } from './support/poll.js';

// The core's state machines with an in-memory store and a fake clock. Branches are a scripted
// BranchCaller: this is the unit seam of the core (the end-to-end tests use real HTTP branches).
type Script = Record<string, (BranchOutcome['result'] | BranchOutcome)[]>;

class ScriptedCaller implements BranchCaller {
  readonly calls: string[] = [];
  constructor(
    private readonly script: Script = {},
    private readonly onCall?: (c: BranchCall) => Promise<void> | void,
  ) {}
  async call(c: BranchCall): Promise<BranchOutcome> {
    const name = c.url.split('/').pop()!;
    this.calls.push(`${name} ${c.op}`);
    await this.onCall?.(c);
    const next = this.script[name]?.shift() ?? 'SUCCESS';
    return typeof next === 'string' ? { result: next, message: `${name} said ${next}` } : next;
  }
  async close(): Promise<void> {}
}

function world(script: Script = {}, onCall?: (c: BranchCall) => Promise<void> | void) {
  const store = new MemoryStore();
  const clock = new FakeClock();
  const caller = new ScriptedCaller(script, onCall);
  const alerts: AlertPayload[] = [];
  const deps: PassDeps = {
    store,
    caller,
    clock,
    conf: { ...DEFAULT_CORE_CONFIG, alertWebHook: 'http://alert.invalid/hook' },
    log: silentLogger,
    alert: (a) => alerts.push(a),
  };
  const processor = new Processor(deps);
  const service = new TransService(deps, processor, new Topics(store, clock, silentLogger));
  const cron = new Cron(deps, processor);
  const statuses = async (gid: string) => (await store.findBranches(gid)).map((b) => b.status);
  const status = async (gid: string) => (await store.findTrans(gid))?.status;
  return { store, clock, caller, alerts, deps, processor, service, cron, statuses, status };
}

const U = 'http://b';
function input(gid: string, transType: TransType, o: Partial<TransInput> = {}): TransInput {
  return {
    gid,
    transType,
    steps: [],
    binPayloads: [],
    customData: '',
    queryPrepared: '',
    protocol: 'http',
    rollbackReason: '',
    reqExtra: {},
    opts: {},
    ...o,
  };
}
function saga(gid: string, steps: number, o: Partial<TransInput> = {}): TransInput {
  const s = Array.from({ length: steps }, (_, i) => ({ action: `${U}/A${i + 1}`, compensate: `${U}/C${i + 1}` }));
  return input(gid, 'saga', {
    steps: s,
    binPayloads: s.map(() => Buffer.from('{}')),
    ...o,
    opts: { wait_result: true, ...o.opts },
  });
}

describe('core: intervals (spec §7.1)', () => {
  it('reset interval: retry_interval, else a short timeout_to_fail, else RetryInterval', () => {
    const conf = DEFAULT_CORE_CONFIG;
    const t = (opts: object) => ({ opts }) as Parameters<typeof resetInterval>[0];
    assert.equal(resetInterval(t({ retry_interval: 15 }), conf), 15);
    assert.equal(resetInterval(t({}), conf), 10);
    assert.equal(resetInterval(t({ timeout_to_fail: 3 }), conf), 3);
    assert.equal(resetInterval(t({ timeout_to_fail: 30 }), conf), 10);
  });

  /** The store writes `w` makes from now on, by method name. */
  function countWrites(w: ReturnType<typeof world>): string[] {
    const writes: string[] = [];
    const store = w.store as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
    for (const name of ['saveNew', 'updateBranches', 'changeStatus', 'touchCronTime', 'recordFailedAttempt']) {
      const orig = store[name]!.bind(w.store);
      store[name] = (...a: unknown[]) => {
        const change = name === 'changeStatus' ? (a[3] as { branches?: unknown[] }) : undefined;
        writes.push(change?.branches ? `${name}+${change.branches.length}` : name);
        return orig(...a);
      };
    }
    return writes;
  }

  it('a saga that ends in one pass writes twice: the create, and the finish carrying every branch result', async () => {
    const w = world();
    const writes = countWrites(w);
    await w.service.submit(saga('g', 2));
    assert.deepEqual(writes, ['saveNew', 'changeStatus+2']);
    assert.deepEqual(await w.statuses('g'), ['prepared', 'succeed', 'prepared', 'succeed']);
  });

  it('a rollback: the move to aborting carries the actions done and the failed one, before any compensation', async () => {
    const statusAtFirstCompensation: string[][] = [];
    let w!: ReturnType<typeof world>;
    w = world({ A2: ['FAILURE'] }, async (c) => {
      if (c.op === 'compensate' && statusAtFirstCompensation.length === 0) {
        statusAtFirstCompensation.push([String(await w.status('g')), ...(await w.statuses('g'))]);
      }
    });
    const writes = countWrites(w);
    await assert.rejects(w.service.submit(saga('g', 2)), FailureError);
    assert.deepEqual(statusAtFirstCompensation, [['aborting', 'prepared', 'succeed', 'prepared', 'failed']]);
    assert.deepEqual(writes, ['saveNew', 'changeStatus+2', 'changeStatus+2']);
    assert.deepEqual(await w.statuses('g'), ['succeed', 'succeed', 'succeed', 'failed']);
  });

  it('a pass that ends unfinished writes what it held: the next pass does not call the step that succeeded', async () => {
    const w = world({ A2: ['ERROR'] });
    await assert.rejects(w.service.submit(saga('g', 2)), OngoingError);
    assert.deepEqual(await w.statuses('g'), ['prepared', 'succeed', 'prepared', 'prepared']);
    w.clock.advance(1000 * 1000);
    await w.cron.step();
    assert.equal(await w.status('g'), 'succeed');
    assert.deepEqual(w.caller.calls, ['A1 action', 'A2 action', 'A2 action']);
  });

  it('errors back off x2, one stuck alert at the 3rd failure in a row, success resets and sends the recovery', async () => {
    const w = world({ A2: ['ERROR', 'ERROR', 'ERROR', 'ERROR'] });
    await assert.rejects(w.service.submit(saga('g', 2)), OngoingError);
    const intervals: number[] = [(await w.store.findTrans('g'))!.nextCronInterval];
    const nexts: number[] = [];
    for (let i = 0; i < 3; i++) {
      w.clock.advance(1000 * 1000);
      await w.cron.step();
      const row = (await w.store.findTrans('g'))!;
      intervals.push(row.nextCronInterval);
      nexts.push(row.nextCronTime);
    }
    assert.deepEqual(intervals, [20, 40, 80, 160]);
    assert.equal(Date.parse(w.alerts[0]?.next_retry_time ?? ''), nexts[1], 'next retry of the 3rd failure');
    assert.deepEqual(
      w.alerts.map((a) => [a.event, a.retry_count, a.stuck_reason, a.attempts]),
      [['stuck', 3, 'attempts', 3]],
    );
    assert.equal(w.alerts[0]!.branch, `${U}/A2`);
    assert.equal(w.alerts[0]!.branch_id, '02');
    assert.equal(w.alerts[0]!.error, 'A2 said ERROR');
    assert.equal((await w.store.findTrans('g'))!.failedAttempts, 4);
    w.clock.advance(1000 * 1000);
    await w.cron.step();
    assert.equal(await w.status('g'), 'succeed');
    assert.equal((await w.store.findTrans('g'))!.nextCronInterval, 10);
    assert.deepEqual(
      w.alerts.map((a) => [a.event, a.status]),
      [
        ['stuck', 'submitted'],
        ['recovered', 'succeed'],
      ],
    );
    const a2 = (await w.store.findBranches('g'))[3]!;
    assert.deepEqual([a2.attempts, a2.lastResult, a2.lastError], [5, 'SUCCESS', 'A2 said ERROR']);
  });

  it('the backoff stops at MaxRetryInterval (the 20th error waits an hour, not 121 days)', async () => {
    const w = world({ A1: Array(25).fill('ERROR') });
    w.deps.conf.maxRetryInterval = 3600;
    await assert.rejects(w.service.submit(saga('g', 1)), OngoingError);
    const intervals: number[] = [];
    for (let i = 0; i < 20; i++) {
      w.clock.advance(10_000 * 1000);
      await w.cron.step();
      const t = (await w.store.findTrans('g'))!;
      intervals.push(t.nextCronInterval);
      assert.ok(
        t.nextCronTime - w.clock.now() <= 3600_000 + 5000,
        `next retry in ${t.nextCronTime - w.clock.now()} ms`,
      );
    }
    assert.deepEqual(intervals.slice(0, 8), [40, 80, 160, 320, 640, 1280, 2560, 3600]);
    assert.ok(
      intervals.slice(7).every((i) => i === 3600),
      intervals.join(','),
    );
    assert.equal(await w.status('g'), 'submitted');
  });

  it('a branch answering ONGOING for ever is backed off and alerted on like an error', async () => {
    const w = world({ A1: Array(6).fill('ONGOING') });
    await assert.rejects(w.service.submit(saga('g', 1)), OngoingError);
    const intervals: number[] = [(await w.store.findTrans('g'))!.nextCronInterval];
    for (let i = 0; i < 3; i++) {
      w.clock.advance(1000 * 1000);
      await w.cron.step();
      intervals.push((await w.store.findTrans('g'))!.nextCronInterval);
    }
    assert.deepEqual(intervals, [20, 40, 80, 160]);
    assert.deepEqual(
      w.alerts.map((a) => [a.event, a.retry_count, a.error]),
      [['stuck', 3, 'A1 said ONGOING']],
    );
  });
});

describe('core: attempt history and stuck transactions', () => {
  it('a branch failing twice then succeeding: attempts 3, last error kept, failed_attempts back to 0', async () => {
    const w = world({ A1: [{ result: 'ERROR', message: 'http status 503: down' }, 'ERROR'] });
    await assert.rejects(w.service.submit(saga('g', 1)), OngoingError);
    let t = (await w.store.findTrans('g'))!;
    let a1 = (await w.store.findBranches('g'))[1]!;
    assert.deepEqual([a1.attempts, a1.lastResult, a1.lastError], [1, 'ERROR', 'http status 503: down']);
    assert.deepEqual([t.failedAttempts, t.lastError], [1, 'http status 503: down']);
    assert.equal(a1.lastAttemptTime, w.clock.now());
    w.clock.advance(100_000);
    await w.cron.step();
    t = (await w.store.findTrans('g'))!;
    assert.deepEqual([t.failedAttempts, t.lastError], [2, 'A1 said ERROR']);
    w.clock.advance(100_000);
    await w.cron.step();
    t = (await w.store.findTrans('g'))!;
    a1 = (await w.store.findBranches('g'))[1]!;
    assert.equal(t.status, 'succeed');
    assert.deepEqual([a1.attempts, a1.lastResult, a1.lastError], [3, 'SUCCESS', 'A1 said ERROR']);
    assert.equal(t.failedAttempts, 0);
    assert.equal(w.alerts.length, 0, 'two failures in a row are below Stuck.FailedAttempts (3)');
  });

  it('an error body longer than 1 KiB is kept as its first KiB', async () => {
    const w = world({ A1: [{ result: 'ERROR', message: `http status 500: ${'x'.repeat(5000)}` }] });
    await assert.rejects(w.service.submit(saga('g', 1)), OngoingError);
    const a1 = (await w.store.findBranches('g'))[1]!;
    assert.ok(Buffer.byteLength(a1.lastError!) <= 1024, String(Buffer.byteLength(a1.lastError!)));
    assert.ok(a1.lastError!.startsWith('http status 500: xxx'));
    assert.ok(Buffer.byteLength(a1.lastError!) > 1000);
  });

  it('the msg back-check is an attempt on the transaction', async () => {
    const w = world({ qp: ['ERROR', 'ERROR', 'ERROR'] });
    await w.service.prepare(input('m', 'msg', { queryPrepared: `${U}/qp`, opts: { timeout_to_fail: 5 } }));
    for (let i = 0; i < 3; i++) {
      w.clock.advance(100_000 * (i + 1));
      await w.cron.step();
    }
    const t = (await w.store.findTrans('m'))!;
    assert.deepEqual([t.status, t.failedAttempts, t.lastError], ['prepared', 3, 'qp said ERROR']);
    assert.deepEqual(
      w.alerts.map((a) => [a.event, a.op, a.branch]),
      [['stuck', 'msg', `${U}/qp`]],
    );
  });

  it('stuck by age (fake clock), listed and counted; a forced stop ends it with a recovery notice', async () => {
    const w = world({ A1: Array(10).fill('ONGOING') });
    w.deps.conf.stuckFailedAttempts = 100;
    w.deps.conf.stuckUnfinishedAfter = 600;
    await assert.rejects(w.service.submit(saga('old', 1)), OngoingError);
    assert.deepEqual((await w.service.stuck('', 10)).trans, []);
    assert.deepEqual(await w.service.stuckCounts(), [
      { reason: 'attempts', count: 0 },
      { reason: 'age', count: 0 },
    ]);
    w.clock.advance(601_000);
    await w.service.submit(saga('young', 1, { opts: { wait_result: true } })).catch(() => undefined);
    const page = await w.service.stuck('', 10);
    assert.deepEqual(
      page.trans.map((t) => t.gid),
      ['old'],
    );
    assert.deepEqual(await w.service.stuckCounts(), [
      { reason: 'attempts', count: 0 },
      { reason: 'age', count: 1 },
    ]);
    // the alert goes out at its next failed attempt, once
    await w.cron.step();
    w.clock.advance(100_000);
    await w.cron.step();
    const stuck = w.alerts.filter((a) => a.gid === 'old');
    assert.deepEqual(
      stuck.map((a) => [a.event, a.stuck_reason]),
      [['stuck', 'age']],
    );
    await w.service.forceStop('old');
    assert.deepEqual(
      w.alerts.filter((a) => a.gid === 'old').map((a) => [a.event, a.status]),
      [
        ['stuck', 'submitted'],
        ['recovered', 'failed'],
      ],
    );
    assert.deepEqual((await w.service.stuck('', 10)).trans, []);
  });
});

describe('core: saga state machine (spec §6.7)', () => {
  it('normal', async () => {
    const w = world();
    await w.service.submit(saga('g', 2));
    assert.deepEqual(await w.statuses('g'), ['prepared', 'succeed', 'prepared', 'succeed']);
    assert.deepEqual(w.caller.calls, ['A1 action', 'A2 action']);
  });

  it('a failure at step 3 compensates 3, 2, 1 in that order', async () => {
    const w = world({ A3: ['FAILURE'] });
    await assert.rejects(w.service.submit(saga('g', 3)), /A3 said FAILURE/);
    assert.equal(await w.status('g'), 'failed');
    assert.deepEqual(w.caller.calls, [
      'A1 action',
      'A2 action',
      'A3 action',
      'C3 compensate',
      'C2 compensate',
      'C1 compensate',
    ]);
    assert.deepEqual(await w.statuses('g'), ['succeed', 'succeed', 'succeed', 'succeed', 'succeed', 'failed']);
  });

  it('timeout before anything ran compensates the first (assumed started) step only', async () => {
    const w = world({ A1: ['ONGOING'] });
    await assert.rejects(w.service.submit(saga('g', 2, { opts: { timeout_to_fail: 100 } })), OngoingError);
    w.clock.advance(101_000);
    await w.cron.step();
    assert.equal(await w.status('g'), 'failed');
    assert.deepEqual(await w.statuses('g'), ['succeed', 'prepared', 'prepared', 'prepared']);
    assert.match((await w.store.findTrans('g'))!.rollbackReason, /^Timeout after 100 seconds$/);
  });

  it('an aborting saga whose compensation errored keeps its reason and is finished by the cron', async () => {
    const w = world({ A2: ['FAILURE'], C1: ['ERROR'] });
    await assert.rejects(w.service.submit(saga('g', 2)));
    const t = (await w.store.findTrans('g'))!;
    assert.equal(t.status, 'aborting');
    assert.match(t.rollbackReason, /A2 said FAILURE/);
    w.clock.advance(1000_000);
    await w.cron.step();
    assert.equal(await w.status('g'), 'failed');
  });

  it('concurrent with orders starts independent steps together and respects prerequisites', async () => {
    const seen: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const w = world({}, async (c) => {
      seen.push(c.url.split('/').pop()!);
      if (c.url.endsWith('A1')) await gate;
    });
    const run = w.service.submit(saga('g', 3, { customData: '{"concurrent":true,"orders":{"2":[0]}}' }));
    // A1 is held: A2 (no prerequisite) runs meanwhile, A3 (after A1) must not start
    for (let i = 0; i < 100 && !seen.includes('A2'); i++) await new Promise((r) => setImmediate(r));
    assert.ok(seen.includes('A2'));
    assert.ok(!seen.includes('A3'));
    release();
    await run;
    assert.deepEqual(seen.slice(-1), ['A3']);
    assert.equal(await w.status('g'), 'succeed');
  });

  it('a lost compare-and-set (forceStop) ends the pass before the next branch', async () => {
    let w!: ReturnType<typeof world>;
    w = world({}, async (c) => {
      if (c.url.endsWith('A1')) await w.service.forceStop('g');
    });
    // the wait_result reply tells what the transaction became, not the lost write
    await assert.rejects(w.service.submit(saga('g', 2)), FailureError);
    assert.equal(await w.status('g'), 'failed');
    assert.deepEqual(w.caller.calls, ['A1 action']);
  });

  it('a finished saga is never leased again', async () => {
    const w = world();
    await w.service.submit(saga('g', 1));
    w.clock.advance(10_000_000);
    assert.deepEqual(await w.cron.step(), []);
  });
});

/** A caller hook that counts calls in flight and holds each until `release()` lets all held ones go. */
function gate() {
  let inFlight = 0;
  let max = 0;
  let open: (() => void) | undefined;
  let opened = new Promise<void>((r) => {
    open = r;
  });
  return {
    get max() {
      return max;
    },
    get inFlight() {
      return inFlight;
    },
    async hold() {
      inFlight++;
      max = Math.max(max, inFlight);
      await opened;
      inFlight--;
    },
    release() {
      open!();
      opened = new Promise<void>((r) => {
        open = r;
      });
    },
    /** Lets every call through from now on. */
    openForever() {
      open!();
      opened = Promise.resolve();
    },
  };
}

describe('core: limits and the ownership of calls', () => {
  it('a concurrent saga has at most Limits.MaxConcurrentCallsPerTrans calls in flight', async () => {
    const g = gate();
    const w = world({}, () => g.hold());
    w.deps.conf.maxCallsPerTrans = 4;
    const done = w.service.submit(saga('g', 40, { customData: '{"concurrent":true}' }));
    await waitFor('4 calls held', () => g.inFlight === 4);
    g.openForever();
    await done;
    assert.equal(g.max, 4);
    assert.equal(w.caller.calls.length, 40);
    assert.equal(await w.status('g'), 'succeed');
  });

  it('the process has at most Limits.MaxConcurrentCalls calls in flight; the others wait their turn', async () => {
    const g = gate();
    const w = world({}, () => g.hold());
    w.deps.conf.maxCalls = 3;
    const processor = new Processor(w.deps); // reads the limit when built
    const service = new TransService(w.deps, processor, new Topics(w.store, w.clock, silentLogger));
    const cd = { customData: '{"concurrent":true}' };
    const all = Promise.all([service.submit(saga('a', 5, cd)), service.submit(saga('b', 5, cd))]);
    await waitFor('3 calls held', () => g.inFlight === 3);
    g.openForever();
    await all;
    assert.equal(g.max, 3);
    assert.equal(await w.status('a'), 'succeed');
    assert.equal(await w.status('b'), 'succeed');
  });

  it('past Limits.MaxBackgroundPasses a submit waits in a bounded queue; past the queue it is due to the cron now', async () => {
    const g = gate();
    const w = world({}, () => g.hold());
    w.deps.conf.maxBackgroundPasses = 1;
    const processor = new Processor(w.deps);
    const service = new TransService(w.deps, processor, new Topics(w.store, w.clock, silentLogger));
    const cron = new Cron(w.deps, processor);
    for (const gid of ['b1', 'b2', 'b3']) await service.submit(saga(gid, 1, { opts: { wait_result: false } }));
    assert.equal(processor.backgroundPasses, 1);
    assert.ok(processor.isWaiting('b2'));
    assert.ok(!processor.isWaiting('b3'));
    // b3 found the queue full: its lease of creation is replaced by "due now", so no RetryInterval wait
    assert.equal((await w.store.findTrans('b3'))!.nextCronTime, w.clock.now());
    w.clock.advance(1);
    const stepped = cron.step(); // the cron may run b3, never the queued b2
    await waitFor('b3 called by the cron', () => g.inFlight === 2);
    g.openForever();
    assert.deepEqual(await stepped, ['b3']);
    await processor.drain();
    for (const gid of ['b1', 'b2', 'b3']) assert.equal(await w.status(gid), 'succeed');
    assert.equal(w.caller.calls.filter((c) => c.endsWith('action')).length, 3);
  });

  it('a queued background pass whose creation lease ran out is left to the cron', async () => {
    const g = gate();
    const w = world({}, () => g.hold());
    w.deps.conf.maxBackgroundPasses = 1;
    const processor = new Processor(w.deps);
    const service = new TransService(w.deps, processor, new Topics(w.store, w.clock, silentLogger));
    for (const gid of ['q1', 'q2']) await service.submit(saga(gid, 1, { opts: { wait_result: false } }));
    assert.ok(processor.isWaiting('q2'));
    // past q2's lease: another instance's cron may own it now (and past q1's pass deadline: the fake clock drives
    // its wait too, so q1's pass stops waiting for its held call and leaves q1 to the cron)
    w.clock.advance(60_000);
    g.openForever();
    await processor.drain();
    assert.equal(await w.status('q1'), 'submitted');
    assert.equal(await w.status('q2'), 'submitted');
    assert.ok(!processor.isWaiting('q2'));
  });

  it('a second pass of a gid in the same process joins the running one instead of calling again', async () => {
    const g = gate();
    const w = world({}, () => g.hold());
    const first = w.service.submit(saga('g', 1));
    await waitFor('the first call held', () => g.inFlight === 1);
    const again = w.service.submit(saga('g', 1)); // a client retrying its wait_result submit
    g.openForever();
    await Promise.all([first, again]);
    assert.deepEqual(w.caller.calls, ['A1 action']);
    assert.equal(await w.status('g'), 'succeed');
  });

  it('a call longer than the lease extends the lease before it starts', async () => {
    const g = gate();
    const w = world({}, () => g.hold());
    // retry_interval 1: the lease written at creation ends in 1 s, the call may last 20 s
    const done = w.service.submit(
      saga('g', 1, { opts: { wait_result: true, retry_interval: 1, request_timeout: 20 } }),
    );
    await waitFor('the call held', () => g.inFlight === 1);
    const t = (await w.store.findTrans('g'))!;
    assert.ok(t.nextCronTime >= w.clock.now() + 20_000, `lease ends ${t.nextCronTime - w.clock.now()} ms from now`);
    w.clock.advance(5_000); // past the lease of creation: another instance's cron must not find it due
    assert.deepEqual(
      (await w.store.lockDue(w.clock.now(), w.clock.now() + 10_000, 'other', 10, w.clock.now())).map((x) => x.gid),
      [],
    );
    g.openForever();
    await done;
    assert.equal(await w.status('g'), 'succeed');
  });
});

describe('core: msg, tcc, xa', () => {
  it('msg: prepared is left alone before its timeout, back-checked after it', async () => {
    const w = world({ QP: ['ONGOING', 'SUCCESS'] });
    const msg = input('m', 'msg', {
      steps: [{ action: `${U}/A1` }],
      binPayloads: [Buffer.from('{}')],
      queryPrepared: `${U}/QP`,
    });
    await w.service.prepare(msg);
    w.clock.advance(11_000);
    assert.deepEqual(await w.cron.step(), ['m']);
    assert.deepEqual(w.caller.calls, [], 'not timed out at 11 s');
    w.clock.advance(30_000);
    await w.cron.step();
    assert.equal(await w.status('m'), 'prepared');
    w.clock.advance(30_000);
    await w.cron.step();
    assert.equal(await w.status('m'), 'succeed');
    assert.deepEqual(w.caller.calls, ['QP msg', 'QP msg', 'A1 action']);
  });

  it('tcc: confirm from last to first; cancel when aborting', async () => {
    const w = world();
    await w.service.prepare(input('t', 'tcc'));
    for (const id of ['01', '02']) {
      await w.service.registerBranch({
        gid: 't',
        transType: 'tcc',
        branchId: id,
        data: Buffer.from('x'),
        confirm: `${U}/F${id}`,
        cancel: `${U}/X${id}`,
        url: '',
      });
    }
    await w.service.submit(input('t', 'tcc', { opts: { wait_result: true } }));
    assert.deepEqual(w.caller.calls, ['F02 confirm', 'F01 confirm']);
    await w.service.prepare(input('t2', 'tcc'));
    await w.service.registerBranch({
      gid: 't2',
      transType: 'tcc',
      branchId: '01',
      data: Buffer.from('x'),
      confirm: `${U}/F`,
      cancel: `${U}/X`,
      url: '',
    });
    await w.service.abort(input('t2', 'tcc', { rollbackReason: 'because' }));
    await w.processor.drain();
    assert.equal(await w.status('t2'), 'failed');
    assert.equal((await w.store.findTrans('t2'))!.rollbackReason, 'because');
  });

  it('tcc: ONGOING confirm makes a wait_result submit answer ONGOING', async () => {
    const w = world({ F01: ['ONGOING'] });
    await w.service.prepare(input('t', 'tcc'));
    await w.service.registerBranch({
      gid: 't',
      transType: 'tcc',
      branchId: '01',
      data: Buffer.from(''),
      confirm: `${U}/F01`,
      cancel: '',
      url: '',
    });
    await assert.rejects(w.service.submit(input('t', 'tcc', { opts: { wait_result: true } })), OngoingError);
    assert.equal(await w.status('t'), 'submitted');
  });

  it('xa: rollback first to last after a timeout', async () => {
    const w = world();
    await w.service.prepare(input('x', 'xa'));
    for (const id of ['01', '02']) {
      await w.service.registerBranch({
        gid: 'x',
        transType: 'xa',
        branchId: id,
        data: Buffer.from(''),
        confirm: '',
        cancel: '',
        url: `${U}/P${id}`,
      });
    }
    w.clock.advance(36_000);
    await w.cron.step();
    assert.equal(await w.status('x'), 'failed');
    assert.deepEqual(w.caller.calls, ['P01 rollback', 'P02 rollback']);
  });

  it('registerBranch needs a prepared global', async () => {
    const w = world();
    await assert.rejects(
      w.service.registerBranch({
        gid: 'none',
        transType: 'tcc',
        branchId: '01',
        data: Buffer.from(''),
        confirm: '',
        cancel: '',
        url: '',
      }),
      /no trans with gid: none status: prepared found FAILURE/,
    );
  });
});

describe('core: retention', () => {
  it('deletes finished transactions past the age in batches; keeps recent and unfinished ones', async () => {
    const w = world({ A1: ['ONGOING'] });
    await assert.rejects(w.service.submit(saga('stuck', 1)), OngoingError); // stays submitted
    for (let i = 0; i < 7; i++) await w.service.submit(saga(`old-${i}`, 1));
    w.clock.advance(3600_000);
    await w.service.submit(saga('recent', 1));
    const r = new Retention(w.store, w.clock, silentLogger, { finishedAge: 1800, interval: 60, batchSize: 3 });
    assert.equal(await r.runOnce(), 7);
    for (let i = 0; i < 7; i++) assert.equal(await w.status(`old-${i}`), undefined);
    assert.equal(await w.status('recent'), 'succeed');
    assert.equal(await w.status('stuck'), 'submitted');
    assert.equal(await r.runOnce(), 0);
    const off = new Retention(w.store, w.clock, silentLogger, { finishedAge: 0, interval: 60, batchSize: 3 });
    w.clock.advance(10 * 3600_000);
    assert.equal(await off.runOnce(), 0, 'age 0 keeps everything');
    assert.equal(await w.status('recent'), 'succeed');
  });

  it('runs its rounds on the clock it is given: the fake clock starts them', async () => {
    const w = world();
    await w.service.submit(saga('done', 1));
    const r = new Retention(w.store, w.clock, silentLogger, { finishedAge: 10, interval: 30, batchSize: 10 });
    r.start();
    w.clock.advance(29_000); // old enough to go, but no round before its interval
    assert.equal(await w.status('done'), 'succeed');
    w.clock.advance(1000);
    await waitFor('the round at 30 s deleted it', async () => (await w.status('done')) === undefined);
    await r.stop();
    assert.equal(w.clock.pendingTimers, 0);
  });
});

describe('core: delayed compensation (dtx compensate_delay)', () => {
  // steps 1..3, step 2's compensation waits 600 s after the rollback began; A3 fails
  const delayed = (gid: string) => saga(gid, 3, { opts: { compensate_delays: [0, 600, 0] } });

  it('waits for the delay, keeps the reverse order, and compensates at the due time', async () => {
    const w = world({ A3: ['FAILURE'] });
    const began = w.clock.now();
    // wait_result: the outcome is decided (rolled back), only the compensation is pending → FAILURE
    await assert.rejects(w.service.submit(delayed('g')), FailureError);
    assert.deepEqual(w.caller.calls, ['A1 action', 'A2 action', 'A3 action', 'C3 compensate']);
    let t = (await w.store.findTrans('g'))!;
    assert.equal(t.status, 'aborting');
    assert.equal(t.rollbackTime, began);
    assert.equal(t.nextCronTime, began + 600_000);
    assert.deepEqual(await w.statuses('g'), ['prepared', 'succeed', 'prepared', 'succeed', 'succeed', 'failed']);

    // just before the due time: a pass (forced, as after a restart) still calls nothing and re-arms the cron
    w.clock.advance(599_000);
    await w.processor.runPass(t, await w.store.findBranches('g'));
    assert.equal(w.caller.calls.length, 4);
    t = (await w.store.findTrans('g'))!;
    assert.equal(t.status, 'aborting');
    assert.equal(t.nextCronTime, began + 600_000);
    assert.deepEqual(await w.cron.step(), []);

    // once due (the cron takes rows whose next_cron_time has passed): step 2, then step 1 (no delay of its
    // own, but behind step 2)
    w.clock.advance(1001);
    await w.cron.step();
    assert.deepEqual(w.caller.calls.slice(4), ['C2 compensate', 'C1 compensate']);
    assert.equal(await w.status('g'), 'failed');
  });

  it('a saga that succeeds never waits, and one without delays rolls back at once', async () => {
    const w = world({ A3: ['SUCCESS', 'FAILURE'] });
    await w.service.submit(delayed('ok'));
    assert.equal(await w.status('ok'), 'succeed');
    await assert.rejects(w.service.submit(saga('plain', 3)), FailureError);
    assert.equal(await w.status('plain'), 'failed');
    assert.equal((await w.store.findTrans('plain'))!.opts.compensate_delays, undefined);
  });
});

describe('core: workflow (spec §6.8)', () => {
  const wf = (gid: string, o: Partial<TransInput> = {}) =>
    input(gid, 'workflow', {
      customData: JSON.stringify({ name: 'transfer', data: Buffer.from('in').toString('base64') }),
      queryPrepared: `${U}/Resume`,
      ...o,
    });

  it('the resume call: branch 00, op = the name, the input as payload; gRPC wraps it in WorkflowData', async () => {
    const seen: BranchCall[] = [];
    const w = world({}, (c) => {
      seen.push(c);
    });
    await w.service.prepareWorkflow(wf('h'));
    const big = Buffer.alloc(300, 7);
    await w.service.prepareWorkflow(
      wf('g', {
        protocol: 'grpc',
        queryPrepared: '127.0.0.1:9/workflow.Workflow/Execute',
        customData: JSON.stringify({ name: 'transfer', data: big.toString('base64') }),
      }),
    );
    w.clock.advance(11_000);
    await w.cron.step();
    const h = seen.find((c) => c.trans.gid === 'h')!;
    assert.deepEqual([h.branchId, h.op, Buffer.from(h.payload).toString()], ['00', 'transfer', 'in']);
    const g = seen.find((c) => c.trans.gid === 'g')!;
    // WorkflowData{Data: 300 bytes}: tag 0x0a, length 300 as a two-byte varint, the bytes
    const execute = (loadSync(WORKFLOW_PROTO, PROTO_LOADER_OPTIONS)['workflow.Workflow'] as Record<string, any>)
      .Execute;
    assert.deepEqual(execute.requestDeserialize(Buffer.from(g.payload)).Data, big);
    assert.deepEqual([...g.payload.subarray(0, 3)], [0x0a, 0xac, 0x02]);
  });

  it('a failed resume is backed off, doubling up to MaxRetryInterval, and never times the workflow out', async () => {
    const w = world({ Resume: Array(12).fill('ERROR') });
    w.deps.conf.maxRetryInterval = 120;
    await w.service.prepareWorkflow(wf('b'));
    const intervals: number[] = [];
    for (let i = 0; i < 6; i++) {
      w.clock.advance(24 * 3600_000);
      await w.cron.step();
      intervals.push((await w.store.findTrans('b'))!.nextCronInterval);
    }
    assert.deepEqual(intervals, [20, 40, 80, 120, 120, 120]);
    const t = (await w.store.findTrans('b'))!;
    assert.equal(t.status, 'prepared');
    assert.equal(t.failedAttempts, 6);
    assert.equal(t.lastError, 'Resume said ERROR');
    const stuck = w.alerts.filter((a) => a.event === 'stuck');
    assert.equal(stuck.length, 1, 'stuck alert sent once');
    // the alert names the resume call as the branch metrics label it: branch 00, op workflow (not msg's '')
    assert.deepEqual(
      stuck.map((a) => [a.trans_type, a.branch_id, a.op, a.branch]),
      [['workflow', '00', 'workflow', `${U}/Resume`]],
    );
    // the outcome submitted by the host ends it, with the recovered notice
    await w.service.submit(
      input('b', 'workflow', { reqExtra: { status: 'succeed', result: Buffer.from('out').toString('base64') } }),
    );
    assert.equal(await w.status('b'), 'succeed');
    assert.equal(w.alerts.at(-1)?.event, 'recovered');
  });

  it('a cron lease of a gid whose pass runs here keeps the pass longer lease', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => {
      release = r;
    });
    const w = world({}, (c) => (c.trans.gid === 'l' ? held : undefined));
    await w.service.prepareWorkflow(wf('l', { opts: { request_timeout: 60 } }));
    w.clock.advance(11_000);
    const first = w.cron.step();
    await waitFor('the resume call', () => w.caller.calls.length === 1);
    const lease = (await w.store.findTrans('l'))!.nextCronTime;
    assert.ok(lease >= w.clock.now() + 120_000, 'the pass leased past the end of its call');
    // a second step whose window reaches it: the pass runs here, its lease stands
    await w.cron.step({ windowMs: 3600_000 });
    assert.equal((await w.store.findTrans('l'))!.nextCronTime, lease);
    assert.equal(w.caller.calls.length, 1);
    release();
    await first;
  });
});

describe('core: the fake clock drives every wait', () => {
  it('fires the timers that fall due while it advances, in time order, repeating ones as often as they fall due', () => {
    const clock = new FakeClock(1000);
    const fired: string[] = [];
    clock.setTimer(300, () => fired.push(`b@${clock.now()}`));
    clock.setTimer(100, () => fired.push(`a@${clock.now()}`));
    const cancelled = clock.setTimer(200, () => fired.push('cancelled'));
    const every = clock.setRepeating(250, () => fired.push(`r@${clock.now()}`));
    cancelled.cancel();
    clock.advance(99);
    assert.deepEqual(fired, []);
    clock.advance(500);
    assert.deepEqual(fired, ['a@1100', 'r@1250', 'b@1300', 'r@1500']);
    assert.equal(clock.now(), 1599);
    every.cancel();
    clock.advance(10_000);
    assert.equal(fired.length, 4);
    assert.equal(clock.pendingTimers, 0);
  });
});
