import type { BarrierDb } from './barrier-db.js';

/** Options of {@link deleteOldBarrierRows}. */
export interface BarrierCleanupOptions {
  /**
   * Rows created before this moment are deleted. Pick it well behind the longest a global transaction of yours
   * can still be retried (RetryInterval doubles on every error): a barrier row deleted while its transaction may
   * still send a compensation turns that compensation into a "null compensation", and the forward step's effect
   * stays. Required.
   */
  olderThan: Date;
  /** Rows deleted per statement, so one call never holds locks for long. Default `1000`. */
  batchSize?: number;
}

/**
 * Deletes old rows of the barrier table in bounded batches (each batch its own statement and commit), and returns
 * how many were deleted. Run it from a periodic job. Redis barrier keys need no clean-up: they expire.
 *
 * ```ts
 * const week = 7 * 24 * 3600 * 1000;
 * await deleteOldBarrierRows(mysqlBarrierDb(pool), { olderThan: new Date(Date.now() - week) });
 * ```
 */
export async function deleteOldBarrierRows<Tx>(db: BarrierDb<Tx>, options: BarrierCleanupOptions): Promise<number> {
  const batch = options.batchSize ?? 1000;
  if (!Number.isInteger(batch) || batch < 1)
    throw new RangeError(`batchSize: expected a positive integer, got ${batch}`);
  if (!(options.olderThan instanceof Date) || Number.isNaN(options.olderThan.getTime())) {
    throw new TypeError('olderThan: expected a valid Date');
  }
  let total = 0;
  for (;;) {
    const n = await db.deleteBefore(options.olderThan, batch);
    total += n;
    if (n < batch) return total;
  }
}
