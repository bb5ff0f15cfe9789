/**
 * What `saga.submit()` and `msg.submit()` return: the submit's promise as before (await it, `.catch` it), plus the
 * gid and two ways to follow the transaction afterwards — {@link SubmitHandle.status} and {@link SubmitHandle.wait}.
 *
 * @module
 */
import type { CallOptions, CoordinatorTransport, StoredState } from './coordinator-transport.js';
import { DtxError, FailureError, isOngoing } from './errors.js';
import { sleep } from './retry.js';

/** Options of {@link SubmitHandle.wait}. */
export interface WaitOptions extends CallOptions {
  /** Milliseconds between two queries of the transaction's status. Default: `500`. */
  pollIntervalMs?: number;
}

/**
 * A submitted transaction. It is a `Promise<void>` of the submit itself — `await saga.submit()` behaves as it
 * always did — with:
 *
 * - `gid`: the transaction's global id;
 * - `status()`: once the submit settled, the stored state now (`undefined` when the coordinator does not know
 *   the gid, e.g. the submit never arrived);
 * - `wait()`: once the submit settled, polls until the transaction ended: resolves when it succeeded, rejects
 *   with a `FailureError` (the rollback reason) when it failed. A submit that failed otherwise (a
 *   `CoordinatorError`, a refused submit) rejects `wait()` with that error; an `OngoingError` just means "poll".
 *
 * `status()` and `wait()` query the coordinator, which the HTTP client can do; over gRPC (DTM's gRPC API has no
 * query) they reject with a `DtxError`.
 */
export interface SubmitHandle extends Promise<void> {
  readonly gid: string;
  status(call?: CallOptions): Promise<StoredState | undefined>;
  wait(options?: WaitOptions): Promise<void>;
}

/** Starts the submit of `gid` over `transport` (`submit`) and wraps its promise into a {@link SubmitHandle}. */
export function submitHandle(
  gid: string,
  transport: CoordinatorTransport<never, unknown>,
  submit: () => Promise<void>,
): SubmitHandle {
  let submitted: Promise<void>;
  try {
    submitted = submit();
  } catch (err) {
    // a synchronous throw (e.g. a bad option) rejects the handle like any other failure
    submitted = Promise.reject(err);
  }
  const settled = submitted.then(
    () => undefined,
    (err: unknown) => err,
  );
  const query = (call: CallOptions | undefined): Promise<StoredState | undefined> => {
    if (transport.query === undefined) {
      return Promise.reject(
        new DtxError(`transaction '${gid}': the ${transport.protocol} client cannot query the coordinator`),
      );
    }
    return transport.query(gid, call);
  };
  return Object.assign(submitted, {
    gid,
    async status(call?: CallOptions): Promise<StoredState | undefined> {
      await settled;
      return query(call);
    },
    async wait(options: WaitOptions = {}): Promise<void> {
      const err = await settled;
      if (err !== undefined && !isOngoing(err)) throw err;
      const interval = options.pollIntervalMs ?? 500;
      const signal = options.signal;
      for (;;) {
        const state = await query(signal === undefined ? undefined : { signal });
        if (state?.status === 'succeed') return;
        if (state?.status === 'failed') {
          throw new FailureError(state.rollbackReason || `transaction '${gid}' was rolled back`);
        }
        if (state === undefined) throw new DtxError(`transaction '${gid}' is unknown to the coordinator`);
        await sleep(interval, signal);
      }
    },
  });
}
