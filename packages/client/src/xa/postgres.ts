/**
 * XA on PostgreSQL through node-postgres (`pg`): `BEGIN` … `PREPARE TRANSACTION '<xid>'`, then `COMMIT PREPARED` /
 * `ROLLBACK PREPARED` by xid from any connection, `pg_prepared_xacts` for the prepared ones. The server needs
 * `max_prepared_transactions` > 0 (it is 0 by default): set it in postgresql.conf and restart.
 *
 * The xid is `'<gid>-<branch_id>'` as DTM's clients write it, at most 199 bytes, unique in the whole cluster.
 *
 * @module
 */
import type { BarrierKey, BarrierRow } from '../barrier/barrier-db.js';
import { DEFAULT_BARRIER_TABLE } from '../barrier/ddl.js';
import { rethrowMissingTable } from '../barrier/missing-table-error.js';
import type { PgClientLike, PgPoolLike } from '../barrier/postgres.js';
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

/** Options of {@link postgresXaDialect}. */
export interface PostgresXaOptions {
  /**
   * The barrier table. Default `dtm_barrier.barrier` (create it with `ensureBarrierTable(postgresBarrierDb(pool))`);
   * it must carry the unique constraint `uniq_barrier`.
   */
  table?: string;
}

/** undefined_object: `prepared transaction with identifier "…" does not exist`. */
const UNDEFINED_OBJECT = '42704';
/** lock_not_available: `canceling statement due to lock timeout`. */
const LOCK_NOT_AVAILABLE = '55P03';

function codeOf(err: unknown): unknown {
  return typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
}

/**
 * An SQL string literal of `text` (PREPARE TRANSACTION and its phase 2 take no parameters): quotes doubled, and
 * with backslashes the `E'…'` form, so the literal means `text` whatever `standard_conforming_strings` is.
 */
export function pgLiteral(text: string): string {
  if (text.includes('\0')) throw new DtxError('an XA xid cannot contain a NUL character');
  const quoted = text.replaceAll("'", "''");
  return text.includes('\\') ? `E'${quoted.replaceAll('\\', '\\\\')}'` : `'${quoted}'`;
}

/**
 * The XA dialect of PostgreSQL, for a pg `Pool`:
 *
 * ```ts
 * import pg from 'pg';
 * import { postgresXaDialect } from '@dtx/client/xa/postgres';
 * const pool = new pg.Pool({ connectionString: 'postgres://user:pass@127.0.0.1:5432/app' });
 * const xa = postgresXaDialect();
 * ```
 *
 * The dialect is a plain object: spread it to wrap a method (`{ ...postgresXaDialect(), start: … }`).
 */
export function postgresXaDialect<C extends PgClientLike>(
  options: PostgresXaOptions = {},
): XaDialect<PgPoolLike<C>, C> {
  return plainDialect(new PostgresXa<C>(options));
}

class PostgresXa<C extends PgClientLike> implements XaDialect<PgPoolLike<C>, C> {
  readonly dialect = 'postgres' as const;
  readonly maxXidBytes = 199;
  readonly table: string;
  readonly #insertSql: string;
  readonly #selectSql: string;

  constructor(options: PostgresXaOptions) {
    this.table = parseTableName(options.table ?? DEFAULT_BARRIER_TABLE).qualified;
    this.#insertSql =
      `INSERT INTO ${this.table} (trans_type, gid, branch_id, op, barrier_id, reason) ` +
      'VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT ON CONSTRAINT uniq_barrier DO NOTHING';
    this.#selectSql = `SELECT reason FROM ${this.table} WHERE gid = $1 AND branch_id = $2 AND op = $3 AND barrier_id = $4`;
  }

  async #insert(client: { query: PgClientLike['query'] }, row: BarrierRow): Promise<number> {
    try {
      const r = await client.query(this.#insertSql, [
        row.trans_type,
        row.gid,
        row.branch_id,
        row.op,
        row.barrier_id,
        row.reason,
      ]);
      return r.rowCount ?? 0;
    } catch (err) {
      rethrowMissingTable('postgres', this.table, err);
    }
  }

  async #reason(client: { query: PgClientLike['query'] }, key: BarrierKey): Promise<string | undefined> {
    try {
      const r = await client.query(this.#selectSql, [key.gid, key.branch_id, key.op, key.barrier_id]);
      return (r.rows[0] as { reason: string } | undefined)?.reason;
    } catch (err) {
      rethrowMissingTable('postgres', this.table, err);
    }
  }

  async start(pool: PgPoolLike<C>, xid: string): Promise<XaLocalTransaction<C>> {
    const literal = pgLiteral(xid);
    const client = await pool.connect();
    try {
      // A transaction prepared under this xid holds the branch's barrier row: a second one would wait for its
      // lock until that one's phase 2. Refuse at once instead.
      const taken = await client.query('SELECT 1 FROM pg_prepared_xacts WHERE gid = $1', [xid]);
      if (taken.rows.length > 0) throw new XaXidInUseError(xid);
      await client.query('BEGIN');
    } catch (err) {
      client.release();
      throw err;
    }
    let ended = false;
    const finish = () => {
      if (ended) throw new DtxError(`XA transaction '${xid}' is already prepared or rolled back`);
      ended = true;
    };
    return {
      xid,
      handle: client,
      insertBarrier: async (row, lockTimeoutMs) => {
        if (lockTimeoutMs === undefined) return this.#insert(client, row);
        // Another transaction of this branch, still running, holds the row: wait for it a bounded time only (it
        // may be prepared next and then hold the row until its phase 2).
        const r = await client.query(
          "SELECT current_setting('lock_timeout') AS old, set_config('lock_timeout', $1, true)",
          [`${Math.max(1, Math.ceil(lockTimeoutMs))}ms`],
        );
        let n: number;
        try {
          n = await this.#insert(client, row);
        } catch (err) {
          if (codeOf(err) === LOCK_NOT_AVAILABLE) throw new XaXidInUseError(xid, { cause: err });
          throw err;
        }
        await client.query("SELECT set_config('lock_timeout', $1, true)", [(r.rows[0] as { old: string }).old]);
        return n;
      },
      barrierReason: (key) => this.#reason(client, key),
      async prepare() {
        finish();
        let broken: Error | undefined;
        try {
          const r = (await client.query(`PREPARE TRANSACTION ${literal}`)) as { command?: unknown };
          // In a transaction already aborted by an error (one the business code caught), PostgreSQL answers
          // PREPARE TRANSACTION with ROLLBACK and no error: nothing is prepared.
          const prepared =
            r.command === undefined
              ? (await client.query('SELECT 1 FROM pg_prepared_xacts WHERE gid = $1', [xid])).rows.length > 0
              : r.command === 'PREPARE';
          if (!prepared) {
            throw new DtxError(
              `XA transaction '${xid}' was not prepared: an earlier statement failed and PostgreSQL rolled it back`,
            );
          }
        } catch (err) {
          await client.query('ROLLBACK').catch((e: unknown) => {
            broken = e instanceof Error ? e : new Error(String(e));
          });
          throw err;
        } finally {
          // PREPARE TRANSACTION detaches the transaction from the session: the connection is free again.
          client.release(broken);
        }
      },
      async abort() {
        if (ended) return;
        ended = true;
        try {
          await client.query('ROLLBACK');
          client.release();
        } catch (err) {
          client.release(err instanceof Error ? err : true);
        }
      },
    };
  }

  async #phase2(pool: PgPoolLike<C>, statement: string): Promise<XaPhase2Outcome> {
    try {
      await pool.query(statement);
      return 'done';
    } catch (err) {
      if (codeOf(err) === UNDEFINED_OBJECT) return 'unknown-xid';
      throw err;
    }
  }

  commit(pool: PgPoolLike<C>, xid: string): Promise<XaPhase2Outcome> {
    return this.#phase2(pool, `COMMIT PREPARED ${pgLiteral(xid)}`);
  }

  rollback(pool: PgPoolLike<C>, xid: string): Promise<XaPhase2Outcome> {
    return this.#phase2(pool, `ROLLBACK PREPARED ${pgLiteral(xid)}`);
  }

  async recover(pool: PgPoolLike<C>): Promise<string[]> {
    const r = await pool.query('SELECT gid FROM pg_prepared_xacts WHERE database = current_database() ORDER BY gid');
    return (r.rows as { gid: string }[]).map((row) => row.gid);
  }

  async insertBarrier(pool: PgPoolLike<C>, row: BarrierRow, lockTimeoutMs: number): Promise<number> {
    const client = await pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      try {
        await client.query(`SET LOCAL lock_timeout = ${Math.max(1, Math.ceil(lockTimeoutMs))}`);
        const n = await this.#insert(client, row);
        await client.query('COMMIT');
        return n;
      } catch (err) {
        await client.query('ROLLBACK').catch((e: unknown) => {
          broken = e instanceof Error ? e : new Error(String(e));
        });
        if (codeOf(err) === LOCK_NOT_AVAILABLE) throw lockedBarrierError(row, err);
        throw err;
      }
    } finally {
      client.release(broken);
    }
  }

  barrierReason(pool: PgPoolLike<C>, key: BarrierKey): Promise<string | undefined> {
    return this.#reason(pool, key);
  }
}
