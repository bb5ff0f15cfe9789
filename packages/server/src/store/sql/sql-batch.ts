import type { Pending } from './commit-queue.js';
import type { BatchExecutor, SqlWrite } from './dialect.js';
import { storeError } from './errors.js';

/** Group-commit counters: batches committed, writes in them, batches replayed with savepoints. */
export interface BatchStats {
  batches: number;
  writes: number;
  replays: number;
}

/** Retries of a batch that lost a deadlock as a whole (InnoDB rolls the victim's transaction back). */
const BATCH_RETRIES = 3;

/** Resolve a write with what its `done` makes of the result, or reject it with what `done` threw. */
export function settle<R>(p: Pending<SqlWrite<R>>, result: R): void {
  try {
    p.resolve(p.write.done(result));
  } catch (err) {
    p.reject(err);
  }
}

/**
 * Runs the batches of a commit queue on a database's {@link BatchExecutor}: the fast path first; when the
 * database rolled that back (a statement failed), the batch again in one transaction with a savepoint per write,
 * so only the failing write fails. Every write is resolved only after the COMMIT that made it durable; a failure
 * of the batch's own plumbing, or a lost connection, rejects every write it left unsettled.
 */
export class SqlBatchRunner<C, W extends SqlWrite<R>, R> {
  constructor(
    private readonly ex: BatchExecutor<C, W, R>,
    private readonly driver: string,
    private readonly stats: BatchStats,
  ) {}

  async run(batch: Pending<W>[]): Promise<void> {
    let c: C;
    try {
      c = await this.ex.acquire();
    } catch (err) {
      throw storeError(this.driver, err);
    }
    this.stats.batches++;
    this.stats.writes += batch.length;
    let healthy = false;
    try {
      if (!(await this.ex.runFast(c, batch))) {
        this.stats.replays++;
        await this.replay(c, batch);
      }
      healthy = true;
    } catch (err) {
      throw storeError(this.driver, err);
    } finally {
      this.ex.release(c, healthy);
    }
  }

  private async replay(c: C, batch: Pending<W>[]): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.savepointPass(c, batch);
        return;
      } catch (err) {
        if (!this.ex.retryBatch(err) || attempt >= BATCH_RETRIES) throw err;
        await this.ex.exec(c, 'ROLLBACK');
      }
    }
  }

  /** The slow path: one savepoint per write, so a failing write is rolled back alone and reported alone. */
  private async savepointPass(c: C, batch: Pending<W>[]): Promise<void> {
    await this.ex.exec(c, 'BEGIN');
    const outcomes: ({ ok: true; r: R } | { ok: false; err: unknown })[] = [];
    for (const p of batch) {
      try {
        outcomes.push({ ok: true, r: await this.ex.inSavepoint(c, p.write) });
      } catch (err) {
        if (this.ex.fatal(err)) throw err;
        await this.ex.exec(c, 'ROLLBACK TO SAVEPOINT w');
        await this.ex.exec(c, 'RELEASE SAVEPOINT w');
        outcomes.push({ ok: false, err: storeError(this.driver, err) });
      }
    }
    await this.ex.commit(c);
    batch.forEach((p, i) => {
      const o = outcomes[i]!;
      if (o.ok) settle(p, o.r);
      else p.reject(o.err);
    });
  }
}
