/**
 * The sub-transaction barrier (spec §9.4, §9.5) on real databases: one scenario list, run against SQLite (temp
 * file), PostgreSQL and MariaDB/MySQL. Needs the servers of `bash scripts/services.sh`; never skips.
 * Run one dialect with `node --test --test-name-pattern=postgres packages/client/dist/test/barrier-sql.test.js`.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { BranchBarrier } from '../src/barrier/branch-barrier.js';
import { deleteOldBarrierRows } from '../src/barrier/cleanup.js';
import { ensureBarrierTable } from '../src/barrier/ddl.js';
import { BarrierTableMissingError } from '../src/barrier/missing-table-error.js';
import { DuplicatedError, FailureError, OngoingError } from '../src/errors.js';
import { type DialectHarness, openMysql, openPostgres, openSqlite } from './support/db.js';

function barrier(gid: string, op: string, trans_type = 'saga', branch_id = '01'): BranchBarrier {
  return new BranchBarrier({ gid, trans_type, branch_id, op });
}

function row(op: string, reason: string, trans_type = 'saga', barrier_id = '01', branch_id = '01') {
  return { trans_type, branch_id, op, barrier_id, reason };
}

/** Settles a promise into a value we can inspect later, so that a rejection is never unhandled meanwhile. */
function settle<T>(p: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  return p.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
}

function barrierSuite<Tx>(name: string, open: () => Promise<DialectHarness<Tx>>): void {
  describe(`barrier on ${name}`, () => {
    let h: DialectHarness<Tx>;
    before(async () => {
      h = await open();
    });
    after(async () => {
      await h?.close();
    });

    /** A business that adds `amount` to `account` and counts its runs. */
    function credit(account: string, amount: number) {
      const business = async (tx: Tx) => {
        business.runs += 1;
        await h.credit(tx, account, amount);
      };
      business.runs = 0;
      return business;
    }

    test('ensureBarrierTable is idempotent, also when called concurrently', async () => {
      await Promise.all([ensureBarrierTable(h.db), ensureBarrierTable(h.db), ensureBarrierTable(h.db)]);
      const gid = h.newGid();
      assert.equal(await barrier(gid, 'action').call(h.db, async () => {}), 'executed');
      assert.deepEqual(await h.barrierRows(gid), [row('action', 'action')]);
    });

    test('deleteOldBarrierRows deletes rows older than the cut-off in batches and keeps newer ones', async () => {
      const old = [h.newGid(), h.newGid(), h.newGid()];
      const fresh = h.newGid();
      for (const gid of [...old, fresh])
        assert.equal(await barrier(gid, 'action').call(h.db, async () => {}), 'executed');
      for (const gid of old) await h.age(gid, new Date('2001-01-01T00:00:00Z'));
      const n = await deleteOldBarrierRows(h.db, { olderThan: new Date('2002-01-01T00:00:00Z'), batchSize: 2 });
      assert.equal(n, 3);
      for (const gid of old) assert.deepEqual(await h.barrierRows(gid), []);
      assert.deepEqual(await h.barrierRows(fresh), [row('action', 'action')]);
      await assert.rejects(deleteOldBarrierRows(h.db, { olderThan: new Date('x') }), /olderThan/);
    });

    test('an action runs once; a repeated delivery is skipped', async () => {
      const gid = h.newGid();
      const account = randomUUID();
      const business = credit(account, 30);
      assert.equal(await barrier(gid, 'action').call(h.db, business), 'executed');
      assert.equal(await barrier(gid, 'action').call(h.db, business), 'duplicate');
      assert.equal(await barrier(gid, 'action').call(h.db, business), 'duplicate');
      assert.equal(business.runs, 1);
      assert.equal(await h.balance(account), 30);
      assert.deepEqual(await h.barrierRows(gid), [row('action', 'action')]);
    });

    test('a compensation after its action runs once', async () => {
      const gid = h.newGid();
      const account = randomUUID();
      assert.equal(await barrier(gid, 'action').call(h.db, credit(account, 30)), 'executed');
      const undo = credit(account, -30);
      assert.equal(await barrier(gid, 'compensate').call(h.db, undo), 'executed');
      assert.equal(await barrier(gid, 'compensate').call(h.db, undo), 'duplicate');
      assert.equal(undo.runs, 1);
      assert.equal(await h.balance(account), 0);
      assert.deepEqual(await h.barrierRows(gid), [row('action', 'action'), row('compensate', 'compensate')]);
    });

    test('null compensation: a compensation before its action is skipped, and the late action is blocked', async () => {
      const gid = h.newGid();
      const account = randomUUID();
      const undo = credit(account, -30);
      assert.equal(await barrier(gid, 'compensate').call(h.db, undo), 'null-compensation');
      const action = credit(account, 30);
      assert.equal(await barrier(gid, 'action').call(h.db, action), 'duplicate');
      assert.equal(await barrier(gid, 'compensate').call(h.db, undo), 'duplicate');
      assert.equal(undo.runs, 0);
      assert.equal(action.runs, 0);
      assert.equal(await h.balance(account), 0);
      // The compensation inserted the action's row: that row is what blocks the hanging action.
      assert.deepEqual(await h.barrierRows(gid), [row('action', 'compensate'), row('compensate', 'compensate')]);
    });

    test('tcc: try then confirm twice runs confirm once; cancel after try runs; cancel before try blocks try', async () => {
      const account = randomUUID();
      const gid = h.newGid();
      assert.equal(await barrier(gid, 'try', 'tcc').call(h.db, credit(account, 1)), 'executed');
      const confirm = credit(account, 10);
      assert.equal(await barrier(gid, 'confirm', 'tcc').call(h.db, confirm), 'executed');
      assert.equal(await barrier(gid, 'confirm', 'tcc').call(h.db, confirm), 'duplicate');
      assert.equal(confirm.runs, 1);
      assert.deepEqual(await h.barrierRows(gid), [row('confirm', 'confirm', 'tcc'), row('try', 'try', 'tcc')]);

      const cancelled = h.newGid();
      assert.equal(await barrier(cancelled, 'try', 'tcc').call(h.db, credit(account, 100)), 'executed');
      assert.equal(await barrier(cancelled, 'cancel', 'tcc').call(h.db, credit(account, -100)), 'executed');

      const early = h.newGid();
      const lateTry = credit(account, 1000);
      assert.equal(await barrier(early, 'cancel', 'tcc').call(h.db, credit(account, -1000)), 'null-compensation');
      assert.equal(await barrier(early, 'try', 'tcc').call(h.db, lateTry), 'duplicate');
      assert.equal(lateTry.runs, 0);
      assert.deepEqual(await h.barrierRows(early), [row('cancel', 'cancel', 'tcc'), row('try', 'cancel', 'tcc')]);

      assert.equal(await h.balance(account), 11);
    });

    test('workflow rollback maps to action: a rollback before the action blocks it', async () => {
      const gid = h.newGid();
      const account = randomUUID();
      assert.equal(await barrier(gid, 'rollback', 'workflow').call(h.db, credit(account, -5)), 'null-compensation');
      const action = credit(account, 5);
      assert.equal(await barrier(gid, 'action', 'workflow').call(h.db, action), 'duplicate');
      assert.equal(action.runs, 0);
      assert.deepEqual(await h.barrierRows(gid), [
        row('action', 'rollback', 'workflow'),
        row('rollback', 'rollback', 'workflow'),
      ]);
    });

    test('two guarded calls in one handler use barrier ids 01 and 02', async () => {
      const gid = h.newGid();
      const a = randomUUID();
      const b = randomUUID();
      const handler = async (op: string, sign: number) => {
        const bb = barrier(gid, op);
        const first = await bb.call(h.db, credit(a, sign * 5));
        const second = await bb.call(h.db, credit(b, sign * 7));
        assert.equal(bb.barrierId, '02');
        return [first, second];
      };
      assert.deepEqual(await handler('action', 1), ['executed', 'executed']);
      assert.deepEqual(await handler('action', 1), ['duplicate', 'duplicate']);
      assert.deepEqual([await h.balance(a), await h.balance(b)], [5, 7]);
      assert.deepEqual(await handler('compensate', -1), ['executed', 'executed']);
      assert.deepEqual([await h.balance(a), await h.balance(b)], [0, 0]);
      assert.deepEqual(await h.barrierRows(gid), [
        row('action', 'action', 'saga', '01'),
        row('compensate', 'compensate', 'saga', '01'),
        row('action', 'action', 'saga', '02'),
        row('compensate', 'compensate', 'saga', '02'),
      ]);
    });

    test('a business error rolls back the business write and the barrier row; a retry then runs', async () => {
      const gid = h.newGid();
      const account = randomUUID();
      const boom = new Error('disk on fire');
      await assert.rejects(
        barrier(gid, 'action').call(h.db, async (tx) => {
          await h.credit(tx, account, 30);
          throw boom;
        }),
        (err) => err === boom,
      );
      assert.equal(await h.balance(account), 0);
      assert.deepEqual(await h.barrierRows(gid), []);
      assert.equal(await barrier(gid, 'action').call(h.db, credit(account, 30)), 'executed');
      assert.equal(await h.balance(account), 30);
    });

    test('FailureError and OngoingError pass through unchanged, and roll back', async () => {
      const account = randomUUID();
      for (const err of [new FailureError('out of stock'), new OngoingError('still thinking')]) {
        const gid = h.newGid();
        await assert.rejects(
          barrier(gid, 'action').call(h.db, async (tx) => {
            await h.credit(tx, account, 1);
            throw err;
          }),
          (thrown) => thrown === err,
        );
        assert.deepEqual(await h.barrierRows(gid), []);
      }
      assert.equal(await h.balance(account), 0);
    });

    test('10 parallel deliveries of one action on separate connections run the business once', async () => {
      const group = await h.separate(10);
      try {
        const gid = h.newGid();
        const account = randomUUID();
        let runs = 0;
        const outcomes = await Promise.all(
          group.dbs.map((db) =>
            barrier(gid, 'action').call(db, async (tx) => {
              runs += 1;
              await h.credit(tx, account, 10);
              // Keep the local transaction open until the 9 other deliveries are waiting on its barrier row.
              await group.waitBlocked(tx, 9);
            }),
          ),
        );
        assert.equal(runs, 1);
        assert.deepEqual(outcomes.sort(), [...Array(9).fill('duplicate'), 'executed']);
        assert.equal(await h.balance(account), 10);
        assert.deepEqual(await h.barrierRows(gid), [row('action', 'action')]);
      } finally {
        await group.close();
      }
    });

    test('10 parallel deliveries through one barrier db run the business once', async () => {
      const gid = h.newGid();
      const account = randomUUID();
      const business = credit(account, 10);
      const outcomes = await Promise.all(Array.from({ length: 10 }, () => barrier(gid, 'action').call(h.db, business)));
      assert.equal(business.runs, 1);
      assert.deepEqual(outcomes.sort(), [...Array(9).fill('duplicate'), 'executed']);
      assert.equal(await h.balance(account), 10);
    });

    test('msg: a back-check before the local transaction rolls it back; the msg call is then DUPLICATED', async () => {
      const gid = h.newGid();
      const account = randomUUID();
      await assert.rejects(barrier(gid, 'msg', 'msg', '00').queryPrepared(h.db), FailureError);
      await assert.rejects(barrier(gid, 'msg', 'msg', '00').queryPrepared(h.db), FailureError);
      const business = credit(account, 10);
      await assert.rejects(barrier(gid, 'msg', 'msg', '00').call(h.db, business), DuplicatedError);
      assert.equal(business.runs, 0);
      assert.equal(await h.balance(account), 0);
      assert.deepEqual(await h.barrierRows(gid), [row('msg', 'rollback', 'msg', '01', '00')]);
    });

    test('msg: a committed local transaction wins the back-check; a repeated msg call is DUPLICATED', async () => {
      const gid = h.newGid();
      const account = randomUUID();
      const business = credit(account, 10);
      assert.equal(await barrier(gid, 'msg', 'msg', '00').call(h.db, business), 'executed');
      await barrier(gid, 'msg', 'msg', '00').queryPrepared(h.db);
      await barrier(gid, 'msg', 'msg', '00').queryPrepared(h.db);
      await assert.rejects(barrier(gid, 'msg', 'msg', '00').call(h.db, business), DuplicatedError);
      assert.equal(business.runs, 1);
      assert.equal(await h.balance(account), 10);
      assert.deepEqual(await h.barrierRows(gid), [row('msg', 'msg', 'msg', '01', '00')]);
    });

    test('msg: a back-check during the local transaction waits for it, and succeeds when it commits', async () => {
      const group = await h.separate(2);
      try {
        const gid = h.newGid();
        const account = randomUUID();
        let check: ReturnType<typeof settle<void>> | undefined;
        const outcome = await barrier(gid, 'msg', 'msg', '00').call(group.dbs[0]!, async (tx) => {
          await h.credit(tx, account, 10);
          check = settle(barrier(gid, 'msg', 'msg', '00').queryPrepared(group.dbs[1]!));
          await group.waitBlocked(tx, 1);
        });
        assert.equal(outcome, 'executed');
        assert.deepEqual(await check, { ok: true, value: undefined });
        assert.equal(await h.balance(account), 10);
      } finally {
        await group.close();
      }
    });

    test('msg: a back-check during the local transaction waits for it, and fails when it rolls back', async () => {
      const group = await h.separate(2);
      try {
        const gid = h.newGid();
        const account = randomUUID();
        const boom = new Error('local failure');
        let check: ReturnType<typeof settle<void>> | undefined;
        await assert.rejects(
          barrier(gid, 'msg', 'msg', '00').call(group.dbs[0]!, async (tx) => {
            await h.credit(tx, account, 10);
            check = settle(barrier(gid, 'msg', 'msg', '00').queryPrepared(group.dbs[1]!));
            await group.waitBlocked(tx, 1);
            throw boom;
          }),
          (err) => err === boom,
        );
        const result = await check;
        assert.equal(result?.ok, false);
        assert.ok(!result.ok && result.error instanceof FailureError, `expected a FailureError, got ${String(result)}`);
        await assert.rejects(barrier(gid, 'msg', 'msg', '00').call(h.db, credit(account, 10)), DuplicatedError);
        assert.equal(await h.balance(account), 0);
        assert.deepEqual(await h.barrierRows(gid), [row('msg', 'rollback', 'msg', '01', '00')]);
      } finally {
        await group.close();
      }
    });

    test('a missing barrier table gives an error that says how to create it', async () => {
      for (const { db, table } of h.missingTables()) {
        const business = credit(randomUUID(), 1);
        const check = (err: unknown) => {
          assert.ok(err instanceof BarrierTableMissingError, `expected BarrierTableMissingError, got ${String(err)}`);
          assert.equal(err.table, table);
          assert.match(err.message, new RegExp(`barrier table ${table.replace('.', '\\.')} does not exist`));
          assert.match(err.message, /ensureBarrierTable\(db\)/);
          assert.match(err.message, new RegExp(`sql/barrier\\.${h.dialect}\\.sql`));
          return true;
        };
        await assert.rejects(barrier(h.newGid(), 'action').call(db, business), check);
        await assert.rejects(barrier(h.newGid(), 'compensate').call(db, business), check);
        await assert.rejects(barrier(h.newGid(), 'msg', 'msg', '00').queryPrepared(db), check);
        assert.equal(business.runs, 0);
      }
    });
  });
}

barrierSuite('sqlite', openSqlite);
barrierSuite('postgres', openPostgres);
barrierSuite('mysql', openMysql);
