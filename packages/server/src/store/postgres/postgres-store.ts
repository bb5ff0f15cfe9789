import type { GlobalStatus } from '@dtx/protocol';
import pg from 'pg';
import { NotFoundError, UniqueConflictError } from '../../core/errors.js';
import type { KV, TransBranch, TransGlobal } from '../../core/model.js';
import type { Logger } from '../../observe/logger.js';
import { errorMessage } from '../../util/error-message.js';
import { kvConditions, nextPositionOf, scanConditions, whereOf } from '../scan-query.js';
import { authHint, isConnectionError, storeError } from '../sql/errors.js';
import { GroupCommit, type Pending } from '../sql/group-commit.js';
import {
  assignBranchIds,
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
import { parseSqlTime, toIsoUtc } from '../sql/time.js';
import type { FailedAttempt, ScanQuery, StatusChange, Store, StuckRule, UnfinishedCount } from '../store.js';
import { PG_MIGRATIONS, pgDropAll, pgMigrationsTable } from './schema.js';

/**
 * One write of the group commit: a single statement that either does all of its work or, when its
 * condition does not hold (a lost compare-and-set, an existing gid), none of it. `done` turns the result
 * into the caller's value or throws that logical failure.
 */
interface PgWrite {
  q: pg.QueryConfig;
  done: (r: pg.QueryResult) => unknown;
}

/**
 * Send what `fn` queues on the client as one socket write: pg corks each query; corking the whole batch
 * turns a few hundred small writes into one, which on a busy coordinator is a large share of its CPU.
 */
function corked<T>(client: pg.PoolClient, fn: () => T): T {
  const stream = (client as unknown as { connection?: { stream?: { cork?: () => void; uncork?: () => void } } })
    .connection?.stream;
  stream?.cork?.();
  try {
    return fn();
  } finally {
    stream?.uncork?.();
  }
}

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

const GLOBAL_SELECT = GLOBAL_COLUMNS.join(', ');
const BRANCH_SELECT = BRANCH_COLUMNS.join(', ');
const KV_SELECT = KV_COLUMNS.join(', ');

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
 * The PostgreSQL store (Store.Driver `postgres`): DTM's tables in Store.Schema of Store.Db, migrated to
 * dtx's version at open (see schema.ts).
 *
 * Writes on the hot path (saveNew, insertBranches, updateBranches, changeStatus, touchCronTime) go through a
 * group commit: the writes queued while the previous batch commits are sent together, pipelined on one
 * connection, as `BEGIN; w1; …; wn; COMMIT` — one round trip and one WAL flush for all of them. Each write is
 * one statement that either does all its work or none (conditions in the statement itself), so a lost CAS
 * needs no savepoint. If a statement fails (a duplicate branch, a deadlock), PostgreSQL turns the COMMIT into
 * a ROLLBACK and the batch is replayed with one savepoint per write, so only the failing write fails. A
 * connection lost before the COMMIT is acknowledged rejects every write of the batch: none is ever reported
 * done without a confirmed commit.
 *
 * Reads, the cron lease, resets, retention and KV go straight through the pool, one statement each.
 */
export class PostgresStore implements Store {
  /** Reads and single-statement writes. */
  readonly pool: pg.Pool;
  /** The pipelined connection of the group commit. */
  private readonly writerPool: pg.Pool;
  private readonly writer: GroupCommit<PgWrite>;
  private readonly maxInFlight: number;
  private readonly s: string;
  private readonly schemaName: string;
  private readonly label: string;
  private readonly log: Logger | undefined;
  private readonly sqlCache = new Map<string, string>();
  private closing: Promise<void> | undefined;
  /** Group-commit counters: batches committed, writes in them, batches replayed with savepoints. */
  readonly stats = { batches: 0, writes: 0, replays: 0 };

  /** Connect (waiting while the server is unreachable), create the schema if missing and migrate it. */
  static async open(o: SqlStoreOptions): Promise<PostgresStore> {
    const store = new PostgresStore(o);
    try {
      await untilReachable(store.label, () => store.bootstrap(o.reset === true), o);
    } catch (err) {
      await store.endPools();
      throw new Error(`PostgreSQL store ${store.label}: ${errorMessage(err)}${authHint(err)}`, { cause: err });
    }
    return store;
  }

  private constructor(private readonly o: SqlStoreOptions) {
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
    this.maxInFlight = Math.max(1, o.maxInFlight ?? 2);
    this.pool = new pg.Pool({ ...base, max: Math.max(1, (o.maxOpenConns ?? 500) - this.maxInFlight) });
    // a row lock held elsewhere (a stuck session) fails the write that waits for it after 10 s, instead of
    // stalling every write behind it
    this.writerPool = new pg.Pool({
      ...base,
      options: `${base.options} -c lock_timeout=10s`,
      max: this.maxInFlight,
      pipeline: true,
    });
    for (const p of [this.pool, this.writerPool]) {
      // an idle connection the server closed: the pool drops it; without a listener it would crash the process
      p.on('error', (err) =>
        this.log?.warn('PostgreSQL connection lost; the pool replaces it', { error: errorMessage(err) }),
      );
      p.on('connect', (c) => c.on('error', () => undefined)); // reported to the query or the pool as well
    }
    this.writer = new GroupCommit<PgWrite>((batch) => this.runBatch(batch), {
      maxBatch: o.maxBatch ?? 256,
      observer: o.observer,
      maxInFlight: this.maxInFlight,
    });
  }

  // ------------------------------------------------------------------ bootstrap and migrations

  private async bootstrap(reset: boolean): Promise<void> {
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
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [MIGRATION_LOCK, this.schemaName]);
      const exists = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [this.schemaName]);
      if (exists.rowCount === 0) await client.query(`CREATE SCHEMA ${s}`);
      if (reset) await client.query(pgDropAll(s));
      await client.query(pgMigrationsTable(s));
      const done = await client.query(`SELECT COALESCE(max(version), 0) AS v FROM ${s}.dtx_migrations`);
      const current = Number(done.rows[0]?.v ?? 0);
      const latest = PG_MIGRATIONS[PG_MIGRATIONS.length - 1]!.version;
      if (current > latest) {
        this.log?.warn('store schema is newer than this dtx: running anyway, without migrating', {
          store: this.label,
          schemaVersion: current,
          knownVersion: latest,
        });
      }
      for (const m of PG_MIGRATIONS) {
        if (m.version <= current) continue;
        await client.query(m.sql(s, pg.escapeLiteral));
        await client.query(`INSERT INTO ${s}.dtx_migrations (version, name) VALUES ($1, $2)`, [m.version, m.name]);
        this.log?.info('store schema migrated', { store: this.label, version: m.version, migration: m.name });
      }
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

  // ------------------------------------------------------------------ plumbing

  private async q(text: string, values: unknown[] = [], name?: string, timeoutMs?: number): Promise<pg.QueryResult> {
    try {
      return await this.pool.query({
        text,
        values,
        ...(name ? { name } : {}),
        ...(timeoutMs ? { query_timeout: timeoutMs } : {}),
      });
    } catch (err) {
      throw storeError('postgres', err);
    }
  }

  /** Statement text built once per shape (branch count, changed columns). */
  private cached(key: string, build: () => string): string {
    let t = this.sqlCache.get(key);
    if (t === undefined) {
      t = build();
      this.sqlCache.set(key, t);
    }
    return t;
  }

  private write<T>(key: string, build: () => string, values: unknown[], done: (r: pg.QueryResult) => T): Promise<T> {
    const text = this.cached(key, build);
    // named, so each connection parses and plans a shape once; shapes are few (see `cached`)
    return this.writer.submit<T>({ q: { name: `dtx_${key}`, text, values }, done });
  }

  private async runBatch(batch: Pending<PgWrite>[]): Promise<void> {
    let client: pg.PoolClient;
    try {
      client = await this.writerPool.connect();
    } catch (err) {
      throw storeError('postgres', err);
    }
    let healthy = false;
    this.stats.batches++;
    this.stats.writes += batch.length;
    try {
      if (batch.length === 1) await this.runAlone(client, batch[0]!);
      else if (!(await this.runPipelined(client, batch))) {
        this.stats.replays++;
        await this.runWithSavepoints(client, batch);
      }
      healthy = true;
    } catch (err) {
      throw storeError('postgres', err);
    } finally {
      // after an unexpected error the connection's transaction state is unknown: never reuse it
      client.release(!healthy);
    }
  }

  private static settle(p: Pending<PgWrite>, r: pg.QueryResult): void {
    try {
      p.resolve(p.write.done(r));
    } catch (err) {
      p.reject(err);
    }
  }

  /** A lone write is one autocommitted statement: atomic on its own, no BEGIN/COMMIT needed. */
  private async runAlone(client: pg.PoolClient, p: Pending<PgWrite>): Promise<void> {
    let r: pg.QueryResult;
    try {
      r = await client.query(p.write.q);
    } catch (err) {
      if (isConnectionError(err)) throw err; // committed or not: unknown, so the caller hears of a failure
      p.reject(storeError('postgres', err));
      return;
    }
    PostgresStore.settle(p, r);
  }

  /** BEGIN, every write, COMMIT in one pipelined round trip. False when a statement failed (all rolled back). */
  private async runPipelined(client: pg.PoolClient, batch: Pending<PgWrite>[]): Promise<boolean> {
    const sent = corked(client, () => [
      client.query('BEGIN'),
      ...batch.map((p) => client.query(p.write.q)),
      client.query('COMMIT'),
    ]);
    const res = await Promise.allSettled(sent);
    const commit = res[res.length - 1]!;
    if (commit.status === 'fulfilled' && commit.value.command === 'COMMIT') {
      batch.forEach((p, i) => {
        PostgresStore.settle(p, (res[i + 1] as PromiseFulfilledResult<pg.QueryResult>).value);
      });
      return true;
    }
    for (const r of res) if (r.status === 'rejected' && isConnectionError(r.reason)) throw r.reason;
    if (commit.status === 'rejected') await client.query('ROLLBACK'); // make sure no transaction is left open
    return false; // PostgreSQL answered the COMMIT with ROLLBACK: nothing of the batch was written
  }

  /** The slow path: one savepoint per write, so a failing write is rolled back alone and reported alone. */
  private async runWithSavepoints(client: pg.PoolClient, batch: Pending<PgWrite>[]): Promise<void> {
    await client.query('BEGIN');
    const outcomes: ({ ok: true; r: pg.QueryResult } | { ok: false; err: unknown })[] = [];
    for (const p of batch) {
      const [sp, r] = await Promise.allSettled(
        corked(client, () => [
          client.query('SAVEPOINT w'),
          client.query(p.write.q),
          client.query('RELEASE SAVEPOINT w'),
        ]),
      );
      if (sp.status === 'rejected') throw sp.reason;
      if (r!.status === 'fulfilled') {
        outcomes.push({ ok: true, r: r!.value });
        continue;
      }
      if (isConnectionError(r!.reason)) throw r!.reason;
      await client.query('ROLLBACK TO SAVEPOINT w');
      await client.query('RELEASE SAVEPOINT w');
      outcomes.push({ ok: false, err: storeError('postgres', r!.reason) });
    }
    const commit = await client.query('COMMIT');
    if (commit.command !== 'COMMIT') throw new Error('the batch was rolled back at COMMIT');
    batch.forEach((p, i) => {
      const o = outcomes[i]!;
      if (o.ok) PostgresStore.settle(p, o.r);
      else p.reject(o.err);
    });
  }

  // ------------------------------------------------------------------ Store

  async ping(): Promise<void> {
    await this.q(`SELECT 1 FROM ${this.s}.trans_global LIMIT 1`, [], undefined, 5000);
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
    const r = await this.q(
      `SELECT ${GLOBAL_SELECT} FROM ${this.s}.trans_global WHERE gid = $1`,
      [gid],
      'dtx_find_trans',
    );
    return r.rows[0] ? globalFromRow(r.rows[0]) : undefined;
  }

  async scanTrans(q: ScanQuery): Promise<{ trans: TransGlobal[]; nextPosition: string }> {
    const { where, values } = whereOf(scanConditions(q, toIsoUtc), (n: number) => `$${n}`);
    const r = await this.q(
      `SELECT ${GLOBAL_SELECT} FROM ${this.s}.trans_global ${where} ORDER BY id DESC LIMIT $${values.length + 1}`,
      [...values, q.limit],
    );
    const trans = r.rows.map(globalFromRow);
    return { trans, nextPosition: nextPositionOf(trans, q.limit) };
  }

  async countUnfinished(): Promise<UnfinishedCount[]> {
    const r = await this.q(countUnfinishedSql(`${this.s}.trans_global`));
    return r.rows.map(unfinishedCountOf);
  }

  async findBranches(gid: string): Promise<TransBranch[]> {
    const r = await this.q(
      `SELECT ${BRANCH_SELECT} FROM ${this.s}.trans_branch_op WHERE gid = $1 ORDER BY id`,
      [gid],
      'dtx_find_branches',
    );
    return r.rows.map(branchFromRow);
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
      out.push(b.url, payload(b.binData), b.branchId, b.op, b.status, toIsoUtc(b.createTime), toIsoUtc(b.updateTime));
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

  /** The new branches as a row source and its parameters (from `first`), with the statement's shape key. */
  private static newBranches(branches: TransBranch[], first: number): { key: string; from: string; values: unknown[] } {
    const n = branches.length;
    return n <= VALUES_ROWS_MAX
      ? { key: String(n), from: PostgresStore.branchValues(n, first), values: PostgresStore.branchParams(branches) }
      : { key: 'many', from: PostgresStore.branchArrays(first), values: PostgresStore.branchArrayParams(branches) };
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

  saveNew(trans: TransGlobal, branches: TransBranch[]): Promise<void> {
    const n = branches.length;
    const nG = GLOBAL_INSERT_COLUMNS.length;
    const nb = PostgresStore.newBranches(branches, nG + 1);
    return this.write(
      `save_${nb.key}`,
      () => `WITH g AS (
          INSERT INTO ${this.s}.trans_global (${GLOBAL_INSERT_COLUMNS.join(', ')})
          VALUES (${GLOBAL_INSERT_COLUMNS.map((_, i) => `$${i + 1}`).join(', ')})
          ON CONFLICT (gid) DO NOTHING RETURNING id)
        ${n ? `, b AS (${this.branchInsert(nb.from)})` : ''}
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

  insertBranches(gid: string, status: GlobalStatus, branches: TransBranch[]): Promise<void> {
    const n = branches.length;
    const nb = PostgresStore.newBranches(branches, 3);
    return this.write(
      `insert_branches_${nb.key}`,
      () => `WITH g AS (SELECT 1 FROM ${this.s}.trans_global WHERE gid = $1 AND status = $2 FOR SHARE)
        ${n ? `, b AS (${this.branchInsert(nb.from)})` : ''}
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

  updateBranches(gid: string, status: GlobalStatus, branches: TransBranch[]): Promise<void> {
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
    let key: string;
    let from: string;
    const values: unknown[] = [gid, status];
    const finish = (b: TransBranch) => (b.finishTime === undefined ? null : toIsoUtc(b.finishTime));
    const rollback = (b: TransBranch) => (b.rollbackTime === undefined ? null : toIsoUtc(b.rollbackTime));
    if (n <= VALUES_ROWS_MAX) {
      const rows: string[] = [];
      for (const b of branches) {
        const p = values.length + 1;
        rows.push(
          `($${p}::int8, $${p + 1}::text, $${p + 2}::timestamptz, $${p + 3}::timestamptz, $${p + 4}::timestamptz, $${p + 5}::int, $${p + 6}::timestamptz, $${p + 7}::text, $${p + 8}::text)`,
        );
        values.push(b.id ?? 0, b.status, finish(b), rollback(b), toIsoUtc(b.updateTime), ...attemptValues(b));
      }
      key = `update_branches_${n}`;
      from = `(VALUES ${rows.join(', ')})`;
    } else {
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
      key = 'update_branches_many';
      from =
        'unnest($3::int8[], $4::text[], $5::timestamptz[], $6::timestamptz[], $7::timestamptz[], $8::int[], $9::timestamptz[], $10::text[], $11::text[])';
    }
    // The global row is locked FOR SHARE with the expected status: a concurrent status change waits for this
    // commit, or has committed first and the recheck of the locked row leaves nothing to update. (Cheaper for
    // PostgreSQL than a CTE that reports the status separately: no rows updated means NotFound.)
    return this.write(
      key,
      () => `UPDATE ${this.s}.trans_branch_op b
        SET status = v.st, finish_time = v.ft, rollback_time = v.rt, update_time = v.ut,
          attempts = v.na, last_attempt_time = v.lat, last_result = v.lr, last_error = v.le
        FROM (SELECT gid FROM ${this.s}.trans_global WHERE gid = $1 AND status = $2 FOR SHARE) g,
          ${from} AS v(id, st, ft, rt, ut, na, lat, lr, le)
        WHERE b.id = v.id AND b.gid = g.gid`,
      values,
      (r) => {
        if (r.rowCount === 0) throw new NotFoundError();
      },
    );
  }

  changeStatus(gid: string, from: GlobalStatus, to: GlobalStatus, change: StatusChange, now: number): Promise<void> {
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
    return this.write(
      key,
      () => `UPDATE ${this.s}.trans_global SET ${sets.join(', ')} WHERE gid = $1 AND status = $2`,
      values,
      (r) => {
        if (r.rowCount === 0) throw new NotFoundError();
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
      resetFailedAttempts ? 'touch_reset' : 'touch',
      () => `UPDATE ${this.s}.trans_global SET next_cron_time = $3, next_cron_interval = $4, update_time = $5${reset}
        WHERE gid = $1 AND status = $2`,
      [gid, status, toIsoUtc(nextCronTime), interval, toIsoUtc(now)],
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

  async claimStuckAlert(gid: string, status: GlobalStatus): Promise<boolean> {
    const r = await this.q(
      `UPDATE ${this.s}.trans_global SET stuck_alerted = 1 WHERE gid = $1 AND status = $2 AND stuck_alerted = 0`,
      [gid, status],
    );
    return r.rowCount === 1;
  }

  async findStuck(rule: StuckRule, position: string, limit: number) {
    const r = await this.q(
      `SELECT ${GLOBAL_SELECT} FROM ${this.s}.trans_global
       WHERE status IN ${UNFINISHED_STATUSES} AND id < $1::int8
         AND (($2::int > 0 AND failed_attempts >= $2::int) OR create_time < $3::timestamptz)
       ORDER BY id DESC LIMIT $4`,
      [position || '9223372036854775807', rule.failedAttempts, toIsoUtc(rule.createdBefore), limit],
    );
    const trans = r.rows.map(globalFromRow);
    return { trans, nextPosition: nextPositionOf(trans, limit) };
  }

  async countStuck(rule: StuckRule): Promise<{ attempts: number; age: number }> {
    const r = await this.q(
      `SELECT COUNT(*) FILTER (WHERE $1::int > 0 AND failed_attempts >= $1::int) AS attempts, COUNT(*) AS n
       FROM ${this.s}.trans_global
       WHERE status IN ${UNFINISHED_STATUSES}
         AND (($1::int > 0 AND failed_attempts >= $1::int) OR create_time < $2::timestamptz)`,
      [rule.failedAttempts, toIsoUtc(rule.createdBefore)],
    );
    const row = r.rows[0] as { attempts: string; n: string };
    return { attempts: Number(row.attempts), age: Number(row.n) - Number(row.attempts) };
  }

  async lockDue(
    dueBefore: number,
    leaseUntil: number,
    owner: string,
    limit: number,
    now: number,
  ): Promise<TransGlobal[]> {
    // Rows another instance is leasing right now are skipped, not waited for; a row leased and committed
    // meanwhile is re-checked against next_cron_time after the lock (READ COMMITTED) and dropped.
    const r = await this.q(
      `WITH due AS (
         SELECT id FROM ${this.s}.trans_global
         WHERE status IN ${UNFINISHED_STATUSES} AND next_cron_time < $1
         ORDER BY next_cron_time LIMIT $2
         FOR UPDATE SKIP LOCKED)
       UPDATE ${this.s}.trans_global t SET owner = $3, next_cron_time = $4, update_time = $5
       FROM due WHERE t.id = due.id
       RETURNING ${GLOBAL_COLUMNS.map((c) => `t.${c}`).join(', ')}`,
      [toIsoUtc(dueBefore), limit, owner, toIsoUtc(leaseUntil), toIsoUtc(now)],
      'dtx_lock_due',
    );
    return r.rows.map(globalFromRow).sort((a, b) => a.nextCronTime - b.nextCronTime || (a.id ?? 0) - (b.id ?? 0));
  }

  async resetCronTime(after: number, limit: number, now: number): Promise<{ count: number; hasRemaining: boolean }> {
    const r = await this.q(
      `WITH c AS (
         SELECT id FROM ${this.s}.trans_global
         WHERE status IN ${UNFINISHED_STATUSES} AND next_cron_time > $1
         LIMIT $2 FOR UPDATE SKIP LOCKED)
       UPDATE ${this.s}.trans_global t SET next_cron_time = $3, update_time = $3 FROM c WHERE t.id = c.id`,
      [toIsoUtc(after), limit, toIsoUtc(now)],
    );
    const count = r.rowCount ?? 0;
    return { count, hasRemaining: count === limit };
  }

  async resetTransCronTime(gid: string, now: number): Promise<void> {
    const r = await this.q(`UPDATE ${this.s}.trans_global SET next_cron_time = $2, update_time = $2 WHERE gid = $1`, [
      gid,
      toIsoUtc(now),
    ]);
    if (r.rowCount === 0) throw new NotFoundError();
  }

  async deleteFinished(before: number, limit: number): Promise<number> {
    // One statement: the globals and their branches go together. Rows locked by someone else are skipped
    // (finished rows are not written by the hot path anyway), so this never waits on live traffic.
    const r = await this.q(
      `WITH d AS (
         SELECT id, gid FROM ${this.s}.trans_global
         WHERE status IN ${FINISHED_STATUSES} AND update_time < $1
         LIMIT $2 FOR UPDATE SKIP LOCKED),
       b AS (DELETE FROM ${this.s}.trans_branch_op WHERE gid IN (SELECT gid FROM d))
       DELETE FROM ${this.s}.trans_global WHERE id IN (SELECT id FROM d)`,
      [toIsoUtc(before), limit],
    );
    return r.rowCount ?? 0;
  }

  async scanKV(cat: string, position: string, limit: number): Promise<{ kv: KV[]; nextPosition: string }> {
    const r = position
      ? await this.q(
          `SELECT ${KV_SELECT} FROM ${this.s}.kv WHERE cat = $1 AND id < $2::int8 ORDER BY id DESC LIMIT $3`,
          [cat, position, limit],
        )
      : await this.q(`SELECT ${KV_SELECT} FROM ${this.s}.kv WHERE cat = $1 ORDER BY id DESC LIMIT $2`, [cat, limit]);
    const kv = r.rows.map(kvFromRow);
    return { kv, nextPosition: nextPositionOf(kv, limit) };
  }

  async findKV(cat: string, key: string): Promise<KV[]> {
    const { where, values } = whereOf(kvConditions(cat, key), (n: number) => `$${n}`);
    const r = await this.q(`SELECT ${KV_SELECT} FROM ${this.s}.kv ${where} ORDER BY id`, values);
    return r.rows.map(kvFromRow);
  }

  async createKV(cat: string, k: string, v: string, now: number): Promise<void> {
    const r = await this.q(
      `INSERT INTO ${this.s}.kv (cat, k, v, version, create_time, update_time) VALUES ($1, $2, $3, 1, $4, $4)
       ON CONFLICT (cat, k) DO NOTHING`,
      [cat, k, v, toIsoUtc(now)],
    );
    if (r.rowCount === 0) throw new UniqueConflictError();
  }

  async updateKV(kv: KV, now: number): Promise<void> {
    const r = await this.q(
      `UPDATE ${this.s}.kv SET v = $1, version = version + 1, update_time = $2
       WHERE cat = $3 AND k = $4 AND version = $5`,
      [kv.v, toIsoUtc(now), kv.cat, kv.k, kv.version],
    );
    if (r.rowCount === 0) throw new NotFoundError();
    kv.version += 1;
  }

  async deleteKV(cat: string, k: string): Promise<void> {
    const r = await this.q(`DELETE FROM ${this.s}.kv WHERE cat = $1 AND k = $2`, [cat, k]);
    if (r.rowCount === 0) throw new NotFoundError();
  }
}
