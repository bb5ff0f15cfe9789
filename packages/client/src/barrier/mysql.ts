/**
 * The barrier on MySQL and MariaDB through mysql2's promise API.
 *
 * @module
 */
import type { BarrierDb, BarrierKey, BarrierRow, BarrierTransaction } from './barrier-db.js';
import { DEFAULT_BARRIER_TABLE } from './ddl.js';
import { rethrowMissingTable } from './missing-table-error.js';
import { parseTableName } from './table-name.js';

/** What mysql2's promise `query` / `execute` resolve to: `[result, fields]`. */
export type MysqlResultLike = [unknown, unknown];

/** The part of a mysql2/promise `PoolConnection` the barrier uses. */
export interface MysqlConnectionLike {
  query(sql: string, values?: unknown): Promise<MysqlResultLike>;
  execute(sql: string, values?: unknown): Promise<MysqlResultLike>;
  beginTransaction(): Promise<void>;
  commit(): Promise<void>;
  rollback(): Promise<void>;
  release(): void;
  destroy(): void;
}

/** The part of a mysql2/promise `Pool` the barrier uses. */
export interface MysqlPoolLike<C extends MysqlConnectionLike> {
  getConnection(): Promise<C>;
  query(sql: string, values?: unknown): Promise<MysqlResultLike>;
  execute(sql: string, values?: unknown): Promise<MysqlResultLike>;
}

/** Options of {@link mysqlBarrierDb}. */
export interface MysqlBarrierOptions {
  /** The barrier table. Default `dtm_barrier.barrier` (database `dtm_barrier`). */
  table?: string;
}

/**
 * A {@link BarrierDb} over a mysql2/promise `Pool` (MySQL or MariaDB). Each guarded call takes a connection,
 * runs `beginTransaction()`, the barrier inserts (`INSERT IGNORE`) and your business on it, then `commit()` (or
 * `rollback()`), and releases it.
 *
 * @param pool - a mysql2/promise `Pool`; business code receives its `PoolConnection`.
 */
export function mysqlBarrierDb<C extends MysqlConnectionLike>(
  pool: MysqlPoolLike<C>,
  options: MysqlBarrierOptions = {},
): BarrierDb<C> {
  return new MysqlBarrierDb(pool, options);
}

class MysqlBarrierDb<C extends MysqlConnectionLike> implements BarrierDb<C> {
  readonly dialect = 'mysql' as const;
  readonly table: string;
  readonly #pool: MysqlPoolLike<C>;
  readonly #insertSql: string;
  readonly #selectSql: string;

  constructor(pool: MysqlPoolLike<C>, options: MysqlBarrierOptions) {
    this.#pool = pool;
    this.table = parseTableName(options.table ?? DEFAULT_BARRIER_TABLE).qualified;
    this.#insertSql = `INSERT IGNORE INTO ${this.table} (trans_type, gid, branch_id, op, barrier_id, reason) VALUES (?, ?, ?, ?, ?, ?)`;
    this.#selectSql = `SELECT reason FROM ${this.table} WHERE gid = ? AND branch_id = ? AND op = ? AND barrier_id = ?`;
  }

  async #insertIgnore(conn: { execute: MysqlConnectionLike['execute'] }, row: BarrierRow): Promise<number> {
    try {
      const [result] = await conn.execute(this.#insertSql, [
        row.trans_type,
        row.gid,
        row.branch_id,
        row.op,
        row.barrier_id,
        row.reason,
      ]);
      return (result as { affectedRows: number }).affectedRows;
    } catch (err) {
      rethrowMissingTable('mysql', this.table, err);
    }
  }

  async transaction<T>(work: (tx: BarrierTransaction<C>) => Promise<T>): Promise<T> {
    const conn = await this.#pool.getConnection();
    let broken = false;
    try {
      await conn.beginTransaction();
      try {
        const result = await work({ handle: conn, insertIgnore: (row) => this.#insertIgnore(conn, row) });
        await conn.commit();
        return result;
      } catch (err) {
        await conn.rollback().catch(() => {
          broken = true;
        });
        throw err;
      }
    } finally {
      // A connection whose rollback failed is in an unknown state: close it rather than return it to the pool.
      if (broken) conn.destroy();
      else conn.release();
    }
  }

  insertIgnore(row: BarrierRow): Promise<number> {
    return this.#insertIgnore(this.#pool, row);
  }

  async selectReason(key: BarrierKey): Promise<string | undefined> {
    try {
      const [rows] = await this.#pool.execute(this.#selectSql, [key.gid, key.branch_id, key.op, key.barrier_id]);
      return (rows as { reason: string }[])[0]?.reason;
    } catch (err) {
      rethrowMissingTable('mysql', this.table, err);
    }
  }

  async applyDdl(statements: readonly string[]): Promise<void> {
    for (const sql of statements) await this.#pool.query(sql);
  }

  async deleteBefore(before: Date, limit: number): Promise<number> {
    try {
      const [r] = await this.#pool.execute(
        `DELETE FROM ${this.table} WHERE create_time < ? ORDER BY create_time LIMIT ${Math.floor(limit)}`,
        [before],
      );
      return (r as { affectedRows: number }).affectedRows;
    } catch (err) {
      rethrowMissingTable('mysql', this.table, err);
    }
  }
}
