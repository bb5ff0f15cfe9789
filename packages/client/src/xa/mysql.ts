/**
 * XA on MySQL and MariaDB through mysql2's promise API: `XA START` / `XA END` / `XA PREPARE`, then `XA COMMIT` /
 * `XA ROLLBACK` by xid from any connection, `XA RECOVER` for the prepared ones (MySQL 8 needs the
 * `XA_RECOVER_ADMIN` privilege for it). The xid is the global transaction id (gtrid) alone, as DTM's clients
 * write it: `XA START '<gid>-<branch_id>'`; at most 64 bytes.
 *
 * Inside the XA transaction business code receives the mysql2 `PoolConnection`: plain DML only — DDL, `BEGIN`,
 * `COMMIT` and the like are refused by the server (`XAER_RMFAIL`) while an XA transaction is active.
 *
 * @module
 */
import type { BarrierKey, BarrierRow } from '../barrier/barrier-db.js';
import { DEFAULT_BARRIER_TABLE } from '../barrier/ddl.js';
import { rethrowMissingTable } from '../barrier/missing-table-error.js';
import type { MysqlConnectionLike, MysqlPoolLike } from '../barrier/mysql.js';
import { parseTableName } from '../barrier/table-name.js';
import { DtxError } from '../errors.js';
import {
  lockedBarrierError,
  plainDialect,
  type XaDialect,
  type XaLocalTransaction,
  type XaPhase2Outcome,
  XaXidInUseError,
} from './dialect.js';

/** Options of {@link mysqlXaDialect}. */
export interface MysqlXaOptions {
  /** The barrier table. Default `dtm_barrier.barrier` (create it with `ensureBarrierTable(mysqlBarrierDb(pool))`). */
  table?: string;
}

/** ER_XAER_NOTA: "Unknown XID". */
const XAER_NOTA = 1397;
/** ER_XAER_DUPID: "The XID already exists". */
const XAER_DUPID = 1440;
/** ER_LOCK_WAIT_TIMEOUT. */
const LOCK_WAIT_TIMEOUT = 1205;

function errnoOf(err: unknown): unknown {
  return typeof err === 'object' && err !== null ? (err as { errno?: unknown }).errno : undefined;
}

/**
 * The XA dialect of MySQL / MariaDB, for a mysql2/promise `Pool`:
 *
 * ```ts
 * import mysql from 'mysql2/promise';
 * import { mysqlXaDialect } from '@dtx/client/xa/mysql';
 * const pool = mysql.createPool('mysql://user:pass@127.0.0.1:3306/app');
 * const xa = mysqlXaDialect();
 * ```
 *
 * The dialect is a plain object: spread it to wrap a method (`{ ...mysqlXaDialect(), start: … }`).
 */
export function mysqlXaDialect<C extends MysqlConnectionLike>(
  options: MysqlXaOptions = {},
): XaDialect<MysqlPoolLike<C>, C> {
  return plainDialect(new MysqlXa<C>(options));
}

class MysqlXa<C extends MysqlConnectionLike> implements XaDialect<MysqlPoolLike<C>, C> {
  readonly dialect = 'mysql' as const;
  readonly maxXidBytes = 64;
  readonly table: string;
  readonly #insertSql: string;
  readonly #selectSql: string;

  constructor(options: MysqlXaOptions) {
    this.table = parseTableName(options.table ?? DEFAULT_BARRIER_TABLE).qualified;
    this.#insertSql = `INSERT IGNORE INTO ${this.table} (trans_type, gid, branch_id, op, barrier_id, reason) VALUES (?, ?, ?, ?, ?, ?)`;
    this.#selectSql = `SELECT reason FROM ${this.table} WHERE gid = ? AND branch_id = ? AND op = ? AND barrier_id = ?`;
  }

  async #insert(conn: { execute: MysqlConnectionLike['execute'] }, row: BarrierRow): Promise<number> {
    try {
      const [r] = await conn.execute(this.#insertSql, [
        row.trans_type,
        row.gid,
        row.branch_id,
        row.op,
        row.barrier_id,
        row.reason,
      ]);
      return (r as { affectedRows: number }).affectedRows;
    } catch (err) {
      rethrowMissingTable('mysql', this.table, err);
    }
  }

  async #reason(conn: { execute: MysqlConnectionLike['execute'] }, key: BarrierKey): Promise<string | undefined> {
    try {
      const [rows] = await conn.execute(this.#selectSql, [key.gid, key.branch_id, key.op, key.barrier_id]);
      return (rows as { reason: string }[])[0]?.reason;
    } catch (err) {
      rethrowMissingTable('mysql', this.table, err);
    }
  }

  async start(pool: MysqlPoolLike<C>, xid: string): Promise<XaLocalTransaction<C>> {
    const conn = await pool.getConnection();
    try {
      await conn.query('XA START ?', [xid]);
    } catch (err) {
      conn.release();
      if (errnoOf(err) === XAER_DUPID) throw new XaXidInUseError(xid, { cause: err });
      throw err;
    }
    let ended = false;
    const finish = () => {
      if (ended) throw new DtxError(`XA transaction '${xid}' is already prepared or rolled back`);
      ended = true;
    };
    return {
      xid,
      handle: conn,
      insertBarrier: (row) => this.#insert(conn, row),
      barrierReason: (key) => this.#reason(conn, key),
      async prepare() {
        finish();
        try {
          await conn.query('XA END ?', [xid]);
          await conn.query('XA PREPARE ?', [xid]);
        } catch (err) {
          await conn.query('XA ROLLBACK ?', [xid]).catch(() => {});
          conn.destroy();
          throw err;
        }
        // A prepared XA transaction stays bound to its session while the session lives (MariaDB, MySQL < 8.0.30
        // with the default settings): XA COMMIT from another connection then answers XAER_NOTA. Closing the
        // session detaches it, so phase 2 works from any connection — or after this process has died.
        conn.destroy();
      },
      async abort() {
        if (ended) return;
        ended = true;
        try {
          // XA END fails when the transaction was already ended or rolled back by the server (e.g. a deadlock
          // victim): XA ROLLBACK is tried anyway.
          await conn.query('XA END ?', [xid]).catch(() => {});
          await conn.query('XA ROLLBACK ?', [xid]);
          conn.release();
        } catch {
          conn.destroy();
        }
      },
    };
  }

  async #phase2(pool: MysqlPoolLike<C>, statement: string, xid: string): Promise<XaPhase2Outcome> {
    try {
      await pool.query(statement, [xid]);
      return 'done';
    } catch (err) {
      if (errnoOf(err) === XAER_NOTA) return 'unknown-xid';
      throw err;
    }
  }

  commit(pool: MysqlPoolLike<C>, xid: string): Promise<XaPhase2Outcome> {
    return this.#phase2(pool, 'XA COMMIT ?', xid);
  }

  rollback(pool: MysqlPoolLike<C>, xid: string): Promise<XaPhase2Outcome> {
    return this.#phase2(pool, 'XA ROLLBACK ?', xid);
  }

  async recover(pool: MysqlPoolLike<C>): Promise<string[]> {
    const [rows] = await pool.query('XA RECOVER');
    const out: string[] = [];
    for (const r of rows as { gtrid_length: number | string; bqual_length: number | string; data: unknown }[]) {
      const data = typeof r.data === 'string' ? Buffer.from(r.data, 'utf8') : Buffer.from(r.data as Uint8Array);
      // Only xids without a branch qualifier are ours (and DTM's): the whole data is the gtrid.
      if (Number(r.bqual_length) !== 0) continue;
      out.push(data.subarray(0, Number(r.gtrid_length)).toString('utf8'));
    }
    return out;
  }

  async insertBarrier(pool: MysqlPoolLike<C>, row: BarrierRow, lockTimeoutMs: number): Promise<number> {
    const conn = await pool.getConnection();
    let clean = false;
    try {
      await conn.query('SET SESSION innodb_lock_wait_timeout = ?', [Math.max(1, Math.ceil(lockTimeoutMs / 1000))]);
      let n: number;
      try {
        n = await this.#insert(conn, row);
      } catch (err) {
        if (errnoOf(err) === LOCK_WAIT_TIMEOUT) throw lockedBarrierError(row, err);
        throw err;
      }
      await conn.query('SET SESSION innodb_lock_wait_timeout = DEFAULT');
      clean = true;
      return n;
    } finally {
      // A connection left with the short lock timeout is not given back to the pool.
      if (clean) conn.release();
      else conn.destroy();
    }
  }

  barrierReason(pool: MysqlPoolLike<C>, key: BarrierKey): Promise<string | undefined> {
    return this.#reason(pool, key);
  }
}
