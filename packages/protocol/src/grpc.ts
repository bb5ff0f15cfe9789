/**
 * The gRPC side of DTM's wire protocol: where the .proto files are, the service and method names,
 * the `dtm-*` metadata keys, the status codes and how a branch's status reads as a result word.
 * Pure: no gRPC library is imported here, so the server and the SDK share it without a dependency.
 */
import protoDir from './proto-dir.cjs';
import { Result } from './result.js';

/**
 * The directory holding `dtmgimp.proto` and `workflow.proto`, with a trailing separator. The files are not
 * compiled: they ship in the package's `proto/` directory (see proto-dir.cts).
 */
export const PROTO_DIR: string = protoDir;

/** The coordinator's service (spec §4.1), a file under {@link PROTO_DIR}. */
export const DTMGIMP_PROTO = 'dtmgimp.proto';
/** The workflow resume callback (spec §4.5), a file under {@link PROTO_DIR}. */
export const WORKFLOW_PROTO = 'workflow.proto';

/** Fully qualified name of the coordinator's gRPC service. */
export const DTM_GRPC_SERVICE = 'dtmgimp.Dtm';

/** Full method paths of `dtmgimp.Dtm`. */
export const DtmGrpcMethod = {
  NewGid: '/dtmgimp.Dtm/NewGid',
  Submit: '/dtmgimp.Dtm/Submit',
  Prepare: '/dtmgimp.Dtm/Prepare',
  Abort: '/dtmgimp.Dtm/Abort',
  RegisterBranch: '/dtmgimp.Dtm/RegisterBranch',
  PrepareWorkflow: '/dtmgimp.Dtm/PrepareWorkflow',
  Subscribe: '/dtmgimp.Dtm/Subscribe',
  Unsubscribe: '/dtmgimp.Dtm/Unsubscribe',
  DeleteTopic: '/dtmgimp.Dtm/DeleteTopic',
} as const;

/** The workflow callback's method path (spec §4.5). */
export const WORKFLOW_EXECUTE_METHOD = '/workflow.Workflow/Execute';

/**
 * `@grpc/proto-loader` options under which the message shapes below hold: field names as in the
 * .proto, int64 as numbers, bytes as Buffers (the loader's default), absent fields filled with their defaults.
 */
export const PROTO_LOADER_OPTIONS: {
  keepCase: boolean;
  longs: NumberConstructor;
  enums: StringConstructor;
  defaults: boolean;
  arrays: boolean;
  objects: boolean;
  oneofs: boolean;
  includeDirs: string[];
} = {
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
  arrays: true,
  objects: true,
  oneofs: true,
  includeDirs: [PROTO_DIR],
};

/** `dtmgimp.DtmTransOptions` (field 4, the removed PassthroughHeaders, is skipped). */
export interface DtmTransOptions {
  WaitResult: boolean;
  TimeoutToFail: number;
  RetryInterval: number;
  BranchHeaders: Record<string, string>;
  RequestTimeout: number;
  RetryLimit: number;
}

/** `dtmgimp.DtmRequest`: the body of Submit, Prepare, Abort and PrepareWorkflow. */
export interface DtmRequest {
  Gid: string;
  TransType: string;
  /** null when the client left it out. */
  TransOptions: DtmTransOptions | null;
  CustomedData: string;
  BinPayloads: Uint8Array[];
  QueryPrepared: string;
  /** JSON text of the steps array; `null` or empty when there are none. */
  Steps: string;
  ReqExtra: Record<string, string>;
  RollbackReason: string;
}

/** `dtmgimp.DtmGidReply`. */
export interface DtmGidReply {
  Gid: string;
}

/** `dtmgimp.DtmBranchRequest`. */
export interface DtmBranchRequest {
  Gid: string;
  TransType: string;
  BranchID: string;
  Op: string;
  Data: Record<string, string>;
  BusiPayload: Uint8Array;
}

/** `dtmgimp.DtmTopicRequest`. */
export interface DtmTopicRequest {
  Topic: string;
  URL: string;
  Remark: string;
}

/** `dtmgimp.DtmTransaction`. */
export interface DtmTransaction {
  Gid: string;
  Status: string;
  RollbackReason: string;
  Result: string;
}

/** `dtmgimp.DtmProgress`. */
export interface DtmProgress {
  Status: string;
  BinData: Uint8Array;
  BranchID: string;
  Op: string;
}

/** `dtmgimp.DtmProgressesReply`. */
export interface DtmProgressesReply {
  Transaction: DtmTransaction | null;
  Progresses: DtmProgress[];
}

/**
 * Metadata keys of a branch call (spec §5.5): the coordinator sends the first five (`dtm-dtm` empty);
 * clients add `dtm-dtm` = their coordinator's address on try calls, and `dtm-phase2_url` on xa calls.
 */
export const DtmMetadata = {
  Gid: 'dtm-gid',
  TransType: 'dtm-trans_type',
  BranchId: 'dtm-branch_id',
  Op: 'dtm-op',
  Dtm: 'dtm-dtm',
  Phase2Url: 'dtm-phase2_url',
} as const;

/** gRPC status codes, numbered as on the wire. */
export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

const CODE_NAMES = [
  'OK',
  'Canceled',
  'Unknown',
  'InvalidArgument',
  'DeadlineExceeded',
  'NotFound',
  'AlreadyExists',
  'PermissionDenied',
  'ResourceExhausted',
  'FailedPrecondition',
  'Aborted',
  'OutOfRange',
  'Unimplemented',
  'Internal',
  'Unavailable',
  'DataLoss',
  'Unauthenticated',
];

/** A status code's name as Go's grpc spells it in error texts (`Aborted`, `FailedPrecondition`, ...). */
export function grpcCodeName(code: number): string {
  return CODE_NAMES[code] ?? `Code(${code})`;
}

/** An error text in grpc-go's shape, `rpc error: code = Aborted desc = ...`, familiar to DTM users. */
export function grpcErrorText(code: number, details: string): string {
  return `rpc error: code = ${grpcCodeName(code)} desc = ${details}`;
}

/**
 * How a gRPC branch's final status reads (spec §5.5): OK → SUCCESS; Aborted → FAILURE, except the
 * exact message `ONGOING` (servers before DTM v1.10); FailedPrecondition → ONGOING; any other code →
 * an error, retried.
 */
export function classifyGrpcStatus(code: number, details: string): Result | 'ERROR' {
  if (code === GrpcStatus.OK) return Result.Success;
  if (code === GrpcStatus.ABORTED) return details === Result.Ongoing ? Result.Ongoing : Result.Failure;
  if (code === GrpcStatus.FAILED_PRECONDITION) return Result.Ongoing;
  return 'ERROR';
}
