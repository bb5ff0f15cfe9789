import type { Database } from 'better-sqlite3';
import type { StoreObserver } from '../store.js';

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
 * only. A caller's promise settles after the commit that made its write durable.
 *
 * Whatever SQLite answers — to a write, to the savepoint statements, to the COMMIT — every caller of the
 * batch gets an answer: a statement of the batch's own plumbing failing rolls the whole batch back and
 * rejects every write of it, and the next batch starts on a clean connection.
 */
export class SqliteGroupCommit {
  private queue: Job[] = [];
  private scheduled = false;
  private readonly maxBatch: number;

  constructor(
    private readonly db: Database,
    maxBatch = 512,
    private readonly observer?: StoreObserver,
  ) {
    this.maxBatch = maxBatch;
  }

  write<T>(run: () => T): Promise<T> {
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
    jobs.forEach((j, i) => {
      const r = results[i]!;
      if (r.ok) j.resolve(r.value);
      else j.reject(r.value);
    });
  }

  /** The batch in one transaction; throws when it was not committed as a whole. */
  private runBatch(jobs: Job[]): { ok: boolean; value: unknown }[] {
    // a transaction left open by a failure SQLite did not let us roll back must not swallow this batch
    if (this.db.inTransaction) this.db.exec('ROLLBACK');
    this.db.exec('BEGIN IMMEDIATE');
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

  private rollback(): void {
    try {
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
    } catch {
      // SQLite refused even that; the next batch tries again before it begins
    }
  }
}
