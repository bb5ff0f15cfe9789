import type { SqlStoreOptions } from './sql-options.js';

/**
 * Delete everything a SQL store created, schema (PostgreSQL) or database (MySQL) included. For tests and
 * throwaway environments (the bench, the e2e harness, which give every server a schema / database of its
 * own): `reset` only empties the tables, this removes the container too. Refuses PostgreSQL's `public`
 * schema. Missing is fine.
 */
export async function dropSqlStoreData(driver: 'postgres' | 'mysql', o: SqlStoreOptions): Promise<void> {
  if (driver === 'postgres') {
    const schema = o.schema || 'public';
    if (schema === 'public') throw new Error('dropSqlStoreData: refusing to drop the public schema');
    const { default: pg } = await import('pg');
    const c = new pg.Client({ host: o.host, port: o.port, user: o.user, password: o.password, database: o.database });
    c.on('error', () => undefined);
    await c.connect();
    try {
      await c.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
    } finally {
      await c.end().catch(() => undefined);
    }
    return;
  }
  const { default: mysql } = await import('mysql2/promise');
  const c = await mysql.createConnection({ host: o.host, port: o.port, user: o.user, password: o.password });
  try {
    await c.query(`DROP DATABASE IF EXISTS ${mysql.escapeId(o.database)}`);
  } finally {
    await c.end().catch(() => undefined);
  }
}
