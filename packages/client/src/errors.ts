/**
 * The error hierarchy of the SDK. DTM has three outcomes besides success, and the type of the error
 * says which one you mean — they are impossible to confuse.
 *
 * A submit (a saga's, a msg's, a TCC's) ends in one of four ways:
 *
 * - it resolves: the transaction succeeded (with `waitResult`), or was accepted and will be driven to its end
 *   (without). A submit repeated with the same gid after success resolves too.
 * - {@link FailureError}: rolled back, or being rolled back; the message is the rollback reason. Retrying with a
 *   new gid runs the business again, as a new transaction.
 * - {@link OngoingError}: still running. The coordinator keeps retrying a branch that errs; do NOT submit again
 *   with a new gid (the business would run twice): query the gid later, or submit again with the same gid.
 * - {@link CoordinatorError}: the coordinator could not be reached, or failed (e.g. 503). Safe to retry the same
 *   submit with the same gid.
 *
 * `instanceof` works across copies of the package (an ESM and a CommonJS copy of a dual package, or two versions
 * in one `node_modules`): each class carries a `Symbol.for('@dtx/client.<Name>')` brand on its prototype, and its
 * `Symbol.hasInstance` accepts any object with the brand. {@link isFailure}, {@link isOngoing} and
 * {@link isCoordinatorError} say the same. As branch answers:
 *
 * - {@link FailureError}: "roll back". The branch refuses for good (HTTP 409, gRPC Aborted); a saga runs
 *   its compensations, a TCC cancels, a msg back-check answers "not committed".
 * - {@link OngoingError}: "not yet". Ask again later (HTTP 425, gRPC FailedPrecondition); nothing is
 *   rolled back (DTM polls again at the base interval; dtx backs off as for an error, and alerts).
 * - any other error: "retry". A transient problem (HTTP 500, a network error); the coordinator retries
 *   with exponential backoff until it succeeds or returns FAILURE.
 */
export class DtxError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/**
 * Gives `cls` (and its instances, through the prototype, and their subclasses) the brand `@dtx/client.<name>`.
 * Internal: every error class of the SDK calls it once, next to its declaration.
 */
export function brand(cls: abstract new (...args: never[]) => DtxError, name: string): void {
  const sym = Symbol.for(`@dtx/client.${name}`);
  Object.defineProperty(cls.prototype, sym, { value: true });
  // `err instanceof cls` holds for an object with the brand — also one made by another copy of the package —
  // and otherwise by the ordinary prototype check (which alone decides for an unbranded subclass of `cls`).
  Object.defineProperty(cls, Symbol.hasInstance, {
    value: function hasInstance(this: unknown, value: unknown): boolean {
      if (this === cls && typeof value === 'object' && value !== null && sym in value) return true;
      return Function.prototype[Symbol.hasInstance].call(this, value);
    },
  });
}

/**
 * Roll back: the branch (or the coordinator) answered FAILURE (HTTP 409, gRPC Aborted). Never retried. From a
 * submit: the transaction was rolled back, or is being rolled back (its compensations or cancels are running);
 * the message is the stored rollback reason.
 */
export class FailureError extends DtxError {
  readonly result = 'FAILURE' as const;
}

/**
 * Not yet: the branch (or the coordinator) answered ONGOING (HTTP 425, gRPC FailedPrecondition). From a submit
 * with `waitResult`: the transaction is still running — a branch erred or answered ONGOING, and the coordinator
 * retries it in the background until it succeeds or rolls back. Do not submit again with a new gid (that would
 * run the business twice); query the gid, or repeat the submit with the same gid.
 */
export class OngoingError extends DtxError {
  readonly result = 'ONGOING' as const;
}

/** A msg DoAndSubmit found its barrier already taken by the back-check: the local transaction was rolled back. */
export class DuplicatedError extends DtxError {
  readonly result = 'DUPLICATED' as const;
}

/**
 * The coordinator could not be reached, or answered an unexpected error (HTTP 5xx such as 503, gRPC Unavailable).
 * Nothing is known about the transaction: retry the same call with the same gid — a submit is idempotent.
 */
export class CoordinatorError extends DtxError {
  /**
   * Set when the failure is transient, the case the client's retry policy retries: `unsent` — the request did
   * not reach the coordinator (connection refused, HTTP 502 / 503, gRPC UNAVAILABLE); `unknown` — it may have
   * (a timeout, a connection reset, HTTP 504). Undefined for any other failure.
   */
  readonly transience: Transience | undefined;

  constructor(
    message: string,
    /** HTTP status, when there was a response. */
    readonly status?: number,
    options?: { cause?: unknown; transience?: Transience },
  ) {
    super(message, options);
    this.transience = options?.transience;
  }
}

/** How a transient {@link CoordinatorError} failed: `unsent` — the request did not arrive; `unknown` — it may have. */
export type Transience = 'unsent' | 'unknown';

/**
 * A branch service called by the SDK itself (a TCC try, a msg back-check made by `doAndSubmit`) could not be
 * reached or answered neither SUCCESS, FAILURE nor ONGOING — for example HTTP 500. Nothing is decided by it: a
 * TCC global transaction is rolled back, a msg is left to the coordinator's back-check.
 */
export class BranchError extends DtxError {
  constructor(
    message: string,
    /** The URL that was called. */
    readonly url: string,
    /** HTTP status, when there was a response. */
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

brand(DtxError, 'DtxError');
brand(FailureError, 'FailureError');
brand(OngoingError, 'OngoingError');
brand(DuplicatedError, 'DuplicatedError');
brand(CoordinatorError, 'CoordinatorError');
brand(BranchError, 'BranchError');

function resultOf(err: unknown): unknown {
  return err instanceof Error ? (err as { result?: unknown }).result : undefined;
}

/**
 * True when `err` is a {@link FailureError}: the transaction was, or is being, rolled back. Reads its `result`
 * (`'FAILURE'`), so an error of another copy of the package counts too.
 */
export function isFailure(err: unknown): err is FailureError {
  return err instanceof FailureError || resultOf(err) === 'FAILURE';
}

/**
 * True when `err` is an {@link OngoingError}: still running, ask again later (never resubmit with a new gid).
 * Reads its `result` (`'ONGOING'`), so an error of another copy of the package counts too.
 */
export function isOngoing(err: unknown): err is OngoingError {
  return err instanceof OngoingError || resultOf(err) === 'ONGOING';
}

/**
 * True when `err` is a {@link CoordinatorError}: the coordinator was not reached or failed; retry with the same
 * gid. Works across copies of the package.
 */
export function isCoordinatorError(err: unknown): err is CoordinatorError {
  return err instanceof CoordinatorError;
}
