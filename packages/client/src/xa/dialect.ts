/**
 * What the XA helpers need from a database: a local XA transaction identified by an xid (MySQL / MariaDB
 * `XA START … XA PREPARE`, PostgreSQL `BEGIN … PREPARE TRANSACTION`), its phase 2 by xid from any connection, the
 * list of prepared xids, and the barrier rows of spec §9.6. One implementation per SQL family:
 * {@link mysqlXaDialect} (`@dtx/client/xa/mysql`) and {@link postgresXaDialect} (`@dtx/client/xa/postgres`).
 *
 * A dialect holds no connection: every method takes the pool (`Db`) it works on, which you create and own.
 *
 * @module
 */
import type { BarrierKey, BarrierRow } from '../barrier/barrier-db.js';
import { brand, DtxError } from '../errors.js';

/** The SQL families with XA support. */
export type XaDialectName = 'mysql' | 'postgres';

/** How a phase-2 statement ended: done, or the database knows no prepared transaction with this xid. */
export type XaPhase2Outcome = 'done' | 'unknown-xid';

/**
 * A local XA transaction, open on a connection of its own (taken from the pool by {@link XaDialect.start}).
 * Exactly one of {@link prepare} and {@link abort} ends it; both give the connection back (or close it).
 *
 * @typeParam Conn - the native connection your business code receives.
 */
export interface XaLocalTransaction<Conn> {
  /** The xid. */
  readonly xid: string;
  /** The native connection, inside the XA transaction: a mysql2 `PoolConnection`, a pg `PoolClient`. */
  readonly handle: Conn;
  /**
   * Inserts a barrier row inside the XA transaction unless one with the same key exists.
   * @param lockTimeoutMs how long to wait when another transaction of the same branch holds the row, still running
   *   (PostgreSQL; MySQL refuses the second `XA START` of the xid instead). Default: no limit.
   * @returns 1 when inserted, 0 when the key was there (committed by another transaction)
   * @throws XaXidInUseError when the row stayed locked for `lockTimeoutMs`
   */
  insertBarrier(row: BarrierRow, lockTimeoutMs?: number): Promise<number>;
  /** The `reason` of the barrier row with this key, as this transaction sees it; `undefined` when none. */
  barrierReason(key: BarrierKey): Promise<string | undefined>;
  /**
   * Ends the transaction as prepared: `XA END` + `XA PREPARE` (PostgreSQL: `PREPARE TRANSACTION`). Its changes
   * and locks now wait for {@link XaDialect.commit} or {@link XaDialect.rollback} — from any connection, even
   * after this process dies. MySQL / MariaDB: the connection is closed afterwards, because a prepared XA
   * transaction stays bound to its session while it lives (another session gets `XAER_NOTA` for it).
   * On an error the transaction is rolled back (best effort) and the error rethrown.
   */
  prepare(): Promise<void>;
  /** Rolls the transaction back (`XA END` + `XA ROLLBACK`; PostgreSQL `ROLLBACK`). Never rejects. */
  abort(): Promise<void>;
}

/**
 * A database family's XA statements. Implementations: {@link mysqlXaDialect}, {@link postgresXaDialect}; a test
 * may wrap one (e.g. to crash the process right after `prepare`).
 *
 * @typeParam Db - the pool the dialect works on (a mysql2/promise `Pool`, a pg `Pool`).
 * @typeParam Conn - the native connection business code receives inside the XA transaction.
 */
export interface XaDialect<Db, Conn> {
  /** Which family this is. */
  readonly dialect: XaDialectName;
  /** The barrier table, e.g. `dtm_barrier.barrier`. */
  readonly table: string;
  /** The longest xid the database accepts, in UTF-8 bytes (MySQL: 64, PostgreSQL: 199). */
  readonly maxXidBytes: number;
  /**
   * Takes a connection of `db` and starts the XA transaction `xid` on it.
   * @throws XaXidInUseError when a transaction with this xid is running or prepared already
   */
  start(db: Db, xid: string): Promise<XaLocalTransaction<Conn>>;
  /** `XA COMMIT` (PostgreSQL `COMMIT PREPARED`) of a prepared transaction, from a connection of `db`. */
  commit(db: Db, xid: string): Promise<XaPhase2Outcome>;
  /** `XA ROLLBACK` (PostgreSQL `ROLLBACK PREPARED`) of a prepared transaction, from a connection of `db`. */
  rollback(db: Db, xid: string): Promise<XaPhase2Outcome>;
  /** The xids of the transactions prepared in `db` (`XA RECOVER`; PostgreSQL `pg_prepared_xacts` of this database). */
  recover(db: Db): Promise<string[]>;
  /**
   * Inserts a barrier row in a transaction of its own unless one with the same key exists, waiting at most
   * `lockTimeoutMs` for a row lock (a prepared transaction holding the key keeps it until its phase 2).
   * @returns 1 when inserted, 0 when the key was there
   */
  insertBarrier(db: Db, row: BarrierRow, lockTimeoutMs: number): Promise<number>;
  /** The committed `reason` of the barrier row with this key; `undefined` when there is none. */
  barrierReason(db: Db, key: BarrierKey): Promise<string | undefined>;
}

/**
 * A local XA transaction cannot start because its xid is taken: a transaction with it is running or prepared
 * (a repeated action call while the first is still in progress or waits for its phase 2). Nothing was changed.
 */
export class XaXidInUseError extends DtxError {
  constructor(
    /** The xid. */
    readonly xid: string,
    options?: { cause?: unknown },
  ) {
    super(
      `XA transaction '${xid}' already exists (running or prepared): a repeated action call of this branch; ` +
        'the first one decides',
      options,
    );
  }
}
brand(XaXidInUseError, 'XaXidInUseError');

/** The message of any thrown value, for matching driver errors. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * The barrier row a phase 2 wants to write is locked by the branch's own local transaction, still running or
 * prepared: the coordinator retries the phase 2 later.
 */
export function lockedBarrierError(row: BarrierRow, cause: unknown): DtxError {
  return new DtxError(
    `the barrier row of XA branch ${row.gid}-${row.branch_id} is locked by its local transaction, still running ` +
      'or prepared: try again later',
    { cause },
  );
}

/** The dialect as a plain object of its members (methods bound), so that `{ ...dialect, start }` keeps working. */
export function plainDialect<Db, Conn>(d: XaDialect<Db, Conn>): XaDialect<Db, Conn> {
  return {
    dialect: d.dialect,
    table: d.table,
    maxXidBytes: d.maxXidBytes,
    start: (db, xid) => d.start(db, xid),
    commit: (db, xid) => d.commit(db, xid),
    rollback: (db, xid) => d.rollback(db, xid),
    recover: (db) => d.recover(db),
    insertBarrier: (db, row, lockTimeoutMs) => d.insertBarrier(db, row, lockTimeoutMs),
    barrierReason: (db, key) => d.barrierReason(db, key),
  };
}
