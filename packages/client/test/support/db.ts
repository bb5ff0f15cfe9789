/**
 * Test harnesses for the barrier on real databases: a temp-file SQLite, PostgreSQL at DTX_PG_URL and
 * MariaDB/MySQL at DTX_MYSQL_URL (servers started by `bash scripts/services.sh`). Each harness owns a business
 * table with a unique name per run, dropped on close.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import Database from 'better-sqlite3';
import mysql from 'mysql2/promise';
import pg from 'pg';
import type { BarrierDb, BarrierDialect } from '../../src/barrier/barrier-db.js';
import { ensureBarrierTable } from '../../src/barrier/ddl.js';
import { mysqlBarrierDb } from '../../src/barrier/mysql.js';
import { postgresBarrierDb } from '../../src/barrier/postgres.js';
import { sqliteBarrierDb } from '../../src/barrier/sqlite.js';

/** PostgreSQL used by the tests. */
export const PG_URL = process.env.DTX_PG_URL ?? 'postgres://dtx:dtx@127.0.0.1:5432/dtx_test';
/** MariaDB / MySQL used by the tests. */
export const MYSQL_URL = process.env.DTX_MYSQL_URL ?? 'mysql://dtx:dtx@127.0.0.1:3306/dtx_test';

/** How long a test waits for a condition it polls for before failing. */
const POLL_DEADLINE_MS = 15_000;

/** A short unique suffix for names. */
export function uniqueSuffix(): string {
  return randomUUID().replaceAll('-', '').slice(0, 12);
}

/** Gids `t<run>-<n>`: unique across runs, and easy to delete at the end of a run. */
function gidMaker(): { prefix: string; next: () => string } {
  const prefix = `t${uniqueSuffix()}-`;
  let n = 0;
  return { prefix, next: () => `${prefix}${++n}` };
}

/** A barrier row as the tests compare them. */
export interface BarrierRowView {
  trans_type: string;
  branch_id: string;
  op: string;
  barrier_id: string;
  reason: string;
}

/** Several barrier dbs, each on a connection of its own, and a way to see them wait for a lock. */
export interface ConnectionGroup<Tx> {
  readonly dbs: BarrierDb<Tx>[];
  /**
   * Resolves once at least `n` other sessions wait for a lock held by the transaction of `tx` (polls with a
   * deadline; rejects with a clear message when the deadline passes).
   */
  waitBlocked(tx: Tx, n: number): Promise<void>;
  close(): Promise<void>;
}

/** One dialect, ready for the shared barrier suite. */
export interface DialectHarness<Tx> {
  readonly dialect: BarrierDialect;
  /** A barrier db on the harness's pool (SQLite: one connection), with the default barrier table, created. */
  readonly db: BarrierDb<Tx>;
  /** The business write: adds `amount` to `account`, through the native transaction handle. */
  credit(tx: Tx, account: string, amount: number): Promise<void>;
  /** The committed balance of `account` (0 when it has no row). */
  balance(account: string): Promise<number>;
  /** A new gid of this run; {@link DialectHarness.close} deletes the barrier rows of this run's gids. */
  newGid(): string;
  /** The committed barrier rows of `gid`, ordered by branch_id, barrier_id, op. */
  barrierRows(gid: string): Promise<BarrierRowView[]>;
  /** Backdate the create_time of `gid`'s barrier rows (for the clean-up test). */
  age(gid: string, createTime: Date): Promise<void>;
  /** `n` barrier dbs on separate connections. */
  separate(n: number): Promise<ConnectionGroup<Tx>>;
  /** Barrier dbs whose table (or its schema / database) does not exist, with the names used. */
  missingTables(): { db: BarrierDb<Tx>; table: string }[];
  close(): Promise<void>;
}

function redact(url: string): string {
  return url.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');
}

function unreachable(what: string, url: string, envVar: string, err: unknown): Error {
  const reason = err instanceof Error ? err.message || (err as { code?: string }).code || err.name : String(err);
  return new Error(
    `${what} is not answering at ${redact(url)} (${reason}). Start the test services with \`bash scripts/services.sh\`, ` +
      `or point ${envVar} at a server. These tests never skip.`,
    { cause: err },
  );
}

async function pollUntil(what: string, check: () => Promise<boolean> | boolean): Promise<void> {
  const deadline = Date.now() + POLL_DEADLINE_MS;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${POLL_DEADLINE_MS} ms waiting until ${what}`);
    await delay(10);
  }
}

const ORDER = 'ORDER BY branch_id, barrier_id, op';

// ---------------------------------------------------------------------------------------------------------------
// SQLite

/** SQLite on a temp file (WAL), one connection for `db`, fresh ones for {@link DialectHarness.separate}. */
export async function openSqlite(): Promise<DialectHarness<Database.Database>> {
  const dir = mkdtempSync(join(tmpdir(), 'dtx-barrier-'));
  const file = join(dir, 'barrier.db');
  const open = () => {
    const conn = new Database(file);
    conn.pragma('journal_mode = WAL');
    return conn;
  };
  const main = open();
  const busi = `busi_${uniqueSuffix()}`;
  main.exec(`CREATE TABLE ${busi} (account TEXT PRIMARY KEY, balance INTEGER NOT NULL)`);
  const db = sqliteBarrierDb(main);
  await ensureBarrierTable(db);
  const extra: Database.Database[] = [];
  const gids = gidMaker();
  return {
    dialect: 'sqlite',
    db,
    newGid: gids.next,
    async credit(tx, account, amount) {
      tx.prepare(
        `INSERT INTO ${busi} (account, balance) VALUES (?, ?) ON CONFLICT (account) DO UPDATE SET balance = balance + excluded.balance`,
      ).run(account, amount);
    },
    async balance(account) {
      const row = main.prepare(`SELECT balance FROM ${busi} WHERE account = ?`).get(account) as
        | { balance: number }
        | undefined;
      return row?.balance ?? 0;
    },
    async age(gid, createTime) {
      main
        .prepare('UPDATE barrier SET create_time = ? WHERE gid = ?')
        .run(createTime.toISOString().slice(0, 19).replace('T', ' '), gid);
    },
    async barrierRows(gid) {
      return main
        .prepare(`SELECT trans_type, branch_id, op, barrier_id, reason FROM barrier WHERE gid = ? ${ORDER}`)
        .all(gid) as BarrierRowView[];
    },
    async separate(n) {
      const waited = new Set<number>();
      const conns = Array.from({ length: n }, open);
      extra.push(...conns);
      return {
        dbs: conns.map((c, i) => sqliteBarrierDb(c, { onLockWait: () => waited.add(i), lockTimeoutMs: 30_000 })),
        // The connection holding the write lock never waits itself, so every waiter is another connection.
        waitBlocked: (_tx, count) =>
          pollUntil(`${count} SQLite connections wait for the write lock`, () => waited.size >= count),
        async close() {
          for (const c of conns) c.close();
        },
      };
    },
    missingTables() {
      const table = `missing_${uniqueSuffix()}`;
      return [{ db: sqliteBarrierDb(main, { table }), table }];
    },
    async close() {
      for (const c of extra) if (c.open) c.close();
      main.exec(`DROP TABLE IF EXISTS ${busi}`);
      main.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// PostgreSQL

/** PostgreSQL at {@link PG_URL}. */
export async function openPostgres(): Promise<DialectHarness<pg.PoolClient>> {
  const pool = new pg.Pool({ connectionString: PG_URL, max: 24, connectionTimeoutMillis: 5000 });
  pool.on('error', () => {}); // an idle client dropped by the server; the next checkout reconnects
  try {
    await pool.query('SELECT 1');
  } catch (err) {
    await pool.end();
    throw unreachable('PostgreSQL', PG_URL, 'DTX_PG_URL', err);
  }
  const busi = `busi_${uniqueSuffix()}`;
  await pool.query(`CREATE TABLE ${busi} (account varchar(64) PRIMARY KEY, balance integer NOT NULL)`);
  const db = postgresBarrierDb(pool);
  await ensureBarrierTable(db);
  const gids = gidMaker();
  const waitBlocked = async (tx: pg.PoolClient, count: number) => {
    const { rows } = await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    const pid = rows[0]!.pid;
    await pollUntil(`${count} PostgreSQL sessions wait for a lock of session ${pid}`, async () => {
      const r = await pool.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM pg_stat_activity WHERE $1 = ANY (pg_blocking_pids(pid))',
        [pid],
      );
      return r.rows[0]!.n >= count;
    });
  };
  return {
    dialect: 'postgres',
    db,
    newGid: gids.next,
    async credit(tx, account, amount) {
      await tx.query(
        `INSERT INTO ${busi} (account, balance) VALUES ($1, $2) ON CONFLICT (account) DO UPDATE SET balance = ${busi}.balance + excluded.balance`,
        [account, amount],
      );
    },
    async balance(account) {
      const r = await pool.query<{ balance: number }>(`SELECT balance FROM ${busi} WHERE account = $1`, [account]);
      return r.rows[0]?.balance ?? 0;
    },
    async age(gid, createTime) {
      await pool.query('UPDATE dtm_barrier.barrier SET create_time = $1 WHERE gid = $2', [createTime, gid]);
    },
    async barrierRows(gid) {
      const r = await pool.query<BarrierRowView>(
        `SELECT trans_type, branch_id, op, barrier_id, reason FROM dtm_barrier.barrier WHERE gid = $1 ${ORDER}`,
        [gid],
      );
      return r.rows.map((row) => ({ ...row }));
    },
    async separate(n) {
      // Each guarded call checks out a client of its own from the pool (max 24 > n + 1 for the polling).
      return { dbs: Array.from({ length: n }, () => postgresBarrierDb(pool)), waitBlocked, async close() {} };
    },
    missingTables() {
      const suffix = uniqueSuffix();
      return [`dtm_barrier.missing_${suffix}`, `no_schema_${suffix}.barrier`].map((table) => ({
        db: postgresBarrierDb(pool, { table }),
        table,
      }));
    },
    async close() {
      await pool.query(`DROP TABLE IF EXISTS ${busi}`);
      await pool.query('DELETE FROM dtm_barrier.barrier WHERE gid LIKE $1', [`${gids.prefix}%`]);
      await pool.end();
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// MySQL / MariaDB

/** MariaDB or MySQL at {@link MYSQL_URL}. */
export async function openMysql(): Promise<DialectHarness<mysql.PoolConnection>> {
  const pool = mysql.createPool({ uri: MYSQL_URL, connectionLimit: 24, connectTimeout: 5000 });
  try {
    await pool.query('SELECT 1');
  } catch (err) {
    await pool.end();
    throw unreachable('MariaDB/MySQL', MYSQL_URL, 'DTX_MYSQL_URL', err);
  }
  const busi = `busi_${uniqueSuffix()}`;
  await pool.query(`CREATE TABLE ${busi} (account varchar(64) PRIMARY KEY, balance int NOT NULL) ENGINE = InnoDB`);
  const db = mysqlBarrierDb(pool);
  await ensureBarrierTable(db);
  const gids = gidMaker();
  const waitBlocked = async (tx: mysql.PoolConnection, count: number) => {
    const [rows] = await tx.query<mysql.RowDataPacket[]>('SELECT CONNECTION_ID() AS id');
    const id = rows[0]!.id as number;
    // Without the PROCESS privilege the lock-wait tables are hidden, but a user sees its own threads: count the
    // other threads of this user that are inside a barrier insert right now (they can only be waiting for a lock).
    await pollUntil(`${count} MySQL sessions wait inside a barrier insert`, async () => {
      const [r] = await pool.query<mysql.RowDataPacket[]>(
        "SELECT count(*) AS n FROM information_schema.PROCESSLIST WHERE ID <> ? AND INFO LIKE 'INSERT IGNORE INTO dtm_barrier.barrier%'",
        [id],
      );
      return Number(r[0]!.n) >= count;
    });
  };
  return {
    dialect: 'mysql',
    db,
    newGid: gids.next,
    async credit(tx, account, amount) {
      await tx.execute(
        `INSERT INTO ${busi} (account, balance) VALUES (?, ?) ON DUPLICATE KEY UPDATE balance = balance + VALUES(balance)`,
        [account, amount],
      );
    },
    async balance(account) {
      const [r] = await pool.execute<mysql.RowDataPacket[]>(`SELECT balance FROM ${busi} WHERE account = ?`, [account]);
      return r[0]?.balance ?? 0;
    },
    async age(gid, createTime) {
      await pool.execute('UPDATE dtm_barrier.barrier SET create_time = ? WHERE gid = ?', [createTime, gid]);
    },
    async barrierRows(gid) {
      const [r] = await pool.execute<mysql.RowDataPacket[]>(
        `SELECT trans_type, branch_id, op, barrier_id, reason FROM dtm_barrier.barrier WHERE gid = ? ${ORDER}`,
        [gid],
      );
      return r.map((row) => ({ ...row }) as BarrierRowView);
    },
    async separate(n) {
      return { dbs: Array.from({ length: n }, () => mysqlBarrierDb(pool)), waitBlocked, async close() {} };
    },
    missingTables() {
      const suffix = uniqueSuffix();
      return [`dtm_barrier.missing_${suffix}`, `no_db_${suffix}.barrier`].map((table) => ({
        db: mysqlBarrierDb(pool, { table }),
        table,
      }));
    },
    async close() {
      await pool.query(`DROP TABLE IF EXISTS ${busi}`);
      await pool.query('DELETE FROM dtm_barrier.barrier WHERE gid LIKE ?', [`${gids.prefix}%`]);
      await pool.end();
    },
  };
}
