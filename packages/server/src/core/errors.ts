/**
 * The server's errors: one hierarchy, each error with a {@link DtxErrorCode} and a `retryable` flag. Every
 * transport maps the code to its status in one place (api/http/app.ts `httpErrorReply`, api/grpc/status.ts
 * `grpcStatusOf`, api/json-rpc/json-rpc.ts `jsonRpcErrorOf`); anything that is not a DtxServerError is a bug or
 * an unexpected failure and counts as INTERNAL.
 *
 * | code          | meaning                                              | HTTP | gRPC                | retryable |
 * |---------------|------------------------------------------------------|------|---------------------|-----------|
 * | FAILURE       | DTM's FAILURE: the request can never succeed         | 409  | ABORTED             | no        |
 * | ONGOING       | DTM's ONGOING: not yet, ask again later              | 425  | FAILED_PRECONDITION | yes       |
 * | INVALID_INPUT | the caller sent something wrong (names the field)    | 400  | INVALID_ARGUMENT    | no        |
 * | TOO_LARGE     | the input is over a limit (names field and limit)    | 413  | INVALID_ARGUMENT    | no        |
 * | NOT_FOUND     | the thing asked for does not exist                   | 404  | NOT_FOUND           | no        |
 * | CONFLICT      | it exists already, or the state does not allow it    | 400  | ALREADY_EXISTS      | no        |
 * | REFUSED       | a workflow record that contradicts the stored one     | 422  | ALREADY_EXISTS      | no        |
 * | UNAVAILABLE   | the store cannot be reached: try again later         | 503  | UNAVAILABLE         | yes       |
 * | INTERNAL      | a bug or an unexpected failure                       | 500  | INTERNAL / UNKNOWN  | yes       |
 *
 * HTTP 409 is DTM's FAILURE for every client SDK, so a conflict that is not a FAILURE answers 400. A workflow
 * refusal is 422: DTM's Go workflow client reads 409 as "the step failed, roll the workflow back", which a
 * refused record must never mean.
 */
import { withResultSuffix } from '@dtx/protocol';

/** What kind of error, independent of the transport. */
export type DtxErrorCode =
  | 'FAILURE'
  | 'ONGOING'
  | 'INVALID_INPUT'
  | 'TOO_LARGE'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'REFUSED'
  | 'UNAVAILABLE'
  | 'INTERNAL';

/** The base of every error the server answers on purpose. */
export class DtxServerError extends Error {
  /** Whether the same request may succeed when sent again later. */
  readonly retryable: boolean;

  constructor(
    readonly code: DtxErrorCode,
    message: string,
    options: { retryable?: boolean; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'DtxServerError';
    this.retryable = options.retryable ?? (code === 'ONGOING' || code === 'UNAVAILABLE' || code === 'INTERNAL');
  }
}

/** The code of any error: a DtxServerError's own, INTERNAL for anything else. */
export function errorCodeOf(err: unknown): DtxErrorCode {
  return err instanceof DtxServerError ? err.code : 'INTERNAL';
}

/** DTM's FAILURE: the transaction or branch cannot succeed; the message ends with ` FAILURE`. */
export class FailureError extends DtxServerError {
  constructor(message: string) {
    super('FAILURE', withResultSuffix(message, 'FAILURE'));
    this.name = 'FailureError';
  }
}

/** DTM's ONGOING: not finished yet; the message ends with `ONGOING`. */
export class OngoingError extends DtxServerError {
  constructor(message = 'ONGOING') {
    super('ONGOING', message === 'ONGOING' ? message : withResultSuffix(message, 'ONGOING'));
    this.name = 'OngoingError';
  }
}

/**
 * Bad input, rejected at the edge. `field` names the offending JSON key; the message is `field: problem`.
 * `code` is INVALID_INPUT, or TOO_LARGE for input over a configured or stored limit.
 */
export class InputError extends DtxServerError {
  constructor(
    readonly field: string,
    problem: string,
    code: 'INVALID_INPUT' | 'TOO_LARGE' = 'INVALID_INPUT',
  ) {
    super(code, field ? `${field}: ${problem}` : problem);
    this.name = 'InputError';
  }
}

/** Input over a limit: an InputError with code TOO_LARGE (HTTP 413). The problem names the limit. */
export class LimitError extends InputError {
  constructor(field: string, problem: string) {
    super(field, problem, 'TOO_LARGE');
    this.name = 'LimitError';
  }
}

/** A compare-and-set lost, or a row is missing (DTM's `storage: NotFound`). */
export class NotFoundError extends DtxServerError {
  constructor(message = 'storage: NotFound') {
    super('NOT_FOUND', message);
    this.name = 'NotFoundError';
  }
}

/** A unique key already exists (DTM's `storage: UniqueKeyConflict`), or the state forbids the change. */
export class UniqueConflictError extends DtxServerError {
  constructor(message = 'storage: UniqueKeyConflict') {
    super('CONFLICT', message);
    this.name = 'UniqueConflictError';
  }
}

/**
 * A workflow record refused (spec §6.8, dtx's rules): a step recorded already with another outcome, a step or an
 * outcome for a workflow that is decided (or does not exist), or a second submit with another outcome. The
 * client should read the workflow's progress again (prepareWorkflow) and go on from what is recorded.
 */
export class RefusedError extends DtxServerError {
  constructor(message: string) {
    super('REFUSED', message);
    this.name = 'RefusedError';
  }
}

/** The store could not be reached or failed; requests answer 503 / UNAVAILABLE, never a false success. */
export class StoreUnavailableError extends DtxServerError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('UNAVAILABLE', message, { retryable: true, cause: options?.cause });
    this.name = 'StoreUnavailableError';
  }
}
