import type pg from 'pg';
import type { SqlStoreOptions } from '../sql/sql-options.js';
import { SqlStore } from '../sql/sql-store.js';
import type { PgWrite } from './pg-batch.js';
import { PostgresDialect } from './postgres-dialect.js';

/**
 * The PostgreSQL store (Store.Driver `postgres`): the shared SQL store over {@link PostgresDialect}.
 *
 * Writes on the hot path are pipelined on one connection as `BEGIN; w1; …; wn; COMMIT` — one round trip and
 * one WAL flush for all of them (pg-batch.ts). Each write is one statement that either does all its work or
 * none, so a lost CAS needs no savepoint; when a statement fails, the batch is replayed with one savepoint per
 * write, so only the failing write fails.
 */
export class PostgresStore extends SqlStore<pg.Pool, pg.PoolClient, PgWrite, pg.QueryResult> {
  /** Connect (waiting while the server is unreachable), create the schema if missing and migrate it. */
  static open(o: SqlStoreOptions): Promise<PostgresStore> {
    return new PostgresStore(new PostgresDialect(o), o).opened(o);
  }
}
