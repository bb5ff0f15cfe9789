import type mysql from 'mysql2/promise';
import type { SqlStoreOptions } from '../sql/sql-options.js';
import { SqlStore } from '../sql/sql-store.js';
import type { MyWrite, Result } from './my-batch.js';
import { MysqlDialect } from './mysql-dialect.js';

/**
 * The MySQL / MariaDB store (Store.Driver `mysql`): the shared SQL store over {@link MysqlDialect}.
 *
 * Writes on the hot path are sent as ONE multi-statement query, `START TRANSACTION; …; COMMIT` — one round trip
 * and one redo-log flush for all of them (my-batch.ts). Each write's statements do all of its work or none of
 * it, so a lost CAS needs no savepoint; when a statement fails, the batch is replayed with one savepoint per
 * write, so only the failing write fails.
 */
export class MysqlStore extends SqlStore<mysql.Pool, mysql.PoolConnection, MyWrite, Result[]> {
  /** Connect (waiting while the server is unreachable), create the database if missing and migrate it. */
  static open(o: SqlStoreOptions): Promise<MysqlStore> {
    return new MysqlStore(new MysqlDialect(o), o).opened(o);
  }
}
