import type { Database } from 'better-sqlite3';

interface Job {
  run: () => unknown;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

/**
 * Groups the writes of concurrent transactions into one durable commit.
 *
 * Each write is a synchronous function over the database. Writes queued during one turn of the event
 * loop run in a single `BEGIN IMMEDIATE … COMMIT`, each inside its own savepoint so that one failing
 * write (a lost compare-and-set, a unique conflict) is rolled back alone and reported to its caller
 * only. A caller's promise settles after the commit that made its write durable.
 */
export class GroupCommit {
  private queue: Job[] = [];
  private scheduled = false;
  private readonly maxBatch: number;

  constructor(
    private readonly db: Database,
    maxBatch = 512,
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
    const results: { ok: boolean; value: unknown }[] = [];
    try {
      this.db.exec('BEGIN IMMEDIATE');
    } catch (err) {
      for (const j of jobs) j.reject(err);
      return;
    }
    for (const j of jobs) {
      this.db.exec('SAVEPOINT w');
      try {
        results.push({ ok: true, value: j.run() });
        this.db.exec('RELEASE w');
      } catch (err) {
        if (!this.db.inTransaction) {
          // SQLite rolled the whole transaction back (disk full, I/O error): nothing of this batch is
          // written, so every caller hears of it
          for (const k of jobs) k.reject(err);
          return;
        }
        this.db.exec('ROLLBACK TO w');
        this.db.exec('RELEASE w');
        results.push({ ok: false, value: err });
      }
    }
    try {
      this.db.exec('COMMIT');
    } catch (err) {
      try {
        this.db.exec('ROLLBACK');
      } catch {
        // already rolled back by SQLite
      }
      for (const j of jobs) j.reject(err);
      return;
    }
    jobs.forEach((j, i) => {
      const r = results[i]!;
      if (r.ok) j.resolve(r.value);
      else j.reject(r.value);
    });
  }
}
