/**
 * Saga: a sequence of steps, each a forward `action` and its `compensate`. The coordinator runs the actions in
 * order (or in parallel, see {@link Saga.concurrent}); when one answers FAILURE it runs the compensations of
 * everything that may have run, last step first.
 */
import { MAX_COMPENSATE_DELAY, type TransRequest, TransType } from '@dtx/protocol';
import type {
  CallOptions,
  CoordinatorTransport,
  TransParts,
  TransportClient,
  WirePayload,
} from './coordinator-transport.js';
import { DtxError } from './errors.js';
import { type SubmitHandle, submitHandle } from './submit-handle.js';
import { buildTransRequest } from './trans-request.js';
import { checkCount, type TransactionOptions, toWireOptions } from './transaction-options.js';

/** Options of a saga. */
export interface SagaOptions extends TransactionOptions {
  /**
   * How many times, within one processing pass, the coordinator re-runs an action that answered ONGOING or an
   * error, before it gives up and compensates. Default: `0`, no immediate retries: the action is retried by the
   * coordinator's cron, forever, until it answers SUCCESS or FAILURE.
   */
  retryLimit?: number;
}

/** Options of one saga step (the fourth argument of {@link Saga.add}). */
export interface SagaStepOptions {
  /**
   * dtx extension: seconds the step's compensation waits after the saga began its rollback, a whole number
   * from 0 to 604800 (7 days). The coordinator keeps the wait durably (a restart in the middle waits the rest);
   * `GET /query` shows `compensate_delays` and, while the rollback runs, `compensate_due`. Compensation order is
   * unchanged: the steps before a waiting one wait with it. E.g. give stock back only 10 minutes after an order
   * is cancelled. A DTM coordinator ignores it and compensates at once. Default: `0`, at once (nothing is sent).
   */
  compensateDelay?: number;
}

/** One step: two URLs and, when it has one, the compensation's delay. */
interface SagaStep {
  action: string;
  compensate: string;
  compensateDelay: number;
}

/** The checked `compensateDelay` of a step, `0` when none is given. */
function checkCompensateDelay(gid: string, step: number, compensate: string, options: SagaStepOptions): number {
  const d = options.compensateDelay;
  if (d === undefined || d === 0) return 0;
  if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0 || d > MAX_COMPENSATE_DELAY) {
    throw new DtxError(
      `saga ${gid} step ${step}: compensateDelay must be a whole number of seconds from 0 to ${MAX_COMPENSATE_DELAY} ` +
        `(7 days), got ${typeof d === 'number' ? d : JSON.stringify(d)}`,
    );
  }
  if (compensate === '') {
    throw new DtxError(`saga ${gid} step ${step}: compensateDelay is set, but the step has no compensation to delay`);
  }
  return d;
}

/**
 * A saga under construction; create it with `client.saga(gid?, options?)`, over HTTP (`DtxClient`) or gRPC
 * (`DtxGrpcClient`) alike.
 *
 * ```ts
 * await client.saga()
 *   .add(`${busi}/TransOut`, `${busi}/TransOutCompensate`, { amount: 30 })
 *   .add(`${busi}/TransIn`, `${busi}/TransInCompensate`, { amount: 30 })
 *   .submit();
 *
 * // dtx: give the stock back only 10 minutes after the rollback began
 * saga.add(`${busi}/StockDeduct`, `${busi}/StockRestore`, { sku: 'a1' }, { compensateDelay: 600 });
 * ```
 *
 * @typeParam Payload - what a step carries: any JSON value over HTTP, protobuf bytes over gRPC.
 */
export class Saga<Payload = unknown> {
  readonly #transport: CoordinatorTransport<Payload, unknown>;
  readonly #options: SagaOptions;
  readonly #steps: SagaStep[] = [];
  readonly #payloads: WirePayload[] = [];
  readonly #orders = new Map<number, number[]>();
  #concurrent = false;

  /** Prefer `client.saga()`. */
  constructor(
    client: TransportClient<Payload, unknown>,
    /** The global id. */
    readonly gid: string,
    options: SagaOptions = {},
  ) {
    this.#transport = client.transport;
    this.#options = { ...options };
  }

  /**
   * Appends a step. Over HTTP the coordinator POSTs `payload` to both URLs, with `gid`, `trans_type`, `branch_id`
   * and `op` in the query string; over gRPC it calls both methods with the payload bytes and `dtm-*` metadata.
   * @param action URL of the forward operation (gRPC: `host:port/pkg.Svc/Method`, or a discovery target)
   * @param compensate URL of its compensation; `''` for none (the coordinator treats an empty URL as success)
   * @param payload HTTP: any JSON value, sent as its JSON text, default `null`; gRPC: the request message's bytes
   * @param options `compensateDelay`: seconds the compensation waits after the rollback began (dtx extension)
   * @throws DtxError when `compensateDelay` is not a whole number of seconds from 0 to 604800, or is set on a step
   *   without a compensation.
   */
  add(action: string, compensate: string, payload?: Payload, options: SagaStepOptions = {}): this {
    const compensateDelay = checkCompensateDelay(this.gid, this.#steps.length, compensate, options);
    const encoded = this.#transport.encodePayload(payload as Payload);
    this.#steps.push({ action, compensate, compensateDelay });
    this.#payloads.push(encoded);
    return this;
  }

  /** Lets the coordinator run the actions (and the compensations) in parallel, subject to {@link addBranchOrder}. */
  concurrent(): this {
    this.#concurrent = true;
    return this;
  }

  /**
   * Makes step `step` wait until each of `prerequisites` has succeeded (steps count from 0 in the order of
   * {@link add}); its compensation then runs before theirs. Implies {@link concurrent}: in a sequential saga
   * every step already waits for all earlier ones.
   */
  addBranchOrder(step: number, prerequisites: number[]): this {
    checkCount('step', step);
    for (const p of prerequisites) checkCount('prerequisite', p);
    this.#orders.set(step, [...prerequisites]);
    this.#concurrent = true;
    return this;
  }

  /** Sets (or replaces) options; see {@link SagaOptions}. */
  setOptions(options: SagaOptions): this {
    Object.assign(this.#options, options);
    return this;
  }

  /** The body the HTTP transport sends for {@link submit} (spec §2.3). */
  toRequest(): TransRequest {
    return buildTransRequest(this.toParts());
  }

  /** The transaction {@link submit} hands to the transport. */
  toParts(): TransParts {
    const last = this.#steps.length - 1;
    for (const [step, pres] of this.#orders) {
      for (const i of [step, ...pres]) {
        if (i > last)
          throw new DtxError(`saga ${this.gid}: branch order names step ${i}, but the last step is ${last}`);
      }
    }
    let customData: string | undefined;
    if (this.#concurrent) {
      const orders: Record<string, number[]> = {};
      for (const [step, pres] of [...this.#orders].sort((a, b) => a[0] - b[0])) orders[String(step)] = pres;
      customData = JSON.stringify({ orders, concurrent: true });
    }
    return {
      gid: this.gid,
      transType: TransType.Saga,
      // compensate_delay only on the steps that have one: without delays the body is DTM's
      steps: this.#steps.map(
        (s): Record<string, string | number> =>
          s.compensateDelay > 0
            ? { action: s.action, compensate: s.compensate, compensate_delay: s.compensateDelay }
            : { action: s.action, compensate: s.compensate },
      ),
      payloads: [...this.#payloads],
      ...(customData === undefined ? {} : { customData }),
      options: toWireOptions(this.#options),
    };
  }

  /**
   * Hands the saga to the coordinator, which runs it to its end. Without `waitResult` it resolves as soon as the
   * saga is stored. With it, the outcome is one of:
   *
   * - resolves: the saga succeeded;
   * - `FailureError`: it was compensated, or is being compensated (the message is the rollback reason);
   * - `OngoingError`: still running — a branch erred or answered ONGOING and the coordinator retries it in the
   *   background. Do not submit the business again under a new gid: query this gid later, or repeat this submit;
   * - `CoordinatorError`: the coordinator was not reached or failed; repeat this submit (same gid).
   *
   * Repeating a submit is safe: after success it resolves without calling the branches again, after a rollback
   * it rejects with a `FailureError` carrying the stored reason (the SDK looks up the real status when the
   * coordinator answers `current status '…', cannot sumbmit.`), and while the saga is still submitted the
   * coordinator runs one more pass of it.
   *
   * It returns a {@link SubmitHandle}: the promise of the submit (as above), with `gid`, `status()` and `wait()`
   * — e.g. `await client.saga().add(…).submit().wait()` submits without `waitResult` and polls to the end.
   * @param call `signal`: abandons the submit (and its retries); default: none
   */
  submit(call: CallOptions = {}): SubmitHandle {
    return submitHandle(this.gid, this.#transport as CoordinatorTransport<never, unknown>, () =>
      this.#transport.submit(this.toParts(), call),
    );
  }
}
