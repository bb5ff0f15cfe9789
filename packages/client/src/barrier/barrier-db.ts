/**
 * The small database interface the sub-transaction barrier needs, implemented once per SQL dialect
 * ({@link sqliteBarrierDb}, {@link postgresBarrierDb}, {@link mysqlBarrierDb}). A `BarrierDb` wraps a pool
 * (or, for SQLite, one connection) that you create and own; it never closes it.
 *
 * @module
 */

/** The SQL dialects the barrier speaks. */
export type BarrierDialect = 'sqlite' | 'postgres' | 'mysql';

/** The unique key of a barrier row: one guarded call of one op of one branch (spec §9.1). */
export interface BarrierKey {
  readonly gid: string;
  readonly branch_id: string;
  readonly op: string;
  /** `01`, `02`, … — the number of the guarded call within the branch request. */
  readonly barrier_id: string;
}

/** A barrier row as it is inserted. */
export interface BarrierRow extends BarrierKey {
  readonly trans_type: string;
  /** The op of the branch request that inserted the row. */
  readonly reason: string;
}

/**
 * The row of `key` with its trans type and reason, as one object literal: on Node 20 an optimised
 * `{ ...key, trans_type, reason }` makes a new hidden class on every call.
 */
export function barrierRow(key: BarrierKey, trans_type: string, reason: string): BarrierRow {
  return { gid: key.gid, branch_id: key.branch_id, op: key.op, barrier_id: key.barrier_id, trans_type, reason };
}

/** One open local transaction of a {@link BarrierDb}. */
export interface BarrierTransaction<Tx> {
  /**
   * The dialect's native transaction handle, handed to your business code so that its writes are part of the
   * same local transaction as the barrier rows: a better-sqlite3 `Database` inside `BEGIN IMMEDIATE`, a pg
   * `PoolClient` inside `BEGIN`, a mysql2 `PoolConnection` inside `beginTransaction()`.
   */
  readonly handle: Tx;
  /**
   * Inserts the row unless a row with the same {@link BarrierKey} exists (spec §9.2).
   * @returns the number of rows inserted: 1, or 0 when the key was already there.
   * @throws {@link BarrierTableMissingError} when the barrier table does not exist.
   */
  insertIgnore(row: BarrierRow): Promise<number>;
}

/**
 * A database the barrier can guard local transactions in. Create one per pool with the dialect's factory and
 * share it between requests.
 *
 * @typeParam Tx - the native transaction handle your business code receives.
 */
export interface BarrierDb<Tx> {
  /** Which SQL dialect this is. */
  readonly dialect: BarrierDialect;
  /** The barrier table, as given to the factory (for example `dtm_barrier.barrier`). */
  readonly table: string;
  /**
   * Runs `work` inside one local transaction: commits when it resolves, rolls back when it throws (and rethrows).
   */
  transaction<T>(work: (tx: BarrierTransaction<Tx>) => Promise<T>): Promise<T>;
  /**
   * {@link BarrierTransaction.insertIgnore} in a transaction of its own (autocommit), as the msg back-check needs.
   */
  insertIgnore(row: BarrierRow): Promise<number>;
  /** The `reason` of the row with this key, or `undefined` when there is none. */
  selectReason(key: BarrierKey): Promise<string | undefined>;
  /** Runs DDL statements, one after the other (see {@link ensureBarrierTable}). */
  applyDdl(statements: readonly string[]): Promise<void>;
  /** Deletes up to `limit` rows created before `before`; returns how many (see {@link deleteOldBarrierRows}). */
  deleteBefore(before: Date, limit: number): Promise<number>;
}
