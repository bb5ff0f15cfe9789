/**
 * Workflow mode over gRPC: the coordinator calls on `dtmgimp.Dtm` (PrepareWorkflow, RegisterBranch, Submit with
 * `ReqExtra`, spec §4 / §6.8), and the resume service `workflow.Workflow/Execute` (spec §4.5) the coordinator calls
 * on the workflow host.
 *
 * @module
 */
import {
  classifyHttpReply,
  DtmMetadata,
  type DtmProgressesReply,
  type DtmRequest,
  GrpcStatus,
  PROTO_LOADER_OPTIONS,
  Protocol,
  TransType,
  WORKFLOW_EXECUTE_METHOD,
  WORKFLOW_PROTO,
} from '@dtx/protocol';
import type {
  MethodDefinition,
  ServerUnaryCall,
  ServiceDefinition,
  sendUnaryData,
  UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { Agent } from 'undici';
import type { WorkflowState, WorkflowTransport } from '../coordinator-transport.js';
import { BranchError, CoordinatorError } from '../errors.js';
import { httpCall, urlWithQuery } from '../http-call.js';
import { payloadText } from '../trans-request.js';
import { workflowCustomData } from '../workflow/wire.js';
import type { WorkflowHost, WorkflowRegistry } from '../workflow/workflow.js';
import type { DtxGrpcClient } from './grpc-client.js';

/** `host:port` → `host:port/workflow.Workflow/Execute`; a value with a method path is kept as it is. */
export function grpcWorkflowResumeTarget(url: string): string {
  const u = url.trim();
  return u.includes('/') ? u : `${u}${WORKFLOW_EXECUTE_METHOD}`;
}

function base64(s: string): Uint8Array {
  return s === '' ? new Uint8Array(0) : new Uint8Array(Buffer.from(s, 'base64'));
}

function stateOf(gid: string, reply: DtmProgressesReply): WorkflowState {
  const t = reply.Transaction;
  if (t === null || t === undefined) {
    throw new CoordinatorError(`PrepareWorkflow ${gid}: the coordinator replied without a transaction`);
  }
  return {
    status: t.Status,
    rollbackReason: t.RollbackReason,
    result: base64(t.Result),
    progresses: (reply.Progresses ?? []).map((p) => ({
      branchId: p.BranchID,
      op: p.Op,
      status: p.Status,
      data: new Uint8Array(p.BinData ?? []),
    })),
  };
}

function request(gid: string, extra: Partial<DtmRequest>): DtmRequest {
  return {
    Gid: gid,
    TransType: TransType.Workflow,
    TransOptions: null,
    CustomedData: '',
    BinPayloads: [],
    QueryPrepared: '',
    Steps: '',
    ReqExtra: {},
    RollbackReason: '',
    ...extra,
  };
}

/** The workflow calls of a gRPC client. */
function grpcWorkflowWire(client: DtxGrpcClient): WorkflowTransport {
  return {
    async prepareWorkflow(r, call) {
      const reply = await client.prepareWorkflow(
        request(r.gid, {
          CustomedData: workflowCustomData(r),
          QueryPrepared: r.resumeUrl ?? '',
          TransOptions: {
            WaitResult: false,
            TimeoutToFail: 0,
            RetryInterval: r.retryInterval ?? 0,
            BranchHeaders: {},
            RequestTimeout: 0,
            RetryLimit: 0,
          },
        }),
        call,
      );
      return stateOf(r.gid, reply);
    },
    registerWorkflowBranch: (b, call) =>
      client.registerBranch(
        {
          Gid: b.gid,
          TransType: TransType.Workflow,
          BranchID: b.branchId,
          Op: '',
          Data: { status: b.status, op: b.op },
          BusiPayload: Buffer.from(b.data),
        },
        call,
      ),
    submitWorkflow: (s, call) =>
      client.submit(
        request(s.gid, {
          ReqExtra: {
            status: s.status,
            rollback_reason: s.rollbackReason,
            result: Buffer.from(s.result).toString('base64'),
          },
        }),
        call,
      ),
  };
}

/** What `client.workflow` of a gRPC client runs on: gRPC steps on its channels, HTTP steps on a small agent. */
export function grpcWorkflowHost(client: DtxGrpcClient, timeoutMs: number): WorkflowHost {
  let agent: Agent | undefined;
  return {
    protocol: Protocol.Grpc,
    wire: grpcWorkflowWire(client),
    grpcBranch: (call, options) => client.transport.callBranch(call, options),
    async close() {
      await agent?.close();
      agent = undefined;
    },
    async httpBranch(call, options) {
      agent ??= new Agent({ connections: 16 });
      const url = urlWithQuery(call.url, {
        dtm: client.address,
        gid: call.gid,
        trans_type: call.transType,
        branch_id: call.branchId,
        op: call.op,
      });
      let reply: { status: number; text: string };
      try {
        reply = await httpCall(agent, {
          method: call.payload === undefined ? 'GET' : 'POST',
          url,
          ...(call.payload === undefined ? {} : { body: payloadText(call.payload) }),
          ...(call.headers === undefined ? {} : { headers: call.headers }),
          timeoutMs,
          ...(options?.signal === undefined ? {} : { signal: options.signal }),
        });
      } catch (cause) {
        if (options?.signal?.aborted) throw options.signal.reason;
        throw new BranchError(
          `${url.href} failed: ${cause instanceof Error ? cause.message : String(cause)}`,
          url.href,
          undefined,
          { cause },
        );
      }
      return {
        result: classifyHttpReply(reply.status, reply.text),
        message: reply.text,
        status: `HTTP ${reply.status}`,
        httpStatus: reply.status,
        reply,
      };
    },
  };
}

/** `workflow.WorkflowData`. */
interface WorkflowData {
  Data: Uint8Array;
}

/** The `workflow.Workflow` service definition (from `@dtx/protocol`'s workflow.proto), for `server.addService`. */
export function workflowServiceDefinition(): ServiceDefinition {
  const pkg = loadSync(WORKFLOW_PROTO, PROTO_LOADER_OPTIONS);
  const svc = pkg['workflow.Workflow'];
  if (svc === undefined || !('Execute' in svc)) throw new Error(`${WORKFLOW_PROTO} does not define workflow.Workflow`);
  return svc as unknown as ServiceDefinition;
}

function firstMeta(call: ServerUnaryCall<unknown, unknown>, key: string): string {
  const v = call.metadata.get(key)[0];
  return v === undefined ? '' : typeof v === 'string' ? v : v.toString('utf8');
}

/**
 * The resume endpoint over gRPC: the implementation of `workflow.Workflow/Execute` for `registry`. Serve it with
 * `server.addService(workflowServiceDefinition(), workflowGrpcService(client.workflow))` and pass this server's
 * `host:port` as the client's `workflowResumeUrl`. The workflow is named by the `dtm-op` metadata, the gid by
 * `dtm-gid`; answers OK when it finished, Aborted when it failed, FailedPrecondition when it is not finished yet,
 * Internal for an error (the coordinator retries), InvalidArgument / NotFound for no gid or an unknown workflow.
 */
export function workflowGrpcService(registry: WorkflowRegistry): UntypedServiceImplementation {
  return {
    Execute(call: ServerUnaryCall<WorkflowData, unknown>, callback: sendUnaryData<unknown>) {
      const gid = firstMeta(call, DtmMetadata.Gid);
      const name = firstMeta(call, DtmMetadata.Op);
      const fail = (code: number, details: string) => callback({ code, details, name: 'Error', message: details });
      if (gid === '') return fail(GrpcStatus.INVALID_ARGUMENT, 'the metadata dtm-gid is missing');
      if (name === '') return fail(GrpcStatus.INVALID_ARGUMENT, 'the metadata dtm-op (the workflow name) is missing');
      if (!registry.has(name))
        return fail(GrpcStatus.NOT_FOUND, `no workflow named '${name}' is registered on this host`);
      void registry.resume(name, gid, new Uint8Array(call.request?.Data ?? [])).then((out) => {
        if (out.outcome === 'SUCCESS') callback(null, {});
        else if (out.outcome === 'FAILURE') fail(GrpcStatus.ABORTED, out.message);
        else if (out.outcome === 'ONGOING') fail(GrpcStatus.FAILED_PRECONDITION, out.message);
        else fail(GrpcStatus.INTERNAL, out.message);
      });
    },
  };
}

/** The method definition type of `Execute`, for typed servers. */
export type WorkflowExecuteDefinition = MethodDefinition<WorkflowData, Record<string, never>>;
