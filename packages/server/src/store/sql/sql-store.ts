import type { GlobalStatus } from '@dtx/protocol';
import { NotFoundError } from '../../core/errors.js';
import type { KV, TransBranch, TransGlobal } from '../../core/model.js';
import { errorMessage } from '../../util/error-message.js';
import { kvConditions, nextPositionOf, scanConditions, whereOf } from '../scan-query.js';
import type { ScanQuery, Store, StuckRule, UnfinishedCount } from '../store.js';
import { CommitQueue } from './commit-queue.js';
import type { QueryOptions, SqlDialect, SqlResult, SqlWrite, WriteArgs } from './dialect.js';
import { authHint, storeError } from './errors.js';
import {
  BRANCH_COLUMNS,
  branchFromRow,
  countUnfinishedSql,
  GLOBAL_COLUMNS,
  globalFromRow,
  KV_COLUMNS,
  kvFromRow,
  UNFINISHED_STATUSES,
  unfinishedCountOf,
} from './rows.js';
import { type BatchStats, SqlBatchRunner } from './sql-batch.js';
import { type SqlStoreOptions, untilReachable } from './sql-options.js';

const GLOBAL_SELECT = GLOBAL_COLUMNS.join(', ');
const BRANCH_SELECT = BRANCH_COLUMNS.join(', ');
const KV_SELECT = KV_COLUMNS.join(', ');
const $n = (n: number) => `$${n}`;
/** The cursor of a page: ids below it; none, every id (ids are numbers well below 2^53). */
const below = (position: string) => (position ? Number(position) : Number.MAX_SAFE_INTEGER);

/**
 * The Store of the SQL databases on DTM's tables (PostgreSQL and MySQL / MariaDB), one implementation over a
 * {@link SqlDialect}: the reads, KV, the stuck rule, the lifecycle and the group commit are here once; each
 * database brings its pools, its writes of the hot path and their batch executor, the cron lease, retention and
 * its schema.
 *
 * Writes on the hot path (saveNew, insertBranches, updateBranches, changeStatus, touchCronTime,
 * recordFailedAttempt) go through a group commit (CommitQueue + SqlBatchRunner, see README.md): the writes
 * queued while the previous batch commits share one transaction, one round trip and one disk flush. Reads, the
 * cron lease, resets, retention and KV go straight through the pool.
 */
export class SqlStore<P, C, W extends SqlWrite<R>, R> implements Store {
  /** Group-commit counters: batches committed, writes in them, batches replayed with savepoints. */
  readonly stats: BatchStats = { batches: 0, writes: 0, replays: 0 };
  private readonly queue: CommitQueue<W>;
  private readonly tg: string;
  private readonly tb: string;
  private readonly kv: string;
  private closing: Promise<void> | undefined;

  protected constructor(
    private readonly d: SqlDialect<P, C, W, R>,
    o: SqlStoreOptions,
  ) {
    this.tg = d.table('trans_global');
    this.tb = d.table('trans_branch_op');
    this.kv = d.table('kv');
    const runner = new SqlBatchRunner<C, W, R>(d.executor, d.driver, this.stats);
    this.queue = new CommitQueue<W>((batch) => runner.run(batch), {
      ...d.queue,
      maxBatch: o.maxBatch ?? 256,
      observer: o.observer,
    });
  }

  /** The pool of reads and single-statement writes (tests and tools read the tables through it). */
  get pool(): P {
    return this.d.pool;
  }

  /**
   * Connect (waiting while the server is unreachable), create what is missing and migrate. When that fails the
   * pools are closed and the error names the store.
   */
  protected async opened(o: SqlStoreOptions): Promise<this> {
    const d = this.d;
    try {
      await untilReachable(d.label, () => d.bootstrap(o.reset === true), o);
    } catch (err) {
      await d.end();
      throw new Error(`${d.title} store ${d.label}: ${errorMessage(err)}${authHint(err)}`, { cause: err });
    }
    return this;
  }

  // ------------------------------------------------------------------ plumbing

  private async q(sql: string, values: readonly unknown[] = [], o?: QueryOptions): Promise<SqlResult> {
    try {
      return await this.d.query(sql, values, o);
    } catch (err) {
      throw storeError(this.d.driver, err);
    }
  }

  private async guard<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw storeError(this.d.driver, err);
    }
  }

  private write(w: W): Promise<void> {
    return this.queue.submit<void>(w);
  }

  // ------------------------------------------------------------------ lifecycle

  async ping(): Promise<void> {
    await this.q(`SELECT 1 FROM ${this.tg} LIMIT 1`, [], { timeoutMs: 5000 });
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.queue.drain(); // queued writes commit first
      await this.d.end();
    })();
    return this.closing;
  }

  // ------------------------------------------------------------------ reads

  async findTrans(gid: string): Promise<TransGlobal | undefined> {
    const r = await this.q(`SELECT ${GLOBAL_SELECT} FROM ${this.tg} WHERE gid = $1`, [gid], {
      name: 'dtx_find_trans',
    });
    return r.rows[0] ? globalFromRow(r.rows[0]) : undefined;
  }

  async scanTrans(q: ScanQuery): Promise<{ trans: TransGlobal[]; nextPosition: string }> {
    const { where, values } = whereOf(
      scanConditions(q, (ms) => this.d.time(ms)),
      $n,
    );
    const r = await this.q(
      `SELECT ${GLOBAL_SELECT} FROM ${this.tg} ${where} ORDER BY id DESC LIMIT $${values.length + 1}`,
      [...values, q.limit],
    );
    const trans = r.rows.map(globalFromRow);
    return { trans, nextPosition: nextPositionOf(trans, q.limit) };
  }

  async countUnfinished(): Promise<UnfinishedCount[]> {
    return (await this.q(countUnfinishedSql(this.tg))).rows.map(unfinishedCountOf);
  }

  async findBranches(gid: string): Promise<TransBranch[]> {
    const r = await this.q(`SELECT ${BRANCH_SELECT} FROM ${this.tb} WHERE gid = $1 ORDER BY id`, [gid], {
      name: 'dtx_find_branches',
    });
    return r.rows.map(branchFromRow);
  }

  // ------------------------------------------------------------------ writes of the hot path (group commit)

  saveNew(...args: WriteArgs<'saveNew'>): Promise<void> {
    return this.write(this.d.writes.saveNew(...args));
  }

  insertBranches(...args: WriteArgs<'insertBranches'>): Promise<void> {
    return this.write(this.d.writes.insertBranches(...args));
  }

  updateBranches(...args: WriteArgs<'updateBranches'>): Promise<void> {
    return this.write(this.d.writes.updateBranches(...args));
  }

  changeStatus(...args: WriteArgs<'changeStatus'>): Promise<void> {
    return this.write(this.d.writes.changeStatus(...args));
  }

  touchCronTime(...args: WriteArgs<'touchCronTime'>): Promise<void> {
    return this.write(this.d.writes.touchCronTime(...args));
  }

  recordFailedAttempt(...args: WriteArgs<'recordFailedAttempt'>): Promise<void> {
    return this.write(this.d.writes.recordFailedAttempt(...args));
  }

  // ------------------------------------------------------------------ stuck transactions

  async claimStuckAlert(gid: string, status: GlobalStatus): Promise<boolean> {
    const r = await this.q(
      `UPDATE ${this.tg} SET stuck_alerted = 1 WHERE gid = $1 AND status = $2 AND stuck_alerted = 0`,
      [gid, status],
    );
    return r.affected === 1;
  }

  async findStuck(rule: StuckRule, position: string, limit: number) {
    const r = await this.q(
      `SELECT ${GLOBAL_SELECT} FROM ${this.tg}
       WHERE status IN ${UNFINISHED_STATUSES} AND id < $1
         AND (($2 > 0 AND failed_attempts >= $2) OR create_time < $3)
       ORDER BY id DESC LIMIT $4`,
      [below(position), rule.failedAttempts, this.d.time(rule.createdBefore), limit],
    );
    const trans = r.rows.map(globalFromRow);
    return { trans, nextPosition: nextPositionOf(trans, limit) };
  }

  async countStuck(rule: StuckRule): Promise<{ attempts: number; age: number }> {
    const r = await this.q(
      `SELECT COALESCE(SUM(CASE WHEN $1 > 0 AND failed_attempts >= $1 THEN 1 ELSE 0 END), 0) AS attempts,
         COUNT(*) AS n
       FROM ${this.tg} WHERE status IN ${UNFINISHED_STATUSES}
         AND (($1 > 0 AND failed_attempts >= $1) OR create_time < $2)`,
      [rule.failedAttempts, this.d.time(rule.createdBefore)],
    );
    const row = r.rows[0] as { attempts: unknown; n: unknown };
    const attempts = Number(row.attempts);
    return { attempts, age: Number(row.n) - attempts };
  }

  // ------------------------------------------------------------------ the cron and retention

  lockDue(dueBefore: number, leaseUntil: number, owner: string, limit: number, now: number): Promise<TransGlobal[]> {
    return this.guard(() => this.d.lockDue(dueBefore, leaseUntil, owner, limit, now));
  }

  async resetCronTime(after: number, limit: number, now: number): Promise<{ count: number; hasRemaining: boolean }> {
    const count = await this.guard(() => this.d.resetCronTime(after, limit, now));
    return { count, hasRemaining: count === limit };
  }

  async resetTransCronTime(gid: string, now: number): Promise<void> {
    const r = await this.q(`UPDATE ${this.tg} SET next_cron_time = $2, update_time = $2 WHERE gid = $1`, [
      gid,
      this.d.time(now),
    ]);
    if (r.affected === 0) throw new NotFoundError();
  }

  deleteFinished(before: number, limit: number): Promise<number> {
    return this.guard(() => this.d.deleteFinished(before, limit));
  }

  // ------------------------------------------------------------------ KV

  async scanKV(cat: string, position: string, limit: number): Promise<{ kv: KV[]; nextPosition: string }> {
    const r = await this.q(`SELECT ${KV_SELECT} FROM ${this.kv} WHERE cat = $1 AND id < $2 ORDER BY id DESC LIMIT $3`, [
      cat,
      below(position),
      limit,
    ]);
    const kv = r.rows.map(kvFromRow);
    return { kv, nextPosition: nextPositionOf(kv, limit) };
  }

  async findKV(cat: string, key: string): Promise<KV[]> {
    const { where, values } = whereOf(kvConditions(cat, key), $n);
    return (await this.q(`SELECT ${KV_SELECT} FROM ${this.kv} ${where} ORDER BY id`, values)).rows.map(kvFromRow);
  }

  async createKV(cat: string, k: string, v: string, now: number): Promise<void> {
    // a duplicate (cat, k) is a unique violation, which storeError turns into UniqueConflictError
    await this.q(
      `INSERT INTO ${this.kv} (cat, k, v, version, create_time, update_time) VALUES ($1, $2, $3, 1, $4, $4)`,
      [cat, k, v, this.d.time(now)],
    );
  }

  async updateKV(kv: KV, now: number): Promise<void> {
    const r = await this.q(
      `UPDATE ${this.kv} SET v = $1, version = version + 1, update_time = $2 WHERE cat = $3 AND k = $4 AND version = $5`,
      [kv.v, this.d.time(now), kv.cat, kv.k, kv.version],
    );
    if (r.affected === 0) throw new NotFoundError();
    kv.version += 1;
  }

  async deleteKV(cat: string, k: string): Promise<void> {
    const r = await this.q(`DELETE FROM ${this.kv} WHERE cat = $1 AND k = $2`, [cat, k]);
    if (r.affected === 0) throw new NotFoundError();
  }
}
