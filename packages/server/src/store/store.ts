import type { GlobalStatus } from '@dtx/protocol';
import type { KV, TransBranch, TransGlobal } from '../core/model.js';

/** Filters and cursor of the admin list (`/api/dtmsvr/all`). Times are epoch ms. */
export interface ScanQuery {
  position: string;
  limit: number;
  status?: string | undefined;
  transType?: string | undefined;
  createTimeStart?: number | undefined;
  createTimeEnd?: number | undefined;
  /** Only gids that start with this text (compared exactly, case-sensitive; no wildcards). */
  gidPrefix?: string | undefined;
}

/** One group of unfinished transactions (the metrics' gauges). Times are epoch ms. */
export interface UnfinishedCount {
  transType: string;
  status: GlobalStatus;
  count: number;
  /** Smallest create_time of the group. */
  oldestCreateTime: number;
  /** Smallest next_cron_time of the group: when the cron is due to pick its most overdue one. */
  oldestNextCronTime: number;
}

/**
 * Told of the store's group commits (metrics). Called on the store's hot path: implementations must be cheap
 * and must not throw.
 */
export interface StoreObserver {
  /** One database transaction (or Redis pipeline flush) of the group commit carried `size` writes. */
  batch(size: number): void;
}

/** Columns a status change may write besides status and update_time. */
export interface StatusChange {
  rollbackReason?: string | undefined;
  result?: string | undefined;
  finishTime?: number | undefined;
  rollbackTime?: number | undefined;
  nextCronTime?: number | undefined;
  nextCronInterval?: number | undefined;
}

/** What a failed attempt writes on the global, with the branch's attempt, in one store write. */
export interface FailedAttempt {
  nextCronTime: number;
  nextCronInterval: number;
  /** The new count of failed attempts in a row. */
  failedAttempts: number;
  /** At most 1 KiB (replyExcerpt). */
  lastError: string;
}

/** The stuck rule: unfinished with failed_attempts >= failedAttempts (when > 0), or created before createdBefore. */
export interface StuckRule {
  failedAttempts: number;
  /** Epoch ms; 0 disables the age rule. */
  createdBefore: number;
}

/**
 * Where transactions live. Every backend passes the same conformance suite.
 *
 * Rules every implementation keeps:
 * - status changes are compare-and-set on the status the caller read (NotFoundError when lost);
 * - branch writes are conditional on the global status (NotFoundError when it moved);
 * - no operation reads the clock: the caller passes every time it needs.
 */
export interface Store {
  /** Health check; throws when the store cannot serve. */
  ping(): Promise<void>;
  close(): Promise<void>;

  findTrans(gid: string): Promise<TransGlobal | undefined>;
  scanTrans(q: ScanQuery): Promise<{ trans: TransGlobal[]; nextPosition: string }>;
  /**
   * Unfinished transactions (prepared, submitted, aborting) grouped by (trans_type, status), in no particular order;
   * groups with no transaction are left out. Read on a metrics scrape (cached by the caller), never on the hot path.
   */
  countUnfinished(): Promise<UnfinishedCount[]>;
  /** All branch rows of gid in insertion order; [] when none. */
  findBranches(gid: string): Promise<TransBranch[]>;

  /** Atomically insert the global and its branches; UniqueConflictError if the gid exists. Sets ids. */
  saveNew(trans: TransGlobal, branches: TransBranch[]): Promise<void>;
  /**
   * Insert branches (registerBranch) if the global exists with `status`; NotFoundError otherwise;
   * UniqueConflictError on a duplicate (gid, branch_id, op). Sets ids.
   */
  insertBranches(gid: string, status: GlobalStatus, branches: TransBranch[]): Promise<void>;
  /**
   * Write the status, finish_time, rollback_time, update_time and the attempt record (attempts,
   * last_attempt_time, last_result, last_error) of branches (addressed by id) if the global still has
   * `status`; NotFoundError otherwise.
   */
  updateBranches(gid: string, status: GlobalStatus, branches: TransBranch[]): Promise<void>;
  /** CAS the global from `from` to `to`, writing `change` and update_time = now. NotFoundError when lost. */
  changeStatus(gid: string, from: GlobalStatus, to: GlobalStatus, change: StatusChange, now: number): Promise<void>;
  /**
   * Write next_cron_time/interval and update_time if the status is still `status` (0 rows is not an error);
   * with resetFailedAttempts also failed_attempts = 0 (the first success after failures).
   */
  touchCronTime(
    gid: string,
    status: GlobalStatus,
    nextCronTime: number,
    interval: number,
    now: number,
    resetFailedAttempts?: boolean,
  ): Promise<void>;
  /**
   * A failed attempt, in one atomic write conditional on the status (a silent no-op when it moved, like
   * touchCronTime): the global's next_cron_time/interval, failed_attempts, last_error and update_time, and,
   * when `branch` is given, its attempt record (as updateBranches writes it; addressed by id).
   */
  recordFailedAttempt(
    gid: string,
    status: GlobalStatus,
    branch: TransBranch | undefined,
    a: FailedAttempt,
    now: number,
  ): Promise<void>;
  /** Set stuck_alerted if the status is still `status` and it was not set; true when this call set it. */
  claimStuckAlert(gid: string, status: GlobalStatus): Promise<boolean>;
  /** Unfinished transactions the rule calls stuck, newest id first, paged like scanTrans. */
  findStuck(rule: StuckRule, position: string, limit: number): Promise<{ trans: TransGlobal[]; nextPosition: string }>;
  /** How many unfinished transactions are stuck, by reason (attempts wins when both hold). */
  countStuck(rule: StuckRule): Promise<{ attempts: number; age: number }>;
  /**
   * Lease up to `limit` unfinished transactions whose next_cron_time < dueBefore: push their
   * next_cron_time to leaseUntil and write `owner`. Returns the leased rows.
   */
  lockDue(dueBefore: number, leaseUntil: number, owner: string, limit: number, now: number): Promise<TransGlobal[]>;
  /** Reschedule to `now` up to `limit` unfinished trans whose next_cron_time > after. */
  resetCronTime(after: number, limit: number, now: number): Promise<{ count: number; hasRemaining: boolean }>;
  /** next_cron_time = update_time = now for gid; NotFoundError when missing. */
  resetTransCronTime(gid: string, now: number): Promise<void>;

  /**
   * Retention: delete up to `limit` finished (succeed / failed) transactions whose update_time < before,
   * with their branches. Returns how many globals were deleted; never touches unfinished ones.
   */
  deleteFinished(before: number, limit: number): Promise<number>;

  scanKV(cat: string, position: string, limit: number): Promise<{ kv: KV[]; nextPosition: string }>;
  /** Empty cat or key means "any". */
  findKV(cat: string, key: string): Promise<KV[]>;
  /** version 1; UniqueConflictError when it exists. */
  createKV(cat: string, k: string, v: string, now: number): Promise<void>;
  /** CAS on (cat, k, version) → version+1; NotFoundError on mismatch. */
  updateKV(kv: KV, now: number): Promise<void>;
  /** NotFoundError when missing. */
  deleteKV(cat: string, k: string): Promise<void>;
}
