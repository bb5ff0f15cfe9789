import type { GlobalStatus } from '@dtx/protocol';
import { errorMessage } from '../util/error-message.js';
import {
  FailureError,
  InputError,
  LimitError,
  NotFoundError,
  OngoingError,
  RefusedError,
  UniqueConflictError,
} from './errors.js';
import { newGid } from './gid.js';
import type { KV, TransBranch, TransGlobal } from './model.js';
import { encodeOptions } from './model.js';
import { modeOf } from './modes.js';
import { type PassDeps, sendRecovered } from './pass.js';
import type { DtxSpan, ScanQuery, StuckRule, TraceContext } from './ports.js';
import type { Processor } from './processor.js';
import { type StuckReason, stuckRuleOf } from './stuck.js';
import type { Topics } from './topics.js';
import { generateBranches, newTrans } from './trans-factory.js';
import type { BranchInput, TransInput } from './trans-input.js';
import { phase2Branches } from './trans-mode.js';
import { checkWorkflowCustomData, sameBytes } from './workflow.js';

/** True for a mode whose client runs the steps and records them (workflow). */
const clientDriven = (transType: string): boolean => modeOf(transType)?.start === 'client';

/**
 * The service functions behind every transport (spec §2.4–§2.12). They take validated input, decide
 * with the core, record with the store and answer with a value or a typed error. No transport logic.
 *
 * Tracing: a new transaction stores the request's W3C trace context with its options, and every branch call
 * continues it. With tracing export on, each call that creates or changes a transaction runs in a SERVER span
 * (a child of the request's context), and that span's context is the one stored.
 */
export class TransService {
  constructor(
    private readonly deps: PassDeps,
    private readonly processor: Processor,
    readonly topics: Topics,
  ) {}

  private get store() {
    return this.deps.store;
  }
  private now(): number {
    return this.deps.clock.now();
  }

  newGid(): string {
    return newGid();
  }

  /** The stored trans of a gid that a request wants to create again, checked for type. */
  private async existing(input: TransInput, verb: string): Promise<TransGlobal> {
    const t = await this.store.findTrans(input.gid);
    if (!t) throw new Error(`gid '${input.gid}' conflicted but is not stored; retry`);
    if (t.transType !== input.transType) {
      throw new FailureError(
        `gid '${input.gid}' belongs to a ${t.transType} transaction, cannot ${verb} it as ${input.transType}`,
      );
    }
    return t;
  }

  /**
   * Runs `fn` inside a SERVER span when tracing is on, handing it the context to store; without a tracer, `fn`
   * gets the request's context and nothing else happens.
   */
  private traced<T>(
    verb: string,
    gid: string,
    transType: string,
    parent: TraceContext | undefined,
    fn: (trace: TraceContext | undefined) => Promise<T>,
  ): Promise<T> {
    const tracer = this.deps.tracer;
    if (tracer === undefined) return fn(parent);
    const span = tracer.startCall(verb, parent, gid, transType);
    return endSpan(span, fn(span.context));
  }

  prepare(input: TransInput): Promise<void> {
    return this.traced('prepare', input.gid, input.transType, input.trace, (trace) => this.doPrepare(input, trace));
  }

  private async doPrepare(input: TransInput, trace: TraceContext | undefined): Promise<void> {
    const start = modeOf(input.transType)?.start;
    if (start === 'client') {
      throw new InputError('trans_type', `a ${input.transType} is created with prepareWorkflow, not prepare`);
    }
    if (start === 'submit') {
      // DTM answers FAILURE for a gid that already finished, which a client reads as "don't retry"
      const old = await this.store.findTrans(input.gid);
      if (old && old.status !== 'prepared') throw new FailureError(`current status '${old.status}', cannot prepare.`);
      throw new InputError('trans_type', `a ${input.transType} is not prepared: submit it directly`);
    }
    const now = this.now();
    const t = newTrans(input, 'prepared', now, this.deps.conf, trace);
    const branches = generateBranches(input, now, this.topics.lookup);
    try {
      await this.store.saveNew(t, branches);
    } catch (err) {
      if (!(err instanceof UniqueConflictError)) throw err;
      const old = await this.existing(input, 'prepare');
      if (old.status !== 'prepared') throw new FailureError(`current status '${old.status}', cannot prepare.`);
    }
  }

  /**
   * Submit: a new transaction stores `trace`; a prepared one keeps the context stored by its prepare, which its
   * branches continue (the submit's own span, when tracing is on, is a sibling in the caller's trace).
   */
  submit(input: TransInput): Promise<void> {
    return this.traced('submit', input.gid, input.transType, input.trace, (trace) => this.doSubmit(input, trace));
  }

  private async doSubmit(input: TransInput, trace: TraceContext | undefined): Promise<void> {
    if (clientDriven(input.transType)) return this.submitWorkflow(input);
    const now = this.now();
    let t = newTrans(input, 'submitted', now, this.deps.conf, trace);
    let branches: TransBranch[] = generateBranches(input, now, this.topics.lookup);
    try {
      await this.store.saveNew(t, branches);
    } catch (err) {
      if (!(err instanceof UniqueConflictError)) throw err;
      t = await this.existing(input, 'submit');
      if (t.status === 'prepared') {
        await this.store.changeStatus(t.gid, 'prepared', 'submitted', {}, now);
        t.status = 'submitted';
        // this first pass runs with the submit request's options over the stored ones
        t.opts = { ...t.opts, ...input.opts };
        t.options = encodeOptions(t.opts);
        if (input.customData) t.customData = input.customData;
      } else if (t.status !== 'submitted') {
        throw new FailureError(`current status '${t.status}', cannot sumbmit.`);
      }
      branches = await this.store.findBranches(t.gid);
    }
    const waitResult = input.opts.wait_result ?? t.opts.wait_result ?? false;
    await this.processor.process(t, branches, true, { waitResult });
  }

  abort(input: TransInput): Promise<void> {
    return this.traced('abort', input.gid, input.transType, input.trace, () => this.doAbort(input));
  }

  private async doAbort(input: TransInput): Promise<void> {
    const t = await this.store.findTrans(input.gid);
    if (!t) throw new InputError('gid', `no transaction with gid '${input.gid}'`);
    // the stored mode may fail it at once (a prepared msg); a rollback is what the request's mode asks for (tcc, xa)
    if (modeOf(t.transType)?.abortMove(t.status) === 'fail') {
      await this.changeStatus(t, 'failed', { rollbackTime: this.now() });
      return;
    }
    if (modeOf(input.transType)?.abortMove(t.status) !== 'rollback') {
      throw new FailureError(`trans type: '${t.transType}' current status '${t.status}', cannot abort.`);
    }
    await this.changeStatus(t, 'aborting', { rollbackReason: input.rollbackReason });
    const branches = await this.store.findBranches(t.gid);
    await this.processor.process(t, branches, false, { waitResult: t.opts.wait_result === true });
  }

  private async changeStatus(
    t: TransGlobal,
    to: GlobalStatus,
    change: { rollbackReason?: string; rollbackTime?: number },
  ) {
    await this.store.changeStatus(t.gid, t.status, to, change, this.now());
    t.status = to;
    if (change.rollbackReason) t.rollbackReason = change.rollbackReason;
    if (t.stuckAlerted && to === 'failed') sendRecovered(this.deps, t);
  }

  /**
   * prepareWorkflow (spec §2.8): a new workflow is stored prepared, with no branches; an existing one is answered
   * as it is stored, whatever its status, with its recorded steps in insertion order (the client replays them).
   */
  prepareWorkflow(input: TransInput): Promise<{ trans: TransGlobal; branches: TransBranch[] }> {
    return this.traced('prepareWorkflow', input.gid, input.transType, input.trace, (trace) =>
      this.doPrepareWorkflow(input, trace),
    );
  }

  private async doPrepareWorkflow(
    input: TransInput,
    trace: TraceContext | undefined,
  ): Promise<{ trans: TransGlobal; branches: TransBranch[] }> {
    if (!clientDriven(input.transType)) {
      throw new InputError('trans_type', `expected workflow for prepareWorkflow, got '${input.transType}'`);
    }
    checkWorkflowCustomData(input.customData);
    const t = newTrans(input, 'prepared', this.now(), this.deps.conf, trace);
    try {
      await this.store.saveNew(t, []);
      return { trans: t, branches: [] };
    } catch (err) {
      if (!(err instanceof UniqueConflictError)) throw err;
    }
    const old = await this.store.findTrans(input.gid);
    if (!old) throw new Error(`gid '${input.gid}' conflicted but is not stored; retry`);
    if (!clientDriven(old.transType)) {
      throw new RefusedError(`gid '${input.gid}' belongs to a ${old.transType} transaction, not a workflow`);
    }
    return { trans: old, branches: await this.store.findBranches(old.gid) };
  }

  /**
   * submit of a workflow (spec §6.8): its outcome, `req_extra` {status, rollback_reason, result}, decided once by a
   * compare-and-set from prepared. The same outcome sent again (a client retrying; for failed, with any reason) is a
   * success; another outcome
   * once one is recorded, or an outcome for a gid that is no workflow, is refused (DTM answers a storage error).
   */
  private async submitWorkflow(input: TransInput): Promise<void> {
    const extra = input.reqExtra;
    const status = extra.status;
    if (status !== 'succeed' && status !== 'failed') {
      throw new InputError('req_extra.status', 'required for a workflow submit: succeed or failed');
    }
    const result = extra.result ?? '';
    const rollbackReason = extra.rollback_reason ?? '';
    const t = await this.store.findTrans(input.gid);
    if (!t) throw new RefusedError(`no workflow with gid '${input.gid}': prepareWorkflow first`);
    if (!clientDriven(t.transType)) {
      throw new RefusedError(`gid '${input.gid}' belongs to a ${t.transType} transaction, not a workflow`);
    }
    if (t.status === 'prepared') {
      const now = this.now();
      const change = {
        result,
        rollbackReason,
        ...(status === 'succeed' ? { finishTime: now } : { rollbackTime: now }),
      };
      try {
        await this.store.changeStatus(t.gid, 'prepared', status, change, now);
        this.deps.metrics?.finished(t.transType, status);
        t.status = status;
        if (t.stuckAlerted) sendRecovered(this.deps, t);
        return;
      } catch (err) {
        if (!(err instanceof NotFoundError)) throw err;
      }
      // another submit decided it meanwhile: judged by what it recorded
      const now2 = await this.store.findTrans(input.gid);
      if (!now2) throw new RefusedError(`workflow '${input.gid}' is no longer stored`);
      Object.assign(t, { status: now2.status, result: now2.result, rollbackReason: now2.rollbackReason });
    }
    // a failure resent is a success whatever its reason: DTM's client replays a failed step's reason from its record,
    // which may differ from the text of the first run; the first reason stays
    if (t.status === status && (status === 'failed' || (t.result === result && t.rollbackReason === rollbackReason))) {
      return;
    }
    throw new RefusedError(
      `workflow '${t.gid}' is ${t.status} already` +
        (t.status === status ? ' with another result or rollback_reason' : '') +
        `: it cannot be submitted as ${status}; read its outcome with prepareWorkflow`,
    );
  }

  /** Force a transaction to failed. `trace` is the request's context (for the span, when tracing is on). */
  forceStop(gid: string, trace?: TraceContext): Promise<void> {
    return this.traced('forceStop', gid, '', trace, () => this.doForceStop(gid));
  }

  private async doForceStop(gid: string): Promise<void> {
    const t = await this.store.findTrans(gid);
    if (!t) throw new InputError('gid', `no transaction with gid '${gid}'`);
    if (t.status === 'succeed' || t.status === 'failed') {
      throw new FailureError(`global transaction force stop error. status: ${t.status}. error:`);
    }
    await this.changeStatus(t, 'failed', { rollbackTime: this.now() });
    // a pass of it running here learns of the stop now, not at its next write (it may hold its results back)
    this.processor.stopPass(gid);
  }

  /** Add a tcc / xa branch; its confirm / cancel (commit / rollback) continue the context its prepare stored. */
  registerBranch(b: BranchInput): Promise<void> {
    return this.traced('registerBranch', b.gid, b.transType, b.trace, () => this.doRegisterBranch(b));
  }

  private async doRegisterBranch(b: BranchInput): Promise<void> {
    if (clientDriven(b.transType)) return this.registerWorkflowBranch(b);
    const ops = modeOf(b.transType)?.phase2;
    if (ops === undefined) throw new InputError('trans_type', `a ${b.transType} transaction registers no branch`);
    const rows = phase2Branches(ops, b, this.now());
    try {
      await this.store.insertBranches(b.gid, 'prepared', rows);
    } catch (err) {
      if (err instanceof NotFoundError) throw new FailureError(`no trans with gid: ${b.gid} status: prepared found`);
      if (err instanceof UniqueConflictError) {
        throw new UniqueConflictError(`branch '${b.branchId}' of gid '${b.gid}' is already registered`);
      }
      throw err;
    }
  }

  /**
   * A workflow step's outcome (spec §6.8): one row {branch_id, op, status, bytes}, while the workflow is prepared.
   * The same record sent again is a success (a client retrying); a record that contradicts the stored one, or one
   * for a workflow that is decided or unknown, is refused (RefusedError: HTTP 422, gRPC ALREADY_EXISTS), never a
   * FAILURE, which DTM's client would read as the step failing.
   */
  private async registerWorkflowBranch(b: BranchInput): Promise<void> {
    const op = b.op;
    if (op === undefined) throw new InputError('op', 'required for a workflow step');
    const t = await this.store.findTrans(b.gid);
    if (!t) throw new RefusedError(`no workflow with gid '${b.gid}': prepareWorkflow first`);
    if (!clientDriven(t.transType)) {
      throw new RefusedError(`gid '${b.gid}' belongs to a ${t.transType} transaction, not a workflow`);
    }
    const decided = () =>
      new RefusedError(
        `workflow '${b.gid}' is ${t.status}: no step can be recorded any more; read its outcome with prepareWorkflow`,
      );
    if (t.status !== 'prepared') throw decided();
    // the records so far: a duplicate is judged without a write, and their number is bounded (a loop of steps that
    // never ends must not fill the store)
    const recorded = await this.store.findBranches(b.gid);
    const same = recorded.find((x) => x.branchId === b.branchId && x.op === b.op);
    const status = b.status as TransBranch['status'];
    if (same !== undefined) return judgeDuplicate(b, same, status);
    if (recorded.length >= this.deps.conf.maxSteps) {
      throw new LimitError(
        'branch_id',
        `workflow '${b.gid}' has ${recorded.length} step records, the most Limits.MaxSteps (${this.deps.conf.maxSteps}) allows`,
      );
    }
    const now = this.now();
    const row: TransBranch = {
      gid: b.gid,
      url: '',
      binData: b.data,
      branchId: b.branchId,
      op,
      status,
      createTime: now,
      updateTime: now,
    };
    try {
      await this.store.insertBranches(b.gid, 'prepared', [row]);
      return;
    } catch (err) {
      if (err instanceof NotFoundError) {
        const moved = await this.store.findTrans(b.gid);
        t.status = moved?.status ?? t.status;
        throw decided();
      }
      if (!(err instanceof UniqueConflictError)) throw err;
    }
    // recorded meanwhile by another execution of the same workflow
    const had = (await this.store.findBranches(b.gid)).find((x) => x.branchId === b.branchId && x.op === b.op);
    return judgeDuplicate(b, had, status);
  }

  async query(gid: string): Promise<{ trans: TransGlobal | undefined; branches: TransBranch[] }> {
    const trans = await this.store.findTrans(gid);
    return { trans, branches: trans ? await this.store.findBranches(gid) : [] };
  }

  scan(q: ScanQuery) {
    return this.store.scanTrans(q);
  }

  /** Reschedule unfinished trans whose next run is more than `timeoutSeconds` away (spec §2.10). */
  resetCronTime(timeoutSeconds: number, limit: number) {
    const now = this.now();
    return this.store.resetCronTime(now + timeoutSeconds * 1000, limit, now);
  }

  async resetNextCronTime(gid: string): Promise<void> {
    try {
      await this.store.resetTransCronTime(gid, this.now());
    } catch (err) {
      if (err instanceof NotFoundError) throw new InputError('gid', `no transaction with gid '${gid}'`);
      throw err;
    }
  }

  /** The stuck rule now (config Stuck.FailedAttempts / Stuck.UnfinishedAfter). */
  stuckRule(): StuckRule {
    return stuckRuleOf(this.deps.conf, this.now());
  }

  /** Stuck unfinished transactions, newest first, paged (`GET /api/dtmsvr/stuck`). */
  stuck(position: string, limit: number) {
    return this.store.findStuck(this.stuckRule(), position, limit);
  }

  /** Stuck transactions by reason, for the dtx_stuck_transactions gauge. */
  async stuckCounts(): Promise<{ reason: StuckReason; count: number }[]> {
    const c = await this.store.countStuck(this.stuckRule());
    return [
      { reason: 'attempts', count: c.attempts },
      { reason: 'age', count: c.age },
    ];
  }

  scanKV(cat: string, position: string, limit: number) {
    return this.store.scanKV(cat, position, limit);
  }

  queryKV(cat: string, key: string): Promise<KV[]> {
    return this.store.findKV(cat, key);
  }
}

/**
 * A workflow step record whose (branch_id, op) is stored already: the same status and bytes are a success (the
 * same record sent again), anything else is refused, saying what is recorded.
 */
function judgeDuplicate(b: BranchInput, had: TransBranch | undefined, status: string): void {
  if (had && had.status === status && sameBytes(had.binData, b.data)) return;
  throw new RefusedError(
    `step ${b.branchId} (${b.op}) of workflow '${b.gid}' is recorded already` +
      (had ? ` as ${had.status}${had.status === status ? ' with other data' : ''}` : '') +
      '; read its progress with prepareWorkflow and go on from the recorded outcome',
  );
}

/** Ends `span` when `work` settles: with error status when it failed (an ONGOING answer is not a failure). */
async function endSpan<T>(span: DtxSpan, work: Promise<T>): Promise<T> {
  try {
    const v = await work;
    span.end();
    return v;
  } catch (err) {
    span.end(err instanceof OngoingError ? {} : { error: errorMessage(err) });
    throw err;
  }
}
