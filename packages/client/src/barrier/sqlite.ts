/**
 * The barrier on SQLite through better-sqlite3.
 *
 * @module
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { BarrierDb, BarrierKey, BarrierRow, BarrierTransaction } from './barrier-db.js';
import { DEFAULT_SQLITE_BARRIER_TABLE } from './ddl.js';
import { rethrowMissingTable } from './missing-table-error.js';
import { parseTableName } from './table-name.js';

/** The part of a better-sqlite3 statement the barrier uses. */
export interface SqliteStatementLike {
  run(...params: unknown[]): { changes: number };
  get(...params: unknown[]): unknown;
}

/** The part of a better-sqlite3 `Database` the barrier uses. */
export interface SqliteDatabaseLike {
  exec(sql: string): unknown;
  prepare(sql: string): SqliteStatementLike;
  pragma(source: string, options?: { simple?: boolean }): unknown;
  readonly inTransaction: boolean;
}

/** Options of {@link sqliteBarrierDb}. */
export interface SqliteBarrierOptions {
  /**
   * The barrier table. Default `barrier` ({@link DEFAULT_SQLITE_BARRIER_TABLE}): SQLite has no schemas, so DTM's
   * `dtm_barrier.barrier` works only if you `ATTACH` a database as `dtm_barrier`.
   */
  table?: string;
  /**
   * How long to wait, in milliseconds, for the write lock that another connection (another process, or another
   * `Database` object of this process) holds on the file, before the guarded call fails with `SQLITE_BUSY`.
   * The wait does not block the event loop. Default 5000, like better-sqlite3's `timeout`.
   */
  lockTimeoutMs?: number;
  /** Called each time the write lock was taken by another connection and will be asked for again (for metrics). */
  onLockWait?: (attempt: number) => void;
}

function isBusy(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_BUSY');
}

/**
 * A {@link BarrierDb} over one better-sqlite3 connection. Business code receives the same `Database`, inside
 * `BEGIN IMMEDIATE`.
 *
 * One connection has one transaction at a time, so the guarded calls made through this object run one after the
 * other (a queue), even when your handlers run concurrently. Create one `sqliteBarrierDb` per `Database`, and do
 * not open other transactions on that connection while guarded calls may run; nested guarded calls on the same
 * connection would wait for each other forever.
 *
 * `BEGIN IMMEDIATE` takes the database's write lock up front. When another connection holds it, the call waits
 * for it without blocking the event loop (see {@link SqliteBarrierOptions.lockTimeoutMs}); WAL mode
 * (`db.pragma('journal_mode = WAL')`) is recommended so readers never wait.
 *
 * @param db - a better-sqlite3 `Database` (or anything with the same methods).
 */
export function sqliteBarrierDb<D extends SqliteDatabaseLike>(db: D, options: SqliteBarrierOptions = {}): BarrierDb<D> {
  return new SqliteBarrierDb(db, options);
}

class SqliteBarrierDb<D extends SqliteDatabaseLike> implements BarrierDb<D> {
  readonly dialect = 'sqlite' as const;
  readonly table: string;
  readonly #db: D;
  readonly #lockTimeoutMs: number;
  readonly #onLockWait: ((attempt: number) => void) | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #insert: SqliteStatementLike | undefined;
  #select: SqliteStatementLike | undefined;

  constructor(db: D, options: SqliteBarrierOptions) {
    this.#db = db;
    this.table = parseTableName(options.table ?? DEFAULT_SQLITE_BARRIER_TABLE).qualified;
    this.#lockTimeoutMs = options.lockTimeoutMs ?? 5000;
    this.#onLockWait = options.onLockWait;
  }

  /** Runs `fn` after everything queued before it on this connection has settled. */
  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.#queue.then(fn, fn);
    this.#queue = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }

  /** `BEGIN IMMEDIATE`, waiting asynchronously while another connection holds the write lock. */
  async #begin(): Promise<void> {
    const db = this.#db;
    if (db.inTransaction) {
      throw new Error(
        'the SQLite connection of the barrier is already inside a transaction: do not share it with code that keeps ' +
          'transactions open, and do not nest guarded calls',
      );
    }
    const deadline = Date.now() + this.#lockTimeoutMs;
    for (let attempt = 1; ; attempt++) {
      // With the connection's own busy timeout, a lock held by another connection of this same process would block
      // the event loop that this other connection needs to finish: ask without waiting, and wait asynchronously.
      const busyTimeout = db.pragma('busy_timeout', { simple: true });
      db.pragma('busy_timeout = 0');
      try {
        db.exec('BEGIN IMMEDIATE');
        return;
      } catch (err) {
        if (!isBusy(err) || Date.now() >= deadline) throw err;
      } finally {
        db.pragma(`busy_timeout = ${Number(busyTimeout) || 0}`);
      }
      this.#onLockWait?.(attempt);
      await delay(Math.min(2 ** attempt, 50));
    }
  }

  #insertIgnore(row: BarrierRow): number {
    try {
      this.#insert ??= this.#db.prepare(
        `INSERT OR IGNORE INTO ${this.table} (trans_type, gid, branch_id, op, barrier_id, reason) VALUES (?, ?, ?, ?, ?, ?)`,
      );
      return this.#insert.run(row.trans_type, row.gid, row.branch_id, row.op, row.barrier_id, row.reason).changes;
    } catch (err) {
      rethrowMissingTable('sqlite', this.table, err);
    }
  }

  transaction<T>(work: (tx: BarrierTransaction<D>) => Promise<T>): Promise<T> {
    return this.#exclusive(async () => {
      await this.#begin();
      const tx: BarrierTransaction<D> = {
        handle: this.#db,
        insertIgnore: async (row) => this.#insertIgnore(row),
      };
      try {
        const result = await work(tx);
        this.#db.exec('COMMIT');
        return result;
      } catch (err) {
        if (this.#db.inTransaction) this.#db.exec('ROLLBACK');
        throw err;
      }
    });
  }

  insertIgnore(row: BarrierRow): Promise<number> {
    return this.transaction((tx) => tx.insertIgnore(row));
  }

  selectReason(key: BarrierKey): Promise<string | undefined> {
    return this.#exclusive(async () => {
      try {
        this.#select ??= this.#db.prepare(
          `SELECT reason FROM ${this.table} WHERE gid = ? AND branch_id = ? AND op = ? AND barrier_id = ?`,
        );
        const row = this.#select.get(key.gid, key.branch_id, key.op, key.barrier_id) as { reason: string } | undefined;
        return row?.reason;
      } catch (err) {
        rethrowMissingTable('sqlite', this.table, err);
      }
    });
  }

  deleteBefore(before: Date, limit: number): Promise<number> {
    // create_time is SQLite's CURRENT_TIMESTAMP: 'YYYY-MM-DD HH:MM:SS' in UTC, which compares as text
    const cutoff = before.toISOString().slice(0, 19).replace('T', ' ');
    return this.#exclusive(async () => {
      try {
        const r = this.#db
          .prepare(`DELETE FROM ${this.table} WHERE id IN (SELECT id FROM ${this.table} WHERE create_time < ? LIMIT ?)`)
          .run(cutoff, Math.floor(limit));
        return Number(r.changes);
      } catch (err) {
        rethrowMissingTable('sqlite', this.table, err);
      }
    });
  }

  applyDdl(statements: readonly string[]): Promise<void> {
    return this.transaction(async () => {
      for (const sql of statements) this.#db.exec(sql);
    });
  }
}
