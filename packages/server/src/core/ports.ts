/**
 * The ports of the core: everything the core asks of the world, in one file. The core is handed a {@link Store}, a
 * {@link BranchCaller}, a {@link Clock}, a {@link Logger} and, optionally, a {@link Tracer}, a {@link MetricsPort}
 * and an {@link AlertSink}; store/, branch/, observe/ and server.ts implement and wire them. Nothing else in core/
 * imports from outside core/ (but @dtx/protocol and the leaf util/): the layers depend on the core, never the
 * reverse. The types of observe/ used here (a leaf: it imports nothing of the server) are re-exported, so that the
 * core reaches them through this file only.
 *
 * @module
 */
import type { BranchProtocol, GlobalStatus } from '@dtx/protocol';
import type { TraceContext } from '../observe/trace-context.js';
import type { KV, TransBranch, TransGlobal } from './model.js';

export type { BranchProtocol } from '@dtx/protocol';
export type { Logger } from '../observe/logger.js';
export type { TraceContext } from '../observe/trace-context.js';
export type { BranchSpanInfo, DtxSpan, DtxTracer as Tracer, SpanEnd } from '../observe/tracer.js';

// ------------------------------------------------------------------ Clock

/** A pending timer of a {@link Clock}. */
export interface Timer {
  /** Stops it; a no-op once it fired. */
  cancel(): void;
  /** Lets the process exit while it is pending (Node's `unref`); a no-op on a fake clock. */
  unref(): this;
}

/**
 * Where the core reads the time (epoch ms) and waits. Every wait of the core — the saga's poll of its calls, the
 * cron's idle sleep, the retention and topic rounds — is a timer of this clock, so that a fake clock drives them
 * all. Tests hand in core/clock.ts's FakeClock.
 */
export interface Clock {
  now(): number;
  /** Calls `fn` once, `ms` from now. */
  setTimer(ms: number, fn: () => void): Timer;
  /** Calls `fn` every `ms` until cancelled. */
  setRepeating(ms: number, fn: () => void): Timer;
}

// ------------------------------------------------------------------ Store

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
  /**
   * Branch results written by the same atomic write, as updateBranches writes them (addressed by id), and only when
   * the compare-and-set of the status wins: the results a pass held back (TransMode.holdsResults) ride on the move.
   */
  branches?: readonly TransBranch[] | undefined;
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

// ------------------------------------------------------------------ BranchCaller

/** What one branch call came to, after the reply was interpreted (spec §5.4). */
export interface BranchOutcome {
  result: 'SUCCESS' | 'FAILURE' | 'ONGOING' | 'ERROR';
  /** Reply body or error text; kept for rollback_reason and logs. */
  message: string;
  /** An ERROR because the call ran out of its time (HTTP headers/body timeout, gRPC DEADLINE_EXCEEDED). */
  timeout?: true;
}

export interface BranchCall {
  trans: TransGlobal;
  url: string;
  branchId: string;
  op: string;
  payload: Uint8Array;
  /** Milliseconds before the call is abandoned (an ERROR outcome). */
  timeoutMs: number;
  /** The W3C trace context to send (`traceparent` / `tracestate` headers or metadata); none when undefined. */
  trace?: TraceContext | undefined;
}

/** Makes outbound branch calls. One implementation per protocol behind a dispatcher. */
export interface BranchCaller {
  call(c: BranchCall): Promise<BranchOutcome>;
  close(): Promise<void>;
}

// ------------------------------------------------------------------ Alerts, metrics

/**
 * The payload POSTed to the alert webhook: DTM's five keys (spec §7.5), then dtx's. dtx sends it once when a
 * transaction becomes stuck (`event` "stuck") and once when a stuck one ends (`event` "recovered").
 */
export interface AlertPayload {
  gid: string;
  status: string;
  /** The URL of the branch (or of the msg back-check) whose failure made it stuck; '' for a recovery. */
  branch: string;
  error: string;
  /** Failed attempts in a row (never saturates, unlike DTM's count from the backed-off interval). */
  retry_count: number;
  event: 'stuck' | 'recovered';
  trans_type: string;
  stuck_reason?: 'attempts' | 'age';
  branch_id?: string;
  op?: string;
  /** Calls made to that branch so far. */
  attempts?: number;
  /** RFC 3339; absent for a recovery. */
  next_retry_time?: string;
}

/** Sends one alert (the webhook of observe/alert.ts); must not throw nor block: delivery is fire and forget. */
export type AlertSink = (a: AlertPayload) => void;

/**
 * What the core tells the metrics (implemented, structurally, by observe/metrics.ts's DtxMetrics). Every
 * method is called on the hot path: implementations resolve their label children once per label tuple and must
 * not throw.
 */
export interface MetricsPort {
  /** One branch call ended after `seconds` (DTM's dtm_branch_process_total and dtx's branch metrics). */
  branchCall(
    transType: string,
    branchId: string,
    op: string,
    protocol: BranchProtocol,
    seconds: number,
    outcome: BranchResult,
  ): void;
  /** One processing pass of a transaction ended; `ageSeconds` = now − create_time (dtm_transaction_handled_duration). */
  passHandled(transType: string, ageSeconds: number): void;
  /** A Process call of the API (submit / abort / prepare timeout) ended, ok or with an error (DTM's metric). */
  transProcessed(transType: string, ok: boolean): void;
  /** A transaction reached a final status. */
  finished(transType: string, outcome: 'succeed' | 'failed'): void;
  /** The cron started a pass of a transaction it leased (a retry of unfinished work). */
  retry(transType: string): void;
}

/** What a branch call came to, for the metrics: the four outcomes, and ERROR split into timeout or not. */
export type BranchResult = 'SUCCESS' | 'FAILURE' | 'ONGOING' | 'ERROR' | 'TIMEOUT';
