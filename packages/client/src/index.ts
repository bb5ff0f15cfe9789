/**
 * @dtx/client — the dtx TypeScript SDK: saga, two-phase message and TCC transactions over DTM's HTTP or gRPC
 * protocol, for a dtx or DTM coordinator.
 *
 * This entry is the HTTP core: it imports no gRPC library and no web framework. The integrations are opt-in
 * entries: `@dtx/client/grpc` (needs `@grpc/grpc-js`), `@dtx/client/fastify`, `@dtx/client/express`, and one per
 * barrier dialect, `@dtx/client/barrier/sqlite|postgres|mysql|redis` (also re-exported here: they only describe
 * the driver objects they are handed, and import no driver).
 *
 * @module
 */
export type { BranchInfo, QueryReply, TransBranchJson, TransGlobalJson, TransRequest } from '@dtx/protocol';
export * from './adapters/index.js';
export * from './barrier/index.js';
export { BranchIdGenerator } from './branch-id-generator.js';
export { type BranchRequest, DtxClient, type DtxClientOptions } from './client.js';
// Workflow mode
export type {
  CallOptions,
  CoordinatorTransport,
  SdkBranchCall,
  SdkBranchReply,
  StoredState,
  TccBranchRegistration,
  TransParts,
  TransportClient,
  WirePayload,
  WorkflowBranchRecord,
  WorkflowPrepareRequest,
  WorkflowProgress,
  WorkflowState,
  WorkflowSubmitRequest,
  WorkflowTransport,
} from './coordinator-transport.js';
export {
  BranchError,
  CoordinatorError,
  DtxError,
  DuplicatedError,
  FailureError,
  isCoordinatorError,
  isFailure,
  isOngoing,
  OngoingError,
  type Transience,
} from './errors.js';
export { generateGid } from './gid.js';
export type { HttpReply } from './http-call.js';
export { Msg, type MsgOptions } from './msg.js';
export type { RetryOptions } from './retry.js';
export { Saga, type SagaOptions, type SagaStepOptions } from './saga.js';
export type { SubmitHandle, WaitOptions } from './submit-handle.js';
export { Tcc, type TccOptions } from './tcc.js';
export type { TransactionOptions } from './transaction-options.js';
export * from './workflow/index.js';
// --- XA ---
export * from './xa/index.js';
// --- end XA ---
