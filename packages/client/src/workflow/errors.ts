/**
 * The outcomes of `client.workflow.execute()` besides success.
 *
 * @module
 */
import { brand, DtxError, FailureError, OngoingError } from '../errors.js';

/**
 * The workflow failed: its function threw a `FailureError` (a step answered FAILURE, or the function decided to
 * fail), its compensations ran, and the coordinator recorded it as `failed`. Also the answer for a gid whose
 * workflow had already failed. `rollbackReason` is the stored reason.
 */
export class WorkflowFailedError extends FailureError {
  constructor(
    readonly gid: string,
    readonly rollbackReason: string,
  ) {
    super(rollbackReason === '' ? `workflow ${gid} failed` : rollbackReason);
  }
}

/**
 * The workflow is not finished: a step answered ONGOING (or the function threw an `OngoingError`). Nothing was
 * submitted; the workflow stays `prepared`, and the coordinator resumes it through the resume endpoint (or run
 * `execute` again with the same gid).
 */
export class WorkflowOngoingError extends OngoingError {
  constructor(
    readonly gid: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Internal signal: another execution of the same gid decided the workflow while this one ran. It unwinds the
 * workflow function; `execute` reports the decided outcome instead. A workflow function that catches errors must
 * rethrow it (as any error it does not handle).
 */
export class WorkflowDecidedError extends DtxError {
  constructor(
    readonly gid: string,
    readonly status: string,
  ) {
    super(`workflow ${gid} was already decided (${status}) by another execution`);
  }
}

brand(WorkflowFailedError, 'WorkflowFailedError');
brand(WorkflowOngoingError, 'WorkflowOngoingError');
brand(WorkflowDecidedError, 'WorkflowDecidedError');
