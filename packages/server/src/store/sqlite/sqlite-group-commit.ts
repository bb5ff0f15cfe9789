import type { Database } from 'better-sqlite3';
import type { StoreObserver } from '../store.js';

/**
 * Makes what was committed so far durable: `sync` on the libuv thread pool, `syncNow` on the calling thread. Both
 * are fdatasync of the WAL file (see SqliteStore); tests pass their own.
 */
export interface WalSync {
  sync(done: (err: Error | null) => void): void;
  syncNow(): void;
}

/** A committed batch waiting for its sync: its callers and what each is to be told. */
interface Committed {
  jobs: Job[];
  results: { ok: boolean; value: unknown }[];
}

interface Job {
  run: () => unknown;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

/**
 * Groups the writes of concurrent transactions into one durable commit of the SQLite store (the other SQL
 * stores queue their writes in a CommitQueue and run the batch over the network).
 *
 * Each write is a synchronous function over the database. Writes queued during one turn of the event
 * loop run in a single `BEGIN IMMEDIATE … COMMIT`, each inside its own savepoint so that one failing
 * write (a lost compare-and-set, a unique conflict) is rolled back alone and reported to its caller
 * only (a batch of one write needs no savepoint: its transaction is rolled back instead). A caller's promise
 * settles once its write is durable: after the COMMIT when SQLite syncs in it, or after
 * the sync of the WAL that covers the commit (see the constructor's `wal`).
 *
 * Whatever SQLite answers — to a write, to the savepoint statements, to the COMMIT — every caller of the
 * batch gets an answer: a statement of the batch's own plumbing failing rolls the whole batch back and
 * rejects every write of it, and the next batch starts on a clean connection.
 */
export class SqliteGroupCommit {
  private queue: Job[] = [];
  private scheduled = false;
  private readonly maxBatch: number;
  /** A sync is running on the thread pool. */
  private syncing = false;
  /** Batches committed before the running sync started: it makes them durable. */
  private inSync: Committed[] = [];
  /** Batches committed since: the next sync makes them durable. */
  private awaitingSync: Committed[] = [];
  /** Callers of `durable` waiting for the running sync, and those waiting for the next (only while a batch does). */
  private readersInSync: ((err?: Error) => void)[] = [];
  private readersAwaiting: ((err?: Error) => void)[] = [];
  /**
   * Set when a sync failed: what was committed may not be on disk, and the kernel may have dropped the pages it
   * could not write, so no later sync could vouch for them. Every call fails from then on; a restart recovers
   * from what the disk holds.
   */
  private broken: Error | undefined;

  /**
   * @param wal when given, SQLite commits without syncing (synchronous = NORMAL) and this makes each commit durable
   *   before its callers are told: a lone write is synced at once on this thread (no thread hop on the path of a
   *   single transaction), and while a sync runs on the thread pool, later batches commit and wait for the next
   *   one, so the event loop never waits for the disk under load. Without it, each COMMIT syncs (synchronous=FULL).
   */
  constructor(
    private readonly db: Database,
    maxBatch = 512,
    private readonly observer?: StoreObserver,
    private readonly wal?: WalSync,
  ) {
    this.maxBatch = maxBatch;
  }

  /**
   * Resolves once everything committed so far is durable: a read calls it before answering, so that no caller
   * sees a write that a power cut could still take back. At once when no commit waits for a sync.
   */
  durable(): Promise<void> | undefined {
    if (this.broken) return Promise.reject(this.broken);
    if (this.awaitingSync.length > 0)
      return new Promise((resolve, reject) => this.readersAwaiting.push(waiter(resolve, reject)));
    if (this.syncing) return new Promise((resolve, reject) => this.readersInSync.push(waiter(resolve, reject)));
    return undefined;
  }

  private fail(err: Error): Error {
    this.broken ??= new Error(
      `SQLite store: a sync of the WAL failed (${err.message}): writes since the last good sync may not be on disk, ` +
        'so the store takes no further calls; restart dtx to recover from what the disk holds',
      { cause: err },
    );
    return this.broken;
  }

  write<T>(run: () => T): Promise<T> {
    if (this.broken) return Promise.reject(this.broken);
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ run, resolve: resolve as (v: unknown) => void, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    const jobs = this.queue.splice(0, this.maxBatch);
    if (this.broken) {
      for (const j of jobs) j.reject(this.broken);
      return;
    }
    if (this.queue.length > 0) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
    if (jobs.length === 0) return;
    this.observer?.batch(jobs.length);
    let results: { ok: boolean; value: unknown }[];
    try {
      results = this.runBatch(jobs);
    } catch (err) {
      // nothing of this batch is written: every caller hears of it, and no transaction is left open
      this.rollback();
      for (const j of jobs) j.reject(err);
      return;
    }
    if (!this.wal) {
      settle({ jobs, results });
      return;
    }
    if (!this.syncing && this.awaitingSync.length === 0 && jobs.length === 1 && this.queue.length === 0) {
      // one write and nothing else to do: a hop to the thread pool would only add its latency. A write that failed
      // committed nothing, and all before it is synced already (no sync runs, none waits): nothing to sync then
      try {
        if (results[0]!.ok) this.wal.syncNow();
      } catch (err) {
        const e = this.fail(err as Error);
        for (const j of jobs) j.reject(e);
        return;
      }
      settle({ jobs, results });
      return;
    }
    this.awaitingSync.push({ jobs, results });
    if (!this.syncing) this.startSync();
  }

  private startSync(): void {
    this.syncing = true;
    this.inSync = this.awaitingSync;
    this.awaitingSync = [];
    this.readersInSync = this.readersAwaiting;
    this.readersAwaiting = [];
    this.wal!.sync((err) => {
      this.syncing = false;
      const batches = this.inSync;
      const readers = this.readersInSync;
      this.inSync = [];
      this.readersInSync = [];
      if (err) {
        const e = this.fail(err);
        for (const b of [...batches, ...this.awaitingSync]) for (const j of b.jobs) j.reject(e);
        for (const r of [...readers, ...this.readersAwaiting]) r(e);
        this.awaitingSync = [];
        this.readersAwaiting = [];
        return;
      }
      for (const b of batches) settle(b);
      for (const r of readers) r();
      // (a reader waiting for the next sync came while a batch waited for it: that batch is still here)
      if (this.awaitingSync.length > 0) this.startSync();
    });
  }

  /** The batch in one transaction; throws when it was not committed as a whole. */
  private runBatch(jobs: Job[]): { ok: boolean; value: unknown }[] {
    // a transaction left open by a failure SQLite did not let us roll back must not swallow this batch
    if (this.db.inTransaction) this.db.exec('ROLLBACK');
    this.db.exec('BEGIN IMMEDIATE');
    if (jobs.length === 1) return [this.runLone(jobs[0]!)];
    const results: { ok: boolean; value: unknown }[] = [];
    for (const j of jobs) {
      this.db.exec('SAVEPOINT w');
      try {
        const value = j.run();
        this.db.exec('RELEASE w');
        results.push({ ok: true, value });
      } catch (err) {
        // SQLite rolled the whole transaction back (disk full, I/O error): nothing of this batch is written
        if (!this.db.inTransaction) throw err;
        this.db.exec('ROLLBACK TO w');
        this.db.exec('RELEASE w');
        results.push({ ok: false, value: err });
      }
    }
    this.db.exec('COMMIT');
    return results;
  }

  /**
   * A batch of one write (every write at concurrency 1) in the transaction runBatch began, without a savepoint: when
   * the write fails, rolling the whole transaction back undoes exactly it. (A savepoint costs two statements and a
   * copy of each page the write changes into SQLite's statement journal.)
   */
  private runLone(j: Job): { ok: boolean; value: unknown } {
    let value: unknown;
    try {
      value = j.run();
    } catch (err) {
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
      return { ok: false, value: err };
    }
    this.db.exec('COMMIT');
    return { ok: true, value };
  }

  private rollback(): void {
    try {
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
    } catch {
      // SQLite refused even that; the next batch tries again before it begins
    }
  }
}

function settle(b: Committed): void {
  b.jobs.forEach((j, i) => {
    const r = b.results[i]!;
    if (r.ok) j.resolve(r.value);
    else j.reject(r.value);
  });
}

function waiter(resolve: () => void, reject: (e: Error) => void): (err?: Error) => void {
  return (err) => (err ? reject(err) : resolve());
}
