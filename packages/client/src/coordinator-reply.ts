/**
 * How the SDK reads a reply of the coordinator (spec §2.1): a call failed when the status is not 200 or (except
 * for `query`) the body contains `FAILURE`. 409 (or a 200 body with `FAILURE`, the pre-v1.10 style) is a {@link FailureError},
 * 425 an {@link OngoingError}, anything else a {@link CoordinatorError} carrying the status.
 */
import { HttpStatus, Result } from '@dtx/protocol';
import { CoordinatorError, type DtxError, FailureError, OngoingError } from './errors.js';
import type { HttpReply } from './http-call.js';
import { httpStatusTransience } from './retry.js';

/**
 * The error a coordinator reply stands for, or `undefined` when it is a success. `what` names the call.
 * `readsState` marks a call that returns stored data (`query`): its body may quote a rollback reason ending in
 * ` FAILURE`, so only the status decides.
 */
export function coordinatorReplyError(what: string, reply: HttpReply, readsState = false): DtxError | undefined {
  const { status, text } = reply;
  const failed = status !== HttpStatus.Success || (!readsState && text.includes(Result.Failure));
  if (!failed) return undefined;
  const message = messageOf(text);
  if (status === HttpStatus.Failure || status === HttpStatus.Success) return new FailureError(message);
  if (status === HttpStatus.Ongoing) return new OngoingError(message);
  const transience = httpStatusTransience(status);
  return new CoordinatorError(
    `${what}: the coordinator answered HTTP ${status}: ${message}`,
    status,
    transience === undefined ? undefined : { transience },
  );
}

/** The `message` member of a JSON error body, else the body text itself (or a placeholder when empty). */
function messageOf(text: string): string {
  try {
    const body: unknown = JSON.parse(text);
    if (body !== null && typeof body === 'object' && 'message' in body && typeof body.message === 'string') {
      return body.message;
    }
  } catch {
    // not JSON: use the text as it is
  }
  return text.trim() === '' ? '(empty body)' : text.trim();
}
