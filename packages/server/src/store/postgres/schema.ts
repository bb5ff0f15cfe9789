/**
 * The PostgreSQL schema, versioned. Version 1 is DTM's own DDL (sqls/dtmsvr.storage.postgres.sql, spec §8.4:
 * tables, sequences, constraint and index names), so a fresh dtx database and an existing DTM database are
 * the same thing after it; version 2 is what dtx changes on both:
 *
 * - payload columns without a size cap: `bin_data` stays bytea, and query_prepared, options, custom_data,
 *   ext_data, result, rollback_reason and the branch url become text (varchar → text is a catalog-only change,
 *   no table rewrite);
 * - times keep milliseconds: timestamp(0) with time zone (DTM: whole seconds) becomes timestamp(3) with time
 *   zone. The core computes leases and back-offs in ms, and the SQLite/Redis stores keep ms, so all stores
 *   round-trip the same values. Raising the precision is also catalog-only in PostgreSQL. Times are absolute
 *   (timestamptz), written as UTC parameters;
 * - columns that DTM added over the years (ext_data, result, rollback_reason) are added if an older DTM
 *   created the tables;
 * - two partial indexes: the unfinished transactions by next_cron_time (the cron lease reads it in order and
 *   stops after a batch, whatever the size of the table), and the finished ones by update_time (retention).
 *
 * Every migration runs in one transaction under an advisory lock (see PostgresStore), and is recorded in
 * `dtx_migrations`; a migration is never edited once released — add the next version instead.
 */

/** A migration: its SQL given the quoted schema name (e.g. `"public"`) and a string-literal quoter. */
export interface PgMigration {
  version: number;
  name: string;
  sql: (s: string, lit: (v: string) => string) => string;
}

const TS0 = 'timestamp(0) with time zone';
const TS3 = 'timestamp(3) with time zone';

export const PG_MIGRATIONS: readonly PgMigration[] = [
  {
    version: 1,
    name: "DTM's tables (sqls/dtmsvr.storage.postgres.sql)",
    sql: (s, lit) => `
      CREATE SEQUENCE IF NOT EXISTS ${s}.trans_global_seq;
      CREATE TABLE IF NOT EXISTS ${s}.trans_global (
        id bigint NOT NULL DEFAULT NEXTVAL(${lit(`${s}.trans_global_seq`)}),
        gid varchar(128) NOT NULL,
        trans_type varchar(45) NOT NULL,
        status varchar(45) NOT NULL,
        query_prepared varchar(1024) NOT NULL,
        protocol varchar(45) NOT NULL,
        create_time ${TS0} DEFAULT NULL,
        update_time ${TS0} DEFAULT NULL,
        finish_time ${TS0} DEFAULT NULL,
        rollback_time ${TS0} DEFAULT NULL,
        options varchar(1024) DEFAULT '',
        custom_data varchar(1024) DEFAULT '',
        next_cron_interval int DEFAULT NULL,
        next_cron_time ${TS0} DEFAULT NULL,
        owner varchar(128) NOT NULL DEFAULT '',
        ext_data text,
        result varchar(1024) DEFAULT '',
        rollback_reason varchar(1024) DEFAULT '',
        PRIMARY KEY (id),
        CONSTRAINT gid UNIQUE (gid)
      );
      CREATE INDEX IF NOT EXISTS owner ON ${s}.trans_global (owner);
      CREATE INDEX IF NOT EXISTS status_next_cron_time ON ${s}.trans_global (status, next_cron_time);
      CREATE SEQUENCE IF NOT EXISTS ${s}.trans_branch_op_seq;
      CREATE TABLE IF NOT EXISTS ${s}.trans_branch_op (
        id bigint NOT NULL DEFAULT NEXTVAL(${lit(`${s}.trans_branch_op_seq`)}),
        gid varchar(128) NOT NULL,
        url varchar(1024) NOT NULL,
        data text,
        bin_data bytea,
        branch_id varchar(128) NOT NULL,
        op varchar(45) NOT NULL,
        status varchar(45) NOT NULL,
        finish_time ${TS0} DEFAULT NULL,
        rollback_time ${TS0} DEFAULT NULL,
        create_time ${TS0} DEFAULT NULL,
        update_time ${TS0} DEFAULT NULL,
        PRIMARY KEY (id),
        CONSTRAINT gid_branch_uniq UNIQUE (gid, branch_id, op)
      );
      CREATE SEQUENCE IF NOT EXISTS ${s}.kv_seq;
      CREATE TABLE IF NOT EXISTS ${s}.kv (
        id bigint NOT NULL DEFAULT NEXTVAL(${lit(`${s}.kv_seq`)}),
        cat varchar(45) NOT NULL,
        k varchar(128) NOT NULL,
        v text,
        version bigint DEFAULT 1,
        create_time ${TS0} DEFAULT NULL,
        update_time ${TS0} DEFAULT NULL,
        PRIMARY KEY (id),
        CONSTRAINT uniq_k UNIQUE (cat, k)
      );`,
  },
  {
    version: 2,
    name: 'dtx: uncapped payload columns, millisecond times, lease and retention indexes',
    sql: (s) => `
      ALTER TABLE ${s}.trans_global
        ADD COLUMN IF NOT EXISTS ext_data text,
        ADD COLUMN IF NOT EXISTS result text DEFAULT '',
        ADD COLUMN IF NOT EXISTS rollback_reason text DEFAULT '';
      ALTER TABLE ${s}.trans_global
        ALTER COLUMN query_prepared TYPE text,
        ALTER COLUMN options TYPE text,
        ALTER COLUMN custom_data TYPE text,
        ALTER COLUMN ext_data TYPE text,
        ALTER COLUMN result TYPE text,
        ALTER COLUMN rollback_reason TYPE text,
        ALTER COLUMN create_time TYPE ${TS3},
        ALTER COLUMN update_time TYPE ${TS3},
        ALTER COLUMN finish_time TYPE ${TS3},
        ALTER COLUMN rollback_time TYPE ${TS3},
        ALTER COLUMN next_cron_time TYPE ${TS3};
      ALTER TABLE ${s}.trans_branch_op
        ALTER COLUMN url TYPE text,
        ALTER COLUMN bin_data TYPE bytea,
        ALTER COLUMN finish_time TYPE ${TS3},
        ALTER COLUMN rollback_time TYPE ${TS3},
        ALTER COLUMN create_time TYPE ${TS3},
        ALTER COLUMN update_time TYPE ${TS3};
      ALTER TABLE ${s}.kv
        ALTER COLUMN v TYPE text,
        ALTER COLUMN create_time TYPE ${TS3},
        ALTER COLUMN update_time TYPE ${TS3};
      CREATE INDEX IF NOT EXISTS trans_global_due ON ${s}.trans_global (next_cron_time)
        WHERE status IN ('prepared', 'submitted', 'aborting');
      CREATE INDEX IF NOT EXISTS trans_global_finished ON ${s}.trans_global (update_time)
        WHERE status IN ('succeed', 'failed');`,
  },
  {
    version: 3,
    name: 'dtx: attempt history of branches and transactions, the stuck alert flag',
    // constant defaults: catalog-only in PostgreSQL 11+, no table rewrite
    sql: (s) => `
      ALTER TABLE ${s}.trans_global
        ADD COLUMN IF NOT EXISTS failed_attempts int NOT NULL DEFAULT 0,
        ADD COLUMN IF NOT EXISTS last_error text NOT NULL DEFAULT '',
        ADD COLUMN IF NOT EXISTS stuck_alerted smallint NOT NULL DEFAULT 0;
      ALTER TABLE ${s}.trans_branch_op
        ADD COLUMN IF NOT EXISTS attempts int NOT NULL DEFAULT 0,
        ADD COLUMN IF NOT EXISTS last_attempt_time ${TS3} DEFAULT NULL,
        ADD COLUMN IF NOT EXISTS last_result varchar(16) NOT NULL DEFAULT '',
        ADD COLUMN IF NOT EXISTS last_error text NOT NULL DEFAULT '';`,
  },
];

/** What `reset` (DTM's `-r`) drops before migrating again: dtx's tables and sequences, not the schema. */
export const pgDropAll = (s: string): string => `
  DROP TABLE IF EXISTS ${s}.trans_global, ${s}.trans_branch_op, ${s}.kv, ${s}.dtx_migrations;
  DROP SEQUENCE IF EXISTS ${s}.trans_global_seq, ${s}.trans_branch_op_seq, ${s}.kv_seq;`;

export const pgMigrationsTable = (s: string): string => `
  CREATE TABLE IF NOT EXISTS ${s}.dtx_migrations (
    version int PRIMARY KEY,
    name text NOT NULL,
    applied_at timestamp(3) with time zone NOT NULL DEFAULT now()
  );`;
