/**
 * The coordinator's gRPC service, `dtmgimp.Dtm` (spec §4.1), loaded from `@dtx/protocol`'s `dtmgimp.proto`:
 * the serializers of each method's request and reply.
 *
 * @module
 */
import {
  DTM_GRPC_SERVICE,
  DTMGIMP_PROTO,
  type DtmBranchRequest,
  type DtmGidReply,
  type DtmProgressesReply,
  type DtmRequest,
  PROTO_LOADER_OPTIONS,
} from '@dtx/protocol';
import type { MethodDefinition } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';

/** `google.protobuf.Empty`. */
export type Empty = Record<string, never>;

/** The methods of `dtmgimp.Dtm` the SDK calls, with their serializers. */
export interface DtmService {
  NewGid: MethodDefinition<Empty, DtmGidReply>;
  Submit: MethodDefinition<DtmRequest, Empty>;
  Prepare: MethodDefinition<DtmRequest, Empty>;
  Abort: MethodDefinition<DtmRequest, Empty>;
  RegisterBranch: MethodDefinition<DtmBranchRequest, Empty>;
  PrepareWorkflow: MethodDefinition<DtmRequest, DtmProgressesReply>;
}

/** Loads `dtmgimp.proto` (a few milliseconds; done once per client). */
export function loadDtmService(): DtmService {
  const pkg = loadSync(DTMGIMP_PROTO, PROTO_LOADER_OPTIONS);
  const svc = pkg[DTM_GRPC_SERVICE];
  if (svc === undefined || !('Submit' in svc)) {
    throw new Error(`${DTMGIMP_PROTO} does not define the service ${DTM_GRPC_SERVICE}`);
  }
  return svc as unknown as DtmService;
}
