/**
 * The MySQL / MariaDB schema, versioned. Version 1 is DTM's own DDL (sqls/dtmsvr.storage.mysql.sql, spec
 * §8.3: tables, column names, keys), so a fresh dtx database and an existing DTM database are the same
 * thing after it; version 2 is what dtx changes on both:
 *
 * - payload columns without DTM's caps: bin_data BLOB (64 KiB) → LONGBLOB; query_prepared, options,
 *   custom_data, ext_data, result, rollback_reason → LONGTEXT; the branch url → TEXT. Nothing is ever
 *   truncated silently: dtx's connections also run in strict SQL mode;
 * - times keep milliseconds: DATETIME → DATETIME(3). The core computes leases and back-offs in ms and the
 *   other stores keep ms. DATETIME has no zone: dtx writes and reads UTC (DTM wrote the server's local
 *   time; rows a DTM in another zone left behind read shifted by that offset);
 * - the keys compare exactly: gid, branch_id, op, cat and k become utf8mb4_bin (DTM's default collation is
 *   case-insensitive, so gids `aB` and `Ab` collided);
 * - columns DTM added over the years (ext_data, result, rollback_reason) are added if an older DTM created
 *   the tables, and an index (status, update_time) serves retention.
 *
 * DDL in MySQL is not transactional: each step is idempotent, so a migration interrupted half-way is
 * simply run again. Migrations are serialised with GET_LOCK and recorded in `dtx_migrations`. On a big
 * existing table, version 2 rebuilds the tables (ALTER … MODIFY): run `dtx migrate` in a quiet window.
 * A migration is never edited once released — add the next version instead.
 */

import type { Migration } from '../sql/migrator.js';

/** What a migration can do on its connection. */
export interface MyMigrationConn {
  query(sql: string, values?: unknown[]): Promise<unknown>;
  /** The column names of a table of the current database. */
  columns(table: string): Promise<Set<string>>;
  /** The index names of a table of the current database. */
  indexes(table: string): Promise<Set<string>>;
}

/** A step of the MySQL schema (applied by the shared migrator, sql/migrator.ts). */
export type MyMigration = Migration<MyMigrationConn>;

const TEXT = 'CHARACTER SET utf8mb4';
const BIN = 'CHARACTER SET utf8mb4 COLLATE utf8mb4_bin';

export const MY_MIGRATIONS: readonly MyMigration[] = [
  {
    version: 1,
    name: "DTM's tables (sqls/dtmsvr.storage.mysql.sql)",
    async up(c) {
      await c.query(`CREATE TABLE IF NOT EXISTS trans_global (
        id bigint(22) NOT NULL AUTO_INCREMENT,
        gid varchar(128) NOT NULL,
        trans_type varchar(45) NOT NULL,
        status varchar(12) NOT NULL,
        query_prepared varchar(1024) NOT NULL,
        protocol varchar(45) NOT NULL,
        create_time datetime DEFAULT NULL,
        update_time datetime DEFAULT NULL,
        finish_time datetime DEFAULT NULL,
        rollback_time datetime DEFAULT NULL,
        options varchar(1024) DEFAULT '',
        custom_data varchar(1024) DEFAULT '',
        next_cron_interval int(11) DEFAULT NULL,
        next_cron_time datetime DEFAULT NULL,
        owner varchar(128) NOT NULL DEFAULT '',
        ext_data TEXT,
        result varchar(1024) DEFAULT '',
        rollback_reason varchar(1024) DEFAULT '',
        PRIMARY KEY (id),
        UNIQUE KEY gid (gid),
        KEY owner (owner),
        KEY status_next_cron_time (status, next_cron_time)
      ) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4`);
      await c.query(`CREATE TABLE IF NOT EXISTS trans_branch_op (
        id bigint(22) NOT NULL AUTO_INCREMENT,
        gid varchar(128) NOT NULL,
        url varchar(1024) NOT NULL,
        data TEXT,
        bin_data BLOB,
        branch_id varchar(128) NOT NULL,
        op varchar(45) NOT NULL,
        status varchar(45) NOT NULL,
        finish_time datetime DEFAULT NULL,
        rollback_time datetime DEFAULT NULL,
        create_time datetime DEFAULT NULL,
        update_time datetime DEFAULT NULL,
        PRIMARY KEY (id),
        UNIQUE KEY gid_uniq (gid, branch_id, op)
      ) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4`);
      await c.query(`CREATE TABLE IF NOT EXISTS kv (
        id bigint(22) NOT NULL AUTO_INCREMENT,
        cat varchar(45) NOT NULL,
        k varchar(128) NOT NULL,
        v TEXT,
        version bigint(22) DEFAULT 1,
        create_time datetime DEFAULT NULL,
        update_time datetime DEFAULT NULL,
        PRIMARY KEY (id),
        UNIQUE KEY uniq_k (cat, k)
      ) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4`);
    },
  },
  {
    version: 2,
    name: 'dtx: uncapped payload columns, millisecond times, exact keys, retention index',
    async up(c) {
      const have = await c.columns('trans_global');
      const add = [
        ['ext_data', 'TEXT'],
        ['result', "varchar(1024) DEFAULT ''"],
        ['rollback_reason', "varchar(1024) DEFAULT ''"],
      ].filter(([name]) => !have.has(name!));
      if (add.length > 0) {
        await c.query(`ALTER TABLE trans_global ${add.map(([n, t]) => `ADD COLUMN ${n} ${t}`).join(', ')}`);
      }
      await c.query(`ALTER TABLE trans_global
        MODIFY gid varchar(128) ${BIN} NOT NULL,
        MODIFY query_prepared LONGTEXT ${TEXT} NOT NULL,
        MODIFY options LONGTEXT ${TEXT},
        MODIFY custom_data LONGTEXT ${TEXT},
        MODIFY ext_data LONGTEXT ${TEXT},
        MODIFY result LONGTEXT ${TEXT},
        MODIFY rollback_reason LONGTEXT ${TEXT},
        MODIFY create_time datetime(3) DEFAULT NULL,
        MODIFY update_time datetime(3) DEFAULT NULL,
        MODIFY finish_time datetime(3) DEFAULT NULL,
        MODIFY rollback_time datetime(3) DEFAULT NULL,
        MODIFY next_cron_time datetime(3) DEFAULT NULL`);
      if (!(await c.indexes('trans_global')).has('status_update_time')) {
        await c.query('ALTER TABLE trans_global ADD KEY status_update_time (status, update_time)');
      }
      await c.query(`ALTER TABLE trans_branch_op
        MODIFY gid varchar(128) ${BIN} NOT NULL,
        MODIFY url TEXT ${TEXT} NOT NULL,
        MODIFY bin_data LONGBLOB,
        MODIFY branch_id varchar(128) ${BIN} NOT NULL,
        MODIFY op varchar(45) ${BIN} NOT NULL,
        MODIFY finish_time datetime(3) DEFAULT NULL,
        MODIFY rollback_time datetime(3) DEFAULT NULL,
        MODIFY create_time datetime(3) DEFAULT NULL,
        MODIFY update_time datetime(3) DEFAULT NULL`);
      await c.query(`ALTER TABLE kv
        MODIFY cat varchar(45) ${BIN} NOT NULL,
        MODIFY k varchar(128) ${BIN} NOT NULL,
        MODIFY v LONGTEXT ${TEXT},
        MODIFY create_time datetime(3) DEFAULT NULL,
        MODIFY update_time datetime(3) DEFAULT NULL`);
    },
  },
  {
    version: 3,
    name: 'dtx: attempt history of branches and transactions, the stuck alert flag',
    // added columns only (instant on MySQL 8 / MariaDB 10.3+); idempotent like version 2
    async up(c) {
      const addMissing = async (table: string, cols: [string, string][]) => {
        const have = await c.columns(table);
        const add = cols.filter(([name]) => !have.has(name));
        if (add.length > 0) {
          await c.query(`ALTER TABLE ${table} ${add.map(([n, t]) => `ADD COLUMN ${n} ${t}`).join(', ')}`);
        }
      };
      // last_error holds at most 1 KiB of UTF-8 (replyExcerpt), so at most 1024 characters
      await addMissing('trans_global', [
        ['failed_attempts', 'int NOT NULL DEFAULT 0'],
        ['last_error', `varchar(1024) ${TEXT} NOT NULL DEFAULT ''`],
        ['stuck_alerted', 'tinyint NOT NULL DEFAULT 0'],
      ]);
      await addMissing('trans_branch_op', [
        ['attempts', 'int NOT NULL DEFAULT 0'],
        ['last_attempt_time', 'datetime(3) DEFAULT NULL'],
        ['last_result', "varchar(16) NOT NULL DEFAULT ''"],
        ['last_error', `varchar(1024) ${TEXT} NOT NULL DEFAULT ''`],
      ]);
    },
  },
];

/** The migrations table: DTM has none, so its presence marks a database dtx manages. */
export const MY_MIGRATIONS_TABLE = `CREATE TABLE IF NOT EXISTS dtx_migrations (
  version int NOT NULL PRIMARY KEY,
  name varchar(255) NOT NULL,
  applied_at datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4`;

/** What `reset` (DTM's `-r`) drops before migrating again: dtx's tables, not the database. */
export const MY_DROP_ALL = 'DROP TABLE IF EXISTS trans_global, trans_branch_op, kv, dtx_migrations';
