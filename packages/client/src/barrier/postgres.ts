/**
 * The barrier on PostgreSQL through node-postgres (`pg`).
 *
 * @module
 */
import type { BarrierDb, BarrierKey, BarrierRow, BarrierTransaction } from './barrier-db.js';
import { DEFAULT_BARRIER_TABLE } from './ddl.js';
import { rethrowMissingTable } from './missing-table-error.js';
import { parseTableName } from './table-name.js';

/** The part of a pg query result the barrier uses. */
export interface PgResultLike {
  rowCount: number | null;
  rows: unknown[];
}

/** The part of a pg `PoolClient` the barrier uses. */
export interface PgClientLike {
  query(text: string, values?: unknown[]): Promise<PgResultLike>;
  release(err?: Error | boolean): void;
}

/** The part of a pg `Pool` the barrier uses (both `connect` overloads, so that the client type is inferred). */
export interface PgPoolLike<C extends PgClientLike> {
  connect(): Promise<C>;
  connect(callback: (...args: never[]) => void): void;
  query(text: string, values?: unknown[]): Promise<PgResultLike>;
}

/** Options of {@link postgresBarrierDb}. */
export interface PostgresBarrierOptions {
  /**
   * The barrier table. Default `dtm_barrier.barrier`. It must carry the unique constraint named `uniq_barrier`
   * on (gid, branch_id, op, barrier_id), as the DDL of {@link ensureBarrierTable} creates it.
   */
  table?: string;
}

/** Any key: the ordinal of the advisory lock that serialises concurrent {@link ensureBarrierTable} calls. */
const DDL_LOCK_KEY = 0x647478; // "dtx"

/**
 * A {@link BarrierDb} over a pg `Pool`. Each guarded call checks out a client, runs `BEGIN`, the barrier inserts
 * and your business on that client, then `COMMIT` (or `ROLLBACK`), and releases it.
 *
 * @param pool - a pg `Pool`; business code receives its `PoolClient`.
 */
export function postgresBarrierDb<C extends PgClientLike>(
  pool: PgPoolLike<C>,
  options: PostgresBarrierOptions = {},
): BarrierDb<C> {
  return new PostgresBarrierDb(pool, options);
}

class PostgresBarrierDb<C extends PgClientLike> implements BarrierDb<C> {
  readonly dialect = 'postgres' as const;
  readonly table: string;
  readonly #pool: PgPoolLike<C>;
  readonly #insertSql: string;
  readonly #selectSql: string;

  constructor(pool: PgPoolLike<C>, options: PostgresBarrierOptions) {
    this.#pool = pool;
    this.table = parseTableName(options.table ?? DEFAULT_BARRIER_TABLE).qualified;
    this.#insertSql =
      `INSERT INTO ${this.table} (trans_type, gid, branch_id, op, barrier_id, reason) ` +
      'VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT ON CONSTRAINT uniq_barrier DO NOTHING';
    this.#selectSql = `SELECT reason FROM ${this.table} WHERE gid = $1 AND branch_id = $2 AND op = $3 AND barrier_id = $4`;
  }

  async #insertIgnore(client: { query: PgClientLike['query'] }, row: BarrierRow): Promise<number> {
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

  async #withClient<T>(work: (client: C) => Promise<T>): Promise<T> {
    const client = await this.#pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      try {
        const result = await work(client);
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch((rollbackError: unknown) => {
          broken = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
        });
        throw err;
      }
    } finally {
      // A client whose rollback failed is in an unknown state: destroy it rather than return it to the pool.
      client.release(broken);
    }
  }

  transaction<T>(work: (tx: BarrierTransaction<C>) => Promise<T>): Promise<T> {
    return this.#withClient((client) =>
      work({ handle: client, insertIgnore: (row) => this.#insertIgnore(client, row) }),
    );
  }

  insertIgnore(row: BarrierRow): Promise<number> {
    return this.#insertIgnore(this.#pool, row);
  }

  async selectReason(key: BarrierKey): Promise<string | undefined> {
    try {
      const r = await this.#pool.query(this.#selectSql, [key.gid, key.branch_id, key.op, key.barrier_id]);
      return (r.rows[0] as { reason: string } | undefined)?.reason;
    } catch (err) {
      rethrowMissingTable('postgres', this.table, err);
    }
  }

  async deleteBefore(before: Date, limit: number): Promise<number> {
    try {
      const r = await this.#pool.query(
        `DELETE FROM ${this.table} WHERE id IN (SELECT id FROM ${this.table} WHERE create_time < $1 LIMIT $2)`,
        [before, Math.floor(limit)],
      );
      return r.rowCount ?? 0;
    } catch (err) {
      rethrowMissingTable('postgres', this.table, err);
    }
  }

  applyDdl(statements: readonly string[]): Promise<void> {
    // CREATE ... IF NOT EXISTS is not safe against itself in PostgreSQL (two sessions may both decide to create);
    // a transaction-scoped advisory lock makes concurrent callers take turns. DDL is transactional here.
    return this.#withClient(async (client) => {
      await client.query('SELECT pg_advisory_xact_lock($1)', [DDL_LOCK_KEY]);
      for (const sql of statements) {
        if (await indexExists(client, sql)) continue;
        await client.query(sql);
      }
    });
  }
}

/**
 * Whether `sql` is a `CREATE INDEX IF NOT EXISTS <name> ON [schema.]table …` whose index exists already. PostgreSQL
 * takes a SHARE lock on the table before it sees that the index exists, and that lock waits for every transaction
 * holding the table's rows — a prepared XA branch holds them until its phase 2, which may need this very service
 * to be up. So an existing index is skipped without locking the table.
 */
async function indexExists(client: { query: PgClientLike['query'] }, sql: string): Promise<boolean> {
  const m = /^CREATE INDEX IF NOT EXISTS (\w+) ON (?:(\w+)\.)?\w+ /.exec(sql);
  if (m === null) return false;
  const name = m[2] === undefined ? m[1]! : `${m[2]}.${m[1]}`;
  const r = await client.query('SELECT to_regclass($1) IS NOT NULL AS present', [name]);
  return (r.rows[0] as { present?: boolean } | undefined)?.present === true;
}
