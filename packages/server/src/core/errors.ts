/**
 * Errors of the core. The transport maps them to status codes in one place:
 * FailureError → 409 / Aborted, OngoingError → 425 / FailedPrecondition, InputError → 400 / InvalidArgument,
 * NotFoundError and anything else → 500 / Unknown.
 */
import { withResultSuffix } from '@dtx/protocol';

export class FailureError extends Error {
  constructor(message: string) {
    super(withResultSuffix(message, 'FAILURE'));
    this.name = 'FailureError';
  }
}

export class OngoingError extends Error {
  constructor(message = 'ONGOING') {
    super(message === 'ONGOING' ? message : withResultSuffix(message, 'ONGOING'));
    this.name = 'OngoingError';
  }
}

/** Bad input, rejected at the edge. `field` names the offending JSON key. */
export class InputError extends Error {
  constructor(
    readonly field: string,
    problem: string,
  ) {
    super(field ? `${field}: ${problem}` : problem);
    this.name = 'InputError';
  }
}

/** A compare-and-set lost, or a row is missing (DTM's `storage: NotFound`). */
export class NotFoundError extends Error {
  constructor(message = 'storage: NotFound') {
    super(message);
    this.name = 'NotFoundError';
  }
}

/** A unique key already exists (DTM's `storage: UniqueKeyConflict`). */
export class UniqueConflictError extends Error {
  constructor(message = 'storage: UniqueKeyConflict') {
    super(message);
    this.name = 'UniqueConflictError';
  }
}

/** The store could not be reached or failed; requests answer 5xx, never a false success. */
export class StoreUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
