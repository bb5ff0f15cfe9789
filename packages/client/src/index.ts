/**
 * @dtx/client — the dtx TypeScript SDK: saga, two-phase message and TCC transactions over DTM's HTTP or gRPC
 * protocol, for a dtx or DTM coordinator.
 */
export type { BranchInfo, QueryReply, TransBranchJson, TransGlobalJson, TransRequest } from '@dtx/protocol';
export * from './adapters/index.js';
export * from './barrier/index.js';
export { BranchIdGenerator } from './branch-id-generator.js';
export { type BranchRequest, DtxClient, type DtxClientOptions } from './client.js';
export type {
  CoordinatorTransport,
  SdkBranchCall,
  SdkBranchReply,
  TccBranchRegistration,
  TransParts,
  TransportClient,
  WirePayload,
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
} from './errors.js';
export { generateGid } from './gid.js';
export * from './grpc/index.js';
export type { HttpReply } from './http-call.js';
export { Msg, type MsgOptions } from './msg.js';
export { Saga, type SagaOptions } from './saga.js';
export { Tcc, type TccOptions } from './tcc.js';
export type { TransactionOptions } from './transaction-options.js';
