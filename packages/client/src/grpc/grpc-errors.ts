/**
 * How the SDK reads a gRPC status from the coordinator (spec §4.3): Aborted is FAILURE, FailedPrecondition is
 * ONGOING, anything else is an error that may be retried.
 *
 * @module
 */
import { GrpcStatus, grpcCodeName } from '@dtx/protocol';
import type { ServiceError } from '@grpc/grpc-js';
import { CoordinatorError, type DtxError, FailureError, OngoingError } from '../errors.js';

/** The error a failed coordinator call stands for: {@link FailureError}, {@link OngoingError} or {@link CoordinatorError}. */
export function coordinatorErrorOf(route: string, address: string, err: ServiceError): DtxError {
  const details = detailsOf(err);
  if (err.code === GrpcStatus.ABORTED) return new FailureError(details, { cause: err });
  if (err.code === GrpcStatus.FAILED_PRECONDITION) return new OngoingError(details, { cause: err });
  if (err.code === GrpcStatus.UNAVAILABLE) {
    // grpc-js says UNAVAILABLE both when no connection could be made and when one broke under the call.
    const transience = /No connection established|ECONNREFUSED|connection refused/i.test(details)
      ? 'unsent'
      : 'unknown';
    return new CoordinatorError(`${route}: cannot reach the coordinator at ${address}: ${details}`, undefined, {
      cause: err,
      transience,
    });
  }
  return new CoordinatorError(
    `${route}: the coordinator at ${address} answered gRPC ${grpcCodeName(err.code)}: ${details}`,
    undefined,
    { cause: err },
  );
}

/** The status message of a gRPC error (`details`), or its `message` when there is none. */
export function detailsOf(err: Partial<ServiceError>): string {
  if (typeof err.details === 'string' && err.details !== '') return err.details;
  return typeof err.message === 'string' && err.message !== '' ? err.message : '(no message)';
}

/** True when `err` carries a numeric gRPC status code (a grpc-js `ServiceError`, or `{ code, details }`). */
export function isGrpcStatusError(err: unknown): err is { code: number; details?: string; message?: string } {
  return (
    err !== null &&
    typeof err === 'object' &&
    typeof (err as { code?: unknown }).code === 'number' &&
    Number.isInteger((err as { code: number }).code)
  );
}
