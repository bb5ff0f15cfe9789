/**
 * The sub-transaction barrier (spec §9.3–§9.5): makes a branch handler's local transaction run at most once per
 * (gid, branch, op), skip compensations whose forward op never ran (null compensation), and refuse forward ops
 * that arrive after their compensation (hanging).
 *
 * @module
 */
import { type BranchInfo, BranchOp, MSG_BRANCH_ID } from '@dtx/protocol';
import { DuplicatedError, FailureError } from '../errors.js';
import { type BarrierDb, type BarrierKey, barrierRow } from './barrier-db.js';
import { branchInfoFromMetadata, branchInfoFromQuery, type StringMap, validateBranchInfo } from './branch-info.js';

/**
 * What a guarded call did:
 * - `executed`: the business ran and its transaction committed;
 * - `duplicate`: skipped, the op already ran for this barrier id (a repeated request), or its compensation
 *   already ran (a forward op arriving after its compensation: hanging prevention);
 * - `null-compensation`: skipped, a compensation whose forward op never ran; the row it wrote now blocks that
 *   forward op for good.
 */
export type BarrierOutcome = 'executed' | 'duplicate' | 'null-compensation';

/** The business code of a guarded call. It receives the dialect's native transaction handle. */
export type BarrierBusiness<Tx> = (tx: Tx) => unknown;

const ORIGIN_OPS: Readonly<Record<string, string>> = {
  [BranchOp.Cancel]: BranchOp.Try,
  [BranchOp.Compensate]: BranchOp.Action,
  [BranchOp.Rollback]: BranchOp.Action,
};

/**
 * The forward op that a compensating op undoes: `cancel` → `try`, `compensate` → `action`,
 * `rollback` → `action` (workflow); `undefined` for every other op.
 */
export function originOpOf(op: string): string | undefined {
  return ORIGIN_OPS[op];
}

/** The barrier id of the n-th guarded call: `01`, `02`, … `99`, `100`. */
export function formatBarrierId(n: number): string {
  return String(n).padStart(2, '0');
}

/** The back-check key of a msg: (gid, `00`, `msg`, `01`), shared with `DoAndSubmit`'s guarded call. */
function msgKey(gid: string): BarrierKey {
  return { gid, branch_id: MSG_BRANCH_ID, op: BranchOp.Msg, barrier_id: formatBarrierId(1) };
}

/**
 * The barrier of one incoming branch request. Create a new one per request (never share it between requests):
 * it counts the guarded calls of the request, and the n-th call uses barrier id `0n`. A compensation handler
 * must make the same number of guarded calls, in the same order, as its forward handler.
 *
 * @example
 * ```ts
 * const barrier = BranchBarrier.fromQuery(request.query);
 * await barrier.call(db, async (client) => {
 *   await client.query('update account set balance = balance - $1 where id = $2', [amount, id]);
 * });
 * ```
 */
export class BranchBarrier implements BranchInfo {
  /** The transaction type (`saga`, `tcc`, `msg`, `xa`, `workflow`). */
  readonly trans_type: string;
  /** The global transaction id. */
  readonly gid: string;
  /** The branch id. */
  readonly branch_id: string;
  /** The op of this request (`action`, `compensate`, `try`, `confirm`, `cancel`, `msg`, …). */
  readonly op: string;
  #calls = 0;

  /**
   * @param info - the branch info of the request; all four fields must be non-empty.
   * @throws {@link BranchInfoError} naming the first missing field.
   */
  constructor(info: Readonly<Partial<BranchInfo>>) {
    const valid = validateBranchInfo(info);
    this.trans_type = valid.trans_type;
    this.gid = valid.gid;
    this.branch_id = valid.branch_id;
    this.op = valid.op;
  }

  /**
   * A barrier from an HTTP query string (`gid`, `trans_type`, `branch_id`, `op`).
   * @throws {@link BranchInfoError} naming the first missing field.
   */
  static fromQuery(query: StringMap): BranchBarrier {
    return new BranchBarrier(branchInfoFromQuery(query));
  }

  /**
   * A barrier from gRPC metadata or HTTP headers with DTM's `dtm-*` keys.
   * @throws {@link BranchInfoError} naming the first missing field.
   */
  static fromMetadata(metadata: StringMap): BranchBarrier {
    return new BranchBarrier(branchInfoFromMetadata(metadata));
  }

  /** The barrier id of the latest guarded call (`00` before the first). */
  get barrierId(): string {
    return formatBarrierId(this.#calls);
  }

  /**
   * Takes the next barrier id (`01`, `02`, …). Every guarded call takes one, SQL or Redis alike, so a
   * compensation that makes the same calls in the same order meets the same ids.
   */
  nextBarrierId(): string {
    this.#calls += 1;
    return formatBarrierId(this.#calls);
  }

  /**
   * Runs `business` at most once for this branch, op and barrier id, in one local transaction with the barrier
   * rows (spec §9.4):
   * 1. the barrier id counter is incremented (even if the call then fails);
   * 2. for `cancel`, `compensate` and `rollback`, the row of the forward op (`try`, `action`, `action`) is
   *    inserted unless present, with reason = this op;
   * 3. the row of this op is inserted unless present;
   * 4. op `msg` whose row was present → {@link DuplicatedError}, rolled back (the msg back-check came first);
   * 5. a compensation that inserted its forward op's row → `null-compensation`, committed, business not run;
   * 6. a row that was present → `duplicate`, committed, business not run;
   * 7. otherwise the business runs in the same transaction: it resolves → commit → `executed`; it throws →
   *    roll back and rethrow the same error (so a {@link FailureError} or {@link OngoingError} passes through
   *    unchanged).
   *
   * @param db - where the barrier table and your business data live.
   * @param business - your local transaction; receives the native handle (see {@link BarrierTransaction.handle}).
   * @throws {@link DuplicatedError} for op `msg` when the back-check already rolled the msg back.
   * @throws {@link BarrierTableMissingError} when the barrier table does not exist.
   */
  async call<Tx>(db: BarrierDb<Tx>, business: BarrierBusiness<Tx>): Promise<BarrierOutcome> {
    const barrier_id = this.nextBarrierId();
    const { trans_type, gid, branch_id, op } = this;
    const origin = originOpOf(op);
    return db.transaction(async (tx) => {
      // each row one literal: an optimised `{ ...row, op }` would make a new hidden class per call on Node 20
      const originInserted =
        origin === undefined
          ? 0
          : await tx.insertIgnore({ gid, branch_id, op: origin, barrier_id, trans_type, reason: op });
      const inserted = await tx.insertIgnore({ gid, branch_id, op, barrier_id, trans_type, reason: op });
      if (op === BranchOp.Msg && inserted === 0) {
        throw new DuplicatedError(
          `msg ${gid} was already rolled back by the back-check (barrier ${branch_id}/${op}/${barrier_id}); ` +
            'the local transaction was rolled back',
        );
      }
      if (origin !== undefined && originInserted === 1) return 'null-compensation';
      if (inserted === 0) return 'duplicate';
      await business(tx.handle);
      return 'executed';
    });
  }

  /**
   * The msg back-check (spec §9.5), for the `query_prepared` route of a msg sent with `DoAndSubmit`: marks the
   * msg's barrier row (gid, `00`, `msg`, `01`) as rolled back unless the local transaction already wrote it, then
   * reads who won. Outside any transaction. Resolves when the local transaction committed; if it is still running,
   * waits for it (the row is locked) and then decides.
   *
   * @throws {@link FailureError} when the msg is rolled back (its local transaction never committed, and now
   * never will: a later guarded call of it gets {@link DuplicatedError}).
   * @throws {@link BarrierTableMissingError} when the barrier table does not exist.
   */
  async queryPrepared(db: BarrierDb<unknown>): Promise<void> {
    const key = msgKey(this.gid);
    await db.insertIgnore(barrierRow(key, this.trans_type, BranchOp.Rollback));
    const reason = await db.selectReason(key);
    if (reason === BranchOp.Rollback) {
      throw new FailureError(`msg ${this.gid} is rolled back: its local transaction did not commit`);
    }
    if (reason === undefined) {
      throw new Error(`the barrier row of msg ${this.gid} vanished from ${db.table} during the back-check`);
    }
  }
}
