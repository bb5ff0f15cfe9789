/**
 * Creates the mall's database (the one `Mysql.DataSource` names) and its tables from `sql/mall.sql`, and the
 * barrier table `dtm_barrier.barrier` with @dtx/client's DDL — all idempotent.
 *
 * @module
 */
import { readFile } from 'node:fs/promises';
import { ensureBarrierTable, mysqlBarrierDb } from '@dtx/client';
import { mysqlPool, parseMysqlDsn } from './common/mysql-dsn.js';

const MALL_SQL = new URL('../../sql/mall.sql', import.meta.url).pathname;

/** The statements of sql/mall.sql. */
export async function mallStatements(): Promise<string[]> {
  const text = (await readFile(MALL_SQL, 'utf8'))
    .split('\n')
    .filter((l) => !l.trimStart().startsWith('--'))
    .join('\n');
  return text
    .split(';')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** Applies the mall's DDL and the barrier DDL to the database of `dataSource` (a Go MySQL DSN). */
export async function migrate(dataSource: string): Promise<void> {
  const { database } = parseMysqlDsn(dataSource);
  const admin = mysqlPool(dataSource, { database: undefined, connectionLimit: 1 });
  try {
    await admin.query(
      `CREATE DATABASE IF NOT EXISTS \`${database.replaceAll('`', '``')}\` DEFAULT CHARACTER SET utf8mb4`,
    );
    await ensureBarrierTable(mysqlBarrierDb(admin));
  } finally {
    await admin.end();
  }
  const db = mysqlPool(dataSource, { connectionLimit: 1 });
  try {
    for (const sql of await mallStatements()) await db.query(sql);
  } finally {
    await db.end();
  }
}
