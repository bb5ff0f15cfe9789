import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { DEFAULT_CONFIG, type DtxConfig } from '../src/config.js';
import { Busi, type BusiCall } from './support/busi.js';
import { DtxProcess, dropTestStore, freePort, storeEnv, testStoreConfig } from './support/dtx.js';
import { call } from './support/http.js';
import { waitFor } from './support/poll.js';
import { gidFor, msgBody, sagaBody } from './support/trans.js';

// The real `dtx serve` in a child process on a SQLite file, SIGKILLed while a branch handler holds
// the call (after the branch acted, before its result was written), then restarted on the same file.
// A saga or msg pass holds its branch results back and writes them with its next status change
// (TransMode.holdsResults), so a crash loses the results of the steps the pass had done since its
// last write: recovery calls those steps again, which is what branches must bear (idempotency).
// Every accepted transaction must reach its right end, through the production recovery path (the
// restarted cron, moved by resetCronTime) or through the test-mode cronOnce.
//
// RetryInterval is 600 s here (TimeoutToFail must not be below it), so the cron can never pick a
// crashed transaction up on its own within a test: recovery happens exactly when the test asks for it,
// and `succeed_count` of resetCronTime is exact.

const procs: DtxProcess[] = [];
const busis: Busi[] = [];
const dirs: string[] = [];
const stores: ReturnType<typeof testStoreConfig>[] = [];

// A test runner that dies abruptly must not leave coordinators behind.
process.on('exit', () => {
  for (const p of procs) p.proc?.kill('SIGKILL');
});

afterEach(async () => {
  for (const p of procs.splice(0)) await p.kill();
  for (const b of busis.splice(0)) await b.stop();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  for (const s of stores.splice(0)) {
    const config: DtxConfig = structuredClone(DEFAULT_CONFIG);
    config.Store = { ...config.Store, ...s };
    await dropTestStore(config);
  }
});

interface World {
  dtx: DtxProcess;
  busi: Busi;
}

/** A fresh busi and a started `dtx serve` on a fresh store (a SQLite file unless `store` names another). */
async function world(o: { testMode?: boolean; store?: string } = {}): Promise<World> {
  const busi = await new Busi().start();
  busis.push(busi);
  const dir = mkdtempSync(join(tmpdir(), 'dtx-crash-'));
  dirs.push(dir);
  const store = testStoreConfig(dir, o.store ?? 'sqlite');
  stores.push(store);
  const env: Record<string, string> = {
    ...storeEnv(store),
    TRANS_CRON_INTERVAL: '1',
    RETRY_INTERVAL: '600',
    TIMEOUT_TO_FAIL: '600',
    REQUEST_TIMEOUT: '3',
    LOG_LEVEL: 'warn',
  };
  if (o.testMode) env.DTX_TEST_MODE = '1';
  const dtx = new DtxProcess(await freePort(), env);
  procs.push(dtx);
  await dtx.start();
  return { dtx, busi };
}

interface Crash {
  /** True once the coordinator process has exited. */
  done: boolean;
  /** busi.calls.length when the coordinator had exited: calls before it came from the killed process. */
  callsAtKill: number;
}

/** SIGKILL the coordinator inside the first busi handler call that matches, before the handler replies. */
function killOn(w: World, match: (c: BusiCall) => boolean, gate?: Promise<unknown>): Crash {
  const crash: Crash = { done: false, callsAtKill: -1 };
  let armed = true;
  w.busi.onCall = async (c) => {
    if (!armed || !match(c)) return;
    if (gate) await gate;
    if (!armed) return; // another call won the race while this one waited for the gate
    armed = false;
    await w.dtx.kill();
    crash.callsAtKill = w.busi.calls.length;
    crash.done = true;
  };
  return crash;
}

const waitCrash = (crash: Crash, where: string) => waitFor(`coordinator killed ${where}`, () => crash.done);

/** The parts of a query reply these tests read (spec §2.6). */
interface QueryReply {
  transaction: {
    status: string;
    trans_type: string;
    rollback_reason?: string;
    finish_time?: string;
    rollback_time?: string;
  } | null;
  branches: { status: string }[];
}

async function query(dtx: DtxProcess, gid: string): Promise<QueryReply> {
  const r = await call<QueryReply>('GET', `${dtx.api}/query?gid=${encodeURIComponent(gid)}`);
  assert.equal(r.status, 200, r.text);
  return r.json;
}
async function trans(dtx: DtxProcess, gid: string): Promise<NonNullable<QueryReply['transaction']>> {
  const t = (await query(dtx, gid)).transaction;
  assert.ok(t, `${gid} is stored`);
  return t;
}
const statusOf = async (dtx: DtxProcess, gid: string): Promise<string> =>
  (await query(dtx, gid)).transaction?.status ?? '';
const branchStatuses = async (dtx: DtxProcess, gid: string): Promise<string[]> =>
  (await query(dtx, gid)).branches.map((b) => b.status);
const reached = (dtx: DtxProcess, gid: string, status: string) =>
  waitFor(`${gid} ${status} (dtx output: ${dtx.output})`, async () => (await statusOf(dtx, gid)) === status, 20_000);

/** The production path: reschedule everything to now; the restarted cron (every ~1 s) does the rest. */
async function resetCronTime(dtx: DtxProcess): Promise<{ has_remaining: boolean; succeed_count: number }> {
  const r = await call('GET', `${dtx.api}/resetCronTime?timeout=0`);
  assert.equal(r.status, 200, r.text);
  return r.json;
}

/** Test mode: one cron step that sees transactions due within 700 s (past RetryInterval). */
async function cronOnce(dtx: DtxProcess): Promise<string> {
  const r = await call('POST', `http://127.0.0.1:${dtx.port}/api/dtx-test/cronOnce`, {
    now_forward: 0,
    cron_forward: 700,
  });
  assert.equal(r.status, 200, r.text);
  return r.json.gid;
}

const countOf = (busi: Busi, gid: string, name: string) =>
  busi.callsOf(gid).filter((c) => c.startsWith(`${name} `)).length;

const submitAsync = async (dtx: DtxProcess, body: Record<string, unknown>) => {
  const r = await call('POST', `${dtx.api}/submit`, body);
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json, { dtm_result: 'SUCCESS' });
};

describe('crash recovery: SIGKILL of dtx serve, restart on the same SQLite file', () => {
  // the two held-back cases on SQLite and on PostgreSQL (the other SQL store shares its engine)
  for (const kind of ['sqlite', 'postgres']) {
    it(`${kind}: saga killed inside TransIn (TransOut done, its result held back) succeeds after restart, TransOut called again (resetCronTime + cron)`, async () => {
      const w = await world({ store: kind });
      const gid = gidFor('crash-saga-transin');
      const crash = killOn(w, (c) => c.name === 'TransIn' && c.query.gid === gid);
      await submitAsync(w.dtx, sagaBody(w.busi, gid));
      await waitCrash(crash, 'in TransIn');
      assert.deepEqual(w.busi.callsOf(gid), ['TransOut action', 'TransIn action']);

      await w.dtx.start();
      // the crash left the saga as submitted, TransOut's success unwritten: nothing moves until the cron is asked to
      assert.equal(await statusOf(w.dtx, gid), 'submitted');
      assert.deepEqual(await branchStatuses(w.dtx, gid), ['prepared', 'prepared', 'prepared', 'prepared']);
      assert.deepEqual(await resetCronTime(w.dtx), { has_remaining: false, succeed_count: 1 });
      await reached(w.dtx, gid, 'succeed');

      // both results were written with the final status, in one write
      assert.deepEqual(await branchStatuses(w.dtx, gid), ['prepared', 'succeed', 'prepared', 'succeed']);
      // both steps are delivered again, in order (idempotency is the branch's job)
      assert.deepEqual(w.busi.callsOf(gid), ['TransOut action', 'TransIn action', 'TransOut action', 'TransIn action']);
      const t = await trans(w.dtx, gid);
      assert.ok(t.finish_time, 'finish_time is set');
      assert.equal(t.rollback_reason, undefined);
    });

    it(`${kind}: rolling-back saga killed inside TransOutRevert fails after restart with its reason kept (cronOnce)`, async () => {
      const w = await world({ testMode: true, store: kind });
      const gid = gidFor('crash-saga-revert');
      w.busi.setOnce('TransIn', 'FAILURE');
      const crash = killOn(w, (c) => c.name === 'TransOutRevert' && c.query.gid === gid);
      await submitAsync(w.dtx, sagaBody(w.busi, gid));
      await waitCrash(crash, 'in TransOutRevert');
      const before = ['TransOut action', 'TransIn action', 'TransInRevert compensate', 'TransOutRevert compensate'];
      assert.deepEqual(w.busi.callsOf(gid), before);

      await w.dtx.start();
      // The reason was written with the move to aborting, before any compensation ran, so it survives:
      // it is the branch's own text, not 'fail message lost' (that is only for a failed action found in
      // the store while the trans is still submitted). The actions' results rode on that same write; the
      // compensation that succeeded before the crash (TransInRevert) was held back, so it runs again.
      const reason = `url:${w.busi.url}/TransIn return failed: {"error":"reason:TransIn refused FAILURE"} FAILURE`;
      let t = await trans(w.dtx, gid);
      assert.equal(t.status, 'aborting');
      assert.equal(t.rollback_reason, reason);
      assert.deepEqual(await branchStatuses(w.dtx, gid), ['prepared', 'succeed', 'prepared', 'failed']);

      assert.equal(await cronOnce(w.dtx), gid);
      assert.equal(await statusOf(w.dtx, gid), 'failed');
      assert.deepEqual(await branchStatuses(w.dtx, gid), ['succeed', 'succeed', 'succeed', 'failed']);
      // no action runs again once the rollback is decided: only the compensations
      assert.deepEqual(w.busi.callsOf(gid), [...before, 'TransInRevert compensate', 'TransOutRevert compensate']);
      t = await trans(w.dtx, gid);
      assert.equal(t.rollback_reason, reason);
      assert.ok(t.rollback_time, 'rollback_time is set');
      assert.equal(await cronOnce(w.dtx), '', 'nothing left to do');
    });
  }

  it('killed in the first action, right after the submit was acknowledged: the saga completes after restart', async () => {
    const w = await world();
    const gid = gidFor('crash-saga-first');
    const crash = killOn(w, (c) => c.name === 'TransOut' && c.query.gid === gid);
    await submitAsync(w.dtx, sagaBody(w.busi, gid));
    await waitCrash(crash, 'in TransOut');

    await w.dtx.start();
    assert.equal(await statusOf(w.dtx, gid), 'submitted');
    assert.deepEqual(await branchStatuses(w.dtx, gid), ['prepared', 'prepared', 'prepared', 'prepared']);
    assert.deepEqual(await resetCronTime(w.dtx), { has_remaining: false, succeed_count: 1 });
    await reached(w.dtx, gid, 'succeed');
    assert.deepEqual(await branchStatuses(w.dtx, gid), ['prepared', 'succeed', 'prepared', 'succeed']);
    assert.deepEqual(w.busi.callsOf(gid), ['TransOut action', 'TransOut action', 'TransIn action']);
  });

  it('killed immediately after the 200 of an async submit: nothing accepted is lost', async () => {
    const w = await world();
    const gid = gidFor('crash-after-ack');
    await submitAsync(w.dtx, sagaBody(w.busi, gid));
    await w.dtx.kill();
    // the background pass may have run nothing, part or all of the saga before the kill

    await w.dtx.start();
    const t = await trans(w.dtx, gid); // the acknowledged transaction is stored
    assert.equal(t.trans_type, 'saga');
    assert.ok(['submitted', 'succeed'].includes(t.status), t.status);
    const reset = await resetCronTime(w.dtx);
    assert.equal(reset.succeed_count, t.status === 'submitted' ? 1 : 0);
    await reached(w.dtx, gid, 'succeed');
    assert.deepEqual(await branchStatuses(w.dtx, gid), ['prepared', 'succeed', 'prepared', 'succeed']);
    const calls = w.busi.callsOf(gid);
    assert.equal(calls[0], 'TransOut action', calls.join(', '));
    assert.ok(countOf(w.busi, gid, 'TransOut') >= 1 && countOf(w.busi, gid, 'TransIn') >= 1, calls.join(', '));
    assert.ok(
      calls.every((c) => c === 'TransOut action' || c === 'TransIn action'),
      `no compensation: ${calls.join(', ')}`,
    );
    // TransIn only ever follows a recorded TransOut: once TransIn was called, TransOut is not again
    assert.ok(calls.lastIndexOf('TransOut action') < calls.indexOf('TransIn action'), calls.join(', '));
  });

  it('20 sagas in flight at once, killed when the first TransIn arrives: all 20 succeed after restart', async () => {
    const w = await world();
    const gids = Array.from({ length: 20 }, (_, i) => gidFor(`crash-many-${i}`));
    const mine = new Set(gids);
    let accepted!: () => void;
    const allAccepted = new Promise<void>((resolve) => {
      accepted = resolve;
    });
    // hold every TransIn until all 20 submits were answered 200, then kill: only accepted trans exist
    const crash = killOn(w, (c) => c.name === 'TransIn' && mine.has(c.query.gid ?? ''), allAccepted);
    await Promise.all(gids.map((gid) => submitAsync(w.dtx, sagaBody(w.busi, gid))));
    accepted();
    await waitCrash(crash, 'in the first TransIn');
    const beforeKill = w.busi.calls.slice(0, crash.callsAtKill);

    await w.dtx.start();
    for (const gid of gids) assert.equal(await statusOf(w.dtx, gid), 'submitted', gid);
    assert.deepEqual(await resetCronTime(w.dtx), { has_remaining: false, succeed_count: 20 });
    await waitFor(
      `all 20 succeed (dtx output: ${w.dtx.output})`,
      async () => {
        for (const gid of gids) if ((await statusOf(w.dtx, gid)) !== 'succeed') return false;
        return true;
      },
      30_000,
    );
    for (const gid of gids) {
      assert.deepEqual(await branchStatuses(w.dtx, gid), ['prepared', 'succeed', 'prepared', 'succeed'], gid);
      const calls = w.busi.callsOf(gid);
      assert.equal(calls[0], 'TransOut action', `${gid}: ${calls.join(', ')}`);
      assert.ok(calls.includes('TransIn action'), `${gid}: ${calls.join(', ')}`);
      // after the restart the steps run again in order: the last TransOut comes before the last TransIn
      assert.ok(
        calls.lastIndexOf('TransOut action') < calls.lastIndexOf('TransIn action'),
        `${gid}: ${calls.join(', ')}`,
      );
      // nothing was written after the submit, so every saga the killed process had started runs TransOut again
      // (a call it sent just before dying may also reach busi after the kill: at most twice either way)
      const outs = countOf(w.busi, gid, 'TransOut');
      if (beforeKill.some((c) => c.query.gid === gid)) assert.equal(outs, 2, `${gid}: ${calls.join(', ')}`);
      else assert.ok(outs <= 2, `${gid}: ${calls.join(', ')}`);
    }
  });

  it('a wait_result submit cut off by the crash: the client retries the same submit after restart and it finishes', async () => {
    const w = await world();
    const gid = gidFor('crash-wait-result');
    const body = sagaBody(w.busi, gid, { wait_result: true });
    const crash = killOn(w, (c) => c.name === 'TransIn' && c.query.gid === gid);
    const first = call('POST', `${w.dtx.api}/submit`, body).then(
      (r) => `answered ${r.status} ${r.text}`,
      (err: Error) => err,
    );
    await waitCrash(crash, 'in TransIn');
    assert.ok((await first) instanceof Error, 'the client got no answer');

    await w.dtx.start();
    assert.equal(await statusOf(w.dtx, gid), 'submitted');
    // DTM re-processes a submit of a submitted trans (spec §2.4), from the stored branches
    const retry = await call('POST', `${w.dtx.api}/submit`, body);
    assert.equal(retry.status, 200, retry.text);
    assert.deepEqual(retry.json, { dtm_result: 'SUCCESS' });
    assert.equal(await statusOf(w.dtx, gid), 'succeed');
    assert.deepEqual(await branchStatuses(w.dtx, gid), ['prepared', 'succeed', 'prepared', 'succeed']);
    assert.deepEqual(w.busi.callsOf(gid), ['TransOut action', 'TransIn action', 'TransOut action', 'TransIn action']);
  });

  it('msg (prepare, then submit) killed inside its second branch succeeds after restart (cronOnce)', async () => {
    const w = await world({ testMode: true });
    const gid = gidFor('crash-msg');
    const crash = killOn(w, (c) => c.name === 'TransIn' && c.query.gid === gid);
    const prep = await call('POST', `${w.dtx.api}/prepare`, msgBody(w.busi, gid));
    assert.equal(prep.status, 200, prep.text);
    await submitAsync(w.dtx, msgBody(w.busi, gid));
    await waitCrash(crash, 'in the second msg branch');
    assert.deepEqual(w.busi.callsOf(gid), ['TransOut action', 'TransIn action']);

    await w.dtx.start();
    assert.equal(await statusOf(w.dtx, gid), 'submitted');
    assert.deepEqual(await branchStatuses(w.dtx, gid), ['prepared', 'prepared'], 'the first result was held back');
    assert.equal(await cronOnce(w.dtx), gid);
    assert.equal(await statusOf(w.dtx, gid), 'succeed');
    assert.deepEqual(await branchStatuses(w.dtx, gid), ['succeed', 'succeed']);
    // submitted before the crash: no back-check through QueryPrepared; both branches again
    assert.deepEqual(w.busi.callsOf(gid), ['TransOut action', 'TransIn action', 'TransOut action', 'TransIn action']);
    const last = w.busi.calls.filter((c) => c.query.gid === gid).at(-1)!;
    assert.equal(last.body, '{"amount":30}', 'the payload survived the crash');
  });
});
