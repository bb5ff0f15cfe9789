/**
 * Writing gRPC branch handlers with grpc-js: the barrier built from the incoming `dtm-*` metadata, and the
 * outcome of the handler mapped to the status code DTM reads as intended (spec §5.5, §12.5):
 *
 * | handler | status | DTM reads |
 * |---|---|---|
 * | returns a reply (or `undefined`) | OK | SUCCESS |
 * | throws `FailureError` | Aborted | FAILURE: a saga compensates, a TCC cancels, a back-check says "rolled back" |
 * | throws `OngoingError` | FailedPrecondition | ONGOING: asked again later |
 * | throws `DuplicatedError` | OK | SUCCESS: the work is known to be done or refused for good |
 * | throws an error with a gRPC `code` | that code | OK / Aborted / FailedPrecondition as above; **any other code is retried forever** (a warning is logged once per method) |
 * | throws anything else | Unknown | retried with backoff (logged as an error) |
 *
 * The most common mistake with DTM is answering "roll back" with a code other than Aborted (e.g. go-zero's
 * `status.Error(500, …)` or `codes.Internal`): DTM then retries the branch forever instead of compensating. Throw
 * `FailureError` instead.
 *
 * @module
 */
import { type BranchInfo, GrpcStatus, grpcCodeName, Result } from '@dtx/protocol';
import {
  type handleUnaryCall,
  Metadata,
  type ServerErrorResponse,
  type ServerUnaryCall,
  type sendUnaryData,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import type { BarrierDb } from '../barrier/barrier-db.js';
import { BranchBarrier } from '../barrier/branch-barrier.js';
import { branchInfoFromMetadata } from '../barrier/branch-info.js';
import { DuplicatedError, FailureError, OngoingError } from '../errors.js';
import { detailsOf, isGrpcStatusError } from './grpc-errors.js';

/** Where the helpers report: `console` is one. */
export interface GrpcBranchLogger {
  /** A handler answered a status DTM retries forever (once per method), with advice. */
  warn(message: string): void;
  /** A handler threw an unexpected error (answered Unknown): DTM retries it. */
  error(message: string, error: unknown): void;
}

/**
 * What a gRPC branch handler receives.
 * @typeParam Req - the request message, as your service definition deserializes it.
 */
export interface GrpcBranchContext<Req = unknown, Res = unknown> {
  /** The request message. */
  readonly request: Req;
  /** The incoming metadata: `dtm-gid`, `dtm-trans_type`, `dtm-branch_id`, `dtm-op`, `dtm-dtm`, branch headers. */
  readonly metadata: Metadata;
  /**
   * gid, trans_type, branch_id and op from the `dtm-*` metadata.
   * @throws BranchInfoError (answered Unknown) when one is missing.
   */
  readonly branchInfo: BranchInfo;
  /**
   * The barrier of this call, built from the `dtm-*` metadata on first use; the same object for the whole call,
   * so its guarded calls are numbered `01`, `02`, ….
   * @throws BranchInfoError (answered Unknown) when a field is missing.
   */
  readonly barrier: BranchBarrier;
  /** The grpc-js call. */
  readonly call: ServerUnaryCall<Req, Res>;
}

/**
 * A gRPC branch handler: return the reply message (or `undefined` for an empty one), or throw `FailureError`
 * (Aborted, roll back), `OngoingError` (FailedPrecondition, ask again later) or any other error (retry).
 */
export type GrpcBranchHandler<Req = unknown, Res = unknown> = (
  ctx: GrpcBranchContext<Req, Res>,
) => Res | undefined | Promise<Res | undefined>;

/** Options of {@link grpcBranch} and {@link grpcBranchService}. */
export interface GrpcBranchOptions {
  /** Where warnings and unexpected errors go. Default: `console`. */
  logger?: GrpcBranchLogger;
  /**
   * The reply sent when the handler returns `undefined` (or throws `DuplicatedError`). Default: `{}`, which
   * proto-loader serializes as the message with every field at its default (e.g. `google.protobuf.Empty`). For a
   * service that takes raw bytes, pass `Buffer.alloc(0)`.
   */
  emptyReply?: unknown;
}

/** The status a handler's outcome is answered with. */
export interface GrpcBranchStatus {
  code: number;
  details: string;
  /** The error the handler threw, if any. */
  error?: unknown;
}

/**
 * Maps a thrown value to the gRPC status DTM reads as intended (see the module's table). `undefined` means OK
 * (a `DuplicatedError`, or an error carrying code OK).
 */
export function grpcBranchStatusOf(error: unknown): GrpcBranchStatus | undefined {
  if (error instanceof DuplicatedError) return undefined;
  if (error instanceof FailureError) {
    // A bare "ONGOING" under Aborted would be read as ONGOING (DTM's pre-v1.10 rule).
    const message = error.message.trim();
    return {
      code: GrpcStatus.ABORTED,
      details: message === Result.Ongoing ? `${message} ${Result.Failure}` : message || Result.Failure,
      error,
    };
  }
  if (error instanceof OngoingError) {
    return { code: GrpcStatus.FAILED_PRECONDITION, details: error.message.trim() || Result.Ongoing, error };
  }
  if (isGrpcStatusError(error)) {
    if (error.code === GrpcStatus.OK) return undefined;
    return { code: error.code, details: detailsOf(error), error };
  }
  const details = error instanceof Error ? error.message : String(error);
  return { code: GrpcStatus.UNKNOWN, details: details || 'error', error };
}

/** True for the codes DTM reads as a decision (Aborted, FailedPrecondition) rather than an error to retry. */
function isDecision(code: number): boolean {
  return code === GrpcStatus.ABORTED || code === GrpcStatus.FAILED_PRECONDITION;
}

/** The context of one call; `branchInfo` and `barrier` are read lazily. */
function contextOf<Req, Res>(call: ServerUnaryCall<Req, Res>): GrpcBranchContext<Req, Res> {
  let barrier: BranchBarrier | undefined;
  return {
    request: call.request,
    metadata: call.metadata,
    call,
    get branchInfo() {
      return branchInfoFromMetadata(call.metadata.getMap());
    },
    get barrier() {
      barrier ??= BranchBarrier.fromMetadata(call.metadata.getMap());
      return barrier;
    },
  };
}

function describe(call: ServerUnaryCall<unknown, unknown>): string {
  const md = call.metadata.getMap();
  const parts = ['dtm-gid', 'dtm-trans_type', 'dtm-branch_id', 'dtm-op']
    .filter((k) => md[k] !== undefined)
    .map((k) => `${k.slice(4)}=${String(md[k])}`);
  return parts.join(' ');
}

/**
 * Wraps a {@link GrpcBranchHandler} as a grpc-js unary handler that answers as DTM expects (see the module's
 * table). Each wrapped handler warns at most once when it answers a code DTM retries forever.
 *
 * @example
 * ```ts
 * server.addService(busiDefinition['busi.Busi'].service, {
 *   TransOut: grpcBranch<BusiReq>(async (ctx) => {
 *     await ctx.barrier.call(db, async (tx) => {
 *       const r = await tx.query('update account set balance = balance - $1 where id = $2 and balance >= $1', [ctx.request.Amount, 1]);
 *       if (r.rowCount === 0) throw new FailureError('insufficient balance'); // → Aborted: the saga compensates
 *     });
 *   }),
 * });
 * ```
 */
export function grpcBranch<Req = unknown, Res = unknown>(
  handler: GrpcBranchHandler<Req, Res>,
  options: GrpcBranchOptions = {},
): handleUnaryCall<Req, Res> {
  const logger = options.logger ?? console;
  const emptyReply = (options.emptyReply ?? {}) as Res;
  let warned = false;
  return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => {
    const answer = (status: GrpcBranchStatus | undefined, reply?: Res) => {
      if (status === undefined) {
        callback(null, reply ?? emptyReply);
        return;
      }
      const method = call.getPath();
      if (!isDecision(status.code)) {
        if (isGrpcStatusError(status.error)) {
          if (!warned) {
            warned = true;
            logger.warn(
              `gRPC branch ${method} answered ${grpcCodeName(status.code)} (${describe(call)}): DTM retries every ` +
                'code other than OK, Aborted and FailedPrecondition forever, and never rolls back on it. To roll ' +
                'back, throw FailureError (answered Aborted); to be asked again later, throw OngoingError ' +
                '(FailedPrecondition). This warning is shown once per method.',
            );
          }
        } else {
          logger.error(`gRPC branch ${method} failed (${describe(call)}); DTM will retry it`, status.error);
        }
      }
      const err: ServerErrorResponse = Object.assign(new Error(status.details), {
        code: status.code,
        details: status.details,
        metadata: new Metadata(),
      });
      callback(err);
    };
    let result: Res | undefined | Promise<Res | undefined>;
    try {
      result = handler(contextOf(call));
    } catch (error) {
      answer(grpcBranchStatusOf(error));
      return;
    }
    Promise.resolve(result).then(
      (reply) => answer(undefined, reply),
      (error: unknown) => answer(grpcBranchStatusOf(error)),
    );
  };
}

/**
 * Wraps every handler of a service implementation with {@link grpcBranch}, for `server.addService(definition,
 * grpcBranchService({...}))`.
 */
export function grpcBranchService(
  // biome-ignore lint/suspicious/noExplicitAny: each method has its own request and reply types
  handlers: Record<string, GrpcBranchHandler<any, any>>,
  options: GrpcBranchOptions = {},
): UntypedServiceImplementation {
  const impl: UntypedServiceImplementation = {};
  for (const [name, h] of Object.entries(handlers)) impl[name] = grpcBranch(h, options);
  return impl;
}

/**
 * A gRPC branch handler for the `QueryPrepared` method of msgs sent with `doAndSubmit`: runs
 * `BranchBarrier.queryPrepared(db)` with the call's barrier. Answers OK when the msg's local transaction
 * committed and Aborted when it did not (and now never will).
 */
export function grpcQueryPreparedHandler(db: BarrierDb<unknown>): GrpcBranchHandler {
  return async (ctx) => {
    await ctx.barrier.queryPrepared(db);
    return undefined;
  };
}
