/**
 * The error hierarchy of the SDK. DTM has three outcomes besides success, and the type of the error
 * says which one you mean — they are impossible to confuse:
 *
 * - {@link FailureError}: "roll back". The branch refuses for good (HTTP 409, gRPC Aborted); a saga runs
 *   its compensations, a TCC cancels, a msg back-check answers "not committed".
 * - {@link OngoingError}: "not yet". Ask again later (HTTP 425, gRPC FailedPrecondition); nothing is
 *   rolled back and the retry interval is not doubled.
 * - any other error: "retry". A transient problem (HTTP 500, a network error); the coordinator retries
 *   with exponential backoff, forever, until it succeeds or returns FAILURE.
 */
export class DtxError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Roll back: the branch (or the coordinator) answered FAILURE. Never retried. */
export class FailureError extends DtxError {
  readonly result = 'FAILURE' as const;
}

/** Not yet: the branch (or the coordinator) answered ONGOING. Retried later without backoff growth. */
export class OngoingError extends DtxError {
  readonly result = 'ONGOING' as const;
}

/** A msg DoAndSubmit found its barrier already taken by the back-check: the local transaction was rolled back. */
export class DuplicatedError extends DtxError {
  readonly result = 'DUPLICATED' as const;
}

/** The coordinator could not be reached or answered an unexpected error; the call may be retried. */
export class CoordinatorError extends DtxError {
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

/** True when `err` is a {@link FailureError}: the transaction was, or is being, rolled back. */
export function isFailure(err: unknown): err is FailureError {
  return err instanceof FailureError;
}

/** True when `err` is an {@link OngoingError}: ask again later. */
export function isOngoing(err: unknown): err is OngoingError {
  return err instanceof OngoingError;
}
