import { closeSync, fdatasync, fdatasyncSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import type { BranchOp, GlobalStatus, TransType } from '@dtx/protocol';
import type { Database as Db, Statement } from 'better-sqlite3';
import Database from 'better-sqlite3';
import { NotFoundError, UniqueConflictError } from '../../core/errors.js';
import { decodeOptions, type KV, type TransBranch, type TransGlobal } from '../../core/model.js';
import { kvConditions, nextPositionOf, scanConditions, substrPrefix, whereOf } from '../scan-query.js';
import type {
  FailedAttempt,
  ScanQuery,
  StatusChange,
  Store,
  StoreObserver,
  StuckRule,
  UnfinishedCount,
} from '../store.js';
import { MIGRATIONS } from './schema.js';
import { SqliteGroupCommit, type WalSync } from './sqlite-group-commit.js';

interface GlobalRow {
  id: number;
  gid: string;
  trans_type: string;
  status: GlobalStatus;
  query_prepared: string;
  protocol: string;
  create_time: number;
  update_time: number;
  finish_time: number | null;
  rollback_time: number | null;
  options: string;
  custom_data: string;
  next_cron_interval: number;
  next_cron_time: number;
  owner: string;
  ext_data: string;
  result: string;
  rollback_reason: string;
  failed_attempts: number;
  last_error: string;
  stuck_alerted: number;
}

interface BranchRow {
  id: number;
  gid: string;
  url: string;
  bin_data: Buffer | null;
  branch_id: string;
  op: string;
  status: TransBranch['status'];
  finish_time: number | null;
  rollback_time: number | null;
  create_time: number;
  update_time: number;
  attempts: number;
  last_attempt_time: number | null;
  last_result: string;
  last_error: string;
}

interface KvRow {
  id: number;
  cat: string;
  k: string;
  v: string;
  version: number;
  create_time: number;
  update_time: number;
}

const toGlobal = (r: GlobalRow): TransGlobal => ({
  id: r.id,
  gid: r.gid,
  transType: r.trans_type as TransType,
  status: r.status,
  queryPrepared: r.query_prepared,
  protocol: r.protocol,
  createTime: r.create_time,
  updateTime: r.update_time,
  finishTime: r.finish_time ?? undefined,
  rollbackTime: r.rollback_time ?? undefined,
  options: r.options,
  customData: r.custom_data,
  nextCronInterval: r.next_cron_interval,
  nextCronTime: r.next_cron_time,
  owner: r.owner,
  extData: r.ext_data,
  result: r.result,
  rollbackReason: r.rollback_reason,
  failedAttempts: r.failed_attempts,
  lastError: r.last_error,
  stuckAlerted: r.stuck_alerted === 1,
  opts: decodeOptions(r.options),
});

const toBranch = (r: BranchRow): TransBranch => ({
  id: r.id,
  gid: r.gid,
  url: r.url,
  binData: r.bin_data ?? new Uint8Array(0),
  branchId: r.branch_id,
  op: r.op as BranchOp,
  status: r.status,
  finishTime: r.finish_time ?? undefined,
  rollbackTime: r.rollback_time ?? undefined,
  createTime: r.create_time,
  updateTime: r.update_time,
  attempts: r.attempts,
  lastAttemptTime: r.last_attempt_time ?? undefined,
  lastResult: r.last_result,
  lastError: r.last_error,
});

const toKv = (r: KvRow): KV => ({
  id: r.id,
  cat: r.cat,
  k: r.k,
  v: r.v,
  version: r.version,
  createTime: r.create_time,
  updateTime: r.update_time,
});

const UNFINISHED = `status IN ('prepared', 'submitted', 'aborting')`;

/**
 * The WAL file of the database at `path`, opened for fdatasync (fsync applies to the file, whichever descriptor
 * wrote it). It is never closed while the database is open: SQLite keeps its locks on the database and -shm files,
 * and closing a descriptor of a file drops the process's POSIX locks on it. Undefined when there is none (then
 * SQLite syncs in each COMMIT).
 */
function openWal(path: string): number | undefined {
  try {
    return openSync(`${path}-wal`, 'r');
  } catch {
    return undefined;
  }
}

function isUniqueViolation(err: unknown): boolean {
  return (err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE';
}

export interface SqliteStoreOptions {
  /** File path; `:memory:` for a throwaway database. */
  path: string;
  /** Drop and recreate the tables at open (DTM's `-r`). Default false. */
  reset?: boolean;
  /** Told of every group commit (metrics). */
  observer?: StoreObserver | undefined;
  /**
   * Who makes commits durable: 'wal' (default) commits with synchronous = NORMAL and fdatasyncs the WAL file before
   * any caller is told, off the event loop under load; 'sqlite' leaves it to SQLite (synchronous = FULL, the fsync
   * inside each COMMIT). Both are durable at the same point; `:memory:` has nothing to sync.
   */
  sync?: 'wal' | 'sqlite' | undefined;
}

/**
 * The embedded default store: one SQLite file in WAL mode, where an acknowledged write survives a power cut: the WAL
 * is fdatasynced after each commit and before its callers (or any reader who could see it) are told. Writes of
 * concurrent transactions share one commit and one sync (SqliteGroupCommit); under load the sync runs on the thread
 * pool while the next batch commits.
 */
export class SqliteStore implements Store {
  readonly db: Db;
  private readonly writer: SqliteGroupCommit;
  private readonly st: Record<string, Statement>;
  /** The WAL file, open for fdatasync while the database is (undefined: SQLite syncs in each COMMIT). */
  private readonly walFd: number | undefined;

  constructor(opts: SqliteStoreOptions) {
    if (opts.path !== ':memory:') mkdirSync(dirname(opts.path), { recursive: true });
    this.db = new Database(opts.path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('busy_timeout = 5000');
    if (opts.reset)
      this.db.exec(
        'DROP TABLE IF EXISTS trans_global; DROP TABLE IF EXISTS trans_branch_op; DROP TABLE IF EXISTS kv; PRAGMA user_version = 0;',
      );
    this.migrate();
    this.walFd = opts.path !== ':memory:' && opts.sync !== 'sqlite' ? openWal(opts.path) : undefined;
    let wal: WalSync | undefined;
    if (this.walFd !== undefined) {
      const fd = this.walFd;
      // SQLite writes every frame of a commit to the WAL before COMMIT returns; the fdatasync makes them durable
      this.db.pragma('synchronous = NORMAL');
      wal = { sync: (done) => fdatasync(fd, done), syncNow: () => fdatasyncSync(fd) };
    }
    this.writer = new SqliteGroupCommit(this.db, 512, opts.observer, wal);
    const p = (sql: string) => this.db.prepare(sql);
    this.st = {
      findTrans: p('SELECT * FROM trans_global WHERE gid = ?'),
      findBranches: p(
        'SELECT * FROM trans_branch_op WHERE trans_id = (SELECT id FROM trans_global WHERE gid = ?) ORDER BY id',
      ),
      insertGlobal: p(`INSERT INTO trans_global (gid, trans_type, status, query_prepared, protocol, create_time,
        update_time, options, custom_data, next_cron_interval, next_cron_time, owner, ext_data, result, rollback_reason)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (gid) DO NOTHING`),
      insertBranch: p(`INSERT INTO trans_branch_op (trans_id, gid, url, bin_data, branch_id, op, status, create_time,
        update_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
      statusOf: p('SELECT id, status FROM trans_global WHERE gid = ?'),
      updateBranch: p(`UPDATE trans_branch_op SET status = ?, finish_time = ?, rollback_time = ?, update_time = ?,
        attempts = ?, last_attempt_time = ?, last_result = ?, last_error = ? WHERE id = ? AND gid = ?`),
      failedAttempt: p(`UPDATE trans_global SET next_cron_time = ?, next_cron_interval = ?, update_time = ?,
        failed_attempts = ?, last_error = ? WHERE gid = ? AND status = ?`),
      claimStuck: p('UPDATE trans_global SET stuck_alerted = 1 WHERE gid = ? AND status = ? AND stuck_alerted = 0'),
      // both read the unfinished rows only, through the partial due index, however many finished rows there are
      findStuck: p(`SELECT * FROM trans_global INDEXED BY trans_global_due WHERE ${UNFINISHED} AND id < ?
        AND ((? > 0 AND failed_attempts >= ?) OR create_time < ?) ORDER BY id DESC LIMIT ?`),
      countStuck: p(`SELECT COALESCE(SUM(CASE WHEN ? > 0 AND failed_attempts >= ? THEN 1 ELSE 0 END), 0) AS attempts,
        COUNT(*) AS n FROM trans_global INDEXED BY trans_global_due WHERE ${UNFINISHED} AND ((? > 0 AND failed_attempts >= ?) OR create_time < ?)`),
      // changeStatus and saveNew run once per saga: their parameters are positional (binding by name costs
      // better-sqlite3 a lookup per parameter, ~4 µs an insert of a global row); the two CASEs take theirs twice
      changeStatus: p(`UPDATE trans_global SET status = ?, update_time = ?,
        rollback_reason = CASE WHEN ? <> '' THEN ? ELSE rollback_reason END,
        result = CASE WHEN ? <> '' THEN ? ELSE result END,
        finish_time = COALESCE(?, finish_time),
        rollback_time = COALESCE(?, rollback_time),
        next_cron_time = COALESCE(?, next_cron_time),
        next_cron_interval = COALESCE(?, next_cron_interval)
        WHERE gid = ? AND status = ?`),
      touch: p(
        'UPDATE trans_global SET next_cron_time = ?, next_cron_interval = ?, update_time = ? WHERE gid = ? AND status = ?',
      ),
      touchReset: p(`UPDATE trans_global SET next_cron_time = ?, next_cron_interval = ?, update_time = ?,
        failed_attempts = 0 WHERE gid = ? AND status = ?`),
      // visits only the rows of the partial index trans_global_due (same condition)
      countUnfinished: p(`SELECT trans_type, status, COUNT(*) AS n, MIN(create_time) AS oldest,
        MIN(next_cron_time) AS due FROM trans_global WHERE ${UNFINISHED} GROUP BY trans_type, status`),
      due: p(`SELECT id FROM trans_global WHERE ${UNFINISHED} AND next_cron_time < ? ORDER BY next_cron_time LIMIT ?`),
      lease: p(`UPDATE trans_global SET owner = ?, next_cron_time = ?, update_time = ?
        WHERE id = ? AND ${UNFINISHED} AND next_cron_time < ? RETURNING *`),
      resetCron: p(`UPDATE trans_global SET next_cron_time = ?, update_time = ? WHERE id IN
        (SELECT id FROM trans_global WHERE ${UNFINISHED} AND next_cron_time > ? LIMIT ?)`),
      resetOne: p('UPDATE trans_global SET next_cron_time = ?, update_time = ? WHERE gid = ?'),
      oldFinished: p(`SELECT id FROM trans_global WHERE status IN ('succeed', 'failed') AND update_time < ? LIMIT ?`),
      deleteGlobal: p('DELETE FROM trans_global WHERE id = ?'),
      deleteBranches: p('DELETE FROM trans_branch_op WHERE trans_id = ?'),
      scanKV: p('SELECT * FROM kv WHERE cat = ? AND id < ? ORDER BY id DESC LIMIT ?'),
      createKV: p(
        'INSERT INTO kv (cat, k, v, version, create_time, update_time) VALUES (?, ?, ?, 1, ?, ?) ON CONFLICT DO NOTHING',
      ),
      updateKV: p(
        'UPDATE kv SET v = ?, version = version + 1, update_time = ? WHERE cat = ? AND k = ? AND version = ?',
      ),
      deleteKV: p('DELETE FROM kv WHERE cat = ? AND k = ?'),
    };
  }

  private migrate(): void {
    const version = this.db.pragma('user_version', { simple: true }) as number;
    if (version > MIGRATIONS.length) {
      // a newer dtx wrote it: this one's statements would fail on its tables, or write rows that one cannot read
      this.db.close();
      throw new Error(
        `SQLite store: the database has schema version ${version}, newer than this dtx's ${MIGRATIONS.length}: run the dtx that upgraded it, or a newer one`,
      );
    }
    for (let v = version; v < MIGRATIONS.length; v++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[v]!);
        this.db.pragma(`user_version = ${v + 1}`);
      })();
    }
  }

  async ping(): Promise<void> {
    this.db.prepare('SELECT 1').get();
  }

  async close(): Promise<void> {
    // let queued writes commit before closing
    await this.writer.write(() => undefined);
    this.db.close();
    if (this.walFd !== undefined) closeSync(this.walFd);
  }

  /** A read's answer, once nothing it could have seen can still be lost (see SqliteGroupCommit.durable). */
  private async afterSync<T>(v: T): Promise<T> {
    const d = this.writer.durable();
    if (d) await d;
    return v;
  }

  async findTrans(gid: string): Promise<TransGlobal | undefined> {
    const r = this.st.findTrans!.get(gid) as GlobalRow | undefined;
    return this.afterSync(r && toGlobal(r));
  }

  async scanTrans(q: ScanQuery): Promise<{ trans: TransGlobal[]; nextPosition: string }> {
    const { where, values } = whereOf(scanConditions(q, (ms) => ms, substrPrefix));
    const rows = this.db
      .prepare(`SELECT * FROM trans_global ${where} ORDER BY id DESC LIMIT ?`)
      .all(...values, q.limit) as GlobalRow[];
    return this.afterSync({ trans: rows.map(toGlobal), nextPosition: nextPositionOf(rows, q.limit) });
  }

  async countUnfinished(): Promise<UnfinishedCount[]> {
    const rows = this.st.countUnfinished!.all() as {
      trans_type: string;
      status: GlobalStatus;
      n: number;
      oldest: number;
      due: number;
    }[];
    return this.afterSync(
      rows.map((r) => ({
        transType: r.trans_type,
        status: r.status,
        count: r.n,
        oldestCreateTime: r.oldest,
        oldestNextCronTime: r.due,
      })),
    );
  }

  async findBranches(gid: string): Promise<TransBranch[]> {
    return this.afterSync((this.st.findBranches!.all(gid) as BranchRow[]).map(toBranch));
  }

  /** The rows of `branches`, which belong to the transaction whose row id is `transId`. */
  private insertBranchRows(transId: number, branches: TransBranch[]): void {
    for (const b of branches) {
      const r = this.st.insertBranch!.run(
        transId,
        b.gid,
        b.url,
        Buffer.from(b.binData.buffer, b.binData.byteOffset, b.binData.byteLength),
        b.branchId,
        b.op,
        b.status,
        b.createTime,
        b.updateTime,
      );
      b.id = Number(r.lastInsertRowid);
    }
  }

  saveNew(trans: TransGlobal, branches: TransBranch[]): Promise<void> {
    return this.writer.write(() => {
      const r = this.st.insertGlobal!.run(
        trans.gid,
        trans.transType,
        trans.status,
        trans.queryPrepared,
        trans.protocol,
        trans.createTime,
        trans.updateTime,
        trans.options,
        trans.customData,
        trans.nextCronInterval,
        trans.nextCronTime,
        trans.owner,
        trans.extData,
        trans.result,
        trans.rollbackReason,
      );
      if (r.changes === 0) throw new UniqueConflictError();
      trans.id = Number(r.lastInsertRowid);
      this.insertBranchRows(trans.id, branches);
    });
  }

  insertBranches(gid: string, status: GlobalStatus, branches: TransBranch[]): Promise<void> {
    return this.writer.write(() => {
      const row = this.st.statusOf!.get(gid) as { id: number; status: string } | undefined;
      if (!row || row.status !== status) throw new NotFoundError();
      try {
        this.insertBranchRows(row.id, branches);
      } catch (err) {
        if (isUniqueViolation(err)) throw new UniqueConflictError();
        throw err;
      }
    });
  }

  updateBranches(gid: string, status: GlobalStatus, branches: TransBranch[]): Promise<void> {
    return this.writer.write(() => {
      const row = this.st.statusOf!.get(gid) as { id: number; status: string } | undefined;
      if (!row || row.status !== status) throw new NotFoundError();
      for (const b of branches) this.runUpdateBranch(gid, b);
    });
  }

  private runUpdateBranch(gid: string, b: TransBranch): void {
    this.st.updateBranch!.run(
      b.status,
      b.finishTime ?? null,
      b.rollbackTime ?? null,
      b.updateTime,
      b.attempts ?? 0,
      b.lastAttemptTime ?? null,
      b.lastResult ?? '',
      b.lastError ?? '',
      b.id,
      gid,
    );
  }

  recordFailedAttempt(
    gid: string,
    status: GlobalStatus,
    branch: TransBranch | undefined,
    a: FailedAttempt,
    now: number,
  ): Promise<void> {
    return this.writer.write(() => {
      const r = this.st.failedAttempt!.run(
        a.nextCronTime,
        a.nextCronInterval,
        now,
        a.failedAttempts,
        a.lastError,
        gid,
        status,
      );
      if (r.changes === 1 && branch) this.runUpdateBranch(gid, branch);
    });
  }

  claimStuckAlert(gid: string, status: GlobalStatus): Promise<boolean> {
    return this.writer.write(() => this.st.claimStuck!.run(gid, status).changes === 1);
  }

  async findStuck(rule: StuckRule, position: string, limit: number) {
    const pos = position ? Number(position) : Number.MAX_SAFE_INTEGER;
    const n = rule.failedAttempts;
    const rows = this.st.findStuck!.all(pos, n, n, rule.createdBefore, limit) as GlobalRow[];
    const trans = rows.map(toGlobal);
    return this.afterSync({ trans, nextPosition: nextPositionOf(trans, limit) });
  }

  async countStuck(rule: StuckRule): Promise<{ attempts: number; age: number }> {
    const n = rule.failedAttempts;
    const r = this.st.countStuck!.get(n, n, n, n, rule.createdBefore) as { attempts: number; n: number };
    return this.afterSync({ attempts: r.attempts, age: r.n - r.attempts });
  }

  changeStatus(gid: string, from: GlobalStatus, to: GlobalStatus, change: StatusChange, now: number): Promise<void> {
    return this.writer.write(() => {
      const rollbackReason = change.rollbackReason ?? '';
      const result = change.result ?? '';
      const r = this.st.changeStatus!.run(
        to,
        now,
        rollbackReason,
        rollbackReason,
        result,
        result,
        change.finishTime ?? null,
        change.rollbackTime ?? null,
        change.nextCronTime ?? null,
        change.nextCronInterval ?? null,
        gid,
        from,
      );
      if (r.changes === 0) throw new NotFoundError();
      if (change.branches) for (const b of change.branches) this.runUpdateBranch(gid, b);
    });
  }

  touchCronTime(
    gid: string,
    status: GlobalStatus,
    nextCronTime: number,
    interval: number,
    now: number,
    resetFailedAttempts = false,
  ) {
    return this.writer.write(() => {
      (resetFailedAttempts ? this.st.touchReset! : this.st.touch!).run(nextCronTime, interval, now, gid, status);
    });
  }

  lockDue(dueBefore: number, leaseUntil: number, owner: string, limit: number, now: number): Promise<TransGlobal[]> {
    return this.writer.write(() => {
      const ids = this.st.due!.all(dueBefore, limit) as { id: number }[];
      const out: TransGlobal[] = [];
      for (const { id } of ids) {
        const r = this.st.lease!.get(owner, leaseUntil, now, id, dueBefore) as GlobalRow | undefined;
        if (r) out.push(toGlobal(r));
      }
      return out;
    });
  }

  resetCronTime(after: number, limit: number, now: number): Promise<{ count: number; hasRemaining: boolean }> {
    return this.writer.write(() => {
      const r = this.st.resetCron!.run(now, now, after, limit);
      return { count: r.changes, hasRemaining: r.changes === limit };
    });
  }

  resetTransCronTime(gid: string, now: number): Promise<void> {
    return this.writer.write(() => {
      if (this.st.resetOne!.run(now, now, gid).changes === 0) throw new NotFoundError();
    });
  }

  deleteFinished(before: number, limit: number): Promise<number> {
    return this.writer.write(() => {
      const ids = this.st.oldFinished!.all(before, limit) as { id: number }[];
      for (const { id } of ids) {
        this.st.deleteBranches!.run(id);
        this.st.deleteGlobal!.run(id);
      }
      return ids.length;
    });
  }

  async scanKV(cat: string, position: string, limit: number): Promise<{ kv: KV[]; nextPosition: string }> {
    const rows = this.st.scanKV!.all(cat, position ? Number(position) : Number.MAX_SAFE_INTEGER, limit) as KvRow[];
    return this.afterSync({ kv: rows.map(toKv), nextPosition: nextPositionOf(rows, limit) });
  }

  async findKV(cat: string, key: string): Promise<KV[]> {
    const { where, values } = whereOf(kvConditions(cat, key));
    return this.afterSync(
      (this.db.prepare(`SELECT * FROM kv ${where} ORDER BY id`).all(...values) as KvRow[]).map(toKv),
    );
  }

  createKV(cat: string, k: string, v: string, now: number): Promise<void> {
    return this.writer.write(() => {
      if (this.st.createKV!.run(cat, k, v, now, now).changes === 0) throw new UniqueConflictError();
    });
  }

  updateKV(kv: KV, now: number): Promise<void> {
    return this.writer.write(() => {
      if (this.st.updateKV!.run(kv.v, now, kv.cat, kv.k, kv.version).changes === 0) throw new NotFoundError();
      kv.version += 1;
    });
  }

  deleteKV(cat: string, k: string): Promise<void> {
    return this.writer.write(() => {
      if (this.st.deleteKV!.run(cat, k).changes === 0) throw new NotFoundError();
    });
  }
}
