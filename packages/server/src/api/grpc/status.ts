import { GrpcStatus } from '@dtx/protocol';
import type { StatusObject } from '@grpc/grpc-js';
import { errorMessage, FailureError, InputError, OngoingError } from '../../core/errors.js';
import { wellFormed } from '../well-formed.js';

/** An error the gRPC API answers with a status of its choice (malformed request, unsupported method). */
export class GrpcStatusError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
    this.name = 'GrpcStatusError';
  }
}

/** A JavaScript programming error rather than an answer: a bug, reported as INTERNAL. */
function isBug(err: unknown): boolean {
  return (
    !(err instanceof Error) ||
    err instanceof TypeError ||
    err instanceof RangeError ||
    err instanceof ReferenceError ||
    err instanceof SyntaxError
  );
}

/**
 * The status of a failed call (spec §4.3): FAILURE → ABORTED, ONGOING → FAILED_PRECONDITION, bad
 * input → INVALID_ARGUMENT naming the field (DTM answers Unknown there; a distinct code lets clients
 * tell a request that can never succeed from one worth retrying), a bug → INTERNAL, anything else →
 * UNKNOWN with its text. The text is made well-formed (grpc-js's `encodeURI` of it would throw).
 */
export function grpcStatusOf(err: unknown): Pick<StatusObject, 'code' | 'details'> {
  const details = wellFormed(errorMessage(err));
  if (err instanceof GrpcStatusError) return { code: err.code, details };
  if (err instanceof FailureError) return { code: GrpcStatus.ABORTED, details };
  if (err instanceof OngoingError) return { code: GrpcStatus.FAILED_PRECONDITION, details };
  if (err instanceof InputError) return { code: GrpcStatus.INVALID_ARGUMENT, details };
  if (isBug(err)) return { code: GrpcStatus.INTERNAL, details };
  return { code: GrpcStatus.UNKNOWN, details };
}
