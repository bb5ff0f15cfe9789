import { branchProtocolOf, type GlobalStatus, withResultSuffix } from '@dtx/protocol';
import { errorMessage } from '../util/error-message.js';
import { formatTime } from '../util/format-time.js';
import type { CallSlots } from './call-slots.js';
import type { CoreConfig } from './core-config.js';
import { NotFoundError } from './errors.js';
import { type TransBranch, type TransGlobal, traceContextOf } from './model.js';
import type {
  AlertPayload,
  AlertSink,
  BranchCaller,
  BranchOutcome,
  BranchResult,
  Clock,
  Logger,
  MetricsPort,
  StatusChange,
  Store,
  Tracer,
} from './ports.js';
import { replyExcerpt } from './reply-excerpt.js';
import { stuckReasonOf, stuckRuleOf } from './stuck.js';
import type { TransMode } from './trans-mode.js';

/** What a processing pass needs from the world. */
export interface PassDeps {
  store: Store;
  caller: BranchCaller;
  clock: Clock;
  conf: CoreConfig;
  log: Logger;
  alert: AlertSink;
  /**
   * Makes spans when tracing export is on (config key `Tracing.Exporter`). Without it no span is made and each
   * branch receives the transaction's stored trace context unchanged.
   */
  tracer?: Tracer | undefined;
  /** Told of branch calls, passes and final statuses (config `Metrics.Enabled`); nothing is recorded without it. */
  metrics?: MetricsPort | undefined;
}

/** Touch kinds of spec §7.1. */
export type TouchKind = 'reset' | 'keep' | 'backoff';

/** A pass error: the branch answered ONGOING (tcc/xa), or a retryable error. */
export class PassError extends Error {
  constructor(
    message: string,
    readonly ongoing: boolean,
  ) {
    super(message);
    this.name = 'PassError';
  }
}

const TOUCH_AFTER_MS = 1500;
/** Extra lease beyond the end of the last call in flight: the pass's own work after the call (writes). */
const LEASE_MARGIN_MS = 2000;
/** A saga pass stops starting calls this long after the call timeout (DTM's RequestTimeout + 2 s). */
const PASS_GRACE_MS = 2000;

/** The reset interval of spec §7.1, in seconds. */
export function resetInterval(t: TransGlobal, conf: CoreConfig): number {
  const ri = t.opts.retry_interval ?? 0;
  if (ri > 0) return ri;
  const tf = t.opts.timeout_to_fail ?? 0;
  if (tf > 0 && tf < conf.retryInterval) return tf;
  return conf.retryInterval;
}

/** The next backed-off interval: doubled, at most MaxRetryInterval, never below the reset interval. */
export function backoffInterval(t: TransGlobal, conf: CoreConfig): number {
  return Math.max(resetInterval(t, conf), Math.min(t.nextCronInterval * 2, conf.maxRetryInterval));
}

/** The timeout of one branch call of `t`, in ms: its own request_timeout, else RequestTimeout. */
export function callTimeoutMs(t: TransGlobal, conf: CoreConfig): number {
  const own = t.opts.request_timeout ?? 0;
  return (own > 0 ? own : conf.requestTimeout) * 1000;
}

/**
 * One processing pass over one transaction: the in-memory transaction and branches, and the moves a
 * mode makes on them. Every write is conditional on the status read (compare-and-set); a lost one
 * throws NotFoundError and ends the pass.
 *
 * The pass owns its branch calls: each is bounded by the transaction's own call timeout, the lease
 * (next_cron_time) is kept past the end of every call in flight, so no other instance's cron can pick the
 * transaction while one runs, and {@link settle} lets the processor wait for them all before it lets the
 * gid go.
 */
export class TransPass {
  /** Time of the last lease renewal (the 1.5 s rule of §5.6). */
  private lastTouched: number;
  /** Calls started and not yet settled. */
  private readonly calls = new Set<Promise<BranchOutcome>>();
  /** The lease every call started so far needs: its end plus the margin (monotonic). */
  private leaseNeeded = 0;
  /** The timeout of each branch call, ms. */
  readonly callTimeoutMs: number;
  /** When a saga pass stops starting calls (clock time, ms). */
  readonly deadline: number;
  /** The error text of the last call that did not succeed, for the reply of a pass that ends unfinished. */
  lastError = '';
  /** Branches whose decided result is not written yet (TransMode.holdsResults): the next status change carries them. */
  private readonly held = new Set<TransBranch>();
  /** Set when the transaction's status was moved under this pass (a force stop on this instance). */
  private stopped = false;

  constructor(
    readonly deps: PassDeps,
    /** The rules of the transaction's mode. */
    readonly mode: TransMode,
    readonly trans: TransGlobal,
    readonly branches: TransBranch[],
    /** Milliseconds added to the clock for timeout and delay decisions (test mode). */
    private readonly forwardMs = 0,
    /** The process-wide bound on calls in flight; none when undefined. */
    private readonly slots?: CallSlots,
  ) {
    const now = deps.clock.now();
    this.lastTouched = now;
    this.callTimeoutMs = callTimeoutMs(trans, deps.conf);
    this.deadline = now + this.callTimeoutMs + PASS_GRACE_MS;
  }

  /**
   * The status was moved under this pass: it calls no further branch (each call would end like a lost
   * compare-and-set, with NotFoundError) and writes nothing it held back.
   */
  stop(): void {
    this.stopped = true;
    this.held.clear();
  }

  /** Branch calls of this pass in flight now. */
  get callsInFlight(): number {
    return this.calls.size;
  }

  /** Resolves once every call this pass started has settled (whatever the pass itself came to). */
  async settle(): Promise<void> {
    while (this.calls.size > 0) await Promise.allSettled([...this.calls]);
  }

  /** The time decisions are made with. */
  now(): number {
    return this.deps.clock.now() + this.forwardMs;
  }

  /** Spec §6.2. */
  isTimeout(): boolean {
    const t = this.trans;
    let timeout = t.opts.timeout_to_fail ?? 0;
    if (timeout === 0 && this.mode.defaultTimeout) timeout = this.deps.conf.timeoutToFail;
    return timeout > 0 && this.now() - t.createTime >= timeout * 1000;
  }

  needProcess(): boolean {
    const s = this.trans.status;
    return s === 'submitted' || s === 'aborting' || (s === 'prepared' && this.isTimeout());
  }

  timeoutReason(): string {
    return `Timeout after ${this.trans.opts.timeout_to_fail ?? 0} seconds`;
  }

  /** CAS the global status; finishing sets finish_time / rollback_time. */
  async changeStatus(to: GlobalStatus, change: StatusChange = {}): Promise<void> {
    const t = this.trans;
    const now = this.deps.clock.now();
    // Object.assign, not `{ ...change }`: on Node 20 adding a property to an optimised spread's copy makes a new
    // hidden class on every call.
    const c: StatusChange = Object.assign({}, change);
    if (to === 'succeed') c.finishTime = now;
    if (to === 'failed') c.rollbackTime = now;
    const held = this.held.size > 0 ? [...this.held] : undefined;
    if (held) c.branches = held;
    await this.deps.store.changeStatus(t.gid, t.status, to, c, now);
    if (held) for (const b of held) this.held.delete(b);
    this.deps.log.debug('status changed', { gid: t.gid, trans_type: t.transType, from: t.status, to });
    if (to === 'succeed' || to === 'failed') this.deps.metrics?.finished(t.transType, to);
    t.status = to;
    t.updateTime = now;
    if (c.rollbackReason) t.rollbackReason = c.rollbackReason;
    if (c.result) t.result = c.result;
    if (c.finishTime) t.finishTime = c.finishTime;
    if (c.rollbackTime) t.rollbackTime = c.rollbackTime;
    if (t.stuckAlerted && (to === 'succeed' || to === 'failed')) sendRecovered(this.deps, t);
  }

  /**
   * Write the branch results held back so far (one updateBranches), if any: at the end of a pass, and before a lease
   * renewal, so that a long pass does not keep much unwritten.
   */
  async flushHeld(): Promise<void> {
    if (this.held.size === 0) return;
    const held = [...this.held];
    await this.deps.store.updateBranches(this.trans.gid, this.trans.status, held);
    for (const b of held) this.held.delete(b);
  }

  /** Spec §7.2: move next_cron_time; conditional on the status, silently. */
  async touch(kind: TouchKind, delayMs = 0, resetFailedAttempts = false): Promise<void> {
    const t = this.trans;
    const now = this.moveCronTime(kind, delayMs);
    if (resetFailedAttempts) t.failedAttempts = 0;
    await this.deps.store.touchCronTime(t.gid, t.status, t.nextCronTime, t.nextCronInterval, now, resetFailedAttempts);
  }

  /** The in-memory half of a touch: sets next_cron_time / interval; returns the clock time it used. */
  private moveCronTime(kind: TouchKind, delayMs: number): number {
    const t = this.trans;
    const now = this.deps.clock.now();
    this.lastTouched = now;
    if (kind === 'reset') t.nextCronInterval = resetInterval(t, this.deps.conf);
    else if (kind === 'backoff') t.nextCronInterval = backoffInterval(t, this.deps.conf);
    let next = now + (delayMs > 0 ? delayMs : t.nextCronInterval * 1000);
    // never hand the gid to another instance while a call of this pass may still run
    if (this.calls.size > 0 && next < this.leaseNeeded) next = this.leaseNeeded;
    t.nextCronTime = next;
    return now;
  }

  /** Extends the lease to `until` when it ends sooner (a call longer than the time left on it). */
  private async leaseUntil(until: number): Promise<void> {
    if (this.trans.nextCronTime >= until) return;
    await this.touch('keep', until - this.deps.clock.now());
  }

  /**
   * Call an URL for this trans (a branch, the msg back-check, a workflow's resume) with this trans's timeout,
   * headers and trace context: the stored one as it is, or, when tracing is on, that of a span made for this call.
   * `metricsOp` is the op label of the call in the metrics (default `op`; a workflow's resume call, whose op is the
   * workflow's name, gives a constant).
   */
  callUrl(url: string, branchId: string, op: string, payload: Uint8Array, metricsOp = op): Promise<BranchOutcome> {
    if (url === '') return Promise.resolve({ result: 'SUCCESS', message: '' });
    const call = this.ownedCall(url, branchId, op, payload, metricsOp);
    this.calls.add(call);
    // registered before the caller's own continuation, so the call has left the set when the caller resumes
    const done = () => {
      this.calls.delete(call);
    };
    call.then(done, done);
    return call;
  }

  /** A call in a slot of the process, under a lease that outlasts it; removed from the pass's set when it ends. */
  private async ownedCall(
    url: string,
    branchId: string,
    op: string,
    payload: Uint8Array,
    metricsOp: string,
  ): Promise<BranchOutcome> {
    let slotted = false;
    try {
      const wait = this.slots?.acquire();
      if (wait) await wait;
      slotted = this.slots !== undefined;
      // an HTTP call may last up to twice its timeout (headers, then one last gap of a dribbled body)
      const needed = this.deps.clock.now() + 2 * this.callTimeoutMs + LEASE_MARGIN_MS;
      if (needed > this.leaseNeeded) this.leaseNeeded = needed;
      await this.leaseUntil(needed);
      const metrics = this.deps.metrics;
      if (metrics === undefined) return await this.startCall(url, branchId, op, payload);
      const started = performance.now();
      const out = await this.startCall(url, branchId, op, payload);
      const t = this.trans;
      const result: BranchResult = out.timeout ? 'TIMEOUT' : out.result;
      metrics.branchCall(
        t.transType,
        branchId,
        metricsOp,
        branchProtocolOf(t.protocol, url),
        (performance.now() - started) / 1000,
        result,
      );
      return out;
    } finally {
      if (slotted) this.slots!.release();
    }
  }

  private startCall(url: string, branchId: string, op: string, payload: Uint8Array): Promise<BranchOutcome> {
    const t = this.trans;
    const timeoutMs = this.callTimeoutMs;
    const tracer = this.deps.tracer;
    if (tracer === undefined) {
      const trace = t.opts.traceparent === undefined ? undefined : traceContextOf(t);
      return this.deps.caller.call({ trans: t, url, branchId, op, payload, timeoutMs, trace });
    }
    return this.tracedCall(tracer, url, branchId, op, payload, timeoutMs);
  }

  /** A branch call inside a CLIENT span whose context the branch receives; the span ends with the outcome. */
  private async tracedCall(
    tracer: Tracer,
    url: string,
    branchId: string,
    op: string,
    payload: Uint8Array,
    timeoutMs: number,
  ): Promise<BranchOutcome> {
    const t = this.trans;
    const span = tracer.startBranch(traceContextOf(t), { gid: t.gid, transType: t.transType, branchId, op, url });
    let out: BranchOutcome;
    try {
      out = await this.deps.caller.call({ trans: t, url, branchId, op, payload, timeoutMs, trace: span.context });
    } catch (err) {
      span.end({ result: 'ERROR', error: errorMessage(err) });
      throw err;
    }
    const failed = out.result === 'ERROR' || out.result === 'FAILURE';
    span.end(failed ? { result: out.result, error: out.message || out.result } : { result: out.result });
    return out;
  }

  /**
   * Call one branch and record what it came to (spec §5.6): SUCCESS marks it succeed; a FAILURE the mode calls final
   * (a saga action's) marks it failed; any other FAILURE is a retryable error. Then the lease is renewed (success) or
   * backed off (error, ONGOING). Returns the outcome with a FAILURE that is not final turned into ERROR.
   */
  async execBranch(b: TransBranch): Promise<BranchOutcome> {
    const t = this.trans;
    if (this.stopped) throw new NotFoundError();
    let out = await this.callUrl(b.url, b.branchId, b.op, b.binData);
    // the attempt record, written by the same store write as the outcome (updateBranches or recordFailedAttempt)
    b.attempts = (b.attempts ?? 0) + 1;
    b.lastAttemptTime = this.deps.clock.now();
    b.lastResult = out.result;
    if (out.result !== 'SUCCESS') b.lastError = replyExcerpt(out.message || out.result);
    const finalFailure = out.result === 'FAILURE' && this.mode.failureIsFinal(b.op);
    if (out.result === 'FAILURE' && !finalFailure) {
      out = { result: 'ERROR', message: withResultSuffix(out.message, 'FAILURE') };
    }
    if (out.result === 'SUCCESS' || finalFailure) {
      const now = this.deps.clock.now();
      b.status = out.result === 'SUCCESS' ? 'succeed' : 'failed';
      b.finishTime = now;
      b.updateTime = now;
      if (this.mode.holdsResults) this.held.add(b);
      else await this.deps.store.updateBranches(t.gid, t.status, [b]);
      const now2 = this.deps.clock.now();
      // after failures, the reset of the back-off also zeroes failed_attempts (not on a saga's hot path)
      const hadFailed = out.result === 'SUCCESS' && (t.failedAttempts ?? 0) > 0;
      if (
        hadFailed ||
        now2 - this.lastTouched >= TOUCH_AFTER_MS ||
        t.nextCronInterval > Math.max(this.deps.conf.retryInterval, t.opts.retry_interval ?? 0)
      ) {
        await this.flushHeld();
        await this.touch('reset', 0, hadFailed);
      }
    } else {
      // ONGOING ("not yet") is retried like an error: backed off (up to MaxRetryInterval), logged and alerted
      // on, so that a branch answering it forever is visible (DTM retries it every RetryInterval, silently)
      this.lastError = out.message || out.result;
      const ongoing = out.result === 'ONGOING';
      await this.backoffAndAlert(b.url, this.lastError, b);
      const fields = {
        gid: t.gid,
        trans_type: t.transType,
        branch_id: b.branchId,
        op: b.op,
        url: b.url,
        attempt: b.attempts,
        failed_attempts: t.failedAttempts,
        error: b.lastError,
        next_retry_at: formatTime(t.nextCronTime),
        next_retry_in_s: t.nextCronInterval,
      };
      if (ongoing) this.deps.log.info('branch answered ONGOING, will ask again', fields);
      else this.deps.log.warn('branch call failed, will retry', fields);
    }
    return out;
  }

  /**
   * A failed attempt (a branch call; when `b` is undefined, a call of the transaction's own: the msg back-check,
   * the workflow resume): back off the lease and record the attempt in one store write; then, if that made the
   * transaction stuck, claim its one stuck alert (compare-and-set, so exactly one instance, once) and send it.
   * @param call what a call without a branch is reported as (branch_id, op); default the msg back-check, ('', msg)
   */
  async backoffAndAlert(
    url: string,
    error: string,
    b?: TransBranch,
    call: { branchId: string; op: string } = { branchId: '', op: 'msg' },
  ): Promise<void> {
    const t = this.trans;
    const deps = this.deps;
    const now = this.moveCronTime('backoff', 0);
    t.failedAttempts = (t.failedAttempts ?? 0) + 1;
    t.lastError = replyExcerpt(error);
    await deps.store.recordFailedAttempt(
      t.gid,
      t.status,
      b,
      {
        nextCronTime: t.nextCronTime,
        nextCronInterval: t.nextCronInterval,
        failedAttempts: t.failedAttempts,
        lastError: t.lastError,
      },
      now,
    );
    if (t.stuckAlerted) return;
    const reason = stuckReasonOf(t, stuckRuleOf(deps.conf, now));
    if (reason === undefined || !(await deps.store.claimStuckAlert(t.gid, t.status))) return;
    t.stuckAlerted = true;
    const branchId = b?.branchId ?? call.branchId;
    const op = b?.op ?? call.op;
    deps.log.warn('transaction is stuck', {
      gid: t.gid,
      trans_type: t.transType,
      branch_id: branchId,
      op,
      stuck_reason: reason,
      failed_attempts: t.failedAttempts,
      error: t.lastError,
    });
    if (!deps.conf.alertWebHook) return;
    const a: AlertPayload = {
      gid: t.gid,
      status: t.status,
      branch: url,
      error: t.lastError,
      retry_count: t.failedAttempts,
      event: 'stuck',
      trans_type: t.transType,
      stuck_reason: reason,
      branch_id: branchId,
      op,
      attempts: b?.attempts ?? t.failedAttempts,
    };
    const next = formatTime(t.nextCronTime);
    if (next) a.next_retry_time = next;
    deps.alert(a);
  }
}

/** The recovery notice of a stuck transaction that ended (whoever ended it: a pass, an abort, a force stop). */
export function sendRecovered(deps: Pick<PassDeps, 'alert' | 'conf' | 'log'>, t: TransGlobal): void {
  deps.log.info('stuck transaction ended', { gid: t.gid, trans_type: t.transType, status: t.status });
  if (!deps.conf.alertWebHook) return;
  deps.alert({
    gid: t.gid,
    status: t.status,
    branch: '',
    error: t.lastError ?? '',
    retry_count: t.failedAttempts ?? 0,
    event: 'recovered',
    trans_type: t.transType,
  });
}

/** The error a pass ends with when a branch did not succeed (tcc, xa, msg). */
export function passErrorOf(out: BranchOutcome): PassError {
  return new PassError(out.message || out.result, out.result === 'ONGOING');
}
