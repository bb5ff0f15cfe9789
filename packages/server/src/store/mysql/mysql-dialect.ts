import { createHash } from 'node:crypto';
import type { GlobalStatus } from '@dtx/protocol';
import mysql from 'mysql2/promise';
import { NotFoundError } from '../../core/errors.js';
import type { TransBranch, TransGlobal } from '../../core/model.js';
import type { Logger } from '../../observe/logger.js';
import { errorMessage } from '../../util/error-message.js';
import type { CommitQueueOptions } from '../sql/commit-queue.js';
import type { QueryOptions, Row, SqlDialect, SqlResult, WriteArgs, WriteBuilder } from '../sql/dialect.js';
import { migrate } from '../sql/migrator.js';
import { PositionalCache } from '../sql/placeholders.js';
import {
  BRANCH_INSERT_COLUMNS,
  branchInsertValues,
  FINISHED_STATUSES,
  GLOBAL_COLUMNS,
  GLOBAL_INSERT_COLUMNS,
  globalFromRow,
  globalInsertValues,
  UNFINISHED_STATUSES,
} from '../sql/rows.js';
import type { SqlStoreOptions } from '../sql/sql-options.js';
import { toMysqlDatetime } from '../sql/time.js';
import type { StatusChange } from '../store.js';
import {
  MAX_BATCH_TEXT,
  MyBatchExecutor,
  type MyWrite,
  myWrite,
  type Result,
  type Stmt,
  shortTransaction,
} from './my-batch.js';
import { MY_DROP_ALL, MY_MIGRATIONS, MY_MIGRATIONS_TABLE, type MyMigrationConn } from './schema.js';

/** Rows of one multi-row INSERT of branches (8 placeholders each; a prepared statement holds 65,535). */
const INSERT_ROWS_MAX = 1000;
/** Bytes of branch data one multi-row INSERT carries at most, unless a single row is bigger. */
const INSERT_BYTES_MAX = 4 * 1024 * 1024;
const GLOBAL_SELECT = GLOBAL_COLUMNS.join(', ');

// The hot path's statements are built once, not per write: the text batch renders each through my-text.ts,
// which splits a statement at its placeholders once per distinct SQL string.
const GLOBAL_INSERT_HEAD = `INSERT INTO trans_global (${GLOBAL_INSERT_COLUMNS.join(', ')}) VALUES `;
const GLOBAL_INSERT = `${GLOBAL_INSERT_HEAD}(${GLOBAL_INSERT_COLUMNS.map(() => '?').join(', ')})`;
const BRANCH_INSERT_HEAD = `INSERT INTO trans_branch_op (${BRANCH_INSERT_COLUMNS.join(', ')}) VALUES `;
/** The heads a text batch merges saveNews' INSERTs under (MergeableInsert). */
const INSERT_HEADS = [GLOBAL_INSERT_HEAD, BRANCH_INSERT_HEAD] as const;
const BRANCH_ROW = `(${BRANCH_INSERT_COLUMNS.map(() => '?').join(', ')})`;
/** `INSERT … VALUES` of n branch rows, kept for n ≤ BRANCH_INSERTS_KEPT (larger ones are rare: built each time). */
const BRANCH_INSERTS_KEPT = 64;
const branchInsertSql: string[] = [];
function branchInsert(n: number): string {
  const kept = branchInsertSql[n];
  if (kept !== undefined) return kept;
  const sql = `${BRANCH_INSERT_HEAD}${Array(n).fill(BRANCH_ROW).join(', ')}`;
  if (n <= BRANCH_INSERTS_KEPT) branchInsertSql[n] = sql;
  return sql;
}
/**
 * One registered branch, inserted only while the global still has the status (a VALUES list takes no condition):
 * its values selected from the global row itself, which the read locks in share mode (INSERT … SELECT would not
 * lock it under READ COMMITTED); a status that moved selects no row.
 */
const BRANCH_INSERT_WHILE = `INSERT INTO trans_branch_op (${BRANCH_INSERT_COLUMNS.join(', ')})
  SELECT ${BRANCH_INSERT_COLUMNS.map(() => '?').join(', ')} FROM trans_global
  WHERE gid = ? AND status = ? LOCK IN SHARE MODE`;
/** The branch columns a result writes, in the order of branchResultValues. */
const BRANCH_RESULT_COLUMNS = [
  'status',
  'finish_time',
  'rollback_time',
  'update_time',
  'attempts',
  'last_attempt_time',
  'last_result',
  'last_error',
] as const;
/** One branch's result, written only while the global has the status. */
const BRANCH_UPDATE = `UPDATE trans_branch_op SET ${BRANCH_RESULT_COLUMNS.map((c) => `${c} = ?`).join(', ')}
  WHERE id = ? AND gid = ? AND EXISTS (SELECT 1 FROM trans_global WHERE gid = ? AND status = ?)`;
const GLOBAL_FAILED_ATTEMPT = `UPDATE trans_global SET next_cron_time = ?, next_cron_interval = ?, update_time = ?,
  failed_attempts = ?, last_error = ? WHERE gid = ? AND status = ?`;
/**
 * A failed attempt with its branch's attempt record, one statement: the global row first (LEFT JOIN), its CAS in
 * the WHERE; the branch of that gid with the id, if any, written with it.
 */
const FAILED_ATTEMPT_WITH_BRANCH = `UPDATE trans_global g LEFT JOIN trans_branch_op b ON b.gid = g.gid AND b.id = ?
  SET g.next_cron_time = ?, g.next_cron_interval = ?, g.update_time = ?, g.failed_attempts = ?, g.last_error = ?,
  b.attempts = ?, b.last_attempt_time = ?, b.last_result = ?, b.last_error = ?, b.update_time = ?
  WHERE g.gid = ? AND g.status = ?`;
const TOUCH_CRON = [false, true].map(
  (reset) =>
    `UPDATE trans_global SET next_cron_time = ?, next_cron_interval = ?, update_time = ?${
      reset ? ', failed_attempts = 0' : ''
    } WHERE gid = ? AND status = ?`,
);
const SHARE_STATUS = 'SELECT status FROM trans_global WHERE gid = ? LOCK IN SHARE MODE';
/** The optional columns of changeStatus, in the order of their bits in a STATUS_UPDATE index. */
const STATUS_CHANGE_COLUMNS = [
  'rollback_reason',
  'result',
  'finish_time',
  'rollback_time',
  'next_cron_time',
  'next_cron_interval',
] as const;
/** changeStatus's UPDATE for each set of optional columns present (bit i: STATUS_CHANGE_COLUMNS[i]). */
const STATUS_UPDATE = Array.from({ length: 1 << STATUS_CHANGE_COLUMNS.length }, (_, mask) => {
  const sets = ['status = ?', 'update_time = ?'];
  STATUS_CHANGE_COLUMNS.forEach((c, i) => {
    if (mask & (1 << i)) sets.push(`${c} = ?`);
  });
  return `UPDATE trans_global SET ${sets.join(', ')} WHERE gid = ? AND status = ?`;
});

/**
 * Branch results one joined statement writes at most (a status change with its results, updateBranches): past
 * this the statement's CASE lists would grow with the square of the count, and the branches are written one
 * UPDATE each instead.
 */
const JOINED_BRANCHES_MAX = 16;
/** The joined statements of changeStatus, by set of optional columns and branch count (index mask * 17 + n). */
const statusUpdateJoined: string[] = [];
/**
 * changeStatus with n branch results as one multi-table UPDATE: the global row moved (its CAS in the WHERE) and the
 * branches of that gid among the n ids written from CASE lists. The LEFT JOIN reads the global row first, so its
 * lock is taken before any branch's, as everywhere else; a lost CAS matches no row and writes nothing. One
 * statement instead of a locking read, n UPDATEs with a subquery each and the move: a fifth to a quarter less of
 * MariaDB's CPU per write, measured alone.
 */
function statusUpdateWithBranches(mask: number, n: number): string {
  const key = mask * (JOINED_BRANCHES_MAX + 1) + n;
  let sql = statusUpdateJoined[key];
  if (sql === undefined) {
    const sets = ['g.status = ?', 'g.update_time = ?'];
    STATUS_CHANGE_COLUMNS.forEach((c, i) => {
      if (mask & (1 << i)) sets.push(`g.${c} = ?`);
    });
    sql = `UPDATE trans_global g LEFT JOIN trans_branch_op b ON b.gid = g.gid AND b.id IN (${placeholders(n)})
  SET ${[...sets, ...branchResultSets(n)].join(', ')} WHERE g.gid = ? AND g.status = ?`;
    statusUpdateJoined[key] = sql;
  }
  return sql;
}

/** updateBranches's joined statements, by branch count (1 to JOINED_BRANCHES_MAX). */
const branchesUpdateJoined: string[] = [];
/**
 * updateBranches with n results as one multi-table UPDATE: the branches of that gid among the n ids, written from
 * CASE lists, joined to the global row while it has the status. The global row is read first (STRAIGHT_JOIN) with
 * a shared lock, as the locking read it replaces took; a status that moved, or a gid none of whose branches is
 * addressed, matches no row. One statement instead of that read and n UPDATEs with a subquery each.
 */
function branchesUpdate(n: number): string {
  let sql = branchesUpdateJoined[n];
  if (sql === undefined) {
    sql = `UPDATE trans_global g STRAIGHT_JOIN trans_branch_op b ON b.gid = g.gid AND b.id IN (${placeholders(n)})
  SET ${branchResultSets(n).join(', ')} WHERE g.gid = ? AND g.status = ?`;
    branchesUpdateJoined[n] = sql;
  }
  return sql;
}

function placeholders(n: number): string {
  return Array(n).fill('?').join(', ');
}
/** `b.column = CASE b.id WHEN ? THEN ? … END` for each result column, n (id, value) pairs each. */
function branchResultSets(n: number): string[] {
  const whens = Array(n).fill('WHEN ? THEN ?').join(' ');
  return BRANCH_RESULT_COLUMNS.map((c) => `b.${c} = CASE b.id ${whens} END`);
}

/** A joined statement's values: the ids of the join, `middle` (the global's values), each column's (id, value) pairs. */
function joinedBranchValues(branches: readonly TransBranch[], middle: readonly unknown[]): unknown[] {
  const ids = branches.map((b) => b.id ?? 0);
  const results = branches.map(branchResultValues);
  const out: unknown[] = [...ids, ...middle];
  for (let k = 0; k < BRANCH_RESULT_COLUMNS.length; k++)
    for (let i = 0; i < branches.length; i++) out.push(ids[i], results[i]![k]);
  return out;
}

/** The values of a multi-row INSERT of `branches` of `gid`, row after row. */
function branchRowValues(gid: string, branches: readonly TransBranch[]): unknown[] {
  const values: unknown[] = [];
  for (const b of branches) {
    values.push(gid);
    branchInsertValues(b, toMysqlDatetime, values);
  }
  return values;
}

const dt = (ms: number | undefined): string | null => (ms === undefined ? null : toMysqlDatetime(ms));

/** The attempt record of a branch, as the four values updateBranches and recordFailedAttempt write. */
const attemptValues = (b: TransBranch): unknown[] => [
  b.attempts ?? 0,
  dt(b.lastAttemptTime),
  b.lastResult ?? '',
  b.lastError ?? '',
];
/** A branch result's values in BRANCH_RESULT_COLUMNS order. */
const branchResultValues = (b: TransBranch): unknown[] => [
  b.status,
  dt(b.finishTime),
  dt(b.rollbackTime),
  dt(b.updateTime),
  ...attemptValues(b),
];
const header = (r: Result | undefined): mysql.ResultSetHeader => r as mysql.ResultSetHeader;
const rows = (r: Result | undefined): Row[] => (Array.isArray(r) ? r : []);

/**
 * The hot path's writes in MySQL's SQL: statements that either do all of the write's work or none of it (their
 * conditions are in the SQL), run as one multi-statement batch by MyBatchExecutor.
 */
class MyWrites implements WriteBuilder<MyWrite> {
  /** @@auto_increment_increment: the step between the ids of one multi-row INSERT (1 unless Galera-style). */
  autoIncStep = 1;

  /** Branch ids from the INSERT results `results[first…]`; false when the guard held them back. */
  private static takeBranchIds(branches: TransBranch[], results: Result[], first: number): boolean {
    for (let i = 0; i < branches.length; i++) {
      const h = header(results[first + i]);
      if (h.affectedRows !== 1) return false;
      branches[i]!.id = Number(h.insertId);
    }
    return true;
  }

  saveNew(trans: TransGlobal, branches: TransBranch[]): MyWrite {
    // plain INSERTs: the cheapest statements MySQL has for this (see MyBatchExecutor.runText for how a duplicate gid fails)
    const stmts: Stmt[] = [{ sql: GLOBAL_INSERT, values: globalInsertValues(trans, toMysqlDatetime) }];
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
    for (const c of chunks) {
      stmts.push({
        sql: branchInsert(c.length),
        values: branchRowValues(trans.gid, c),
      });
    }
    const step = this.autoIncStep;
    // a multi-row INSERT of known size gets consecutive ids (by auto_increment_increment) starting at insertId,
    // whatever innodb_autoinc_lock_mode is; DTM relies on the same through its ORM
    const ids = (globalId: number, firsts: readonly number[]) => {
      trans.id = globalId;
      chunks.forEach((c, k) => {
        c.forEach((b, i) => {
          b.id = firsts[k]! + i * step;
        });
      });
    };
    return myWrite(
      stmts,
      (res) =>
        ids(
          Number(header(res[0]).insertId),
          chunks.map((_, k) => Number(header(res[1 + k]).insertId)),
        ),
      {
        gid: trans.gid,
        // a saga is submitted once; a msg, tcc or xa is usually prepared first, and a workflow runs again
        mayExist: trans.transType !== 'saga',
        merge:
          chunks.length > 1
            ? undefined
            : { heads: INSERT_HEADS, branchRows: branches.length, step, ids: (g, b) => ids(g, [b]) },
      },
    );
  }

  insertBranches(gid: string, status: GlobalStatus, branches: TransBranch[]): MyWrite {
    if (branches.length === 0) {
      return myWrite([{ sql: SHARE_STATUS, values: [gid] }], (res) => {
        if (rows(res[0])[0]?.status !== status) throw new NotFoundError();
      });
    }
    // the first INSERT's shared lock keeps the global's status until this commits (spec §8.5: DTM selects FOR
    // UPDATE); one row per INSERT: its result carries the row's id (no read-back, no reliance on consecutive
    // auto-increment values), and MySQL needs no temporary table for it
    const stmts: Stmt[] = branches.map((b) => ({
      sql: BRANCH_INSERT_WHILE,
      values: [gid, ...branchInsertValues(b, toMysqlDatetime), gid, status],
    }));
    return myWrite(stmts, (res) => {
      if (header(res[0]).affectedRows === 0) throw new NotFoundError();
      if (!MyWrites.takeBranchIds(branches, res, 0)) throw new Error('store: registered branches not inserted');
    });
  }

  updateBranches(gid: string, status: GlobalStatus, branches: readonly TransBranch[]): MyWrite {
    if (branches.length > 0 && branches.length <= JOINED_BRANCHES_MAX) {
      const values = joinedBranchValues(branches, []);
      values.push(gid, status);
      return myWrite([{ sql: branchesUpdate(branches.length), values }], (res) => {
        // matched rows (the driver's FOUND_ROWS flag): 0 when the status moved or the gid is missing
        if (header(res[0]).affectedRows === 0) throw new NotFoundError();
      });
    }
    const stmts: Stmt[] = [{ sql: SHARE_STATUS, values: [gid] }];
    for (const b of branches) stmts.push(MyWrites.branchUpdate(gid, status, b));
    return myWrite(stmts, (res) => {
      if (rows(res[0])[0]?.status !== status) throw new NotFoundError();
    });
  }

  /** The UPDATE of one branch's result, applied only while the global status is `status`. */
  private static branchUpdate(gid: string, status: GlobalStatus, b: TransBranch): Stmt {
    return { sql: BRANCH_UPDATE, values: [...branchResultValues(b), b.id ?? 0, gid, gid, status] };
  }

  changeStatus(gid: string, from: GlobalStatus, to: GlobalStatus, change: StatusChange, now: number): MyWrite {
    const values: unknown[] = [to, dt(now)];
    // the optional columns' values in STATUS_CHANGE_COLUMNS order; those present pick the statement
    const optional = [
      change.rollbackReason || undefined,
      change.result || undefined,
      change.finishTime === undefined ? undefined : dt(change.finishTime),
      change.rollbackTime === undefined ? undefined : dt(change.rollbackTime),
      change.nextCronTime === undefined ? undefined : dt(change.nextCronTime),
      change.nextCronInterval,
    ];
    let mask = 0;
    for (let i = 0; i < optional.length; i++) {
      if (optional[i] === undefined) continue;
      mask |= 1 << i;
      values.push(optional[i]);
    }
    const held = change.branches ?? [];
    let stmts: Stmt[];
    if (held.length === 0) {
      values.push(gid, from);
      stmts = [{ sql: STATUS_UPDATE[mask]!, values }];
    } else if (held.length <= JOINED_BRANCHES_MAX) {
      // the ids of the join first, then the global's values, each column's (id, value) pairs, the CAS
      const all = joinedBranchValues(held, values);
      all.push(gid, from);
      stmts = [{ sql: statusUpdateWithBranches(mask, held.length), values: all }];
    } else {
      // many branch results: the global row locked first, each branch written while it still has `from`, then
      // the move; a lost CAS writes none of it
      values.push(gid, from);
      stmts = [
        { sql: 'SELECT status FROM trans_global WHERE gid = ? FOR UPDATE', values: [gid] },
        ...held.map((b) => MyWrites.branchUpdate(gid, from, b)),
        { sql: STATUS_UPDATE[mask]!, values },
      ];
    }
    return myWrite(stmts, (res) => {
      // affectedRows counts matched rows (the driver's FOUND_ROWS flag), so 0 means the CAS lost
      if (header(res[res.length - 1]!).affectedRows === 0) throw new NotFoundError();
    });
  }

  touchCronTime(...args: WriteArgs<'touchCronTime'>): MyWrite {
    const [gid, status, nextCronTime, interval, now, resetFailedAttempts = false] = args;
    return myWrite(
      [
        {
          sql: TOUCH_CRON[resetFailedAttempts ? 1 : 0]!,
          values: [dt(nextCronTime), interval, dt(now), gid, status],
        },
      ],
      () => undefined,
    );
  }

  recordFailedAttempt(...args: WriteArgs<'recordFailedAttempt'>): MyWrite {
    const [gid, status, branch, a, now] = args;
    const global = [dt(a.nextCronTime), a.nextCronInterval, dt(now), a.failedAttempts, a.lastError];
    const stmt: Stmt = branch
      ? {
          sql: FAILED_ATTEMPT_WITH_BRANCH,
          values: [branch.id ?? 0, ...global, ...attemptValues(branch), dt(now), gid, status],
        }
      : { sql: GLOBAL_FAILED_ATTEMPT, values: [...global, gid, status] };
    return myWrite([stmt], () => undefined);
  }
}

/**
 * The statement each new connection runs first: strict mode (nothing truncated silently), backslashes as escapes
 * (the text batches' literals are escaped the driver's way, with backslashes, so a server whose sql_mode has
 * NO_BACKSLASH_ESCAPES would read `\'` as the end of a string), UTC (for anything the server computes), and
 * autocommit whatever the server's default (a lone statement of the group commit is sent without a transaction
 * around it, and must commit by itself). The group commit's connections also give up on a row lock held elsewhere
 * after 10 s instead of stalling every write, and with `readCommitted` run at READ COMMITTED: under REPEATABLE READ
 * (InnoDB's default) a registered branch's `INSERT … SELECT … FROM trans_global` holds a next-key lock, the global
 * row and the gap before it, until its batch commits, so a new transaction whose gid sorts into that gap waited for
 * an unrelated batch (and failed after 10 s behind a long one). The store's conditions never relied on gap locks
 * (every check is a locking read or a conditional write of the row itself).
 */
export function mysqlSessionSetup(groupCommit: boolean, readCommitted = false): string {
  const mode = `TRIM(BOTH ',' FROM REPLACE(CONCAT(',', @@SESSION.sql_mode, ',STRICT_ALL_TABLES,'), ',NO_BACKSLASH_ESCAPES,', ','))`;
  const set = `SET SESSION sql_mode = ${mode}, time_zone = '+00:00', autocommit = 1${groupCommit ? ', innodb_lock_wait_timeout = 10' : ''}`;
  return groupCommit && readCommitted ? `${set}; SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED` : set;
}

/**
 * Whether the group commit may run at READ COMMITTED on this server: not when it writes a statement-based binary
 * log, which InnoDB refuses at that level (error 1665); MIXED and ROW (the defaults) switch to rows by themselves.
 */
export function writerMayReadCommitted(logBin: unknown, binlogFormat: unknown): boolean {
  return !(Number(logBin) === 1 && String(binlogFormat).toUpperCase() === 'STATEMENT');
}

/**
 * MySQL / MariaDB under the shared SQL store (Store.Driver `mysql`): DTM's tables in the database Store.Db
 * (created when missing), migrated to dtx's version at open (see schema.ts). Two pools: reads and short
 * transactions of their own (lease, retention), and the group commit's connections (MyBatchExecutor).
 */
export class MysqlDialect implements SqlDialect<mysql.Pool, mysql.PoolConnection, MyWrite, Result[]> {
  readonly driver = 'mysql';
  readonly title = 'MySQL';
  readonly label: string;
  /** Reads and short transactions of their own (lease, retention). */
  readonly pool: mysql.Pool;
  readonly queue: Omit<CommitQueueOptions<MyWrite>, 'observer' | 'maxBatch'>;
  readonly writes = new MyWrites();
  readonly executor: MyBatchExecutor;
  /** The connections of the group commit. */
  private readonly writerPool: mysql.Pool;
  private readonly log: Logger | undefined;
  private readonly positional = new PositionalCache();
  /** The group commit's sessions run at READ COMMITTED (see mysqlSessionSetup); decided in bootstrap. */
  private writerReadCommitted = false;

  constructor(private readonly o: SqlStoreOptions) {
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
      // no stack captured at every query's call site (mysql2's default): it cost about 15 µs per query, and a
      // store error is classified by its code, not by where it was called from
      trace: false,
    };
    // Store.MaxOpenConns covers both pools: the group commit's connections, the rest for reads
    const inFlight = Math.max(1, o.maxInFlight ?? 2);
    this.queue = { maxInFlight: inFlight, weight: (w: MyWrite) => w.weight, maxBatchWeight: MAX_BATCH_TEXT };
    const maxOpen = Math.max(1, (o.maxOpenConns ?? 500) - inFlight);
    this.pool = mysql.createPool({
      ...base,
      connectionLimit: maxOpen,
      maxIdle: Math.min(maxOpen, Math.max(0, o.maxIdleConns ?? maxOpen)),
    });
    this.writerPool = mysql.createPool({
      ...base,
      connectionLimit: inFlight,
      maxIdle: inFlight,
      // the group commit's batches arrive as finished text (my-text.ts): given no values, the driver's own format
      // would still scan all of that text for a placeholder; with values, the driver's format as it calls it
      queryFormat: ((sql: string, values: unknown, timezone: unknown) =>
        Array.isArray(values) && values.length === 0
          ? sql
          : (mysql.format as (...a: unknown[]) => string)(sql, values, false, timezone)) as never,
    });
    for (const p of [this.pool, this.writerPool]) {
      const writer = p === this.writerPool;
      (p as unknown as NodeJS.EventEmitter).on(
        'connection',
        (conn: { query: (sql: string, cb: (e: unknown) => void) => void }) => {
          // the writer's connections are made after bootstrap, which read the server's binary log settings
          conn.query(mysqlSessionSetup(writer, writer && this.writerReadCommitted), (err) => {
            if (err) this.log?.warn('MySQL session setup failed', { error: errorMessage(err) });
          });
        },
      );
    }
    this.executor = new MyBatchExecutor(this.writerPool);
  }

  table(name: string): string {
    return name;
  }

  time(ms: number): string {
    return toMysqlDatetime(ms);
  }

  async query(text: string, values: readonly unknown[], o: QueryOptions = {}): Promise<SqlResult> {
    const { sql, values: v } = this.positional.apply(text, values);
    const [r] = (await this.pool.query(
      o.timeoutMs ? { sql, values: v, timeout: o.timeoutMs } : { sql, values: v },
    )) as [Result, unknown];
    return Array.isArray(r) ? { rows: r, affected: r.length } : { rows: [], affected: r.affectedRows };
  }

  async end(): Promise<void> {
    await Promise.all([this.pool.end().catch(() => undefined), this.writerPool.end().catch(() => undefined)]);
  }

  // ------------------------------------------------------------------ bootstrap and migrations

  async bootstrap(reset: boolean): Promise<void> {
    await this.createDatabase();
    const conn = await this.pool.getConnection();
    let healthy = false;
    try {
      // one migrator per database at a time, across processes (GET_LOCK names are server-wide, ≤ 64 chars)
      const lock = `dtx-migrate:${createHash('sha1').update(this.o.database).digest('hex').slice(0, 40)}`;
      const [got] = (await conn.query('SELECT GET_LOCK(?, 120) AS ok', [lock])) as [Row[], unknown];
      if (Number(got[0]?.ok) !== 1) throw new Error('timed out waiting for another instance to migrate the schema');
      try {
        const rowsOf = async (sql: string, values?: unknown[]): Promise<Row[]> =>
          (await conn.query(sql, values))[0] as Row[];
        const names = async (sql: string, table: string, col: string) =>
          new Set((await rowsOf(sql, [table])).map((x) => String(x[col])));
        const mc: MyMigrationConn = {
          query: (sql, values) => conn.query(sql, values),
          columns: (table) =>
            names(
              'SELECT column_name AS c FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ?',
              table,
              'c',
            ),
          indexes: (table) =>
            names(
              'SELECT DISTINCT index_name AS i FROM information_schema.statistics WHERE table_schema = DATABASE() AND table_name = ?',
              table,
              'i',
            ),
        };
        await migrate(
          {
            conn: mc,
            run: (sql, values) => {
              const q = this.positional.apply(sql, values ?? []);
              return rowsOf(q.sql, q.values);
            },
            table: 'dtx_migrations',
            createTable: MY_MIGRATIONS_TABLE,
            dropAll: MY_DROP_ALL,
            migrations: MY_MIGRATIONS,
            label: this.label,
            log: this.log,
          },
          reset,
        );
        const [inc] = await rowsOf('SELECT @@auto_increment_increment AS s, @@log_bin AS lb, @@binlog_format AS bf');
        this.writes.autoIncStep = Number(inc?.s ?? 1) || 1;
        this.writerReadCommitted = writerMayReadCommitted(inc?.lb, inc?.bf);
        if (!this.writerReadCommitted) {
          this.log?.info(
            'MySQL writes a statement-based binary log: the group commit stays at REPEATABLE READ, where a registered branch holds a gap lock until its batch commits',
            { store: this.label },
          );
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

  // ------------------------------------------------------------------ the cron lease and retention

  /** A short transaction of its own (shortTransaction: a deadlock victim is run again). */
  private tx<T>(fn: (c: mysql.PoolConnection) => Promise<T>): Promise<T> {
    return shortTransaction(this.pool, fn);
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

  async resetCronTime(after: number, limit: number, now: number): Promise<number> {
    const [r] = (await this.pool.query(
      `UPDATE trans_global SET next_cron_time = ?, update_time = ?
       WHERE status IN ${UNFINISHED_STATUSES} AND next_cron_time > ? LIMIT ?`,
      [dt(now), dt(now), dt(after), limit],
    )) as [mysql.ResultSetHeader, unknown];
    return r.affectedRows;
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
}
