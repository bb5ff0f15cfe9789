import { errorMessage } from '../util/error-message.js';
import { CallSlots } from './call-slots.js';
import { FailureError, NotFoundError, OngoingError } from './errors.js';
import type { TransBranch, TransGlobal } from './model.js';
import { modeOf } from './modes.js';
import { type PassDeps, PassError, TransPass } from './pass.js';

/** DTM's text for a wait_result submit that did not succeed and has no rollback reason. */
export const WAIT_RESULT_FAILURE = 'wait result not return success: FAILURE';

export interface ProcessOptions {
  /** Run the pass before answering (spec §6.9). */
  waitResult: boolean;
  /** Milliseconds added to the clock for timeout decisions (test mode). */
  forwardMs?: number;
}

/** The ONGOING reply of a wait_result call whose transaction is still being driven forward (or back). */
export function stillRunning(trans: TransGlobal, lastError: string): OngoingError {
  const why = lastError ? ` (last branch error: ${lastError})` : '';
  return new OngoingError(
    `transaction '${trans.gid}' is still ${trans.status}${why}: it is being processed and will be retried, ` +
      'query it or submit it again with the same gid',
  );
}

/**
 * Runs processing passes, at most one per gid in this process. Without wait_result the pass runs in the
 * background and the caller is answered at once; with it, the caller gets the pass's outcome (spec §6.9,
 * improved: a transaction that is still being processed answers ONGOING, never FAILURE).
 */
export class Processor {
  private readonly running = new Set<Promise<void>>();
  /**
   * Background passes that found every slot taken, started in order as slots free up (at most
   * Limits.MaxBackgroundPasses of them; past that the cron is told they are due).
   */
  private readonly waiting: { trans: TransGlobal; branches: TransBranch[]; forwardMs: number | undefined }[] = [];
  /** The pass of each gid running in this instance. */
  private readonly active = new Map<string, Promise<void>>();
  /** The pass object of each of those, for its lease. */
  private readonly passes = new Map<string, TransPass>();
  /** Bounds the branch calls in flight in this process (Limits.MaxConcurrentCalls). */
  private readonly slots: CallSlots;

  constructor(readonly deps: PassDeps) {
    this.slots = new CallSlots(deps.conf.maxCalls);
  }

  /**
   * One pass; throws the pass's error (a PassError, a lost CAS, a store failure). Resolves only when every
   * branch call the pass started has ended. When a pass of the same gid already runs here, this waits for it
   * instead of starting a second one, and `trans` gets the status the store then holds.
   */
  async runPass(trans: TransGlobal, branches: TransBranch[], forwardMs = 0): Promise<TransPass | undefined> {
    const mode = modeOf(trans.transType);
    if (!mode) throw new Error(`unknown trans type: ${trans.transType}`);
    const gid = trans.gid;
    const current = this.active.get(gid);
    if (current) {
      await current.catch(() => {});
      await this.reloadStatus(trans);
      return undefined;
    }
    const pass = new TransPass(this.deps, mode, trans, branches, forwardMs, this.slots);
    const run = (async () => {
      try {
        await mode.process(pass);
      } finally {
        await pass.settle();
        // what the pass held back and no status change carried (it ends unfinished, or a late call's result)
        await pass.flushHeld().catch((err: unknown) => {
          if (err instanceof NotFoundError) return; // the status moved on (another instance, a force stop)
          this.deps.log.warn('branch results not written; the next pass calls those branches again', {
            gid,
            error: errorMessage(err),
          });
        });
        this.deps.metrics?.passHandled(trans.transType, (this.deps.clock.now() - trans.createTime) / 1000);
      }
    })();
    this.active.set(gid, run);
    this.passes.set(gid, pass);
    try {
      await run;
    } finally {
      this.active.delete(gid);
      this.passes.delete(gid);
    }
    return pass;
  }

  /**
   * After the cron leased `gid` until `leasedUntil` while a pass of it runs here: when that pass holds a longer
   * lease (a call longer than RetryInterval in flight), that lease is written back, so that no other instance
   * takes the transaction before the pass's calls have ended. (The cron's lease of a row that is due only in
   * a widened window, in test mode, would otherwise cut it short.)
   */
  async keepLease(gid: string, leasedUntil: number): Promise<void> {
    const t = this.passes.get(gid)?.trans;
    if (t === undefined || t.nextCronTime <= leasedUntil) return;
    await this.deps.store.touchCronTime(gid, t.status, t.nextCronTime, t.nextCronInterval, this.deps.clock.now());
  }

  /** Copies the stored status and rollback reason into `trans`; false when the store no longer has it. */
  private async reloadStatus(trans: TransGlobal): Promise<boolean> {
    const stored = await this.deps.store.findTrans(trans.gid);
    if (!stored) return false;
    trans.status = stored.status;
    trans.rollbackReason = stored.rollbackReason;
    return true;
  }

  /** True while this instance runs a pass of gid (the cron then leaves it to that pass). */
  isActive(gid: string): boolean {
    return this.active.has(gid);
  }

  /** The status of `gid` was moved by someone else (a force stop): its pass here, if any, starts no further call. */
  stopPass(gid: string): void {
    this.passes.get(gid)?.stop();
  }

  /** Background passes running now. */
  get backgroundPasses(): number {
    return this.running.size;
  }

  /**
   * Process for an API call: submit (isSubmit) or abort. Resolves to nothing on success; throws
   * OngoingError (still being processed: will be retried), FailureError (rolled back or rolling back) or
   * another error for the reply.
   */
  async process(trans: TransGlobal, branches: TransBranch[], isSubmit: boolean, o: ProcessOptions): Promise<void> {
    const metrics = this.deps.metrics;
    if (metrics === undefined || !o.waitResult) {
      await this.processOnce(trans, branches, isSubmit, o);
      // DTM counts a submit that is not waited for as ok
      metrics?.transProcessed(trans.transType, true);
      return;
    }
    try {
      await this.processOnce(trans, branches, isSubmit, o);
    } catch (err) {
      metrics.transProcessed(trans.transType, false);
      throw err;
    }
    metrics.transProcessed(trans.transType, true);
  }

  private async processOnce(
    trans: TransGlobal,
    branches: TransBranch[],
    isSubmit: boolean,
    o: ProcessOptions,
  ): Promise<void> {
    if (!o.waitResult) {
      const limit = this.deps.conf.maxBackgroundPasses;
      if (this.running.size < limit) this.startBackground(trans, branches, o.forwardMs);
      else if (this.waiting.length < limit) this.waiting.push({ trans, branches, forwardMs: o.forwardMs });
      else {
        // stored already; make it due now so the cron, not the lease of creation, decides when it runs
        this.deps.log.debug('background passes and their queue at their limit; left to the cron', {
          gid: trans.gid,
          trans_type: trans.transType,
        });
        const now = this.deps.clock.now();
        await this.deps.store.touchCronTime(trans.gid, trans.status, now, trans.nextCronInterval, now);
      }
      return;
    }
    let pass: TransPass | undefined;
    try {
      pass = await this.runPass(trans, branches, o.forwardMs);
    } catch (err) {
      // a branch that errs or answers ONGOING leaves the transaction to the cron: still running, not failed
      if (err instanceof PassError) throw stillRunning(trans, err.message);
      if (!(err instanceof NotFoundError)) throw err;
      // a lost compare-and-set: someone else (force stop, another instance) moved it; answer by what it is now
      if (!(await this.reloadStatus(trans))) throw err;
    }
    if (!isSubmit || trans.status === 'succeed') return;
    if (trans.status === 'aborting' || trans.status === 'failed') {
      throw new FailureError(trans.rollbackReason || WAIT_RESULT_FAILURE);
    }
    throw stillRunning(trans, pass?.lastError ?? '');
  }

  private startBackground(trans: TransGlobal, branches: TransBranch[], forwardMs: number | undefined): void {
    const run = this.runPass(trans, branches, forwardMs)
      .then(
        () => {},
        (err: unknown) => this.logPassError(trans, err),
      )
      .finally(() => {
        this.running.delete(run);
        this.startWaiting();
      });
    this.running.add(run);
  }

  /** Starts queued passes while there is room; one whose creation lease ran out is the cron's now. */
  private startWaiting(): void {
    while (this.running.size < this.deps.conf.maxBackgroundPasses) {
      const next = this.waiting.shift();
      if (!next) return;
      if (this.deps.clock.now() >= next.trans.nextCronTime) continue;
      this.startBackground(next.trans, next.branches, next.forwardMs);
    }
  }

  /** True while gid waits in this instance's queue of background passes (the cron leaves it there). */
  isWaiting(gid: string): boolean {
    return this.waiting.some((w) => w.trans.gid === gid);
  }

  logPassError(trans: TransGlobal, err: unknown): void {
    if (err instanceof PassError) {
      this.deps.log.info('pass ended before the trans finished; cron will retry', {
        gid: trans.gid,
        trans_type: trans.transType,
        error: err.message,
      });
    } else {
      this.deps.log.warn('pass failed; cron will retry', {
        gid: trans.gid,
        trans_type: trans.transType,
        error: errorMessage(err),
      });
    }
  }

  /** Wait for background passes (shutdown, tests). */
  async drain(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }
}
