import type pg from 'pg';
import type { Pending } from '../sql/commit-queue.js';
import type { BatchExecutor, SqlWrite } from '../sql/dialect.js';
import { isConnectionError, storeError } from '../sql/errors.js';
import { settle } from '../sql/sql-batch.js';

/**
 * One write of the group commit: a single statement that either does all of its work or, when its
 * condition does not hold (a lost compare-and-set, an existing gid), none of it. `done` turns the result
 * into the caller's value or throws that logical failure.
 */
export interface PgWrite extends SqlWrite<pg.QueryResult> {
  q: pg.QueryConfig;
}

/** What {@link corked} needs of a client: pg keeps its socket at `connection.stream` (not a public API). */
interface CorkableClient {
  connection?: { stream?: { cork?: () => void; uncork?: () => void } };
}

/**
 * The client's socket, if this pg keeps it where {@link corked} looks (`client.connection.stream`, a
 * net.Socket). Not part of pg's API: test/pg-internals.test.ts pins it, so a pg upgrade that moves it fails a
 * test. Without it batches still work, one socket write per statement.
 */
export function pgSocket(client: pg.ClientBase): { cork(): void; uncork(): void } | undefined {
  const stream = (client as unknown as CorkableClient).connection?.stream;
  return typeof stream?.cork === 'function' && typeof stream.uncork === 'function'
    ? (stream as { cork(): void; uncork(): void })
    : undefined;
}

/**
 * Send what `fn` queues on the client as one socket write: pg corks each query; corking the whole batch
 * turns a few hundred small writes into one, which on a busy coordinator is a large share of its CPU.
 */
export function corked<T>(client: pg.ClientBase, fn: () => T): T {
  const socket = pgSocket(client);
  socket?.cork();
  try {
    return fn();
  } finally {
    socket?.uncork();
  }
}

/**
 * PostgreSQL's batches, on a pool whose clients pipeline (pg's `pipeline: true`): `BEGIN; w1; …; wn; COMMIT` sent
 * in one go — one round trip, one WAL flush. If a statement fails, PostgreSQL turns the COMMIT into a ROLLBACK
 * and the batch is replayed with savepoints (sql-batch.ts). A lone write is one autocommitted statement.
 */
export class PgBatchExecutor implements BatchExecutor<pg.PoolClient, PgWrite, pg.QueryResult> {
  constructor(private readonly pool: pg.Pool) {}

  acquire(): Promise<pg.PoolClient> {
    return this.pool.connect();
  }

  release(c: pg.PoolClient, healthy: boolean): void {
    c.release(!healthy);
  }

  async runFast(c: pg.PoolClient, batch: Pending<PgWrite>[]): Promise<boolean> {
    if (batch.length === 1) {
      await PgBatchExecutor.runAlone(c, batch[0]!);
      return true;
    }
    const sent = corked(c, () => [c.query('BEGIN'), ...batch.map((p) => c.query(p.write.q)), c.query('COMMIT')]);
    const res = await Promise.allSettled(sent);
    const commit = res[res.length - 1]!;
    if (commit.status === 'fulfilled' && commit.value.command === 'COMMIT') {
      batch.forEach((p, i) => {
        settle(p, (res[i + 1] as PromiseFulfilledResult<pg.QueryResult>).value);
      });
      return true;
    }
    for (const r of res) if (r.status === 'rejected' && isConnectionError(r.reason)) throw r.reason;
    if (commit.status === 'rejected') await c.query('ROLLBACK'); // make sure no transaction is left open
    return false; // PostgreSQL answered the COMMIT with ROLLBACK: nothing of the batch was written
  }

  /** A lone write is one autocommitted statement: atomic on its own, no BEGIN/COMMIT needed. */
  private static async runAlone(c: pg.PoolClient, p: Pending<PgWrite>): Promise<void> {
    let r: pg.QueryResult;
    try {
      r = await c.query(p.write.q);
    } catch (err) {
      if (isConnectionError(err)) throw err; // committed or not: unknown, so the caller hears of a failure
      p.reject(storeError('postgres', err));
      return;
    }
    settle(p, r);
  }

  async exec(c: pg.PoolClient, sql: string): Promise<void> {
    await c.query(sql);
  }

  async commit(c: pg.PoolClient): Promise<void> {
    const r = await c.query('COMMIT');
    if (r.command !== 'COMMIT') throw new Error('the batch was rolled back at COMMIT');
  }

  async inSavepoint(c: pg.PoolClient, w: PgWrite): Promise<pg.QueryResult> {
    const [sp, r, rel] = await Promise.allSettled(
      corked(c, () => [c.query('SAVEPOINT w'), c.query(w.q), c.query('RELEASE SAVEPOINT w')]),
    );
    if (sp!.status === 'rejected') throw sp!.reason;
    if (r!.status === 'rejected') throw r!.reason;
    if (rel!.status === 'rejected') throw rel!.reason;
    return r!.value;
  }

  fatal(err: unknown): boolean {
    return isConnectionError(err);
  }

  retryBatch(): boolean {
    return false;
  }
}
