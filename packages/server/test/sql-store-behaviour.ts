/**
 * What both SQL stores (PostgreSQL, MySQL/MariaDB) must show beyond the conformance suite: the group commit
 * (writes of one tick share one commit, a failing write is rolled back alone, truthful results under load),
 * millisecond times, leasing from two instances, and payloads as exact bytes.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { Store } from '../src/store/store.js';
import { assertSameBytes, at, makeBranch, makeTrans, NON_UTF8, outcome, plain } from './store-conformance.js';

/** A SQL store with its group-commit counters. */
export type SqlBatchStore = Store & { readonly stats: { batches: number; writes: number; replays: number } };

/** Registers the shared tests in the caller's describe; `open` gives a store on one schema / database. */
export function sqlStoreBehaviour(open: () => Promise<SqlBatchStore>): void {
  it('writes issued in one tick share one commit; a failing write is rolled back alone', async () => {
    const store = await open();
    try {
      await store.saveNew(makeTrans('existing'), [makeBranch('existing', '01', 'action')]);
      await store.createKV('topics', 't', 'v1', at(1));
      const batchesBefore = store.stats.batches;

      const news = Array.from({ length: 50 }, (_, i) =>
        outcome(store.saveNew(makeTrans(`new-${i}`), [makeBranch(`new-${i}`, '01', 'action')])),
      );
      const dupGid = outcome(store.saveNew(makeTrans('existing', { customData: 'dup' }), []));
      const lostCas = outcome(store.changeStatus('existing', 'prepared', 'succeed', {}, at(2)));
      const halfSave = outcome(
        store.saveNew(makeTrans('half'), [makeBranch('half', '01', 'action'), makeBranch('half', '01', 'action')]),
      );
      const halfInsert = outcome(
        store.insertBranches('existing', 'submitted', [
          makeBranch('existing', '02', 'action'),
          makeBranch('existing', '01', 'action'),
        ]),
      );
      const goodCas = outcome(
        store.changeStatus('existing', 'submitted', 'aborting', { rollbackReason: 'why' }, at(4)),
      );
      // sees the status written by goodCas earlier in the same commit
      const afterCas = outcome(
        store.insertBranches('existing', 'aborting', [makeBranch('existing', '03', 'compensate')]),
      );
      const loserCas = outcome(store.changeStatus('existing', 'submitted', 'succeed', {}, at(5)));
      const touch = outcome(store.touchCronTime('new-0', 'submitted', at(99), 20, at(6)));

      assert.deepEqual(await Promise.all(news), Array(50).fill('ok'));
      assert.equal(await dupGid, 'UniqueConflict');
      assert.equal(await lostCas, 'NotFound');
      assert.equal(await halfSave, 'UniqueConflict', 'a duplicate branch inside saveNew fails that saveNew');
      assert.equal(await halfInsert, 'UniqueConflict');
      assert.equal(await goodCas, 'ok');
      assert.equal(await afterCas, 'ok');
      assert.equal(await loserCas, 'NotFound');
      assert.equal(await touch, 'ok');
      assert.equal(store.stats.batches - batchesBefore, 1, 'one transaction … COMMIT for the whole tick');
      assert.ok(store.stats.replays >= 1, 'the failing statements made the batch replay with savepoints');
    } finally {
      await store.close();
    }

    // what the commit made durable, read through a new pool
    const reopened = await open();
    try {
      for (let i = 0; i < 50; i++) {
        assert.equal((await reopened.findTrans(`new-${i}`))?.status, 'submitted', `new-${i}`);
        assert.equal((await reopened.findBranches(`new-${i}`)).length, 1);
      }
      const existing = await reopened.findTrans('existing');
      assert.equal(existing?.status, 'aborting');
      assert.equal(existing?.rollbackReason, 'why');
      assert.equal(existing?.customData, '', 'the duplicate saveNew wrote nothing');
      assert.deepEqual(
        (await reopened.findBranches('existing')).map((b) => `${b.branchId}/${b.op}`),
        ['01/action', '03/compensate'],
        'the half-done insertBranches left no 02/action',
      );
      assert.equal(await reopened.findTrans('half'), undefined, 'the half-done saveNew left no global row');
      assert.deepEqual(await reopened.findBranches('half'), []);
      assert.equal((await reopened.findTrans('new-0'))?.nextCronTime, at(99));
    } finally {
      await reopened.close();
    }
  });

  it('many concurrent callers: every write settles truthfully and batches are shared', async () => {
    const store = await open();
    try {
      const before0 = { ...store.stats };
      const n = 400;
      // 400 sagas' worth of writes, issued over several ticks, as a busy coordinator would
      const results = await Promise.all(
        Array.from({ length: n }, async (_, i) => {
          await new Promise((r) => setImmediate(r));
          const gid = `busy-${i}`;
          const branches = [makeBranch(gid, '01', 'compensate'), makeBranch(gid, '01', 'action')];
          await store.saveNew(makeTrans(gid), branches);
          await store.updateBranches(gid, 'submitted', [{ ...branches[1]!, status: 'succeed', finishTime: at(2) }]);
          await store.changeStatus(gid, 'submitted', 'succeed', { finishTime: at(3) }, at(3));
          // a stale writer loses
          return outcome(store.updateBranches(gid, 'submitted', [{ ...branches[0]!, status: 'succeed' }]));
        }),
      );
      assert.deepEqual(new Set(results), new Set(['NotFound']));
      const writes = store.stats.writes - before0.writes;
      const batches = store.stats.batches - before0.batches;
      assert.equal(writes, 4 * n);
      assert.ok(batches < writes, `writes were grouped: ${writes} writes in ${batches} batches`);
      for (const i of [0, 199, 399]) {
        const t = await store.findTrans(`busy-${i}`);
        assert.equal(t?.status, 'succeed');
        assert.deepEqual(
          (await store.findBranches(`busy-${i}`)).map((b) => b.status),
          ['prepared', 'succeed'],
        );
      }
    } finally {
      await store.close();
    }
  });

  it('a saga of 40,000 branch rows commits, next to concurrent writes of its batch; one failing write fails alone', async () => {
    const store = await open();
    try {
      const rows = (gid: string, n: number, from = 0) =>
        Array.from({ length: n }, (_, i) =>
          makeBranch(gid, String(from + i).padStart(6, '0'), i % 2 ? 'compensate' : 'action'),
        );
      await store.saveNew(makeTrans('big-grown'), []);
      await store.saveNew(makeTrans('big-taken'), []);
      const huge = rows('big-huge', 40_000);
      const added = rows('big-grown', 30_000);
      // one tick: the big writes share their batch with small ones, a duplicate gid and a duplicate branch
      const settled = await Promise.all([
        outcome(store.saveNew(makeTrans('big-small-a'), rows('big-small-a', 2))),
        outcome(store.saveNew(makeTrans('big-huge'), huge)),
        outcome(store.saveNew(makeTrans('big-taken'), rows('big-taken', 1))),
        outcome(store.insertBranches('big-grown', 'submitted', added)),
        outcome(
          store.saveNew(makeTrans('big-dup-branch'), [...rows('big-dup-branch', 3), ...rows('big-dup-branch', 1)]),
        ),
        outcome(store.saveNew(makeTrans('big-small-b'), rows('big-small-b', 2))),
      ]);
      assert.deepEqual(settled, ['ok', 'ok', 'UniqueConflict', 'ok', 'UniqueConflict', 'ok']);
      const found = await store.findBranches('big-huge');
      assert.equal(found.length, 40_000);
      assert.deepEqual(
        found.map((b) => `${b.id} ${b.branchId}/${b.op}`),
        huge.map((b) => `${b.id} ${b.branchId}/${b.op}`),
        'every row, with the id reported to the caller',
      );
      assert.deepEqual(
        (await store.findBranches('big-grown')).map((b) => b.id),
        added.map((b) => b.id),
      );
      assert.equal(await store.findTrans('big-dup-branch'), undefined);
      assert.deepEqual(await store.findBranches('big-dup-branch'), []);
      assert.equal((await store.findBranches('big-small-b')).length, 2);

      // and all 40,000 results recorded in one write, next to a lost CAS and a good one
      const [updated, lost, good] = await Promise.all([
        outcome(
          store.updateBranches(
            'big-huge',
            'submitted',
            huge.map((b) => ({ ...b, status: 'succeed' as const, finishTime: at(7), updateTime: at(7) })),
          ),
        ),
        outcome(store.changeStatus('big-small-a', 'prepared', 'succeed', {}, at(7))),
        outcome(store.changeStatus('big-small-b', 'submitted', 'succeed', { finishTime: at(7) }, at(7))),
      ]);
      assert.deepEqual([updated, lost, good], ['ok', 'NotFound', 'ok']);
      const after = await store.findBranches('big-huge');
      assert.equal(after.filter((b) => b.status === 'succeed' && b.finishTime === at(7)).length, 40_000);
      assert.equal((await store.findTrans('big-small-b'))?.status, 'succeed');
    } finally {
      await store.close();
    }
  });

  it('keeps millisecond times exactly', async () => {
    const store = await open();
    try {
      const t = makeTrans('ms', { createTime: at(1) + 123, updateTime: at(2) + 7, nextCronTime: at(3) + 999 });
      await store.saveNew(t, [makeBranch('ms', '01', 'action', { createTime: at(1) + 1, updateTime: at(1) + 2 })]);
      await store.changeStatus('ms', 'submitted', 'aborting', { nextCronTime: at(9) + 456 }, at(4) + 321);
      const found = await store.findTrans('ms');
      assert.deepEqual(
        [found?.createTime, found?.updateTime, found?.nextCronTime],
        [at(1) + 123, at(4) + 321, at(9) + 456],
      );
      const [b] = await store.findBranches('ms');
      assert.deepEqual([b?.createTime, b?.updateTime], [at(1) + 1, at(1) + 2]);
    } finally {
      await store.close();
    }
  });

  it('two instances leasing concurrently never get the same gid', async () => {
    const a = await open();
    const b = await open();
    try {
      for (let i = 0; i < 60; i++) await a.saveNew(makeTrans(`lease-${i}`, { nextCronTime: at(1) }), []);
      const rounds = await Promise.all(
        Array.from({ length: 6 }, (_, i) => (i % 2 ? a : b).lockDue(at(5), at(60), `o${i}`, 15, at(2))),
      );
      const all = rounds.flatMap((r) => r.map((t) => t.gid)).filter((g) => g.startsWith('lease-'));
      assert.equal(new Set(all).size, all.length, 'no gid leased twice');
      const rest = await a.lockDue(at(5), at(60), 'last', 100, at(2));
      const leased = [...all, ...rest.map((t) => t.gid).filter((g) => g.startsWith('lease-'))];
      assert.equal(new Set(leased).size, 60, 'every due trans leased exactly once');
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('payloads are bytes: NUL, invalid UTF-8 and 5 MiB survive a new connection', async () => {
    const store = await open();
    const big = Buffer.alloc(5 * 1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7919) & 0xff;
    big.set(NON_UTF8, 4242);
    await store.saveNew(makeTrans('bytes'), [
      makeBranch('bytes', '01', 'action', { binData: big }),
      makeBranch('bytes', '01', 'compensate', { binData: NON_UTF8 }),
    ]);
    const before0 = (await store.findBranches('bytes')).map(plain);
    await store.close();
    const again = await open();
    try {
      const found = await again.findBranches('bytes');
      assertSameBytes(found[0]!.binData, big, '5 MiB');
      assertSameBytes(found[1]!.binData, NON_UTF8, 'non-UTF-8');
      assert.deepEqual(found.map(plain), before0);
    } finally {
      await again.close();
    }
  });
}
