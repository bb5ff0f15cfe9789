/**
 * The workflow calls on DTM's HTTP API (spec §2.5, §2.8, §6.8), and the reading of a `prepareWorkflow` reply.
 *
 * @module
 */
import { Protocol, TransType } from '@dtx/protocol';
import type { DtxClient } from '../client.js';
import type {
  WorkflowPrepareRequest,
  WorkflowProgress,
  WorkflowState,
  WorkflowTransport,
} from '../coordinator-transport.js';
import { CoordinatorError } from '../errors.js';
import { textOf } from './codec.js';

/** `custom_data` of a workflow: `{"name":N,"data":<base64 input>}`, as DTM's Go client writes it. */
export function workflowCustomData(request: WorkflowPrepareRequest): string {
  return JSON.stringify({ name: request.name, data: Buffer.from(request.input).toString('base64') });
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : v === undefined || v === null ? '' : String(v);
}

function base64(v: unknown): Uint8Array {
  const s = str(v);
  return s === '' ? new Uint8Array(0) : new Uint8Array(Buffer.from(s, 'base64'));
}

/** Reads the JSON reply of `prepareWorkflow` (strings as DTM writes them; `bin_data` and `result` base64). */
export function workflowStateOfJson(gid: string, reply: unknown): WorkflowState {
  const r = (reply ?? {}) as { transaction?: Record<string, unknown> | null; progresses?: unknown };
  const t = r.transaction;
  if (t === undefined || t === null || typeof t !== 'object') {
    throw new CoordinatorError(`prepareWorkflow ${gid}: the coordinator replied without a transaction`, 200);
  }
  const progresses: WorkflowProgress[] = Array.isArray(r.progresses)
    ? r.progresses.map((p: Record<string, unknown>) => ({
        branchId: str(p.branch_id),
        op: str(p.op),
        status: str(p.status),
        data: base64(p.bin_data),
      }))
    : [];
  return { status: str(t.status), rollbackReason: str(t.rollback_reason), result: base64(t.result), progresses };
}

/** The workflow calls of an HTTP client. */
export function httpWorkflowWire(client: DtxClient): WorkflowTransport {
  return {
    async prepareWorkflow(request, call) {
      const reply = await client.prepareWorkflow(
        {
          gid: request.gid,
          trans_type: TransType.Workflow,
          custom_data: workflowCustomData(request),
          ...(request.resumeUrl === undefined ? {} : { query_prepared: request.resumeUrl }),
          protocol: Protocol.Http,
          ...(request.retryInterval === undefined ? {} : { retry_interval: request.retryInterval }),
        },
        call,
      );
      return workflowStateOfJson(request.gid, reply);
    },
    registerWorkflowBranch: (record, call) =>
      client.registerBranch(
        {
          gid: record.gid,
          trans_type: TransType.Workflow,
          branch_id: record.branchId,
          op: record.op,
          status: record.status,
          data: textOf(record.data),
        },
        call,
      ),
    submitWorkflow: (request, call) =>
      client.submit(
        {
          gid: request.gid,
          trans_type: TransType.Workflow,
          protocol: Protocol.Http,
          req_extra: {
            status: request.status,
            rollback_reason: request.rollbackReason,
            result: Buffer.from(request.result).toString('base64'),
          },
        },
        call,
      ),
  };
}
