/**
 * The DDL of the barrier table per dialect, and {@link ensureBarrierTable} which applies it.
 * For the default table names the statements are exactly those of the files in `@dtx/client/sql/`
 * (a test keeps them in step).
 *
 * @module
 */
import type { BarrierDb, BarrierDialect } from './barrier-db.js';
import { parseTableName } from './table-name.js';

/** The default barrier table of DTM, used for PostgreSQL and MySQL. */
export const DEFAULT_BARRIER_TABLE = 'dtm_barrier.barrier';

/**
 * The default barrier table for SQLite: `barrier` in the main database, because SQLite has no schemas
 * (`dtm_barrier.barrier` works only after `ATTACH DATABASE '<file>' AS dtm_barrier`).
 */
export const DEFAULT_SQLITE_BARRIER_TABLE = 'barrier';

/** The default barrier table of a dialect. */
export function defaultBarrierTable(dialect: BarrierDialect): string {
  return dialect === 'sqlite' ? DEFAULT_SQLITE_BARRIER_TABLE : DEFAULT_BARRIER_TABLE;
}

const COLUMNS = [
  "trans_type varchar(45) DEFAULT ''",
  "gid varchar(128) DEFAULT ''",
  "branch_id varchar(128) DEFAULT ''",
  "op varchar(45) DEFAULT ''",
  "barrier_id varchar(45) DEFAULT ''",
];

/**
 * The statements that create the barrier table of `dialect` if it does not exist (idempotent: every statement is
 * `CREATE ... IF NOT EXISTS`). A qualified name `x.barrier` also creates the schema `x` (PostgreSQL) or the
 * database `x` (MySQL); for SQLite, `x` must be an attached database.
 *
 * @param table - the barrier table; defaults to {@link defaultBarrierTable}.
 */
export function barrierDdl(dialect: BarrierDialect, table: string = defaultBarrierTable(dialect)): string[] {
  const t = parseTableName(table);
  const body = (lines: string[]) => `(\n  ${lines.join(',\n  ')}\n)`;
  switch (dialect) {
    case 'postgres': {
      const seq = `${t.qualified}_seq`;
      return [
        ...(t.schema === undefined ? [] : [`CREATE SCHEMA IF NOT EXISTS ${t.schema}`]),
        `CREATE SEQUENCE IF NOT EXISTS ${seq}`,
        `CREATE TABLE IF NOT EXISTS ${t.qualified} ` +
          body([
            `id bigint NOT NULL DEFAULT nextval('${seq}')`,
            ...COLUMNS,
            "reason varchar(45) DEFAULT ''",
            'create_time timestamp(0) with time zone DEFAULT now()',
            'update_time timestamp(0) with time zone DEFAULT now()',
            'PRIMARY KEY (id)',
            'CONSTRAINT uniq_barrier UNIQUE (gid, branch_id, op, barrier_id)',
          ]),
        `CREATE INDEX IF NOT EXISTS ${t.name}_create_time ON ${t.qualified} (create_time)`,
        `CREATE INDEX IF NOT EXISTS ${t.name}_update_time ON ${t.qualified} (update_time)`,
      ];
    }
    case 'mysql':
      return [
        ...(t.schema === undefined ? [] : [`CREATE DATABASE IF NOT EXISTS ${t.schema} DEFAULT CHARACTER SET utf8mb4`]),
        `CREATE TABLE IF NOT EXISTS ${t.qualified} ` +
          body([
            'id bigint(22) PRIMARY KEY AUTO_INCREMENT',
            ...COLUMNS,
            "reason varchar(45) DEFAULT '' COMMENT 'the op of the branch that inserted this row'",
            'create_time datetime DEFAULT now()',
            'update_time datetime DEFAULT now()',
            'KEY (create_time)',
            'KEY (update_time)',
            'UNIQUE KEY uniq_barrier (gid, branch_id, op, barrier_id)',
          ]) +
          ' ENGINE = InnoDB DEFAULT CHARSET = utf8mb4',
      ];
    case 'sqlite': {
      const index = (column: string) =>
        `CREATE INDEX IF NOT EXISTS ${t.schema === undefined ? '' : `${t.schema}.`}${t.name}_${column} ` +
        `ON ${t.name} (${column})`;
      return [
        `CREATE TABLE IF NOT EXISTS ${t.qualified} ` +
          body([
            'id integer PRIMARY KEY AUTOINCREMENT',
            ...COLUMNS,
            "reason varchar(45) DEFAULT ''",
            'create_time datetime DEFAULT CURRENT_TIMESTAMP',
            'update_time datetime DEFAULT CURRENT_TIMESTAMP',
            'CONSTRAINT uniq_barrier UNIQUE (gid, branch_id, op, barrier_id)',
          ]),
        index('create_time'),
        index('update_time'),
      ];
    }
  }
}

/**
 * Creates the barrier table of `db` (its dialect and table name) if it does not exist. Idempotent and safe to
 * call at every start of your service, also from several processes at once.
 *
 * @example
 * ```ts
 * const db = postgresBarrierDb(pool);
 * await ensureBarrierTable(db);
 * ```
 */
export async function ensureBarrierTable(db: BarrierDb<unknown>): Promise<void> {
  await db.applyDdl(barrierDdl(db.dialect, db.table));
}
