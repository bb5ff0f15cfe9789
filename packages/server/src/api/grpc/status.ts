import { GrpcStatus } from '@dtx/protocol';
import type { StatusObject } from '@grpc/grpc-js';
import { type DtxErrorCode, DtxServerError } from '../../core/errors.js';
import { errorMessage } from '../../util/error-message.js';
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

/** The gRPC status of each error code (spec §4.3 for FAILURE and ONGOING). */
const GRPC_CODE: Record<DtxErrorCode, number> = {
  FAILURE: GrpcStatus.ABORTED,
  ONGOING: GrpcStatus.FAILED_PRECONDITION,
  INVALID_INPUT: GrpcStatus.INVALID_ARGUMENT,
  TOO_LARGE: GrpcStatus.INVALID_ARGUMENT,
  NOT_FOUND: GrpcStatus.NOT_FOUND,
  CONFLICT: GrpcStatus.ALREADY_EXISTS,
  REFUSED: GrpcStatus.ALREADY_EXISTS,
  UNAVAILABLE: GrpcStatus.UNAVAILABLE,
  INTERNAL: GrpcStatus.INTERNAL,
};

/**
 * The status of a failed call, the one place the gRPC API maps errors: a DtxServerError by its code (FAILURE →
 * ABORTED and ONGOING → FAILED_PRECONDITION as DTM; bad input → INVALID_ARGUMENT naming the field, where DTM
 * answers Unknown: a distinct code lets clients tell a request that can never succeed from one worth retrying;
 * the store unreachable → UNAVAILABLE), a bug → INTERNAL, anything else → UNKNOWN with its text. The text is
 * made well-formed (grpc-js's `encodeURI` of it would throw).
 */
export function grpcStatusOf(err: unknown): Pick<StatusObject, 'code' | 'details'> {
  const details = wellFormed(errorMessage(err));
  if (err instanceof GrpcStatusError) return { code: err.code, details };
  if (err instanceof DtxServerError) return { code: GRPC_CODE[err.code], details };
  if (isBug(err)) return { code: GrpcStatus.INTERNAL, details };
  return { code: GrpcStatus.UNKNOWN, details };
}
