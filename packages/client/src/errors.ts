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
 * {@link isFailure}, {@link isOngoing} and {@link isCoordinatorError} tell them apart without `instanceof`, which
 * also works when two copies of the package are loaded. As branch answers:
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

const COORDINATOR_ERROR = Symbol.for('@dtx/client.CoordinatorError');

/**
 * The coordinator could not be reached, or answered an unexpected error (HTTP 5xx such as 503, gRPC Unavailable).
 * Nothing is known about the transaction: retry the same call with the same gid — a submit is idempotent.
 */
export class CoordinatorError extends DtxError {
  /** Marks the class for {@link isCoordinatorError} across copies of the package. */
  readonly [COORDINATOR_ERROR] = true;

  constructor(
    message: string,
    /** HTTP status, when there was a response. */
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

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
  return err instanceof CoordinatorError || (err instanceof Error && COORDINATOR_ERROR in err);
}
