/**
 * The SDK over gRPC: {@link DtxGrpcClient} (the same saga / msg / tcc builders as `DtxClient`) and helpers for
 * grpc-js branch handlers ({@link grpcBranch}: the barrier from the `dtm-*` metadata, errors mapped to the status
 * codes DTM reads as intended).
 *
 * @module
 */
export {
  type GrpcBranchContext,
  type GrpcBranchHandler,
  type GrpcBranchLogger,
  type GrpcBranchOptions,
  type GrpcBranchStatus,
  grpcBranch,
  grpcBranchService,
  grpcBranchStatusOf,
  grpcQueryPreparedHandler,
} from './grpc-branch.js';
export {
  DtxGrpcClient,
  type DtxGrpcClientOptions,
  encodeGrpcPayload,
  type GrpcPayload,
  type GrpcReply,
  toDtmRequest,
} from './grpc-client.js';
export { coordinatorErrorOf } from './grpc-errors.js';
export { type GrpcBranchUrl, splitGrpcUrl } from './grpc-url.js';
export {
  grpcWorkflowResumeTarget,
  type WorkflowExecuteDefinition,
  workflowGrpcService,
  workflowServiceDefinition,
} from './grpc-workflow.js';
