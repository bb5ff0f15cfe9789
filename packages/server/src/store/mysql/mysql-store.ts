import { createHash } from 'node:crypto';
import type { GlobalStatus } from '@dtx/protocol';
import mysql from 'mysql2/promise';
import { NotFoundError, UniqueConflictError } from '../../core/errors.js';
import type { KV, TransBranch, TransGlobal } from '../../core/model.js';
import type { Logger } from '../../observe/logger.js';
import { errorMessage } from '../../util/error-message.js';
import { kvConditions, nextPositionOf, scanConditions, whereOf } from '../scan-query.js';
import { authHint, isConnectionError, isDeadlock, storeError } from '../sql/errors.js';
import { GroupCommit, type Pending } from '../sql/group-commit.js';
import {
  BRANCH_COLUMNS,
  BRANCH_INSERT_COLUMNS,
  branchFromRow,
  countUnfinishedSql,
  FINISHED_STATUSES,
  GLOBAL_COLUMNS,
  GLOBAL_INSERT_COLUMNS,
  globalFromRow,
  globalInsertValues,
  KV_COLUMNS,
  kvFromRow,
  payload,
  UNFINISHED_STATUSES,
  unfinishedCountOf,
} from '../sql/rows.js';
import { type SqlStoreOptions, untilReachable } from '../sql/sql-options.js';
import { toMysqlDatetime } from '../sql/time.js';
import type { FailedAttempt, ScanQuery, StatusChange, Store, StuckRule, UnfinishedCount } from '../store.js';
import { MY_DROP_ALL, MY_MIGRATIONS, MY_MIGRATIONS_TABLE, type MyMigrationConn } from './schema.js';

type Row = Record<string, unknown>;
type Result = mysql.ResultSetHeader | Row[];

/** One statement of a write, with `?` placeholders. */
interface Stmt {
  sql: string;
  values: unknown[];
}

/**
 * One write of the group commit: statements that either do all of the write's work or none of it (their
 * conditions are in the SQL, chained through session variables), and `done`, which reads their results and
 * returns the caller's value or throws the logical failure (NotFound, UniqueConflict).
 */
interface MyWrite {
  stmts: Stmt[];
  done: (results: Result[]) => unknown;
  /** Approximate size of the write as SQL text (payload bytes count twice: hex). */
  weight: number;
  /**
   * saveNew: the gid it creates. Its statements are plain INSERTs (a duplicate is a unique-key error); the
   * text path looks the batch's new gids up first, so a gid that exists fails alone without an error.
   */
  newGid?: string;
}

/** A batch's SQL text stays under this (MySQL's max_allowed_packet is 16 MiB by default on MariaDB). */
const MAX_BATCH_TEXT = 4 * 1024 * 1024;
/** Rows of one multi-row INSERT of branches (8 placeholders each; a prepared statement holds 65,535). */
const INSERT_ROWS_MAX = 1000;
/** Bytes of branch data one multi-row INSERT carries at most, unless a single row is bigger. */
const INSERT_BYTES_MAX = 4 * 1024 * 1024;
/** Retries of a batch that lost a deadlock as a whole (InnoDB rolls the victim's transaction back). */
const DEADLOCK_RETRIES = 3;

const GLOBAL_SELECT = GLOBAL_COLUMNS.join(', ');
const BRANCH_SELECT = BRANCH_COLUMNS.join(', ');
const KV_SELECT = KV_COLUMNS.join(', ');

const dt = (ms: number | undefined): string | null => (ms === undefined ? null : toMysqlDatetime(ms));

/** The attempt record of a branch, as the four values updateBranches and recordFailedAttempt write. */
const attemptValues = (b: TransBranch): unknown[] => [
  b.attempts ?? 0,
  dt(b.lastAttemptTime),
  b.lastResult ?? '',
  b.lastError ?? '',
];
const header = (r: Result | undefined): mysql.ResultSetHeader => r as mysql.ResultSetHeader;
const rows = (r: Result | undefined): Row[] => (Array.isArray(r) ? r : []);

/**
 * The MySQL / MariaDB store (Store.Driver `mysql`): DTM's tables in the database Store.Db (created when
 * missing), migrated to dtx's version at open (see schema.ts).
 *
 * Writes on the hot path (saveNew, insertBranches, updateBranches, changeStatus, touchCronTime) go through a
 * group commit: the writes queued while the previous batch commits are sent as ONE multi-statement query,
 * `START TRANSACTION; …; COMMIT` — one round trip and one redo-log flush for all of them. Each write's
 * statements do all of its work or none of it (the conditions are in the SQL), so a lost CAS needs no
 * savepoint. MySQL stops a multi-statement at the first error, before the COMMIT; the batch is then rolled
 * back and replayed with one savepoint per write (prepared statements, binary parameters), so only the
 * failing write fails. A write whose payload would not fit a text batch runs alone the same way. A lost
 * connection rejects every write of its batch: none is reported done without a confirmed COMMIT.
 *
 * Reads, the cron lease, resets, retention and KV go straight through the pool.
 */
export class MysqlStore implements Store {
  /** Reads and short transactions of their own (lease, retention). */
  readonly pool: mysql.Pool;
  /** The connection of the group commit. */
  private readonly writerPool: mysql.Pool;
  private readonly writer: GroupCommit<MyWrite>;
  private readonly label: string;
  private readonly log: Logger | undefined;
  private closing: Promise<void> | undefined;
  /** @@auto_increment_increment: the step between the ids of one multi-row INSERT (1 unless Galera-style). */
  private autoIncStep = 1;
  /** Group-commit counters: batches committed, writes in them, batches replayed with savepoints. */
  readonly stats = { batches: 0, writes: 0, replays: 0 };

  /** Connect (waiting while the server is unreachable), create the database if missing and migrate it. */
  static async open(o: SqlStoreOptions): Promise<MysqlStore> {
    const store = new MysqlStore(o);
    try {
      await untilReachable(store.label, () => store.bootstrap(o.reset === true), o);
    } catch (err) {
      await store.endPools();
      throw new Error(`MySQL store ${store.label}: ${errorMessage(err)}${authHint(err)}`, { cause: err });
    }
    return store;
  }

  private constructor(private readonly o: SqlStoreOptions) {
    this.label = `${o.host}:${o.port}/${o.database}`;
    this.log = o.log;
    const base: mysql.PoolOptions = {
      host: o.host,
      port: o.port,
      user: o.user,
      password: o.password,
      database: o.database,
      charset: 'utf8mb4',
      // times are DATETIME(3) in UTC: read them as text, never through the process's zone
      dateStrings: true,
      supportBigNumbers: true,
      multipleStatements: true,
      enableKeepAlive: true,
      connectTimeout: 10_000,
      idleTimeout: 10_000,
    };
    // Store.MaxOpenConns covers both pools: the group commit's connections, the rest for reads
    const inFlight = Math.max(1, o.maxInFlight ?? 2);
    const maxOpen = Math.max(1, (o.maxOpenConns ?? 500) - inFlight);
    this.pool = mysql.createPool({
      ...base,
      connectionLimit: maxOpen,
      maxIdle: Math.min(maxOpen, Math.max(0, o.maxIdleConns ?? maxOpen)),
    });
    this.writerPool = mysql.createPool({ ...base, connectionLimit: inFlight, maxIdle: inFlight });
    for (const p of [this.pool, this.writerPool]) {
      // each new connection: strict mode (never truncate silently) and UTC (for anything the server computes);
      // the group commit's: a row lock held elsewhere fails the waiting write after 10 s instead of stalling all
      const lockWait = p === this.writerPool ? ', innodb_lock_wait_timeout = 10' : '';
      (p as unknown as NodeJS.EventEmitter).on(
        'connection',
        (conn: { query: (sql: string, cb: (e: unknown) => void) => void }) => {
          conn.query(
            `SET SESSION sql_mode = TRIM(BOTH ',' FROM CONCAT(@@SESSION.sql_mode, ',STRICT_ALL_TABLES')), time_zone = '+00:00'${lockWait}`,
            (err) => {
              if (err) this.log?.warn('MySQL session setup failed', { error: errorMessage(err) });
            },
          );
        },
      );
    }
    this.writer = new GroupCommit<MyWrite>((batch) => this.runBatch(batch), {
      maxBatch: o.maxBatch ?? 256,
      observer: o.observer,
      maxInFlight: inFlight,
      weight: (w) => w.weight,
      maxBatchWeight: MAX_BATCH_TEXT,
    });
  }

  // ------------------------------------------------------------------ bootstrap and migrations

  private async bootstrap(reset: boolean): Promise<void> {
    await this.createDatabase();
    const conn = await this.pool.getConnection();
    let healthy = false;
    try {
      // one migrator per database at a time, across processes (GET_LOCK names are server-wide, ≤ 64 chars)
      const lock = `dtx-migrate:${createHash('sha1').update(this.o.database).digest('hex').slice(0, 40)}`;
      const [got] = (await conn.query('SELECT GET_LOCK(?, 120) AS ok', [lock])) as [Row[], unknown];
      if (Number(got[0]?.ok) !== 1) throw new Error('timed out waiting for another instance to migrate the schema');
      try {
        if (reset) await conn.query(MY_DROP_ALL);
        await conn.query(MY_MIGRATIONS_TABLE);
        const [cur] = (await conn.query('SELECT COALESCE(MAX(version), 0) AS v FROM dtx_migrations')) as [
          Row[],
          unknown,
        ];
        const current = Number(cur[0]?.v ?? 0);
        const latest = MY_MIGRATIONS[MY_MIGRATIONS.length - 1]!.version;
        if (current > latest) {
          this.log?.warn('store schema is newer than this dtx: running anyway, without migrating', {
            store: this.label,
            schemaVersion: current,
            knownVersion: latest,
          });
        }
        const mc: MyMigrationConn = {
          query: (sql, values) => conn.query(sql, values),
          columns: async (table) => {
            const [r] = (await conn.query(
              'SELECT column_name AS c FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ?',
              [table],
            )) as [Row[], unknown];
            return new Set(r.map((x) => String(x.c)));
          },
          indexes: async (table) => {
            const [r] = (await conn.query(
              'SELECT DISTINCT index_name AS i FROM information_schema.statistics WHERE table_schema = DATABASE() AND table_name = ?',
              [table],
            )) as [Row[], unknown];
            return new Set(r.map((x) => String(x.i)));
          },
        };
        const [inc] = (await conn.query('SELECT @@auto_increment_increment AS s')) as [Row[], unknown];
        this.autoIncStep = Number(inc[0]?.s ?? 1) || 1;
        for (const m of MY_MIGRATIONS) {
          if (m.version <= current) continue;
          await m.up(mc);
          await conn.query('INSERT INTO dtx_migrations (version, name) VALUES (?, ?)', [m.version, m.name]);
          this.log?.info('store schema migrated', { store: this.label, version: m.version, migration: m.name });
        }
      } finally {
        await conn.query('SELECT RELEASE_LOCK(?)', [lock]);
      }
      healthy = true;
    } finally {
      if (healthy) conn.release();
      else conn.destroy();
    }
  }

  /** Store.Db missing: create it (checked first, so a user without CREATE may use an existing one). */
  private async createDatabase(): Promise<void> {
    const c = await mysql.createConnection({
      host: this.o.host,
      port: this.o.port,
      user: this.o.user,
      password: this.o.password,
      connectTimeout: 10_000,
    });
    try {
      const [r] = (await c.query('SELECT 1 FROM information_schema.schemata WHERE schema_name = ?', [
        this.o.database,
      ])) as [Row[], unknown];
      if (r.length === 0) {
        await c.query(`CREATE DATABASE IF NOT EXISTS ${mysql.escapeId(this.o.database)} CHARACTER SET utf8mb4`);
        this.log?.info('store database created', { store: this.label });
      }
    } finally {
      await c.end().catch(() => undefined);
    }
  }

  // ------------------------------------------------------------------ plumbing

  private async q(sql: string, values: unknown[] = [], timeoutMs?: number): Promise<Result> {
    try {
      const [r] = await this.pool.query(timeoutMs ? { sql, values, timeout: timeoutMs } : { sql, values });
      return r as Result;
    } catch (err) {
      throw storeError('mysql', err);
    }
  }

  /** A short transaction of its own on one pooled connection; the connection is dropped on any error. */
  private async tx<T>(fn: (c: mysql.PoolConnection) => Promise<T>): Promise<T> {
    let conn: mysql.PoolConnection;
    try {
      conn = await this.pool.getConnection();
    } catch (err) {
      throw storeError('mysql', err);
    }
    try {
      await conn.query('START TRANSACTION');
      const out = await fn(conn);
      await conn.query('COMMIT');
      conn.release();
      return out;
    } catch (err) {
      conn.destroy(); // its transaction state is unknown: never back into the pool
      throw storeError('mysql', err);
    }
  }

  private write<T>(stmts: Stmt[], done: (results: Result[]) => T, newGid?: string): Promise<T> {
    let weight = 256;
    for (const s of stmts) {
      weight += s.sql.length;
      for (const v of s.values)
        weight += v instanceof Uint8Array ? 2 * v.byteLength + 3 : typeof v === 'string' ? v.length * 2 + 2 : 8;
    }
    return this.writer.submit<T>(newGid === undefined ? { stmts, done, weight } : { stmts, done, weight, newGid });
  }

  private async runBatch(batch: Pending<MyWrite>[]): Promise<void> {
    let conn: mysql.PoolConnection;
    try {
      conn = await this.writerPool.getConnection();
    } catch (err) {
      throw storeError('mysql', err);
    }
    this.stats.batches++;
    this.stats.writes += batch.length;
    let healthy = false;
    try {
      const tooBig = batch.length === 1 && batch[0]!.write.weight > MAX_BATCH_TEXT;
      if (tooBig || !(await this.runText(conn, batch))) {
        if (!tooBig) this.stats.replays++;
        await this.runWithSavepoints(conn, batch);
      }
      healthy = true;
    } catch (err) {
      throw storeError('mysql', err);
    } finally {
      if (healthy) conn.release();
      else conn.destroy();
    }
  }

  private static settle(p: Pending<MyWrite>, results: Result[]): void {
    try {
      p.resolve(p.write.done(results));
    } catch (err) {
      p.reject(err);
    }
  }

  /**
   * The whole batch as one multi-statement query. False when a statement failed (then all is rolled back).
   *
   * saveNew's INSERTs cannot carry a condition cheaply (INSERT … SELECT costs MySQL two to three times a plain
   * INSERT), so the gids the batch creates are looked up first, in one statement: a gid that exists, or that
   * an earlier write of the batch creates, fails with UniqueConflictError and sends nothing. A gid another
   * instance commits in between hits the unique key, and the batch replays with savepoints.
   */
  private async runText(conn: mysql.PoolConnection, batch: Pending<MyWrite>[]): Promise<boolean> {
    const newGids = batch.flatMap((p) => (p.write.newGid === undefined ? [] : [p.write.newGid]));
    const taken = new Set<string>();
    if (newGids.length > 0) {
      const [found] = (await conn.query('SELECT gid FROM trans_global WHERE gid IN (?)', [newGids])) as [
        Row[],
        unknown,
      ];
      for (const r of found) taken.add(String(r.gid));
    }
    const parts = ['START TRANSACTION'];
    const skipped = batch.map((p) => {
      const gid = p.write.newGid;
      if (gid !== undefined) {
        if (taken.has(gid)) return true;
        taken.add(gid);
      }
      for (const s of p.write.stmts) parts.push(mysql.format(s.sql, s.values as never[]));
      return false;
    });
    parts.push('COMMIT');
    let res: Result[];
    try {
      [res] = (await conn.query(parts.join(';\n'))) as unknown as [Result[], unknown];
    } catch (err) {
      if (isConnectionError(err)) throw err; // COMMIT sent or not: unknown, so every caller hears of a failure
      // MySQL stopped at the failing statement, before the COMMIT: undo what ran before it
      await conn.query('ROLLBACK');
      return false;
    }
    let at = 1;
    batch.forEach((p, i) => {
      if (skipped[i]) {
        p.reject(new UniqueConflictError());
        return;
      }
      const n = p.write.stmts.length;
      MysqlStore.settle(p, res.slice(at, at + n));
      at += n;
    });
    return true;
  }

  /**
   * The slow path: one savepoint per write, statements prepared (binary parameters, so big payloads need no
   * hex text), so a failing write is rolled back alone and reported alone.
   */
  private async runWithSavepoints(conn: mysql.PoolConnection, batch: Pending<MyWrite>[]): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.savepointPass(conn, batch);
        return;
      } catch (err) {
        // a deadlock victim's whole transaction is rolled back: the batch may simply run again
        if (!isDeadlock(err) || attempt >= DEADLOCK_RETRIES) throw err;
        await conn.query('ROLLBACK');
      }
    }
  }

  private async savepointPass(conn: mysql.PoolConnection, batch: Pending<MyWrite>[]): Promise<void> {
    await conn.query('START TRANSACTION');
    const outcomes: ({ ok: true; r: Result[] } | { ok: false; err: unknown })[] = [];
    for (const p of batch) {
      await conn.query('SAVEPOINT w');
      try {
        const results: Result[] = [];
        for (const s of p.write.stmts) {
          const [r] = (await conn.execute(s.sql, s.values as never[])) as unknown as [Result, unknown];
          results.push(r);
        }
        await conn.query('RELEASE SAVEPOINT w');
        outcomes.push({ ok: true, r: results });
      } catch (err) {
        if (isConnectionError(err) || isDeadlock(err)) throw err;
        await conn.query('ROLLBACK TO SAVEPOINT w');
        outcomes.push({ ok: false, err: storeError('mysql', err) });
      }
    }
    await conn.query('COMMIT');
    batch.forEach((p, i) => {
      const o = outcomes[i]!;
      if (o.ok) MysqlStore.settle(p, o.r);
      else p.reject(o.err);
    });
  }

  // ------------------------------------------------------------------ Store

  async ping(): Promise<void> {
    await this.q('SELECT 1 FROM trans_global LIMIT 1', [], 5000);
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.writer.drain(); // queued writes commit first
      await this.endPools();
    })();
    return this.closing;
  }

  private async endPools(): Promise<void> {
    await Promise.all([this.pool.end().catch(() => undefined), this.writerPool.end().catch(() => undefined)]);
  }

  async findTrans(gid: string): Promise<TransGlobal | undefined> {
    const r = rows(await this.q(`SELECT ${GLOBAL_SELECT} FROM trans_global WHERE gid = ?`, [gid]));
    return r[0] ? globalFromRow(r[0]) : undefined;
  }

  async scanTrans(q: ScanQuery): Promise<{ trans: TransGlobal[]; nextPosition: string }> {
    const { where, values } = whereOf(scanConditions(q, dt));
    const r = rows(
      await this.q(`SELECT ${GLOBAL_SELECT} FROM trans_global ${where} ORDER BY id DESC LIMIT ?`, [...values, q.limit]),
    );
    const trans = r.map(globalFromRow);
    return { trans, nextPosition: nextPositionOf(trans, q.limit) };
  }

  async countUnfinished(): Promise<UnfinishedCount[]> {
    return rows(await this.q(countUnfinishedSql('trans_global'))).map(unfinishedCountOf);
  }

  async findBranches(gid: string): Promise<TransBranch[]> {
    return rows(await this.q(`SELECT ${BRANCH_SELECT} FROM trans_branch_op WHERE gid = ? ORDER BY id`, [gid])).map(
      branchFromRow,
    );
  }

  /**
   * One INSERT per new branch, guarded by `cond` (SQL over session variables or tables; a VALUES list cannot
   * carry a condition). One row per statement: its result carries the row's id (no read-back, no reliance
   * on consecutive auto-increment values), and MySQL needs no temporary table for it.
   */
  private static branchInserts(gid: string, branches: TransBranch[], cond: string, condValues: unknown[]): Stmt[] {
    const sql = `INSERT INTO trans_branch_op (${BRANCH_INSERT_COLUMNS.join(', ')})
      SELECT ${BRANCH_INSERT_COLUMNS.map(() => '?').join(', ')} FROM DUAL WHERE ${cond}`;
    return branches.map((b) => ({
      sql,
      values: [
        gid,
        b.url,
        payload(b.binData),
        b.branchId,
        b.op,
        b.status,
        dt(b.createTime),
        dt(b.updateTime),
        ...condValues,
      ],
    }));
  }

  /** Branch ids from the INSERT results `results[first…]`; false when the guard held them back. */
  private static takeBranchIds(branches: TransBranch[], results: Result[], first: number): boolean {
    for (let i = 0; i < branches.length; i++) {
      const h = header(results[first + i]);
      if (h.affectedRows !== 1) return false;
      branches[i]!.id = Number(h.insertId);
    }
    return true;
  }

  saveNew(trans: TransGlobal, branches: TransBranch[]): Promise<void> {
    // plain INSERTs: the cheapest statements MySQL has for this (see runText for how a duplicate gid fails)
    const stmts: Stmt[] = [
      {
        sql: `INSERT INTO trans_global (${GLOBAL_INSERT_COLUMNS.join(', ')})
          VALUES (${GLOBAL_INSERT_COLUMNS.map(() => '?').join(', ')})`,
        values: globalInsertValues(trans, toMysqlDatetime),
      },
    ];
    // the branches in multi-row INSERTs of at most INSERT_ROWS_MAX rows / about INSERT_BYTES_MAX bytes: a
    // prepared statement holds at most 65,535 placeholders, and a packet max_allowed_packet bytes
    const chunks: TransBranch[][] = [];
    let chunk: TransBranch[] = [];
    let bytes = 0;
    for (const b of branches) {
      const size = b.binData.byteLength + b.url.length + b.branchId.length + 64;
      if (chunk.length > 0 && (chunk.length >= INSERT_ROWS_MAX || bytes + size > INSERT_BYTES_MAX)) {
        chunks.push(chunk);
        chunk = [];
        bytes = 0;
      }
      chunk.push(b);
      bytes += size;
    }
    if (chunk.length > 0) chunks.push(chunk);
    const row = `(${BRANCH_INSERT_COLUMNS.map(() => '?').join(', ')})`;
    for (const c of chunks) {
      stmts.push({
        sql: `INSERT INTO trans_branch_op (${BRANCH_INSERT_COLUMNS.join(', ')}) VALUES ${c.map(() => row).join(', ')}`,
        values: c.flatMap((b) => [
          trans.gid,
          b.url,
          payload(b.binData),
          b.branchId,
          b.op,
          b.status,
          dt(b.createTime),
          dt(b.updateTime),
        ]),
      });
    }
    return this.write(
      stmts,
      (res) => {
        trans.id = Number(header(res[0]).insertId);
        // a multi-row INSERT of known size gets consecutive ids (by auto_increment_increment) starting at
        // insertId, whatever innodb_autoinc_lock_mode is; DTM relies on the same through its ORM
        chunks.forEach((c, k) => {
          const first = Number(header(res[1 + k]).insertId);
          c.forEach((b, i) => {
            b.id = first + i * this.autoIncStep;
          });
        });
      },
      trans.gid,
    );
  }

  insertBranches(gid: string, status: GlobalStatus, branches: TransBranch[]): Promise<void> {
    // the shared lock keeps the global's status until this commits (spec §8.5: DTM selects FOR UPDATE)
    const stmts: Stmt[] = [
      { sql: 'SELECT status FROM trans_global WHERE gid = ? LOCK IN SHARE MODE', values: [gid] },
      ...MysqlStore.branchInserts(gid, branches, 'EXISTS (SELECT 1 FROM trans_global WHERE gid = ? AND status = ?)', [
        gid,
        status,
      ]),
    ];
    return this.write(stmts, (res) => {
      if (rows(res[0])[0]?.status !== status) throw new NotFoundError();
      if (!MysqlStore.takeBranchIds(branches, res, 1)) throw new Error('store: registered branches not inserted');
    });
  }

  updateBranches(gid: string, status: GlobalStatus, branches: TransBranch[]): Promise<void> {
    const stmts: Stmt[] = [{ sql: 'SELECT status FROM trans_global WHERE gid = ? LOCK IN SHARE MODE', values: [gid] }];
    for (const b of branches) {
      stmts.push({
        sql: `UPDATE trans_branch_op SET status = ?, finish_time = ?, rollback_time = ?, update_time = ?,
          attempts = ?, last_attempt_time = ?, last_result = ?, last_error = ?
          WHERE id = ? AND gid = ? AND EXISTS (SELECT 1 FROM trans_global WHERE gid = ? AND status = ?)`,
        values: [
          b.status,
          dt(b.finishTime),
          dt(b.rollbackTime),
          dt(b.updateTime),
          ...attemptValues(b),
          b.id ?? 0,
          gid,
          gid,
          status,
        ],
      });
    }
    return this.write(stmts, (res) => {
      if (rows(res[0])[0]?.status !== status) throw new NotFoundError();
    });
  }

  changeStatus(gid: string, from: GlobalStatus, to: GlobalStatus, change: StatusChange, now: number): Promise<void> {
    const sets = ['status = ?', 'update_time = ?'];
    const values: unknown[] = [to, dt(now)];
    const set = (column: string, v: unknown) => {
      sets.push(`${column} = ?`);
      values.push(v);
    };
    if (change.rollbackReason) set('rollback_reason', change.rollbackReason);
    if (change.result) set('result', change.result);
    if (change.finishTime !== undefined) set('finish_time', dt(change.finishTime));
    if (change.rollbackTime !== undefined) set('rollback_time', dt(change.rollbackTime));
    if (change.nextCronTime !== undefined) set('next_cron_time', dt(change.nextCronTime));
    if (change.nextCronInterval !== undefined) set('next_cron_interval', change.nextCronInterval);
    values.push(gid, from);
    return this.write(
      [{ sql: `UPDATE trans_global SET ${sets.join(', ')} WHERE gid = ? AND status = ?`, values }],
      (res) => {
        // affectedRows counts matched rows (the driver's FOUND_ROWS flag), so 0 means the CAS lost
        if (header(res[0]).affectedRows === 0) throw new NotFoundError();
      },
    );
  }

  touchCronTime(
    gid: string,
    status: GlobalStatus,
    nextCronTime: number,
    interval: number,
    now: number,
    resetFailedAttempts = false,
  ) {
    const reset = resetFailedAttempts ? ', failed_attempts = 0' : '';
    return this.write(
      [
        {
          sql: `UPDATE trans_global SET next_cron_time = ?, next_cron_interval = ?, update_time = ?${reset}
            WHERE gid = ? AND status = ?`,
          values: [dt(nextCronTime), interval, dt(now), gid, status],
        },
      ],
      () => undefined,
    );
  }

  recordFailedAttempt(
    gid: string,
    status: GlobalStatus,
    branch: TransBranch | undefined,
    a: FailedAttempt,
    now: number,
  ): Promise<void> {
    const stmts: Stmt[] = [
      {
        sql: `UPDATE trans_global SET next_cron_time = ?, next_cron_interval = ?, update_time = ?,
          failed_attempts = ?, last_error = ? WHERE gid = ? AND status = ?`,
        values: [dt(a.nextCronTime), a.nextCronInterval, dt(now), a.failedAttempts, a.lastError, gid, status],
      },
    ];
    if (branch) {
      // same transaction (one commit); written only while the global has the status
      stmts.push({
        sql: `UPDATE trans_branch_op SET attempts = ?, last_attempt_time = ?, last_result = ?, last_error = ?,
          update_time = ? WHERE id = ? AND gid = ? AND EXISTS (SELECT 1 FROM trans_global WHERE gid = ? AND status = ?)`,
        values: [...attemptValues(branch), dt(now), branch.id ?? 0, gid, gid, status],
      });
    }
    return this.write(stmts, () => undefined);
  }

  async claimStuckAlert(gid: string, status: GlobalStatus): Promise<boolean> {
    const r = await this.q(
      'UPDATE trans_global SET stuck_alerted = 1 WHERE gid = ? AND status = ? AND stuck_alerted = 0',
      [gid, status],
    );
    return header(r).affectedRows === 1;
  }

  async findStuck(rule: StuckRule, position: string, limit: number) {
    const n = rule.failedAttempts;
    const r = rows(
      await this.q(
        `SELECT ${GLOBAL_SELECT} FROM trans_global WHERE status IN ${UNFINISHED_STATUSES} AND id < ?
         AND ((? > 0 AND failed_attempts >= ?) OR create_time < ?) ORDER BY id DESC LIMIT ?`,
        [position ? Number(position) : Number.MAX_SAFE_INTEGER, n, n, dt(rule.createdBefore), limit],
      ),
    );
    const trans = r.map(globalFromRow);
    return { trans, nextPosition: nextPositionOf(trans, limit) };
  }

  async countStuck(rule: StuckRule): Promise<{ attempts: number; age: number }> {
    const n = rule.failedAttempts;
    const r = rows(
      await this.q(
        `SELECT COALESCE(SUM(CASE WHEN ? > 0 AND failed_attempts >= ? THEN 1 ELSE 0 END), 0) AS attempts,
         COUNT(*) AS n FROM trans_global WHERE status IN ${UNFINISHED_STATUSES}
         AND ((? > 0 AND failed_attempts >= ?) OR create_time < ?)`,
        [n, n, n, n, dt(rule.createdBefore)],
      ),
    );
    const row = r[0] as { attempts: unknown; n: unknown };
    const attempts = Number(row.attempts);
    return { attempts, age: Number(row.n) - attempts };
  }

  lockDue(dueBefore: number, leaseUntil: number, owner: string, limit: number, now: number): Promise<TransGlobal[]> {
    // The most overdue first, without sorting every due row: one range scan of DTM's index
    // (status, next_cron_time) per unfinished status, `limit` rows each. Then lock the candidates; rows
    // another instance holds are skipped, not waited for, and the locking read sees the latest committed row,
    // so a candidate leased and committed meanwhile is no longer due.
    return this.tx(async (c) => {
      const due = dt(dueBefore);
      const arm = `SELECT id, next_cron_time FROM trans_global WHERE status = ? AND next_cron_time < ?
        ORDER BY next_cron_time LIMIT ?`;
      const [cand] = (await c.query(
        `SELECT id FROM ((${arm}) UNION ALL (${arm}) UNION ALL (${arm})) d ORDER BY next_cron_time, id LIMIT ?`,
        ['prepared', due, limit, 'submitted', due, limit, 'aborting', due, limit, limit],
      )) as [Row[], unknown];
      if (cand.length === 0) return [];
      const [locked] = (await c.query(
        `SELECT id FROM trans_global WHERE id IN (?) AND status IN ${UNFINISHED_STATUSES} AND next_cron_time < ?
         FOR UPDATE SKIP LOCKED`,
        [cand.map((r) => Number(r.id)), due],
      )) as [Row[], unknown];
      if (locked.length === 0) return [];
      const ids = locked.map((r) => Number(r.id));
      const [res] = (await c.query(
        `UPDATE trans_global SET owner = ?, next_cron_time = ?, update_time = ? WHERE id IN (?);
         SELECT ${GLOBAL_SELECT} FROM trans_global WHERE id IN (?) ORDER BY id`,
        [owner, dt(leaseUntil), dt(now), ids, ids],
      )) as unknown as [Result[], unknown];
      return rows(res[1]).map(globalFromRow);
    });
  }

  async resetCronTime(after: number, limit: number, now: number): Promise<{ count: number; hasRemaining: boolean }> {
    const r = header(
      await this.q(
        `UPDATE trans_global SET next_cron_time = ?, update_time = ?
         WHERE status IN ${UNFINISHED_STATUSES} AND next_cron_time > ? LIMIT ?`,
        [dt(now), dt(now), dt(after), limit],
      ),
    );
    return { count: r.affectedRows, hasRemaining: r.affectedRows === limit };
  }

  async resetTransCronTime(gid: string, now: number): Promise<void> {
    const r = header(
      await this.q('UPDATE trans_global SET next_cron_time = ?, update_time = ? WHERE gid = ?', [
        dt(now),
        dt(now),
        gid,
      ]),
    );
    if (r.affectedRows === 0) throw new NotFoundError();
  }

  deleteFinished(before: number, limit: number): Promise<number> {
    // a bounded transaction of its own; rows someone else holds are skipped, so it never waits on live traffic
    return this.tx(async (c) => {
      const [old] = (await c.query(
        `SELECT id, gid FROM trans_global WHERE status IN ${FINISHED_STATUSES} AND update_time < ?
         LIMIT ? FOR UPDATE SKIP LOCKED`,
        [dt(before), limit],
      )) as [Row[], unknown];
      if (old.length === 0) return 0;
      await c.query('DELETE FROM trans_branch_op WHERE gid IN (?); DELETE FROM trans_global WHERE id IN (?)', [
        old.map((r) => String(r.gid)),
        old.map((r) => Number(r.id)),
      ]);
      return old.length;
    });
  }

  async scanKV(cat: string, position: string, limit: number): Promise<{ kv: KV[]; nextPosition: string }> {
    const r = rows(
      position
        ? await this.q(`SELECT ${KV_SELECT} FROM kv WHERE cat = ? AND id < ? ORDER BY id DESC LIMIT ?`, [
            cat,
            Number(position),
            limit,
          ])
        : await this.q(`SELECT ${KV_SELECT} FROM kv WHERE cat = ? ORDER BY id DESC LIMIT ?`, [cat, limit]),
    );
    const kv = r.map(kvFromRow);
    return { kv, nextPosition: nextPositionOf(kv, limit) };
  }

  async findKV(cat: string, key: string): Promise<KV[]> {
    const { where, values } = whereOf(kvConditions(cat, key));
    return rows(await this.q(`SELECT ${KV_SELECT} FROM kv ${where} ORDER BY id`, values)).map(kvFromRow);
  }

  async createKV(cat: string, k: string, v: string, now: number): Promise<void> {
    // a duplicate (cat, k) is ER_DUP_ENTRY, which storeError turns into UniqueConflictError
    await this.q('INSERT INTO kv (cat, k, v, version, create_time, update_time) VALUES (?, ?, ?, 1, ?, ?)', [
      cat,
      k,
      v,
      dt(now),
      dt(now),
    ]);
  }

  async updateKV(kv: KV, now: number): Promise<void> {
    const r = header(
      await this.q(
        'UPDATE kv SET v = ?, version = version + 1, update_time = ? WHERE cat = ? AND k = ? AND version = ?',
        [kv.v, dt(now), kv.cat, kv.k, kv.version],
      ),
    );
    if (r.affectedRows === 0) throw new NotFoundError();
    kv.version += 1;
  }

  async deleteKV(cat: string, k: string): Promise<void> {
    const r = header(await this.q('DELETE FROM kv WHERE cat = ? AND k = ?', [cat, k]));
    if (r.affectedRows === 0) throw new NotFoundError();
  }
}
