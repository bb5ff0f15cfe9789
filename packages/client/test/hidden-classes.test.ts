import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import type { Dispatcher } from 'undici';
import type { BarrierDb, BarrierRow, BarrierTransaction } from '../src/barrier/barrier-db.js';
import { BranchBarrier } from '../src/barrier/branch-barrier.js';
import { ensureBarrierTable } from '../src/barrier/ddl.js';
import { sqliteBarrierDb } from '../src/barrier/sqlite.js';
import { httpCall } from '../src/http-call.js';
import { oneHiddenClass } from './support/shapes.js';

// Objects made on every guarded call or coordinator call must keep one hidden class once V8 has optimised the code
// making them. On Node 20 an optimised `{ ...a, b }` (or a property added to an optimised `{ ...a }`) makes a new
// one on each call: old-space garbage per call, and megamorphic reads wherever the objects go.
const CALLS = 30_000;
const lastOf = <T>(xs: T[]): T[] => xs.slice(-20);

describe('hidden classes of per-call objects', () => {
  it('the barrier rows of a guarded compensation (its own row and the null-compensation row)', async () => {
    // a real barrier table (SQLite in memory); every row the barrier inserts is kept as it was handed over
    const rows: BarrierRow[] = [];
    const real = sqliteBarrierDb(new Database(':memory:'));
    await ensureBarrierTable(real);
    const db: BarrierDb<Database.Database> = Object.assign(Object.create(real) as BarrierDb<Database.Database>, {
      transaction: <T>(work: (tx: BarrierTransaction<Database.Database>) => Promise<T>) =>
        real.transaction((tx) =>
          work({ handle: tx.handle, insertIgnore: (r: BarrierRow) => (rows.push(r), tx.insertIgnore(r)) }),
        ),
    });
    for (let i = 0; i < CALLS / 2; i++) {
      const b = new BranchBarrier({ trans_type: 'saga', gid: `g${i}`, branch_id: '01', op: 'compensate' });
      // both rows inserted: a compensation without its action, which the barrier answers without the business
      assert.equal(await b.call(db, async () => {}), 'null-compensation');
    }
    assert.equal(rows.length, CALLS);
    assert.deepEqual(rows.at(-1), {
      gid: `g${CALLS / 2 - 1}`,
      branch_id: '01',
      op: 'compensate',
      barrier_id: '01',
      trans_type: 'saga',
      reason: 'compensate',
    });
    assert.equal(await real.selectReason(rows.at(-1)!), 'compensate'); // the rows are in the table
    assert.ok(oneHiddenClass(lastOf(rows.filter((r) => r.op === 'action'))));
    assert.ok(oneHiddenClass(lastOf(rows.filter((r) => r.op === 'compensate'))));
  });

  it('the headers of a call to the coordinator', async () => {
    const seen: Record<string, string>[] = [];
    const dispatcher = {
      request: async (o: { headers: Record<string, string> }) => {
        seen.push(o.headers);
        return { statusCode: 200, body: { text: async () => '{"dtm_result":"SUCCESS"}' } };
      },
    } as unknown as Dispatcher;
    const url = new URL('http://127.0.0.1:1/api/dtmsvr/submit');
    for (let i = 0; i < CALLS; i++) {
      const reply = await httpCall(dispatcher, {
        method: 'POST',
        url,
        body: '{}',
        headers: { 'x-n': `${i}` },
        timeoutMs: 1000,
      });
      assert.equal(reply.status, 200);
    }
    assert.deepEqual(seen.at(-1), { 'x-n': `${CALLS - 1}`, 'content-type': 'application/json' });
    assert.ok(oneHiddenClass(lastOf(seen)));
  });
});
