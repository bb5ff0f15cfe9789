/**
 * The seam between the transaction builders (saga, msg, tcc) and the wire. The builders describe a transaction
 * and the calls they need; a transport — HTTP in {@link DtxClient}, gRPC in `DtxGrpcClient` — puts them on the wire
 * and reads the replies. A user switches transport by constructing the other client; the builders are the same.
 *
 * @module
 */
import type { Protocol, Result, TransOptions } from '@dtx/protocol';

/** Options of one call: every coordinator call of the SDK takes them. */
export interface CallOptions {
  /**
   * Abandons the call, and its pending retries, when it aborts; the call then rejects with the signal's reason
   * (an `AbortError` for `AbortController.abort()`). Aborting a submit that already reached the coordinator does
   * not stop the transaction: the coordinator drives it to its end. Default: none, the call runs until it ends or
   * `requestTimeoutMs` passes.
   */
  signal?: AbortSignal;
}

/** A transaction's stored state, as a submit handle reads it. */
export interface StoredState {
  /** The global status: `prepared`, `submitted`, `aborting`, `succeed` or `failed`. */
  status: string;
  /** The rollback reason, when there is one. */
  rollbackReason?: string;
}

/** A step's or branch's payload as it travels: JSON text (HTTP) or protobuf bytes (gRPC). */
export type WirePayload = string | Uint8Array;

/** A transaction as the builders describe it, before a transport encodes it (spec §2.3, §4.2). */
export interface TransParts {
  gid: string;
  transType: string;
  /**
   * Saga: `{action, compensate}` per step, and `compensate_delay` (seconds, a dtx extension) on a step that has
   * one; msg: `{action}`.
   */
  steps?: Record<string, string | number>[];
  /** One per step, already encoded by {@link CoordinatorTransport.encodePayload}. */
  payloads?: WirePayload[];
  customData?: string;
  queryPrepared?: string;
  rollbackReason?: string;
  options?: TransOptions;
  /** msg only: deliver the branches in parallel. Default `false`. */
  concurrent?: boolean;
}

/** A TCC branch to record before its try is called (spec §2.5 / §12.5). */
export interface TccBranchRegistration {
  gid: string;
  branchId: string;
  /** The try's payload; the coordinator sends the same to confirm and cancel. */
  payload: WirePayload;
  confirm: string;
  cancel: string;
}

// --- XA ---
/** An XA branch, recorded by the branch itself from inside its local XA transaction (spec §2.5 / §12.5). */
export interface XaBranchRegistration {
  gid: string;
  branchId: string;
  /** The phase-2 URL (HTTP URL or gRPC `host:port/pkg.Svc/Method`): called with op `commit` or `rollback`. */
  url: string;
}
// --- end XA ---

/** A branch call the SDK makes itself: a TCC try, or the msg back-check of `doAndSubmit`. */
export interface SdkBranchCall {
  /** The branch: an HTTP URL, or a gRPC `host:port/pkg.Svc/Method`. */
  url: string;
  gid: string;
  transType: string;
  branchId: string;
  op: string;
  /** Default: none (an HTTP GET; an empty gRPC message). */
  payload?: WirePayload;
  /** The transaction's branch headers (HTTP headers / gRPC metadata). Default: none. */
  headers?: Record<string, string>;
  /** Tell the branch which coordinator runs its transaction (`dtm` / `dtm-dtm`), as a try call does. */
  withCoordinator: boolean;
  // --- XA (spec §12.5) ---
  /** XA action calls: the URL the branch registers for its phase 2 (`phase2_url` / `dtm-phase2_url`). */
  phase2Url?: string;
}

/** How a {@link SdkBranchCall} ended. */
export interface SdkBranchReply<Reply> {
  /** How DTM would read the reply (spec §5.4 for HTTP, §5.5 for gRPC). */
  result: Result | 'ERROR';
  /** The reply's text (HTTP body, gRPC status details), for error messages. */
  message: string;
  /** Names the reply's status in messages, e.g. `HTTP 500` or `gRPC Unavailable`. */
  status: string;
  /** The HTTP status, for `BranchError.status`. */
  httpStatus?: number;
  /** The reply itself: an `HttpReply` over HTTP, the reply message's bytes over gRPC. */
  reply: Reply;
}

/**
 * What the transaction builders need from a coordinator client. `Payload` is what users hand to `add` and
 * `callBranch` (any JSON value over HTTP, protobuf bytes over gRPC); `Reply` is what a TCC try returns.
 */
export interface CoordinatorTransport<Payload, Reply> {
  /** The protocol branches are called with: `http` or `grpc`. */
  readonly protocol: Protocol;
  /** How branches name this coordinator: the `dtm` query parameter (HTTP), the `dtm-dtm` metadata (gRPC). */
  readonly address: string;
  /**
   * Encodes a payload for the wire, at the moment it is added (later changes to the object are not sent).
   * @throws DtxError when the payload cannot be carried by this transport.
   */
  encodePayload(payload: Payload): WirePayload;
  prepare(parts: TransParts, call?: CallOptions): Promise<void>;
  submit(parts: TransParts, call?: CallOptions): Promise<void>;
  abort(parts: TransParts, call?: CallOptions): Promise<void>;
  registerTccBranch(branch: TccBranchRegistration, call?: CallOptions): Promise<void>;
  // --- XA (spec §2.5, §12.5) ---
  /** Records an XA branch of a prepared transaction: the coordinator calls `url` with op commit or rollback. */
  registerXaBranch(branch: XaBranchRegistration, call?: CallOptions): Promise<void>;
  // --- end XA ---
  /** Rejects with a `BranchError` only when there is no reply (unreachable, timed out). */
  callBranch(call: SdkBranchCall, options?: CallOptions): Promise<SdkBranchReply<Reply>>;
  /**
   * The stored state of `gid`, `undefined` when the coordinator does not know it. Only transports that can query
   * the coordinator have it (HTTP; DTM's gRPC API has no query).
   */
  query?(gid: string, call?: CallOptions): Promise<StoredState | undefined>;
}

/** A client the builders can work with: anything that has a {@link CoordinatorTransport}. */
export interface TransportClient<Payload, Reply> {
  readonly transport: CoordinatorTransport<Payload, Reply>;
}

// ---- Workflow (spec §2.8, §6.8): what `client.workflow` needs from a transport ----

/** A workflow to create, or to find when its gid exists (`prepareWorkflow`). */
export interface WorkflowPrepareRequest {
  gid: string;
  /** The registered workflow's name (`custom_data.name`; the resume call's `op`). */
  name: string;
  /** The encoded input (`custom_data.data`, base64 on the wire). */
  input: Uint8Array;
  /** Where the coordinator resumes the workflow (`query_prepared`). Default: none. */
  resumeUrl?: string;
  /** Seconds between two resume attempts (`retry_interval`). Default: the coordinator's. */
  retryInterval?: number;
}

/** One recorded step outcome (a progress of `prepareWorkflow`'s reply). */
export interface WorkflowProgress {
  branchId: string;
  /** `action`, `commit`, `rollback`, … */
  op: string;
  /** `succeed` or `failed`. */
  status: string;
  /** The step's result bytes; for a failed step, the error text. */
  data: Uint8Array;
}

/** A workflow's stored state, as `prepareWorkflow` answers. */
export interface WorkflowState {
  /** `prepared`, `succeed` or `failed`. */
  status: string;
  rollbackReason: string;
  /** The recorded result, when the coordinator returns it (dtx does; DTM leaves it empty). */
  result: Uint8Array;
  progresses: WorkflowProgress[];
}

/** A step outcome to record (`registerBranch` with trans_type `workflow`). */
export interface WorkflowBranchRecord extends WorkflowProgress {
  gid: string;
}

/** The outcome of a workflow (`submit` with `req_extra`). */
export interface WorkflowSubmitRequest {
  gid: string;
  status: 'succeed' | 'failed';
  rollbackReason: string;
  result: Uint8Array;
}

/** The workflow calls of a transport; both clients implement them. */
export interface WorkflowTransport {
  prepareWorkflow(request: WorkflowPrepareRequest, call?: CallOptions): Promise<WorkflowState>;
  registerWorkflowBranch(record: WorkflowBranchRecord, call?: CallOptions): Promise<void>;
  submitWorkflow(request: WorkflowSubmitRequest, call?: CallOptions): Promise<void>;
}
