import type { Logger } from '../../observe/logger.js';
import type { Row } from './dialect.js';

/** One step of a schema, applied once and recorded in `dtx_migrations`. Never edited once released. */
export interface Migration<C> {
  version: number;
  name: string;
  up(c: C): Promise<void>;
}

/** Where {@link migrate} runs: one connection, already holding the database's migration lock. */
export interface MigrationTarget<C> {
  /** What a migration gets to work with. */
  conn: C;
  /** A statement on that connection, `$n` placeholders; the rows it returned. */
  run(sql: string, values?: unknown[]): Promise<Row[]>;
  /** `dtx_migrations` as the statements write it (qualified by the schema where there is one). */
  table: string;
  /** CREATE TABLE IF NOT EXISTS of `dtx_migrations`. */
  createTable: string;
  /** Drops every table of the store (Store reset). */
  dropAll: string;
  migrations: readonly Migration<C>[];
  /** The store, for the log lines. */
  label: string;
  log?: Logger | undefined;
}

/**
 * Bring the schema to the latest version: drop everything first when `reset`, then apply each migration newer
 * than the recorded version, recording it. A schema newer than this dtx knows is left alone, with a warning
 * (a newer instance migrated it; this one still runs). The caller serialises migrators (a lock per database).
 */
export async function migrate<C>(t: MigrationTarget<C>, reset: boolean): Promise<void> {
  if (reset) await t.run(t.dropAll);
  await t.run(t.createTable);
  const done = await t.run(`SELECT COALESCE(MAX(version), 0) AS v FROM ${t.table}`);
  const current = Number(done[0]?.v ?? 0);
  const latest = t.migrations[t.migrations.length - 1]!.version;
  if (current > latest) {
    t.log?.warn('store schema is newer than this dtx: running anyway, without migrating', {
      store: t.label,
      schemaVersion: current,
      knownVersion: latest,
    });
  }
  for (const m of t.migrations) {
    if (m.version <= current) continue;
    await m.up(t.conn);
    await t.run(`INSERT INTO ${t.table} (version, name) VALUES ($1, $2)`, [m.version, m.name]);
    t.log?.info('store schema migrated', { store: t.label, version: m.version, migration: m.name });
  }
}
