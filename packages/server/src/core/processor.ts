import { errorMessage, FailureError, OngoingError } from './errors.js';
import type { TransBranch, TransGlobal } from './model.js';
import { processMsg } from './msg.js';
import { type PassDeps, PassError, TransPass } from './pass.js';
import { processSaga } from './saga.js';
import { processTcc } from './tcc.js';
import { processXa } from './xa.js';

const MODES: Record<string, (p: TransPass) => Promise<void>> = {
  saga: processSaga,
  msg: processMsg,
  tcc: processTcc,
  xa: processXa,
};

export interface ProcessOptions {
  /** Run the pass before answering (spec §6.9). */
  waitResult: boolean;
  /** Milliseconds added to the clock for timeout decisions (test mode). */
  forwardMs?: number;
}

/**
 * Runs processing passes. Without wait_result the pass runs in the background and the caller is
 * answered at once; with it, the caller gets the pass's outcome (spec §6.9).
 */
export class Processor {
  private readonly running = new Set<Promise<void>>();
  /** Gids with a pass running in this instance. */
  private readonly active = new Map<string, number>();

  constructor(readonly deps: PassDeps) {}

  /** One pass; throws the pass's error (a PassError, a lost CAS, a store failure). */
  async runPass(trans: TransGlobal, branches: TransBranch[], forwardMs = 0): Promise<void> {
    const mode = MODES[trans.transType];
    if (!mode) throw new Error(`unknown trans type: ${trans.transType}`);
    const gid = trans.gid;
    this.active.set(gid, (this.active.get(gid) ?? 0) + 1);
    try {
      await mode(new TransPass(this.deps, trans, branches, forwardMs));
    } finally {
      const n = this.active.get(gid)! - 1;
      if (n === 0) this.active.delete(gid);
      else this.active.set(gid, n);
    }
  }

  /** True while this instance runs a pass of gid (the cron then leaves it to that pass). */
  isActive(gid: string): boolean {
    return this.active.has(gid);
  }

  /**
   * Process for an API call: submit (isSubmit) or abort. Resolves to nothing on success; throws
   * OngoingError / FailureError / another error for the reply.
   */
  async process(trans: TransGlobal, branches: TransBranch[], isSubmit: boolean, o: ProcessOptions): Promise<void> {
    if (!o.waitResult) {
      const run = this.runPass(trans, branches, o.forwardMs)
        .catch((err: unknown) => this.logPassError(trans, err))
        .finally(() => this.running.delete(run));
      this.running.add(run);
      return;
    }
    try {
      await this.runPass(trans, branches, o.forwardMs);
    } catch (err) {
      if (err instanceof PassError && err.ongoing) throw new OngoingError();
      throw err;
    }
    if (isSubmit && trans.status !== 'succeed') {
      throw new FailureError(trans.rollbackReason || 'wait result not return success');
    }
  }

  logPassError(trans: TransGlobal, err: unknown): void {
    if (err instanceof PassError) {
      this.deps.log.info('pass ended before the trans finished; cron will retry', {
        gid: trans.gid,
        error: err.message,
      });
    } else {
      this.deps.log.warn('pass failed; cron will retry', { gid: trans.gid, error: errorMessage(err) });
    }
  }

  /** Wait for background passes (shutdown, tests). */
  async drain(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }
}
