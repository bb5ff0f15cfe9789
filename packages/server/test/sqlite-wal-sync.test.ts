/**
 * The SQLite store's commits made durable by an fdatasync of the WAL file rather than inside each COMMIT: nobody
 * hears of a write (nor reads what it wrote) before the sync that covers it has finished; a lone write syncs on
 * the spot, concurrent ones on the thread pool while the next batch commits; a failed sync stops the store.
 * The group commit is driven here with a sync the test completes by hand, over a real SQLite file; the store
 * itself with Node's real fdatasync, watched.
 */
import assert from 'node:assert/strict';
import fs, { fstatSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { SqliteGroupCommit, type WalSync } from '../src/store/sqlite/sqlite-group-commit.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { makeBranch, makeTrans, outcome } from './store-conformance.js';

const turn = () => new Promise((r) => setImmediate(r));

async function until(what: string, ok: () => boolean): Promise<void> {
  const end = Date.now() + 5000;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await turn();
  }
}

/** A WalSync whose thread-pool syncs finish when the test says; it records what was asked of it. */
function handSync() {
  const running: ((err: Error | null) => void)[] = [];
  let now = 0;
  let failNow: Error | undefined;
  const wal: WalSync = {
    sync: (done) => running.push(done),
    syncNow: () => {
      now++;
      if (failNow) throw failNow;
    },
  };
  return {
    wal,
    /** Thread-pool syncs started so far. */
    started: () => running.length,
    /** Finish the nth sync (0-based), with an error or not. */
    finish: (n: number, err: Error | null = null) => running[n]!(err),
    syncedNow: () => now,
    failNextNow: (err: Error) => {
      failNow = err;
    },
  };
}

describe('SQLite: commits made durable by a sync of the WAL', () => {
  let dir: string;
  let n = 0;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'dtx-wal-sync-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  function database() {
    const db = new Database(join(dir, `gc-${++n}.sqlite`));
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.exec('CREATE TABLE t (k TEXT PRIMARY KEY)');
    const insert = db.prepare('INSERT INTO t (k) VALUES (?)');
    const has = (k: string) => db.prepare('SELECT 1 FROM t WHERE k = ?').get(k) !== undefined;
    return { db, put: (k: string) => () => insert.run(k).changes, has };
  }

  it('a lone write is synced on the spot, before its caller hears of it; no thread-pool sync', async () => {
    const { db, put, has } = database();
    const s = handSync();
    const gc = new SqliteGroupCommit(db, 512, undefined, s.wal);
    assert.equal(await gc.write(put('a')), 1);
    assert.equal(s.syncedNow(), 1);
    assert.equal(s.started(), 0);
    assert.ok(has('a'));
    assert.equal(gc.durable(), undefined, 'nothing waits for a sync');
    db.close();
  });

  it('a lone write that fails half-way leaves nothing of it (no savepoint: its transaction is rolled back), and no sync', async () => {
    const { db, put, has } = database();
    const s = handSync();
    const gc = new SqliteGroupCommit(db, 512, undefined, s.wal);
    const halfWay = () => {
      put('first')();
      put('first')(); // the primary key refuses it: the first insert must not stay either
    };
    assert.match(await outcome(gc.write(halfWay)), /UNIQUE/);
    assert.equal(db.inTransaction, false, 'no transaction left open');
    assert.equal(has('first'), false);
    assert.equal(s.syncedNow(), 0, 'a write that committed nothing needs no sync');
    assert.match(
      await outcome(
        gc.write(() => {
          throw new Error('refused before writing');
        }),
      ),
      /refused before writing/,
    );
    assert.equal(s.syncedNow(), 0);
    assert.equal(await gc.write(put('next')), 1);
    assert.equal(s.syncedNow(), 1, 'the write that committed is synced before its caller hears of it');
    assert.ok(has('next'));
    assert.equal(has('first'), false);
    assert.equal(s.started(), 0, 'lone writes only: every sync on the spot');
    db.close();
  });

  it('a batch waits for its sync; a batch committed meanwhile, and a read, wait for the next one', async () => {
    const { db, put, has } = database();
    const s = handSync();
    const gc = new SqliteGroupCommit(db, 512, undefined, s.wal);
    const first = [outcome(gc.write(put('a'))), outcome(gc.write(put('b')))];
    await until('the first sync', () => s.started() === 1);
    assert.ok(has('a') && has('b'), 'committed');
    let firstSettled = false;
    void Promise.all(first).then(() => {
      firstSettled = true;
    });
    await turn();
    assert.equal(firstSettled, false, 'committed is not yet durable: nobody is told');

    const second = outcome(gc.write(put('c')));
    let secondSettled = false;
    void second.then(() => {
      secondSettled = true;
    });
    await until('the second batch to commit', () => has('c'));
    const read = gc.durable();
    assert.ok(read, 'a read while commits wait for a sync waits too');
    let readDone = false;
    void read.then(() => {
      readDone = true;
    });

    s.finish(0);
    assert.deepEqual(await Promise.all(first), ['ok', 'ok']);
    await until('the second sync', () => s.started() === 2);
    assert.equal(secondSettled, false, 'the first sync began before the second batch committed');
    assert.equal(readDone, false);
    s.finish(1);
    assert.equal(await second, 'ok');
    await read;
    assert.equal(s.syncedNow(), 0);
    assert.equal(gc.durable(), undefined);
    db.close();
  });

  it('a write refused inside the batch hears of it after the sync too', async () => {
    const { db, put } = database();
    const s = handSync();
    const gc = new SqliteGroupCommit(db, 512, undefined, s.wal);
    await gc.write(put('dup'));
    const both = [outcome(gc.write(put('dup'))), outcome(gc.write(put('fresh')))];
    await until('the sync', () => s.started() === 1);
    let settled = false;
    void Promise.all(both).then(() => {
      settled = true;
    });
    await turn();
    assert.equal(settled, false);
    s.finish(0);
    const [dup, fresh] = await Promise.all(both);
    assert.match(String(dup), /UNIQUE/);
    assert.equal(fresh, 'ok');
    db.close();
  });

  it('a failed sync fails its writes, the ones waiting behind it and every later call', async () => {
    const { db, put } = database();
    const s = handSync();
    const gc = new SqliteGroupCommit(db, 512, undefined, s.wal);
    const first = [outcome(gc.write(put('a'))), outcome(gc.write(put('b')))];
    await until('the sync', () => s.started() === 1);
    const behind = outcome(gc.write(put('c')));
    await turn();
    await turn();
    const read = outcome(gc.durable() ?? Promise.resolve());
    s.finish(0, new Error('EIO: i/o error, fdatasync'));
    for (const r of [...(await Promise.all(first)), await behind, await read]) {
      assert.match(String(r), /a sync of the WAL failed \(EIO: i\/o error, fdatasync\).*restart dtx/);
    }
    assert.match(String(await outcome(gc.write(put('d')))), /a sync of the WAL failed/);
    assert.match(String(await outcome(gc.durable() ?? Promise.resolve())), /a sync of the WAL failed/);
    db.close();
  });

  it('a failed sync on the spot fails the lone write and stops the store the same way', async () => {
    const { db, put } = database();
    const s = handSync();
    const gc = new SqliteGroupCommit(db, 512, undefined, s.wal);
    s.failNextNow(new Error('ENOSPC: no space left on device, fdatasync'));
    assert.match(String(await outcome(gc.write(put('a')))), /a sync of the WAL failed \(ENOSPC/);
    assert.match(String(await outcome(gc.write(put('b')))), /a sync of the WAL failed/);
    db.close();
  });

  describe('SqliteStore with the real fdatasync', () => {
    /** fd → how many fdatasync / fdatasyncSync calls it got while the spy was on. */
    const synced = new Map<number, { async: number; now: number }>();
    const real = { fdatasync: fs.fdatasync, fdatasyncSync: fs.fdatasyncSync };
    const count = (fd: number, kind: 'async' | 'now') => {
      const c = synced.get(fd) ?? { async: 0, now: 0 };
      c[kind]++;
      synced.set(fd, c);
    };
    before(() => {
      // the store imports these by name: syncBuiltinESMExports carries the patch to its bindings
      (fs as { fdatasync: unknown }).fdatasync = (fd: number, cb: (err: Error | null) => void) => {
        count(fd, 'async');
        real.fdatasync(fd, cb);
      };
      (fs as { fdatasyncSync: unknown }).fdatasyncSync = (fd: number) => {
        count(fd, 'now');
        real.fdatasyncSync(fd);
      };
      syncBuiltinESMExports();
    });
    after(() => {
      Object.assign(fs, real);
      syncBuiltinESMExports();
    });

    it('commits with synchronous = NORMAL and fdatasyncs the WAL file, on the spot or on the thread pool', async () => {
      const path = join(dir, 'store-wal.sqlite');
      const store = new SqliteStore({ path });
      try {
        assert.equal(store.db.pragma('synchronous', { simple: true }), 1, 'NORMAL: SQLite does not sync itself');
        const fd = (store as unknown as { walFd: number }).walFd;
        assert.equal(fstatSync(fd).ino, statSync(`${path}-wal`).ino, 'the descriptor is the WAL file');
        synced.clear();
        await store.saveNew(makeTrans('lone'), [makeBranch('lone', '01', 'action')]);
        assert.deepEqual(synced.get(fd), { async: 0, now: 1 });
        const many = Array.from({ length: 20 }, (_, i) =>
          store.saveNew(makeTrans(`many-${i}`), [makeBranch(`many-${i}`, '01', 'action')]),
        );
        await Promise.all(many);
        assert.ok((synced.get(fd)?.async ?? 0) >= 1, 'a batch of 20 is synced on the thread pool');
        assert.equal((await store.findTrans('many-19'))?.gid, 'many-19');
      } finally {
        await store.close();
      }
    });

    it("sync: 'sqlite' leaves it to SQLite (synchronous = FULL) and ':memory:' has nothing to sync", async () => {
      const full = new SqliteStore({ path: join(dir, 'store-full.sqlite'), sync: 'sqlite' });
      const memory = new SqliteStore({ path: ':memory:' });
      try {
        assert.equal(full.db.pragma('synchronous', { simple: true }), 2);
        assert.equal((full as unknown as { walFd?: number }).walFd, undefined);
        assert.equal((memory as unknown as { walFd?: number }).walFd, undefined);
        synced.clear();
        await full.saveNew(makeTrans('full'), [makeBranch('full', '01', 'action')]);
        await memory.saveNew(makeTrans('mem'), [makeBranch('mem', '01', 'action')]);
        assert.equal(synced.size, 0, 'no fdatasync of ours');
        assert.equal((await full.findTrans('full'))?.gid, 'full');
      } finally {
        await full.close();
        await memory.close();
      }
    });
  });
});
