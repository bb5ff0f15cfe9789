/**
 * XA test harnesses on the real databases of scripts/services.sh: MariaDB/MySQL at DTX_MYSQL_URL and PostgreSQL at
 * DTX_PG_URL (max_prepared_transactions=64), each with an account table and the barrier table. Shared by the XA
 * tests and the branch process they crash (support/xa-branch-process.ts).
 */
import mysql from 'mysql2/promise';
import pg from 'pg';
import { mysqlBarrierDb } from '../../src/barrier/mysql.js';
import { postgresBarrierDb } from '../../src/barrier/postgres.js';
import { ensureBarrierTable } from '../../src/index.js';
import type { XaDialect } from '../../src/xa/dialect.js';
import { mysqlXaDialect } from '../../src/xa/mysql.js';
import { postgresXaDialect } from '../../src/xa/postgres.js';
import { MYSQL_URL, PG_URL } from './db.js';

/** The XA dialects the tests run on. */
export type XaDbName = 'mysql' | 'postgres';

/** One database, ready for XA tests. */
export interface XaHarness {
  readonly name: XaDbName;
  readonly db: any;
  readonly dialect: XaDialect<any, any>;
  /** The account table. */
  readonly table: string;
  /** Inside an XA transaction: takes `amount` from `account`; false (nothing changed) when the balance is short. */
  debit(conn: unknown, account: string, amount: number): Promise<boolean>;
  /** Inside an XA transaction: adds `amount` to `account`. */
  credit(conn: unknown, account: string, amount: number): Promise<void>;
  /** Outside any transaction: sets the committed balance of `account`. */
  setBalance(account: string, balance: number): Promise<void>;
  /** The committed balance of `account` (0 when it has no row). */
  balance(account: string): Promise<number>;
  /** The prepared xids that start with `prefix`. */
  prepared(prefix: string): Promise<string[]>;
  /** The committed reason of the XA barrier row of (gid, branch_id), or undefined. */
  barrierReason(gid: string, branchId: string): Promise<string | undefined>;
  /** Drops the table when `create` made it, and closes the pool. */
  close(): Promise<void>;
}

/**
 * Opens the database `name`. With `create`, makes the account table `table` (and the barrier table) first;
 * `close` then drops it.
 */
export async function openXaHarness(name: XaDbName, table: string, create: boolean): Promise<XaHarness> {
  if (name === 'mysql') {
    const pool = mysql.createPool({ uri: MYSQL_URL, connectionLimit: 16, connectTimeout: 5000 });
    if (create) {
      await ensureBarrierTable(mysqlBarrierDb(pool));
      await pool.query(`CREATE TABLE ${table} (id varchar(64) PRIMARY KEY, balance int NOT NULL) ENGINE = InnoDB`);
    }
    const dialect = mysqlXaDialect<mysql.PoolConnection>();
    return {
      name,
      db: pool,
      dialect,
      table,
      async debit(conn, account, amount) {
        const [r] = await (conn as mysql.PoolConnection).execute<mysql.ResultSetHeader>(
          `UPDATE ${table} SET balance = balance - ? WHERE id = ? AND balance >= ?`,
          [amount, account, amount],
        );
        return r.affectedRows === 1;
      },
      async credit(conn, account, amount) {
        await (conn as mysql.PoolConnection).execute(`UPDATE ${table} SET balance = balance + ? WHERE id = ?`, [
          amount,
          account,
        ]);
      },
      async setBalance(account, balance) {
        await pool.execute(
          `INSERT INTO ${table} (id, balance) VALUES (?, ?) ON DUPLICATE KEY UPDATE balance = VALUES(balance)`,
          [account, balance],
        );
      },
      async balance(account) {
        const [r] = await pool.execute<mysql.RowDataPacket[]>(`SELECT balance FROM ${table} WHERE id = ?`, [account]);
        return (r[0]?.balance as number | undefined) ?? 0;
      },
      async prepared(prefix) {
        return (await dialect.recover(pool)).filter((x) => x.startsWith(prefix));
      },
      async barrierReason(gid, branchId) {
        return dialect.barrierReason(pool, { gid, branch_id: branchId, op: 'action', barrier_id: '01' });
      },
      async close() {
        if (create) await pool.query(`DROP TABLE IF EXISTS ${table}`);
        await pool.end();
      },
    };
  }
  const pool = new pg.Pool({ connectionString: PG_URL, max: 16, connectionTimeoutMillis: 5000 });
  pool.on('error', () => {}); // an idle client dropped by the server; the next checkout reconnects
  if (create) {
    await ensureBarrierTable(postgresBarrierDb(pool));
    await pool.query(`CREATE TABLE ${table} (id varchar(64) PRIMARY KEY, balance integer NOT NULL)`);
  }
  const dialect = postgresXaDialect<pg.PoolClient>();
  return {
    name,
    db: pool,
    dialect,
    table,
    async debit(conn, account, amount) {
      const r = await (conn as pg.PoolClient).query(
        `UPDATE ${table} SET balance = balance - $1 WHERE id = $2 AND balance >= $1`,
        [amount, account],
      );
      return r.rowCount === 1;
    },
    async credit(conn, account, amount) {
      await (conn as pg.PoolClient).query(`UPDATE ${table} SET balance = balance + $1 WHERE id = $2`, [
        amount,
        account,
      ]);
    },
    async setBalance(account, balance) {
      await pool.query(
        `INSERT INTO ${table} (id, balance) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET balance = excluded.balance`,
        [account, balance],
      );
    },
    async balance(account) {
      const r = await pool.query<{ balance: number }>(`SELECT balance FROM ${table} WHERE id = $1`, [account]);
      return r.rows[0]?.balance ?? 0;
    },
    async prepared(prefix) {
      return (await dialect.recover(pool)).filter((x) => x.startsWith(prefix));
    },
    async barrierReason(gid, branchId) {
      return dialect.barrierReason(pool, { gid, branch_id: branchId, op: 'action', barrier_id: '01' });
    },
    async close() {
      if (create) await pool.query(`DROP TABLE IF EXISTS ${table}`);
      await pool.end();
    },
  };
}
