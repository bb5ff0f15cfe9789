/**
 * The SQL stores' shared pieces without a database: the group commit's batching rules (what goes into a
 * batch, how many commit at once, how a failed runner settles its writes) and the time conversions.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StoreUnavailableError } from '../src/core/errors.js';
import { CommitQueue, type Pending } from '../src/store/sql/commit-queue.js';
import { isConnectionError, isUniqueViolation, storeError } from '../src/store/sql/errors.js';
import { parseSqlTime, toIsoUtc, toMysqlDatetime } from '../src/store/sql/time.js';
import { outcome } from './store-conformance.js';

/** A runner that records its batches and lets the test decide when each commits. */
function controlledRunner() {
  const batches: { writes: number[]; commit: (fail?: unknown) => void }[] = [];
  const run = (batch: Pending<number>[]) =>
    new Promise<void>((resolve, reject) => {
      batches.push({
        writes: batch.map((p) => p.write),
        commit: (fail) => {
          if (fail) reject(fail);
          else {
            for (const p of batch) {
              if (p.write < 0) p.reject(new Error(`write ${p.write} refused`));
              else p.resolve(p.write * 10);
            }
            resolve();
          }
        },
      });
    });
  return { batches, run };
}

const turn = () => new Promise((r) => setImmediate(r));

describe('CommitQueue', () => {
  it('writes of one turn share a batch; writes queued while it commits share the next', async () => {
    const { batches, run } = controlledRunner();
    const gc = new CommitQueue<number>(run, { maxInFlight: 1 });
    const first = [1, 2, 3].map((w) => gc.submit<number>(w));
    await turn();
    assert.deepEqual(
      batches.map((b) => b.writes),
      [[1, 2, 3]],
    );
    const second = [4, 5].map((w) => gc.submit<number>(w));
    await turn();
    assert.equal(batches.length, 1, 'the next batch waits for the one in flight');
    batches[0]!.commit();
    assert.deepEqual(await Promise.all(first), [10, 20, 30]);
    for (let i = 0; i < 10 && batches.length < 2; i++) await turn();
    assert.deepEqual(batches[1]?.writes, [4, 5]);
    batches[1]!.commit();
    assert.deepEqual(await Promise.all(second), [40, 50]);
    await gc.drain();
  });

  it('a write the runner rejects fails alone; a runner that throws rejects what it left unsettled', async () => {
    const { batches, run } = controlledRunner();
    const gc = new CommitQueue<number>(run);
    const ok = outcome(gc.submit(1));
    const refused = gc.submit(-1).then(
      () => 'ok',
      (e: Error) => e.message,
    );
    await turn();
    batches[0]!.commit();
    assert.equal(await ok, 'ok');
    assert.equal(await refused, 'write -1 refused');

    const lost = [gc.submit(7), gc.submit(8)].map((p) =>
      p.then(
        () => 'ok',
        (e: Error) => e.message,
      ),
    );
    await turn();
    batches[1]!.commit(new StoreUnavailableError('connection lost before COMMIT was acknowledged'));
    assert.deepEqual(await Promise.all(lost), [
      'connection lost before COMMIT was acknowledged',
      'connection lost before COMMIT was acknowledged',
    ]);
  });

  it('runs up to maxInFlight batches at once, and drain waits for all of them', async () => {
    const { batches, run } = controlledRunner();
    const gc = new CommitQueue<number>(run, { maxInFlight: 2 });
    const a = gc.submit(1);
    await turn();
    const b = gc.submit(2);
    await turn();
    const c = gc.submit(3);
    await turn();
    assert.deepEqual(
      batches.map((x) => x.writes),
      [[1], [2]],
      'two in flight, the third write waits',
    );
    let drained = false;
    const d = gc.drain().then(() => {
      drained = true;
    });
    batches[1]!.commit();
    assert.equal(await b, 20, 'batches settle independently');
    for (let i = 0; i < 10 && batches.length < 3; i++) await turn();
    assert.deepEqual(batches[2]?.writes, [3], 'a slot freed: the waiting write goes');
    batches[0]!.commit();
    batches[2]!.commit();
    assert.deepEqual(await Promise.all([a, c]), [10, 30]);
    await d;
    assert.ok(drained);
  });

  it('maxBatch and maxBatchWeight bound a batch; a write heavier than the bound goes alone', async () => {
    const batches: number[][] = [];
    const gc = new CommitQueue<number>(
      async (batch) => {
        batches.push(batch.map((p) => p.write));
        for (const p of batch) p.resolve(p.write);
      },
      { maxBatch: 3, weight: (w) => w, maxBatchWeight: 100 },
    );
    assert.deepEqual(
      await Promise.all([1, 2, 3, 4, 500, 5, 60, 50].map((w) => gc.submit(w))),
      [1, 2, 3, 4, 500, 5, 60, 50],
    );
    assert.deepEqual(batches, [[1, 2, 3], [4], [500], [5, 60], [50]]);
  });
});

describe('SQL time conversions', () => {
  it('writes UTC with milliseconds and reads any offset back to the same instant', () => {
    const ms = Date.UTC(2026, 0, 2, 3, 4, 5, 67);
    assert.equal(toIsoUtc(ms), '2026-01-02 03:04:05.067Z');
    assert.equal(toMysqlDatetime(ms), '2026-01-02 03:04:05.067');
    assert.equal(parseSqlTime('2026-01-02 03:04:05.067+00'), ms);
    assert.equal(parseSqlTime('2026-01-02 11:04:05.067+08'), ms);
    assert.equal(parseSqlTime('2026-01-01 21:34:05.067-05:30'), ms);
    assert.equal(parseSqlTime('2026-01-02 03:04:05.067'), ms, 'no offset: UTC (MySQL DATETIME)');
    assert.equal(parseSqlTime('2026-01-02T03:04:05.0671234Z'), ms, 'sub-ms digits dropped');
    assert.equal(parseSqlTime('2026-01-02 03:04:05'), ms - 67);
    assert.throws(() => parseSqlTime('01/02/2026 03:04:05 PST'), /cannot parse a SQL time/);
  });

  it('renders each millisecond of a second, and times going back and forth, as Date#toISOString does', () => {
    const iso = (ms: number) => new Date(ms).toISOString().replace('T', ' ').replace('Z', '');
    const times: number[] = [];
    const second = Date.UTC(2026, 11, 31, 23, 59, 59);
    for (let i = 0; i < 1000; i++) times.push(second + i); // the same second, then the next year below
    // two and three seconds taking turns (now and a retry's next_cron_time; then one more)
    for (let i = 0; i < 50; i++) times.push(second + 2000 + i, second + 60_000 + i);
    for (let i = 0; i < 50; i++) times.push(second + 2000 + i, second + 60_000 + i, second - 3_600_000 + i);
    times.push(
      second + 1000,
      second + 999,
      second + 1000,
      0,
      Date.UTC(1000, 0, 1),
      Date.UTC(9999, 11, 31, 23, 59, 59, 999),
    );
    // 500 times spread over years 1000-9999 (a fixed stride, so a failure names the same time on every run)
    const span = Date.UTC(9999, 0, 1) - Date.UTC(1000, 0, 1);
    for (let i = 0; i < 500; i++)
      times.push(Date.UTC(1000, 0, 1) + Math.floor((span / 500) * i) + ((i * 7919) % 86_400_000));
    for (const ms of times) {
      assert.equal(toMysqlDatetime(ms), iso(ms), `ms ${ms}`);
      assert.equal(toIsoUtc(ms), `${iso(ms)}Z`, `ms ${ms}`);
    }
  });
});

describe('SQL error classification', () => {
  it('connection problems become StoreUnavailableError; unique violations UniqueConflictError', () => {
    for (const e of [
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }),
      new Error('Connection terminated unexpectedly'),
      Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }),
      Object.assign(new Error('the database system is starting up'), { code: '57P03' }),
      Object.assign(new Error('Connection lost: The server closed the connection.'), {
        code: 'PROTOCOL_CONNECTION_LOST',
        fatal: true,
      }),
    ]) {
      assert.ok(isConnectionError(e), e.message);
      assert.ok(storeError('postgres', e) instanceof StoreUnavailableError, e.message);
    }
    const constraint = Object.assign(new Error('duplicate key value'), { code: '23505' });
    assert.ok(!isConnectionError(constraint));
    assert.ok(isUniqueViolation(constraint));
    assert.ok(isUniqueViolation(Object.assign(new Error('Duplicate entry'), { code: 'ER_DUP_ENTRY', errno: 1062 })));
    const syntax = Object.assign(new Error('syntax error'), { code: '42601' });
    assert.equal(storeError('postgres', syntax), syntax, 'other errors pass through as they are');
  });
});
