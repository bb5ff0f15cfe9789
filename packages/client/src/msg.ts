/**
 * Two-phase message: a local transaction commits, and then the coordinator delivers every step, retrying until
 * each succeeds — a msg never rolls back once submitted. `prepare` records the intent first, so that if the
 * process dies before `submit`, the coordinator asks the service (the `queryPrepared` back-check) whether the
 * local transaction committed.
 */
import { BranchOp, MSG_BRANCH_ID, Result, type TransRequest, TransType } from '@dtx/protocol';
import type { BarrierDb } from './barrier/barrier-db.js';
import type { BarrierBusiness } from './barrier/branch-barrier.js';
import { BranchBarrier } from './barrier/branch-barrier.js';
import type {
  CallOptions,
  CoordinatorTransport,
  TransParts,
  TransportClient,
  WirePayload,
} from './coordinator-transport.js';
import { DuplicatedError, FailureError } from './errors.js';
import { type SubmitHandle, submitHandle } from './submit-handle.js';
import { buildTransRequest } from './trans-request.js';
import { checkCount, type TransactionOptions, toWireOptions } from './transaction-options.js';

/** Options of a two-phase message. */
export interface MsgOptions extends TransactionOptions {
  /**
   * Deliver all steps in parallel instead of one after the other. Default: `false`. HTTP only: DTM's gRPC API has
   * no such option, and a gRPC client refuses it.
   */
  concurrent?: boolean;
  /** Seconds after creation before the coordinator delivers the steps. Default: `0`, at once. */
  delay?: number;
}

/**
 * A two-phase message under construction; create it with `client.msg(gid?, options?)`, over HTTP (`DtxClient`)
 * or gRPC (`DtxGrpcClient`) alike.
 *
 * ```ts
 * const msg = client.msg().add(`${busi}/TransIn`, { amount: 30 });
 * await msg.doAndSubmit(`${busi}/QueryPrepared`, sqliteBarrierDb(db), async (tx) => {
 *   tx.prepare('update account set balance = balance - 30 where id = 1').run();
 * });
 * ```
 *
 * @typeParam Payload - what a step carries: any JSON value over HTTP, protobuf bytes over gRPC.
 */
export class Msg<Payload = unknown> {
  readonly #transport: CoordinatorTransport<Payload, unknown>;
  readonly #options: MsgOptions;
  readonly #steps: Record<string, string>[] = [];
  readonly #payloads: WirePayload[] = [];
  #queryPrepared: string | undefined;

  /** Prefer `client.msg()`. */
  constructor(
    client: TransportClient<Payload, unknown>,
    /** The global id. */
    readonly gid: string,
    options: MsgOptions = {},
  ) {
    this.#transport = client.transport;
    this.#options = { ...options };
  }

  /**
   * Appends a step: the coordinator sends `payload` to `action` once the message is submitted.
   * @param action URL of the receiver (gRPC: `host:port/pkg.Svc/Method`), or `topic://<name>` for every
   *   subscriber of a topic
   * @param payload HTTP: any JSON value, sent as its JSON text, default `null`; gRPC: the request message's bytes
   */
  add(action: string, payload?: Payload): this {
    const encoded = this.#transport.encodePayload(payload as Payload);
    this.#steps.push({ action });
    this.#payloads.push(encoded);
    return this;
  }

  /** Delivers the steps no earlier than `seconds` after the message was created (custom_data `{"delay":N}`). */
  delay(seconds: number): this {
    this.#options.delay = checkCount('delay', seconds);
    return this;
  }

  /** Delivers all steps in parallel. */
  concurrent(): this {
    this.#options.concurrent = true;
    return this;
  }

  /** Sets (or replaces) options; see {@link MsgOptions}. */
  setOptions(options: MsgOptions): this {
    Object.assign(this.#options, options);
    return this;
  }

  /** The body the HTTP transport sends for `prepare` and `submit` (spec §2.3); `rollbackReason` is for `abort`. */
  toRequest(rollbackReason?: string): TransRequest {
    return buildTransRequest(this.toParts(rollbackReason));
  }

  /** The transaction `prepare`, `submit` and `abort` hand to the transport. */
  toParts(rollbackReason?: string): TransParts {
    const delay = this.#options.delay ?? 0;
    return {
      gid: this.gid,
      transType: TransType.Msg,
      steps: this.#steps.map((s) => ({ ...s })),
      payloads: [...this.#payloads],
      ...(checkCount('delay', delay) > 0 ? { customData: JSON.stringify({ delay }) } : {}),
      ...(this.#queryPrepared === undefined ? {} : { queryPrepared: this.#queryPrepared }),
      ...(rollbackReason === undefined ? {} : { rollbackReason }),
      options: toWireOptions(this.#options),
      concurrent: this.#options.concurrent === true,
    };
  }

  /**
   * Records the message as prepared. If it is not submitted (or aborted) within `timeoutToFail`, the
   * coordinator calls `queryPrepared` with `gid`, `trans_type=msg`, `branch_id=00` and `op=msg`: SUCCESS means
   * "committed, deliver it", FAILURE "rolled back, drop it", ONGOING "ask again later".
   * @param queryPrepared URL of the back-check handler (see `BranchBarrier.queryPrepared`); gRPC:
   *   `host:port/pkg.Svc/Method`
   */
  async prepare(queryPrepared: string, call: CallOptions = {}): Promise<void> {
    this.#queryPrepared = queryPrepared;
    await this.#transport.prepare(this.toParts(), call);
  }

  /**
   * Hands the message to the coordinator for delivery; call it after the local transaction committed. Also
   * works without `prepare`, when there is no local transaction to wait for. Resolves when delivered (with
   * `waitResult`) or accepted; `OngoingError` when a step is still being retried (it will be delivered: do not
   * send a new message); `CoordinatorError` when the coordinator was not reached (repeat the submit). A repeated
   * submit of a delivered message resolves. Returns a {@link SubmitHandle} (the submit's promise, with `gid`,
   * `status()` and `wait()`).
   * @param call `signal`: abandons the submit (and its retries); default: none
   */
  submit(call: CallOptions = {}): SubmitHandle {
    return submitHandle(this.gid, this.#transport as CoordinatorTransport<never, unknown>, () =>
      this.#transport.submit(this.toParts(), call),
    );
  }

  /** Drops a prepared message: the coordinator marks it failed and delivers nothing. */
  async abort(call: CallOptions = {}): Promise<void> {
    await this.#transport.abort(this.toParts(), call);
  }

  /**
   * Runs `business` in a local transaction and submits the message if it commits — the "transactional outbox"
   * without an outbox table (spec §9.5):
   *
   * 1. `prepare` with `queryPrepared`;
   * 2. run `business` inside the sub-transaction barrier (gid, branch `00`, op `msg`) on `db`;
   * 3. success → `submit`;
   *    `FailureError` → `abort`, and rethrow;
   *    `DuplicatedError` → the back-check came first and decided "rolled back"; rethrow;
   *    any other error → ask `queryPrepared` once: FAILURE → `abort`, SUCCESS → `submit`, anything else → leave
   *    it to the coordinator's back-check; then rethrow.
   *
   * Your `queryPrepared` handler answers with `BranchBarrier.queryPrepared(db)` on the same database.
   * @param queryPrepared URL of the back-check handler
   * @param db the database of the local transaction, e.g. `sqliteBarrierDb(db)`; it holds the barrier table
   * @param business the local transaction; receives the native transaction handle of `db`
   * @param call `signal`: abandons the coordinator calls; default: none
   * @throws the business's error, after the message was aborted or left to the back-check; `DuplicatedError`
   *   when the back-check already rolled the message back; a coordinator error of `prepare` or `submit`
   */
  async doAndSubmit<Tx>(
    queryPrepared: string,
    db: BarrierDb<Tx>,
    business: BarrierBusiness<Tx>,
    call: CallOptions = {},
  ): Promise<void> {
    const barrier = new BranchBarrier({
      trans_type: TransType.Msg,
      gid: this.gid,
      branch_id: MSG_BRANCH_ID,
      op: BranchOp.Msg,
    });
    await this.prepare(queryPrepared, call);
    try {
      await barrier.call(db, business);
    } catch (err) {
      // Errors of abort / submit on these paths are not reported: the business's error is the news, and the
      // coordinator's back-check settles a message left prepared.
      if (err instanceof DuplicatedError) throw err;
      if (err instanceof FailureError) {
        await this.abort(call).catch(ignore);
        throw err;
      }
      const decision = await this.#askQueryPrepared(queryPrepared);
      if (decision === Result.Failure) await this.abort(call).catch(ignore);
      else if (decision === Result.Success) await this.submit(call).catch(ignore);
      throw err;
    }
    await this.submit(call);
  }

  /** Calls the back-check like the coordinator would; `undefined` when it cannot tell. */
  async #askQueryPrepared(queryPrepared: string): Promise<Result | undefined> {
    try {
      const { result } = await this.#transport.callBranch({
        url: queryPrepared,
        gid: this.gid,
        transType: TransType.Msg,
        branchId: MSG_BRANCH_ID,
        op: BranchOp.Msg,
        withCoordinator: false,
        ...(this.#options.branchHeaders === undefined ? {} : { headers: this.#options.branchHeaders }),
      });
      return result === Result.Success || result === Result.Failure ? result : undefined;
    } catch {
      return undefined;
    }
  }
}

function ignore(): void {}
