/**
 * The embedded SQLite store: the Store conformance suite on temp files, then what only a durable, group-committed
 * store has to show — writes of one event-loop turn share one commit with failures isolated by savepoints, data
 * survives close and reopen, and `reset: true` empties the file.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { MIGRATIONS } from '../src/store/sqlite/schema.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import {
  assertSameBytes,
  at,
  makeBranch,
  makeTrans,
  NON_UTF8,
  outcome,
  plain,
  storeConformance,
} from './store-conformance.js';

const suiteDir = mkdtempSync(join(tmpdir(), 'dtx-store-sqlite-'));
let files = 0;
storeConformance(
  'sqlite',
  async () => new SqliteStore({ path: join(suiteDir, `conformance-${++files}.sqlite`) }),
  async () => rmSync(suiteDir, { recursive: true, force: true }),
);

describe('SqliteStore: group commit and durability', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'dtx-store-sqlite-gc-'));
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  let n = 0;
  const freshPath = () => join(dir, `gc-${++n}.sqlite`);

  /** Count the transactions the store opens on its connection. */
  function countBegins(store: SqliteStore): () => number {
    const db = store.db as unknown as { exec: (sql: string) => unknown };
    const exec = db.exec.bind(store.db);
    let begins = 0;
    db.exec = (sql: string) => {
      if (/^\s*BEGIN/i.test(sql)) begins++;
      return exec(sql);
    };
    return () => begins;
  }

  it('writes issued in one tick share one commit; a failing write is rolled back alone', async () => {
    const path = freshPath();
    const store = new SqliteStore({ path });
    await store.saveNew(makeTrans('existing'), [makeBranch('existing', '01', 'action')]);
    await store.createKV('topics', 't', 'v1', at(1));
    const [kv] = await store.findKV('topics', 't');
    assert.ok(kv);
    const begins = countBegins(store);

    // all of these are queued synchronously, in this order, within one turn of the event loop
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
    const staleKv = outcome(store.updateKV({ ...kv, v: 'stale', version: 7 }, at(3)));
    const goodKv = outcome(store.updateKV({ ...kv, v: 'v2' }, at(3)));
    const goodCas = outcome(store.changeStatus('existing', 'submitted', 'aborting', { rollbackReason: 'why' }, at(4)));
    // sees the status written by goodCas earlier in the same commit
    const afterCas = outcome(
      store.insertBranches('existing', 'aborting', [makeBranch('existing', '03', 'compensate')]),
    );
    const loserCas = outcome(store.changeStatus('existing', 'submitted', 'succeed', {}, at(5)));
    const touch = outcome(store.touchCronTime('new-0', 'submitted', at(99), 20, at(6)));

    assert.deepEqual(await Promise.all(news), Array(50).fill('ok'));
    assert.equal(await dupGid, 'UniqueConflict');
    assert.equal(await lostCas, 'NotFound');
    assert.notEqual(await halfSave, 'ok', 'a duplicate branch inside saveNew fails that saveNew');
    assert.equal(await halfInsert, 'UniqueConflict');
    assert.equal(await staleKv, 'NotFound');
    assert.equal(await goodKv, 'ok');
    assert.equal(await goodCas, 'ok');
    assert.equal(await afterCas, 'ok');
    assert.equal(await loserCas, 'NotFound');
    assert.equal(await touch, 'ok');
    assert.equal(begins(), 1, 'one BEGIN … COMMIT for the whole turn');
    await store.close();

    // what the commit made durable, read back through a new connection
    const reopened = new SqliteStore({ path });
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
      const [kvAfter] = await reopened.findKV('topics', 't');
      assert.equal(kvAfter?.v, 'v2');
      assert.equal(kvAfter?.version, 2);
      const touched = await reopened.findTrans('new-0');
      assert.equal(touched?.nextCronTime, at(99));
    } finally {
      await reopened.close();
    }
  });

  it(
    'a write that fails with SQLITE_FULL settles every caller of its batch truthfully',
    {
      timeout: 15_000,
    },
    async () => {
      // SQLite rolls back the whole transaction on SQLITE_FULL (a full disk), savepoints included; max_page_count
      // produces the same error without filling the disk.
      const store = new SqliteStore({ path: freshPath() });
      try {
        await store.saveNew(makeTrans('before'), []);
        const pages = store.db.pragma('page_count', { simple: true }) as number;
        store.db.pragma(`max_page_count = ${pages + 20}`);
        const big = Buffer.alloc(2 * 1024 * 1024, 1);
        const gids = ['small-1', 'big', 'small-2'];
        const settled = await Promise.all([
          outcome(store.saveNew(makeTrans('small-1'), [])),
          outcome(store.saveNew(makeTrans('big'), [makeBranch('big', '01', 'action', { binData: big })])),
          outcome(store.saveNew(makeTrans('small-2'), [])),
        ]);
        assert.notEqual(settled[1], 'ok', 'the write that does not fit fails');
        store.db.pragma('max_page_count = 1073741823');
        for (const [i, gid] of gids.entries()) {
          const present = (await store.findTrans(gid)) !== undefined;
          assert.equal(present, settled[i] === 'ok', `${gid}: reported ${settled[i]} but present=${present}`);
        }
        await store.saveNew(makeTrans('after'), []);
        assert.equal((await store.findTrans('after'))?.gid, 'after', 'the store keeps working');
      } finally {
        await store.close();
      }
    },
  );

  /**
   * Make the next `n`-th statement of the group commit's own plumbing that matches `pattern` fail with a real
   * SQLite error. Nothing real reaches SAVEPOINT / ROLLBACK TO on a healthy file (they fail on I/O errors or a
   * corrupt file only, and this build of SQLite ignores heap limits), so the hook sits on the statement runner:
   * the matching statement is replaced by one SQLite rejects ("no such savepoint").
   */
  function failPlumbing(store: SqliteStore, pattern: RegExp, nth: number): () => number {
    const db = store.db as unknown as { exec: (sql: string) => unknown };
    const exec = db.exec.bind(store.db);
    let seen = 0;
    let failed = 0;
    db.exec = (sql: string) => {
      if (pattern.test(sql) && ++seen === nth) {
        failed++;
        return exec('ROLLBACK TO dtx_no_such_savepoint');
      }
      return exec(sql);
    };
    return () => failed;
  }

  for (const [what, pattern, nth] of [
    ['SAVEPOINT', /^SAVEPOINT /, 3],
    ['ROLLBACK TO', /^ROLLBACK TO /, 1],
  ] as const) {
    it(`a failing ${what} of the batch rejects every write of it; the process and later writes go on`, async () => {
      const store = new SqliteStore({ path: freshPath() });
      try {
        await store.saveNew(makeTrans('existing'), []);
        const failed = failPlumbing(store, pattern, nth);
        // one tick: one batch; the duplicate gid is the write whose failure runs ROLLBACK TO
        const gids = ['p-1', 'p-2', 'existing', 'p-3', 'p-4'];
        const settled = await Promise.all(gids.map((g) => outcome(store.saveNew(makeTrans(g), []))));
        assert.equal(failed(), 1, 'the failure was injected');
        for (const [i, r] of settled.entries()) assert.notEqual(r, 'ok', `${gids[i]} cannot have been committed`);
        for (const g of ['p-1', 'p-2', 'p-3', 'p-4']) {
          assert.equal(await store.findTrans(g), undefined, `${g}: the batch was rolled back`);
        }
        assert.equal(store.db.inTransaction, false, 'no transaction left open');
        const later = await Promise.all(
          ['p-1', 'q-1', 'existing'].map((g) => outcome(store.saveNew(makeTrans(g), []))),
        );
        assert.deepEqual(later, ['ok', 'ok', 'UniqueConflict'], 'later batches commit again');
        assert.equal((await store.findTrans('q-1'))?.gid, 'q-1');
      } finally {
        await store.close();
      }
    });
  }

  it('a transaction of 40,000 branch rows is saved in a batch with others, one failing alone', async () => {
    const store = new SqliteStore({ path: freshPath() });
    try {
      await store.saveNew(makeTrans('taken'), []);
      const many = Array.from({ length: 40_000 }, (_, i) =>
        makeBranch('huge', String(i + 1).padStart(5, '0'), i % 2 ? 'compensate' : 'action'),
      );
      const [huge, small, dup] = await Promise.all([
        outcome(store.saveNew(makeTrans('huge'), many)),
        outcome(store.saveNew(makeTrans('small'), [makeBranch('small', '01', 'action')])),
        outcome(store.saveNew(makeTrans('taken'), [makeBranch('taken', '01', 'action')])),
      ]);
      assert.deepEqual([huge, small, dup], ['ok', 'ok', 'UniqueConflict']);
      const found = await store.findBranches('huge');
      assert.equal(found.length, 40_000);
      assert.deepEqual(
        found.map((b) => b.id),
        many.map((b) => b.id),
      );
      await store.updateBranches(
        'huge',
        'submitted',
        many.map((b) => ({ ...b, status: 'succeed' as const, updateTime: at(9) })),
      );
      assert.ok((await store.findBranches('huge')).every((b) => b.status === 'succeed'));
    } finally {
      await store.close();
    }
  });

  it('more writes than one batch in one tick all commit', async () => {
    const store = new SqliteStore({ path: freshPath() });
    try {
      const count = 1300;
      const results = await Promise.all(
        Array.from({ length: count }, (_, i) => outcome(store.saveNew(makeTrans(`bulk-${i}`), []))),
      );
      assert.deepEqual(
        results.filter((r) => r !== 'ok'),
        [],
      );
      const page = await store.scanTrans({ position: '', limit: count + 10 });
      assert.equal(page.trans.length, count);
      assert.equal(new Set(page.trans.map((t) => t.id)).size, count, 'distinct ids');
    } finally {
      await store.close();
    }
  });

  it('close() lets writes that are still queued commit first', async () => {
    const path = freshPath();
    const store = new SqliteStore({ path });
    const saved = outcome(store.saveNew(makeTrans('queued'), [makeBranch('queued', '01', 'action')]));
    const created = outcome(store.createKV('topics', 'queued', 'v', at(1)));
    await store.close();
    assert.equal(await saved, 'ok');
    assert.equal(await created, 'ok');
    const reopened = new SqliteStore({ path });
    try {
      assert.equal((await reopened.findTrans('queued'))?.gid, 'queued');
      assert.equal((await reopened.findBranches('queued')).length, 1);
      assert.equal((await reopened.findKV('topics', 'queued')).length, 1);
    } finally {
      await reopened.close();
    }
  });

  it('data survives close and reopen of the same file, including a 5 MiB payload', async () => {
    const path = join(dir, 'nested', 'dirs', 'durable.sqlite');
    const big = Buffer.alloc(5 * 1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7919) & 0xff;
    big.set(NON_UTF8, 12345);
    const t = makeTrans('durable', { status: 'prepared', transType: 'tcc', customData: '{"x":1}' });
    const branches = [makeBranch('durable', '01', 'try', { binData: big })];
    let store = new SqliteStore({ path });
    await store.saveNew(t, branches);
    const added = [makeBranch('durable', '01', 'confirm', { binData: NON_UTF8 })];
    await store.insertBranches('durable', 'prepared', added);
    await store.changeStatus('durable', 'prepared', 'submitted', { nextCronTime: at(30) }, at(3));
    await store.createKV('topics', 'durable', '[]', at(3));
    const [kv] = await store.findKV('topics', 'durable');
    await store.updateKV({ ...kv!, v: '[1]' }, at(4));
    const transBefore = plain((await store.findTrans('durable'))!);
    const branchesBefore = (await store.findBranches('durable')).map(plain);
    await store.close();
    assert.ok(existsSync(path), 'the file (and its directories) were created');

    store = new SqliteStore({ path });
    try {
      assert.deepEqual(plain((await store.findTrans('durable'))!), transBefore);
      const found = await store.findBranches('durable');
      assert.deepEqual(
        found.map((b) => `${b.branchId}/${b.op}`),
        ['01/try', '01/confirm'],
      );
      assertSameBytes(found[0]!.binData, big, '5 MiB payload after reopen');
      assertSameBytes(found[1]!.binData, NON_UTF8, 'non-UTF-8 payload after reopen');
      assert.deepEqual(found.map(plain), branchesBefore);
      const [kvAfter] = await store.findKV('topics', 'durable');
      assert.equal(kvAfter?.version, 2);
      assert.equal(kvAfter?.v, '[1]');
      // the reopened store keeps working: ids continue, CAS still applies
      const next = makeTrans('after-reopen');
      await store.saveNew(next, []);
      assert.ok((next.id ?? 0) > (transBefore.id as number), 'ids keep growing after reopen');
      await store.changeStatus('durable', 'submitted', 'succeed', { finishTime: at(5) }, at(5));
      assert.equal((await store.findTrans('durable'))?.status, 'succeed');
    } finally {
      await store.close();
    }
  });

  it('`reset: true` empties the file; opening without it keeps the data', async () => {
    const path = freshPath();
    let store = new SqliteStore({ path });
    await store.saveNew(makeTrans('r1'), [makeBranch('r1', '01', 'action')]);
    await store.createKV('topics', 'r1', '[]', at(1));
    await store.close();

    store = new SqliteStore({ path, reset: false });
    assert.equal((await store.findTrans('r1'))?.gid, 'r1', 'kept without reset');
    await store.close();

    store = new SqliteStore({ path, reset: true });
    try {
      assert.equal(await store.findTrans('r1'), undefined);
      assert.deepEqual(await store.findBranches('r1'), []);
      assert.deepEqual(await store.findKV('', ''), []);
      assert.deepEqual(await store.scanTrans({ position: '', limit: 10 }), { trans: [], nextPosition: '' });
      // the schema is back and usable
      await store.saveNew(makeTrans('r1'), [makeBranch('r1', '01', 'action')]);
      await store.createKV('topics', 'r1', '[]', at(2));
      assert.equal((await store.findKV('topics', 'r1'))[0]?.version, 1);
    } finally {
      await store.close();
    }
  });
});

describe('SqliteStore: schema migrations', () => {
  it('a database of schema version 2 (before attempt history) is upgraded in place, its rows kept', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dtx-store-sqlite-v2-'));
    const path = join(dir, 'v2.sqlite');
    const old = new Database(path);
    old.exec(MIGRATIONS[0]!);
    old.exec(MIGRATIONS[1]!);
    old.pragma('user_version = 2');
    old.exec(`INSERT INTO trans_global (gid, trans_type, status, create_time, update_time, options, next_cron_interval,
      next_cron_time) VALUES ('old-gid', 'saga', 'submitted', ${at(0)}, ${at(0)}, '', 10, ${at(10)})`);
    old.exec(`INSERT INTO trans_branch_op (gid, url, bin_data, branch_id, op, status, create_time, update_time)
      VALUES ('old-gid', 'http://busi/a', X'7b7d', '01', 'action', 'prepared', ${at(0)}, ${at(0)})`);
    old.close();
    const store = new SqliteStore({ path });
    try {
      assert.equal(store.db.pragma('user_version', { simple: true }), MIGRATIONS.length);
      const t = (await store.findTrans('old-gid'))!;
      assert.deepEqual([t.status, t.failedAttempts, t.lastError, t.stuckAlerted], ['submitted', 0, '', false]);
      const [b] = await store.findBranches('old-gid');
      assert.deepEqual([b?.attempts, b?.lastResult, b?.lastError, b?.lastAttemptTime], [0, '', '', undefined]);
      const failed = { ...b!, attempts: 1, lastAttemptTime: at(5), lastResult: 'ERROR', lastError: 'down' };
      const attempt = { nextCronTime: at(30), nextCronInterval: 20, failedAttempts: 1, lastError: 'down' };
      await store.recordFailedAttempt('old-gid', 'submitted', failed, attempt, at(5));
      assert.equal((await store.findTrans('old-gid'))!.failedAttempts, 1);
      assert.equal((await store.findBranches('old-gid'))[0]!.lastError, 'down');
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('version 4 drops the owner index, which no query read: the lease still records its owner', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dtx-store-sqlite-v3-'));
    const path = join(dir, 'v3.sqlite');
    const INDEXES = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'trans_global'";
    const indexes = (db: Database.Database) => (db.prepare(INDEXES).all() as { name: string }[]).map((r) => r.name);
    const old = new Database(path);
    for (const m of MIGRATIONS.slice(0, 3)) old.exec(m);
    old.pragma('user_version = 3');
    assert.ok(indexes(old).includes('trans_global_owner'), 'a version-3 database has the owner index');
    old.close();
    const store = new SqliteStore({ path });
    try {
      assert.equal(store.db.pragma('user_version', { simple: true }), MIGRATIONS.length);
      const left = indexes(store.db);
      assert.ok(!left.includes('trans_global_owner'), `owner index dropped, left: ${left.join(', ')}`);
      assert.ok(left.includes('trans_global_due') && left.includes('trans_global_finished'), left.join(', '));
      await store.saveNew(makeTrans('due-gid', { status: 'submitted', nextCronTime: at(10) }), [
        makeBranch('due-gid', '01', 'action'),
      ]);
      const [leased] = await store.lockDue(at(20), at(30), 'instance-a', 1, at(15));
      assert.equal(leased?.gid, 'due-gid');
      assert.equal((await store.findTrans('due-gid'))!.owner, 'instance-a');
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a database of a newer schema than this dtx knows is refused with a clear error, and left as it was', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dtx-store-sqlite-newer-'));
    const path = join(dir, 'newer.sqlite');
    const newer = new Database(path);
    newer.pragma(`user_version = ${MIGRATIONS.length + 1}`);
    newer.close();
    try {
      assert.throws(
        () => new SqliteStore({ path }),
        new RegExp(`schema version ${MIGRATIONS.length + 1}, newer than this dtx's ${MIGRATIONS.length}`),
      );
      const check = new Database(path);
      assert.equal(check.pragma('user_version', { simple: true }), MIGRATIONS.length + 1);
      assert.deepEqual(check.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all(), []);
      check.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('version 5 keys branch rows by their transaction row id: rows, ids and attempt history kept, orphans dropped', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dtx-store-sqlite-v4-'));
    const path = join(dir, 'v4.sqlite');
    const old = new Database(path);
    for (const m of MIGRATIONS.slice(0, 4)) old.exec(m);
    old.pragma('user_version = 4');
    const global = old.prepare(`INSERT INTO trans_global (gid, trans_type, status, create_time, update_time, options,
      next_cron_interval, next_cron_time) VALUES (?, 'tcc', ?, ?, ?, '', 10, ?)`);
    const branch = old.prepare(`INSERT INTO trans_branch_op (id, gid, url, bin_data, branch_id, op, status, create_time,
      update_time, attempts, last_result, last_error) VALUES (?, ?, ?, X'7b7d', ?, ?, 'prepared', ?, ?, ?, ?, ?)`);
    global.run('gid-b', 'prepared', at(0), at(0), at(10)); // row id 1: its rows are added second, with lower ids
    global.run('gid-a', 'succeed', at(0), at(0), at(10));
    branch.run(7, 'gid-a', 'http://busi/try', '01', 'try', at(0), at(0), 2, 'ERROR', 'down');
    branch.run(8, 'gid-a', 'http://busi/confirm', '01', 'confirm', at(0), at(0), 0, '', '');
    branch.run(3, 'gid-b', 'http://busi/try', '01', 'try', at(0), at(0), 0, '', '');
    branch.run(9, 'gone-gid', 'http://busi/try', '01', 'try', at(0), at(0), 0, '', ''); // no transaction: unreadable
    old.close();
    const store = new SqliteStore({ path });
    try {
      assert.equal(store.db.pragma('user_version', { simple: true }), MIGRATIONS.length);
      const unique = store.db
        .prepare('SELECT name FROM pragma_index_list(\'trans_branch_op\') WHERE "unique" = 1')
        .all() as { name: string }[];
      const columns = unique.map(({ name }) =>
        (store.db.prepare('SELECT name FROM pragma_index_info(?)').all(name) as { name: string }[]).map((c) => c.name),
      );
      assert.deepEqual(columns, [['trans_id', 'branch_id', 'op']]);
      const a = await store.findBranches('gid-a');
      assert.deepEqual(
        a.map((b) => [b.id, b.gid, b.op, b.url, b.attempts, b.lastResult, b.lastError]),
        [
          [7, 'gid-a', 'try', 'http://busi/try', 2, 'ERROR', 'down'],
          [8, 'gid-a', 'confirm', 'http://busi/confirm', 0, '', ''],
        ],
      );
      assert.deepEqual(
        (await store.findBranches('gid-b')).map((b) => [b.id, b.op]),
        [[3, 'try']],
      );
      assert.deepEqual((await store.findBranches('gone-gid')).length, 0);
      assert.equal((store.db.prepare('SELECT COUNT(*) AS n FROM trans_branch_op').get() as { n: number }).n, 3);
      // registering goes on: a second try of gid-b is a conflict, its confirm a new row after the carried-over ids
      assert.equal(
        await outcome(store.insertBranches('gid-b', 'prepared', [makeBranch('gid-b', '01', 'try')])),
        'UniqueConflict',
      );
      const confirm = makeBranch('gid-b', '01', 'confirm');
      await store.insertBranches('gid-b', 'prepared', [confirm]);
      assert.ok(confirm.id! > 8, `new row id ${confirm.id}`);
      assert.deepEqual(
        (await store.findBranches('gid-b')).map((b) => b.op),
        ['try', 'confirm'],
      );
      // retention takes a finished transaction with its rows, and leaves the other's
      assert.equal(await store.deleteFinished(at(1), 10), 1);
      assert.deepEqual(await store.findBranches('gid-a'), []);
      assert.equal((await store.findBranches('gid-b')).length, 2);
      // a gid created again after retention starts with no rows of the old one
      await store.saveNew(makeTrans('gid-a'), [makeBranch('gid-a', '01', 'action')]);
      assert.deepEqual(
        (await store.findBranches('gid-a')).map((b) => b.op),
        ['action'],
      );
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
