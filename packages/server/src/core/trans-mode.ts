import type { BranchOp, GlobalStatus, TransType } from '@dtx/protocol';
import type { TransBranch } from './model.js';
import type { TransPass } from './pass.js';
import type { BranchInput, TransInput } from './trans-input.js';

/** Subscriber URLs of a topic, from the topic cache. */
export type TopicLookup = (topic: string) => string[] | undefined;

/**
 * How a transaction of a mode comes to be (spec §2.4, §2.8):
 * - `submit`: submitted directly with its steps; never prepared (saga);
 * - `prepare`: prepared, then submitted (or submitted directly); branches come with it or are registered (msg, tcc, xa);
 * - `client`: created with prepareWorkflow; its client runs the steps, records each with registerBranch and the
 *   outcome with submit; the server keeps state and resumes it (workflow).
 */
export type TransStart = 'submit' | 'prepare' | 'client';

/** What abort (spec §2.7) does with a transaction in a status: straight to failed, roll back, or refuse. */
export type AbortMove = 'fail' | 'rollback' | 'refuse';

/** The two ops of a second phase (tcc, xa), and the registerBranch field that holds the URL each calls. */
export interface Phase2Ops {
  commit: { op: BranchOp; url: 'confirm' | 'url' };
  rollback: { op: BranchOp; url: 'cancel' | 'url' };
}

/**
 * One transaction mode — saga, msg, tcc, xa, workflow — as one object: every rule in which the modes differ, so that
 * the rest of the server asks the mode instead of testing its name. Each lives in its own file (core/saga.ts,
 * core/msg.ts, …) and is registered in core/modes.ts; a new mode is one file, its line there, and its routes.
 */
export interface TransMode {
  readonly type: TransType;
  /** How a transaction of the mode starts (prepare / submit / prepareWorkflow). */
  readonly start: TransStart;
  /**
   * The branches the steps of a prepare / submit become (saga, msg: one payload per step, spec §6.3); undefined for
   * a mode whose branches are registered or recorded later.
   */
  readonly stepBranches?: ((input: TransInput, now: number, topics: TopicLookup) => TransBranch[]) | undefined;
  /** Steps have compensations (saga): their URLs are checked, and a step may delay its compensation. */
  readonly compensatingSteps: boolean;
  /** A step's action may name a topic, `topic://name`, expanded to its subscribers (msg). */
  readonly topicSteps: boolean;
  /** The second phase of a mode whose branches are registered by URL (tcc, xa); undefined for the others. */
  readonly phase2?: Phase2Ops | undefined;
  /**
   * Whether TimeoutToFail applies when the transaction sets no timeout_to_fail (spec §6.2): every mode but saga,
   * which times out only when it asks to.
   */
  readonly defaultTimeout: boolean;
  /**
   * What a FAILURE answer of a branch with `op` means: true — the branch failed for good and the mode rolls back (a
   * saga's action); false — a retryable error like any other (every other call: a compensation, a confirm, a msg
   * action must succeed in the end).
   */
  failureIsFinal(op: string): boolean;
  /** HTTP branch calls are POSTed even with an empty payload (xa, spec §6.6); otherwise an empty one is a GET. */
  readonly alwaysPost: boolean;
  /**
   * A pass may hold a branch's decided result (succeed / failed) in memory and write it with its next status change
   * (or at the end of the pass, or before a lease renewal) instead of on its own (saga, msg): a crash before that
   * write makes the next pass call the branch again, which branches must bear anyway (idempotent, the barrier). The
   * write that moves the transaction on — to aborting before any compensation, to its final status — carries them.
   */
  readonly holdsResults: boolean;
  /** What abort does with a transaction of this mode in `status`. */
  abortMove(status: GlobalStatus): AbortMove;
  /**
   * The edge check of a non-empty custom_data (`cd` parsed, `text` as sent; `steps` the number of steps) of a
   * prepare / submit of the mode. Throws an InputError naming the field.
   */
  checkCustomData?: ((cd: unknown, text: string, steps: number) => void) | undefined;
  /** The edge check of the req_extra of a prepare / submit / abort of the mode. Throws an InputError naming the field. */
  checkReqExtra?: ((extra: Record<string, string>) => void) | undefined;
  /** One processing pass of a transaction of the mode (spec §6). */
  process(p: TransPass): Promise<void>;
}

/** The abort rule of the modes that never abort (saga, workflow). */
export const neverAborts = (): AbortMove => 'refuse';

/** The FAILURE rule of the modes in which no FAILURE is final. */
export const noFinalFailure = (): boolean => false;

/** A branch id of a step: `01`, `02`, … */
export const pad2 = (i: number): string => String(i).padStart(2, '0');

/** A new prepared branch row. */
export function newBranch(
  gid: string,
  url: string,
  binData: Uint8Array,
  branchId: string,
  op: BranchOp,
  now: number,
): TransBranch {
  return { gid, url, binData, branchId, op, status: 'prepared', createTime: now, updateTime: now };
}

/** Registered branches of a second phase (tcc, xa): the rollback, then the commit (spec §2.5). */
export function phase2Branches(ops: Phase2Ops, b: BranchInput, now: number): TransBranch[] {
  return [
    newBranch(b.gid, b[ops.rollback.url], b.data, b.branchId, ops.rollback.op, now),
    newBranch(b.gid, b[ops.commit.url], b.data, b.branchId, ops.commit.op, now),
  ];
}
