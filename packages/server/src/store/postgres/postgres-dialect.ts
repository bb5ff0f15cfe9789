import type { GlobalStatus } from '@dtx/protocol';
import pg from 'pg';
import { NotFoundError, UniqueConflictError } from '../../core/errors.js';
import type { TransBranch, TransGlobal } from '../../core/model.js';
import type { Logger } from '../../observe/logger.js';
import { errorMessage } from '../../util/error-message.js';
import type { QueryOptions, SqlDialect, SqlResult, WriteArgs, WriteBuilder } from '../sql/dialect.js';
import { migrate } from '../sql/migrator.js';
import {
  assignBranchIds,
  BRANCH_INSERT_COLUMNS,
  branchInsertValues,
  FINISHED_STATUSES,
  GLOBAL_COLUMNS,
  GLOBAL_INSERT_COLUMNS,
  globalFromRow,
  globalInsertValues,
  payload,
  UNFINISHED_STATUSES,
} from '../sql/rows.js';
import type { SqlStoreOptions } from '../sql/sql-options.js';
import { parseSqlTime, toIsoUtc } from '../sql/time.js';
import type { StatusChange } from '../store.js';
import { PgBatchExecutor, type PgWrite } from './pg-batch.js';
import { PG_MIGRATIONS, pgDropAll, pgMigrationsTable } from './schema.js';

/**
 * Most branch rows a statement sends as a VALUES list (7 parameters a row, far below PostgreSQL's 65,535
 * parameters of one statement). More rows go as one array parameter per column, unnested by the server: any
 * number of rows in a fixed number of parameters, and one statement shape for all of them.
 */
const VALUES_ROWS_MAX = 1000;

/** pg_advisory_xact_lock(MIGRATION_LOCK, hashtext(schema)) serialises migrations of one schema. */
const MIGRATION_LOCK = 0x64747801;

const TEXT_PARSERS = new Map<number, (v: string) => unknown>([
  [1184, parseSqlTime], // timestamptz → epoch ms
  [1114, parseSqlTime], // timestamp (read as UTC)
  [20, Number], // int8 (ids, versions) → number
]);

/** Our own type parsers on our pools only: other users of `pg` in the process keep the defaults. */
const TYPES: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    (format ?? 'text') === 'text' && TEXT_PARSERS.has(oid)
      ? TEXT_PARSERS.get(oid)!
      : pg.types.getTypeParser(oid, format ?? 'text')) as pg.CustomTypesConfig['getTypeParser'],
};

/** The attempt record of a branch, as the four parameters updateBranches and recordFailedAttempt write. */
function attemptValues(b: TransBranch): unknown[] {
  return [
    b.attempts ?? 0,
    b.lastAttemptTime === undefined ? null : toIsoUtc(b.lastAttemptTime),
    b.lastResult ?? '',
    b.lastError ?? '',
  ];
}

/**
 * The hot path's writes in PostgreSQL's SQL: each one statement (CTEs carry the conditions), named, so each
 * connection parses and plans a shape once; shapes are few (branch count up to VALUES_ROWS_MAX, changed columns).
 */
/** The columns of a branch result and the FROM item they are read from (PgWrites.branchRows). */
const SET_RESULT = `SET status = v.st, finish_time = v.ft, rollback_time = v.rt, update_time = v.ut,
  attempts = v.na, last_attempt_time = v.lat, last_result = v.lr, last_error = v.le`;
const RESULT_ROW = 'v(id, st, ft, rt, ut, na, lat, lr, le)';

class PgWrites implements WriteBuilder<PgWrite> {
  private readonly sqlCache = new Map<string, string>();

  /** @param s the quoted schema */
  constructor(private readonly s: string) {}

  /** Statement text built once per shape (branch count, changed columns). */
  private cached(key: string, build: () => string): string {
    let t = this.sqlCache.get(key);
    if (t === undefined) {
      t = build();
      this.sqlCache.set(key, t);
    }
    return t;
  }

  private write(key: string, build: () => string, values: unknown[], done: (r: pg.QueryResult) => unknown): PgWrite {
    return { q: { name: `dtx_${key}`, text: this.cached(key, build), values }, done };
  }

  /** `($k::text, $k+1::bytea, …)` rows of new branches, parameters from `first`. */
  private static branchValues(n: number, first: number): string {
    const rows: string[] = [];
    for (let i = 0; i < n; i++) {
      const p = first + i * 7;
      rows.push(
        `($${p}::text, $${p + 1}::bytea, $${p + 2}::text, $${p + 3}::text, $${p + 4}::text, $${p + 5}::timestamptz, $${p + 6}::timestamptz)`,
      );
    }
    return `(VALUES ${rows.join(', ')})`;
  }

  private static branchParams(branches: TransBranch[]): unknown[] {
    const out: unknown[] = [];
    for (const b of branches) {
      branchInsertValues(b, toIsoUtc, out);
    }
    return out;
  }

  /** Above VALUES_ROWS_MAX: the columns of the new branches as 7 array parameters, unnested by the server. */
  private static branchArrays(first: number): string {
    const p = first;
    return `unnest($${p}::text[], $${p + 1}::bytea[], $${p + 2}::text[], $${p + 3}::text[], $${p + 4}::text[], $${p + 5}::timestamptz[], $${p + 6}::timestamptz[])`;
  }

  private static branchArrayParams(branches: TransBranch[]): unknown[] {
    const cols: unknown[][] = [[], [], [], [], [], [], []];
    for (const b of branches) {
      cols[0]!.push(b.url);
      cols[1]!.push(payload(b.binData));
      cols[2]!.push(b.branchId);
      cols[3]!.push(b.op);
      cols[4]!.push(b.status);
      cols[5]!.push(toIsoUtc(b.createTime));
      cols[6]!.push(toIsoUtc(b.updateTime));
    }
    return cols;
  }

  /**
   * The new branches as a row source and its parameters (from `first`), with the statement's shape key. The
   * source's text is only built when its statement's is (once per shape), so it comes as a function.
   */
  private static newBranches(
    branches: TransBranch[],
    first: number,
  ): { key: string; from: () => string; values: unknown[] } {
    const n = branches.length;
    return n <= VALUES_ROWS_MAX
      ? { key: String(n), from: () => PgWrites.branchValues(n, first), values: PgWrites.branchParams(branches) }
      : { key: 'many', from: () => PgWrites.branchArrays(first), values: PgWrites.branchArrayParams(branches) };
  }

  /**
   * INSERT … SELECT of the branches of `from` for gid $1, only if the CTE `g` has a row (joined: no row,
   * nothing inserted). No ORDER BY: the ids are matched back by (branch_id, op), which is cheaper for PostgreSQL.
   */
  private branchInsert(from: string): string {
    return `INSERT INTO ${this.s}.trans_branch_op (${BRANCH_INSERT_COLUMNS.join(', ')})
      SELECT $1, v.url, v.bin, v.bid, v.op, v.st, v.ct, v.ut
      FROM g, ${from} AS v(url, bin, bid, op, st, ct, ut)
      RETURNING id, branch_id, op`;
  }

  saveNew(trans: TransGlobal, branches: TransBranch[]): PgWrite {
    const n = branches.length;
    const nG = GLOBAL_INSERT_COLUMNS.length;
    const nb = PgWrites.newBranches(branches, nG + 1);
    return this.write(
      `save_${nb.key}`,
      () => `WITH g AS (
          INSERT INTO ${this.s}.trans_global (${GLOBAL_INSERT_COLUMNS.join(', ')})
          VALUES (${GLOBAL_INSERT_COLUMNS.map((_, i) => `$${i + 1}`).join(', ')})
          ON CONFLICT (gid) DO NOTHING RETURNING id)
        ${n ? `, b AS (${this.branchInsert(nb.from())})` : ''}
        SELECT 0 AS k, id, NULL AS branch_id, NULL AS op FROM g
        ${n ? 'UNION ALL SELECT 1, id, branch_id, op FROM b' : ''}`,
      [...globalInsertValues(trans, toIsoUtc), ...nb.values],
      (r) => {
        const g = r.rows.find((row) => row.k === 0);
        if (!g) throw new UniqueConflictError();
        trans.id = Number(g.id);
        assignBranchIds(
          branches,
          r.rows.filter((row) => row.k === 1),
        );
      },
    );
  }

  insertBranches(gid: string, status: GlobalStatus, branches: TransBranch[]): PgWrite {
    const n = branches.length;
    const nb = PgWrites.newBranches(branches, 3);
    return this.write(
      `insert_branches_${nb.key}`,
      () => `WITH g AS (SELECT 1 FROM ${this.s}.trans_global WHERE gid = $1 AND status = $2 FOR SHARE)
        ${n ? `, b AS (${this.branchInsert(nb.from())})` : ''}
        SELECT 0 AS k, NULL::int8 AS id, NULL AS branch_id, NULL AS op FROM g
        ${n ? 'UNION ALL SELECT 1, id, branch_id, op FROM b' : ''}`,
      [gid, status, ...nb.values],
      (r) => {
        if (!r.rows.some((row) => row.k === 0)) throw new NotFoundError();
        assignBranchIds(
          branches,
          r.rows.filter((row) => row.k === 1),
        );
      },
    );
  }

  updateBranches(gid: string, status: GlobalStatus, branches: readonly TransBranch[]): PgWrite {
    const n = branches.length;
    if (n === 0) {
      return this.write(
        'status_check',
        () => `SELECT 1 FROM ${this.s}.trans_global WHERE gid = $1 AND status = $2 FOR SHARE`,
        [gid, status],
        (r) => {
          if (r.rowCount === 0) throw new NotFoundError();
        },
      );
    }
    const values: unknown[] = [gid, status];
    const { key, from } = PgWrites.branchRows(branches, values);
    // The global row is locked FOR SHARE with the expected status: a concurrent status change waits for this
    // commit, or has committed first and the recheck of the locked row leaves nothing to update. (Cheaper for
    // PostgreSQL than a CTE that reports the status separately: no rows updated means NotFound.)
    return this.write(
      `update_${key}`,
      () => `UPDATE ${this.s}.trans_branch_op b
        ${SET_RESULT}
        FROM (SELECT gid FROM ${this.s}.trans_global WHERE gid = $1 AND status = $2 FOR SHARE) g,
          ${from()} AS ${RESULT_ROW}
        WHERE b.id = v.id AND b.gid = g.gid`,
      values,
      (r) => {
        if (r.rowCount === 0) throw new NotFoundError();
      },
    );
  }

  /**
   * The rows of branch results as a FROM item `v(id, st, ft, rt, ut, na, lat, lr, le)`, their parameters appended to
   * `values`: a VALUES list for up to VALUES_ROWS_MAX rows, else unnest() of arrays. `key` names the statement shape;
   * `from` builds the text (called once per shape, when the statement's text is built).
   */
  private static branchRows(branches: readonly TransBranch[], values: unknown[]): { key: string; from: () => string } {
    const n = branches.length;
    const finish = (b: TransBranch) => (b.finishTime === undefined ? null : toIsoUtc(b.finishTime));
    const rollback = (b: TransBranch) => (b.rollbackTime === undefined ? null : toIsoUtc(b.rollbackTime));
    if (n <= VALUES_ROWS_MAX) {
      const first = values.length + 1;
      for (const b of branches) {
        values.push(b.id ?? 0, b.status, finish(b), rollback(b), toIsoUtc(b.updateTime), ...attemptValues(b));
      }
      const from = () => {
        const rows: string[] = [];
        for (let i = 0; i < n; i++) {
          const p = first + i * 9;
          rows.push(
            `($${p}::int8, $${p + 1}::text, $${p + 2}::timestamptz, $${p + 3}::timestamptz, $${p + 4}::timestamptz, $${p + 5}::int, $${p + 6}::timestamptz, $${p + 7}::text, $${p + 8}::text)`,
          );
        }
        return `(VALUES ${rows.join(', ')})`;
      };
      return { key: `branches_${n}`, from };
    }
    const p = values.length + 1;
    values.push(
      branches.map((b) => b.id ?? 0),
      branches.map((b) => b.status),
      branches.map(finish),
      branches.map(rollback),
      branches.map((b) => toIsoUtc(b.updateTime)),
      branches.map((b) => b.attempts ?? 0),
      branches.map((b) => (b.lastAttemptTime === undefined ? null : toIsoUtc(b.lastAttemptTime))),
      branches.map((b) => b.lastResult ?? ''),
      branches.map((b) => b.lastError ?? ''),
    );
    const types = ['int8', 'text', 'timestamptz', 'timestamptz', 'timestamptz', 'int', 'timestamptz', 'text', 'text'];
    return { key: 'branches_many', from: () => `unnest(${types.map((t, i) => `$${p + i}::${t}[]`).join(', ')})` };
  }

  changeStatus(gid: string, from: GlobalStatus, to: GlobalStatus, change: StatusChange, now: number): PgWrite {
    const sets = ['status = $3', 'update_time = $4'];
    const values: unknown[] = [gid, from, to, toIsoUtc(now)];
    let key = 'status';
    const set = (flag: string, column: string, v: unknown, cast = '') => {
      values.push(v);
      sets.push(`${column} = $${values.length}${cast}`);
      key += flag;
    };
    if (change.rollbackReason) set('r', 'rollback_reason', change.rollbackReason);
    if (change.result) set('s', 'result', change.result);
    if (change.finishTime !== undefined) set('f', 'finish_time', toIsoUtc(change.finishTime), '::timestamptz');
    if (change.rollbackTime !== undefined) set('b', 'rollback_time', toIsoUtc(change.rollbackTime), '::timestamptz');
    if (change.nextCronTime !== undefined) set('n', 'next_cron_time', toIsoUtc(change.nextCronTime), '::timestamptz');
    if (change.nextCronInterval !== undefined) set('i', 'next_cron_interval', change.nextCronInterval, '::int');
    const held = change.branches ?? [];
    if (held.length > 0) {
      // one statement: the move, and the branch results joined to the row it moved (none when the CAS lost)
      const rows = PgWrites.branchRows(held, values);
      return this.write(
        `${key}_${rows.key}`,
        () => `WITH g AS (UPDATE ${this.s}.trans_global SET ${sets.join(', ')} WHERE gid = $1 AND status = $2
            RETURNING gid),
          u AS (UPDATE ${this.s}.trans_branch_op b
            ${SET_RESULT}
            FROM g, ${rows.from()} AS ${RESULT_ROW}
            WHERE b.id = v.id AND b.gid = g.gid
            RETURNING 1)
          SELECT (SELECT count(*) FROM g)::int AS moved, (SELECT count(*) FROM u)::int AS branches`,
        values,
        (r) => {
          if (r.rows[0]?.moved !== 1) throw new NotFoundError();
        },
      );
    }
    return this.write(
      key,
      () => `UPDATE ${this.s}.trans_global SET ${sets.join(', ')} WHERE gid = $1 AND status = $2`,
      values,
      (r) => {
        if (r.rowCount === 0) throw new NotFoundError();
      },
    );
  }

  touchCronTime(...args: WriteArgs<'touchCronTime'>): PgWrite {
    const [gid, status, nextCronTime, interval, now, resetFailedAttempts = false] = args;
    const reset = resetFailedAttempts ? ', failed_attempts = 0' : '';
    return this.write(
      resetFailedAttempts ? 'touch_reset' : 'touch',
      () => `UPDATE ${this.s}.trans_global SET next_cron_time = $3, next_cron_interval = $4, update_time = $5${reset}
        WHERE gid = $1 AND status = $2`,
      [gid, status, toIsoUtc(nextCronTime), interval, toIsoUtc(now)],
      () => undefined,
    );
  }

  recordFailedAttempt(...args: WriteArgs<'recordFailedAttempt'>): PgWrite {
    const [gid, status, branch, a, now] = args;
    const values: unknown[] = [
      gid,
      status,
      toIsoUtc(a.nextCronTime),
      a.nextCronInterval,
      toIsoUtc(now),
      a.failedAttempts,
      a.lastError,
    ];
    const global = `UPDATE ${this.s}.trans_global SET next_cron_time = $3, next_cron_interval = $4,
        update_time = $5, failed_attempts = $6, last_error = $7 WHERE gid = $1 AND status = $2`;
    if (!branch)
      return this.write(
        'failed_attempt',
        () => global,
        values,
        () => undefined,
      );
    values.push(branch.id ?? 0, ...attemptValues(branch));
    // one statement: the branch row is written only when the global's conditional update matched
    return this.write(
      'failed_attempt_branch',
      () => `WITH g AS (${global} RETURNING gid)
        UPDATE ${this.s}.trans_branch_op b SET attempts = $9, last_attempt_time = $10, last_result = $11,
          last_error = $12, update_time = $5
        FROM g WHERE b.id = $8 AND b.gid = g.gid`,
      values,
      () => undefined,
    );
  }
}

/**
 * PostgreSQL under the shared SQL store (Store.Driver `postgres`): DTM's tables in Store.Schema of Store.Db,
 * migrated to dtx's version at open (see schema.ts). Two pools: reads and single statements, and the group
 * commit's pipelined connections (PgBatchExecutor).
 */
export class PostgresDialect implements SqlDialect<pg.Pool, pg.PoolClient, PgWrite, pg.QueryResult> {
  readonly driver = 'postgres';
  readonly title = 'PostgreSQL';
  readonly label: string;
  /** Reads and single-statement writes. */
  readonly pool: pg.Pool;
  readonly queue: { maxInFlight: number };
  readonly writes: PgWrites;
  readonly executor: PgBatchExecutor;
  /** The pipelined connections of the group commit. */
  private readonly writerPool: pg.Pool;
  private readonly s: string;
  private readonly schemaName: string;
  private readonly log: Logger | undefined;

  constructor(private readonly o: SqlStoreOptions) {
    this.schemaName = o.schema || 'public';
    this.s = pg.escapeIdentifier(this.schemaName);
    this.label = `${o.host}:${o.port}/${o.database} schema ${this.schemaName}`;
    this.log = o.log;
    const base: pg.PoolConfig = {
      host: o.host,
      port: o.port,
      user: o.user,
      password: o.password,
      database: o.database,
      types: TYPES,
      // times come back as ISO text with an offset whatever the server's defaults
      options: '-c DateStyle=ISO,MDY -c TimeZone=UTC',
      keepAlive: true,
      connectionTimeoutMillis: 10_000,
      idleTimeoutMillis: 10_000,
      maxLifetimeSeconds: Math.max(0, Math.round((o.connMaxLifeTimeMin ?? 5) * 60)),
      application_name: o.applicationName ?? 'dtx',
    };
    // Store.MaxOpenConns covers both pools: the group commit's connections, the rest for reads
    const maxInFlight = Math.max(1, o.maxInFlight ?? 2);
    this.queue = { maxInFlight };
    this.pool = new pg.Pool({ ...base, max: Math.max(1, (o.maxOpenConns ?? 500) - maxInFlight) });
    // a row lock held elsewhere (a stuck session) fails the write that waits for it after 10 s, instead of
    // stalling every write behind it
    this.writerPool = new pg.Pool({
      ...base,
      options: `${base.options} -c lock_timeout=10s`,
      max: maxInFlight,
      pipeline: true,
    });
    for (const p of [this.pool, this.writerPool]) {
      // an idle connection the server closed: the pool drops it; without a listener it would crash the process
      p.on('error', (err) =>
        this.log?.warn('PostgreSQL connection lost; the pool replaces it', { error: errorMessage(err) }),
      );
      p.on('connect', (c) => c.on('error', () => undefined)); // reported to the query or the pool as well
    }
    this.writes = new PgWrites(this.s);
    this.executor = new PgBatchExecutor(this.writerPool);
  }

  table(name: string): string {
    return `${this.s}.${name}`;
  }

  time(ms: number): string {
    return toIsoUtc(ms);
  }

  async query(text: string, values: readonly unknown[], o: QueryOptions = {}): Promise<SqlResult> {
    const r = await this.pool.query({
      text,
      values: values as unknown[],
      ...(o.name ? { name: o.name } : {}),
      ...(o.timeoutMs ? { query_timeout: o.timeoutMs } : {}),
    });
    return { rows: r.rows as SqlResult['rows'], affected: r.rowCount ?? 0 };
  }

  async end(): Promise<void> {
    await Promise.all([this.pool.end().catch(() => undefined), this.writerPool.end().catch(() => undefined)]);
  }

  // ------------------------------------------------------------------ bootstrap and migrations

  async bootstrap(reset: boolean): Promise<void> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      if ((err as { code?: string }).code !== '3D000') throw err; // 3D000: the database does not exist
      await this.createDatabase();
      client = await this.pool.connect();
    }
    const s = this.s;
    try {
      // one transaction under an advisory lock: migrators of one schema take turns, and DDL is transactional
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [MIGRATION_LOCK, this.schemaName]);
      const exists = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [this.schemaName]);
      if (exists.rowCount === 0) await client.query(`CREATE SCHEMA ${s}`);
      await migrate(
        {
          conn: client,
          run: async (sql, values) => (await (values ? client.query(sql, values) : client.query(sql))).rows,
          table: `${s}.dtx_migrations`,
          createTable: pgMigrationsTable(s),
          dropAll: pgDropAll(s),
          migrations: PG_MIGRATIONS.map((m) => ({
            version: m.version,
            name: m.name,
            up: async (c: pg.PoolClient) => void (await c.query(m.sql(s, pg.escapeLiteral))),
          })),
          label: this.label,
          log: this.log,
        },
        reset,
      );
      await client.query('COMMIT');
      client.release();
    } catch (err) {
      client.release(true);
      throw err;
    }
  }

  /**
   * Store.Db does not exist: create it from the maintenance database. Instances starting together take turns
   * (a session advisory lock on the name; CREATE DATABASE cannot run in a transaction), and the one that comes
   * second finds the database there. A creator that does not take the lock (an older dtx, a person) makes
   * PostgreSQL answer 42P04 or, in a close race, a unique violation of its catalog: both mean it exists now.
   */
  private async createDatabase(): Promise<void> {
    const admin = new pg.Client({
      host: this.o.host,
      port: this.o.port,
      user: this.o.user,
      password: this.o.password,
      database: 'postgres',
      connectionTimeoutMillis: 10_000,
    });
    admin.on('error', () => undefined);
    await admin.connect();
    try {
      await admin.query('SELECT pg_advisory_lock($1, hashtext($2))', [MIGRATION_LOCK, this.o.database]);
      const found = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [this.o.database]);
      if (found.rowCount === 0) {
        await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(this.o.database)}`);
        this.log?.info('store database created', { store: this.label });
      }
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code !== '42P04' && code !== '23505') throw err; // 42P04: created meanwhile; 23505: the same, closer
    } finally {
      await admin.end().catch(() => undefined); // ends the session, and with it the lock
    }
  }

  // ------------------------------------------------------------------ the cron lease and retention

  async lockDue(
    dueBefore: number,
    leaseUntil: number,
    owner: string,
    limit: number,
    now: number,
  ): Promise<TransGlobal[]> {
    // Rows another instance is leasing right now are skipped, not waited for; a row leased and committed
    // meanwhile is re-checked against next_cron_time after the lock (READ COMMITTED) and dropped.
    const r = await this.query(
      `WITH due AS (
         SELECT id FROM ${this.s}.trans_global
         WHERE status IN ${UNFINISHED_STATUSES} AND next_cron_time < $1
         ORDER BY next_cron_time LIMIT $2
         FOR UPDATE SKIP LOCKED)
       UPDATE ${this.s}.trans_global t SET owner = $3, next_cron_time = $4, update_time = $5
       FROM due WHERE t.id = due.id
       RETURNING ${GLOBAL_COLUMNS.map((c) => `t.${c}`).join(', ')}`,
      [toIsoUtc(dueBefore), limit, owner, toIsoUtc(leaseUntil), toIsoUtc(now)],
      { name: 'dtx_lock_due' },
    );
    return r.rows.map(globalFromRow).sort((a, b) => a.nextCronTime - b.nextCronTime || (a.id ?? 0) - (b.id ?? 0));
  }

  async resetCronTime(after: number, limit: number, now: number): Promise<number> {
    const r = await this.query(
      `WITH c AS (
         SELECT id FROM ${this.s}.trans_global
         WHERE status IN ${UNFINISHED_STATUSES} AND next_cron_time > $1
         LIMIT $2 FOR UPDATE SKIP LOCKED)
       UPDATE ${this.s}.trans_global t SET next_cron_time = $3, update_time = $3 FROM c WHERE t.id = c.id`,
      [toIsoUtc(after), limit, toIsoUtc(now)],
    );
    return r.affected;
  }

  async deleteFinished(before: number, limit: number): Promise<number> {
    // One statement: the globals and their branches go together. Rows locked by someone else are skipped
    // (finished rows are not written by the hot path anyway), so this never waits on live traffic.
    const r = await this.query(
      `WITH d AS (
         SELECT id, gid FROM ${this.s}.trans_global
         WHERE status IN ${FINISHED_STATUSES} AND update_time < $1
         LIMIT $2 FOR UPDATE SKIP LOCKED),
       b AS (DELETE FROM ${this.s}.trans_branch_op WHERE gid IN (SELECT gid FROM d))
       DELETE FROM ${this.s}.trans_global WHERE id IN (SELECT id FROM d)`,
      [toIsoUtc(before), limit],
    );
    return r.affected;
  }
}
