/**
 * The tutorial's rpc errors: `status.Error(100, msg)` for business errors (not found, wrong password…) and
 * `status.Error(500, err)` for infrastructure errors — both non-standard gRPC codes, kept as they are — and the
 * text go-zero's api layer answers for them, `rpc error: code = Code(100) desc = …`.
 *
 * @module
 */
import { grpcCodeName, grpcErrorText } from '@dtx/protocol';
import { Metadata, type ServiceError } from '@grpc/grpc-js';

/** The tutorial's business error code. */
export const CODE_BUSINESS = 100;
/** The tutorial's infrastructure error code. */
export const CODE_INTERNAL = 500;

/** A gRPC status error with a numeric code and details, as grpc-js sends it. */
export class RpcError extends Error implements Partial<ServiceError> {
  override name = 'RpcError';
  readonly code: number;
  readonly details: string;
  readonly metadata = new Metadata();
  constructor(code: number, details: string) {
    super(details);
    this.code = code;
    this.details = details;
  }
}

/** A business error (code 100). */
export const businessError = (message: string): RpcError => new RpcError(CODE_BUSINESS, message);

/** An infrastructure error (code 500) from a cause. */
export const internalError = (cause: unknown): RpcError =>
  new RpcError(CODE_INTERNAL, cause instanceof Error ? cause.message : String(cause));

/** Go's `codes.Code.String()`: the name of a standard code, `Code(n)` otherwise. */
export const goCodeName = grpcCodeName;

/** True for an error with a numeric gRPC `code` (from grpc-js or an {@link RpcError}). */
export function isStatusError(err: unknown): err is { code: number; details?: string; message: string } {
  return err instanceof Error && typeof (err as { code?: unknown }).code === 'number';
}

/** The text go-zero's `httpx.Error` answers for an error: Go's status format for rpc errors, the message otherwise. */
export function goErrorText(err: unknown): string {
  if (isStatusError(err)) return grpcErrorText(err.code, err.details ?? err.message);
  return err instanceof Error ? err.message : String(err);
}
