/**
 * The error thrown when the barrier table does not exist, telling you how to create it.
 *
 * @module
 */
import { brand, DtxError } from '../errors.js';
import type { BarrierDialect } from './barrier-db.js';

/** The DDL file shipped with the package for each dialect (in `@dtx/client/sql/`). */
export const BARRIER_SQL_FILES: Readonly<Record<BarrierDialect, string>> = {
  sqlite: 'sql/barrier.sqlite.sql',
  postgres: 'sql/barrier.postgres.sql',
  mysql: 'sql/barrier.mysql.sql',
};

/**
 * The barrier table (or its schema/database) does not exist. Like any error that is not a
 * {@link FailureError} or {@link OngoingError}, a branch handler answers it with HTTP 500, so DTM retries the
 * branch until the table has been created.
 */
export class BarrierTableMissingError extends DtxError {
  /**
   * @param dialect - the dialect of the database that lacks the table.
   * @param table - the barrier table name that was used.
   * @param cause - the driver's error.
   */
  constructor(
    readonly dialect: BarrierDialect,
    readonly table: string,
    cause: unknown,
  ) {
    super(
      `the barrier table ${table} does not exist in the ${dialect} database: create it once with ` +
        `\`await ensureBarrierTable(db)\` from @dtx/client, or run @dtx/client/${BARRIER_SQL_FILES[dialect]} ` +
        `(driver error: ${cause instanceof Error ? cause.message : String(cause)})`,
      { cause },
    );
  }
}
brand(BarrierTableMissingError, 'BarrierTableMissingError');

/**
 * Whether a driver error says that the table (or its schema/database) is missing:
 * SQLite "no such table", PostgreSQL 42P01 undefined_table / 3F000 invalid_schema_name,
 * MySQL ER_NO_SUCH_TABLE (1146) / ER_BAD_DB_ERROR (1049).
 */
export function isMissingTableError(dialect: BarrierDialect, err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as { code?: unknown; errno?: unknown; message?: unknown };
  switch (dialect) {
    case 'sqlite':
      return typeof e.message === 'string' && /^no such table\b/.test(e.message);
    case 'postgres':
      return e.code === '42P01' || e.code === '3F000';
    case 'mysql':
      return e.errno === 1146 || e.errno === 1049;
  }
}

/** Rethrows `err` as a {@link BarrierTableMissingError} when it says that the table is missing, else unchanged. */
export function rethrowMissingTable(dialect: BarrierDialect, table: string, err: unknown): never {
  if (isMissingTableError(dialect, err)) throw new BarrierTableMissingError(dialect, table, err);
  throw err;
}
