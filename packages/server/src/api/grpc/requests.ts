import type { DtmBranchRequest, DtmProgressesReply, DtmRequest, DtmTopicRequest } from '@dtx/protocol';
import { InputError } from '../../core/errors.js';
import type { TransBranch, TransGlobal } from '../../core/model.js';
import type { BranchInput, TransInput } from '../../core/trans-input.js';
import type { TraceContext } from '../../observe/trace-context.js';
import { DEFAULT_EDGE_LIMITS, decodeBranch, decodeTrans, type EdgeLimits } from '../decode.js';

/**
 * gRPC requests into the service functions' input (spec §4.2), through the same validation as the
 * HTTP bodies (api/decode.ts): gid not escaped, protocol always grpc, payloads the raw BinPayloads.
 * An InputError names the protobuf field (`Steps[0].action`, `TransOptions.RequestTimeout`), not the
 * JSON key the shared validation knows it by.
 */

/** JSON key (prefix) → protobuf field of DtmRequest. */
const TRANS_FIELDS: Record<string, string> = {
  gid: 'Gid',
  trans_type: 'TransType',
  steps: 'Steps',
  payloads: 'BinPayloads',
  custom_data: 'CustomedData',
  query_prepared: 'QueryPrepared',
  rollback_reason: 'RollbackReason',
  req_extra: 'ReqExtra',
  wait_result: 'TransOptions.WaitResult',
  timeout_to_fail: 'TransOptions.TimeoutToFail',
  request_timeout: 'TransOptions.RequestTimeout',
  retry_interval: 'TransOptions.RetryInterval',
  retry_limit: 'TransOptions.RetryLimit',
  branch_headers: 'TransOptions.BranchHeaders',
  body: 'request',
};

/** JSON key → protobuf field of DtmBranchRequest (the tcc / xa keys travel in its Data map). */
const BRANCH_FIELDS: Record<string, string> = {
  gid: 'Gid',
  trans_type: 'TransType',
  branch_id: 'BranchID',
  confirm: 'Data.confirm',
  cancel: 'Data.cancel',
  url: 'Data.url',
  op: 'Data.op',
  status: 'Data.status',
  body: 'request',
};

/** JSON key → protobuf field of DtmTopicRequest. */
const TOPIC_FIELDS: Record<string, string> = { topic: 'Topic', url: 'URL', remark: 'Remark' };

/** The same InputError with its field spelled as in the .proto; any other error unchanged. */
export function withProtoField(err: unknown, names: Record<string, string>): unknown {
  if (!(err instanceof InputError)) return err;
  const f = err.field;
  for (const [from, to] of Object.entries(names)) {
    if (f === from || f.startsWith(`${from}.`) || f.startsWith(`${from}[`)) {
      const problem = err.message.startsWith(`${f}: `) ? err.message.slice(f.length + 2) : err.message;
      return new InputError(to + f.slice(from.length), problem);
    }
  }
  return err;
}

/** Steps: the JSON text of an array of string maps; empty or `null` (what Go clients send) means none. */
function stepsOf(text: string): unknown {
  if (text.trim() === '') return null;
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new InputError('Steps', `expected the JSON text of an array of steps: ${(err as Error).message}`);
  }
}

/**
 * Submit, Prepare and Abort: the request decoded (with the call's trace context), then `fn`; input errors name
 * protobuf fields.
 */
export async function transCall(
  r: DtmRequest,
  trace: TraceContext | undefined,
  fn: (t: TransInput) => Promise<void>,
  limits: EdgeLimits = DEFAULT_EDGE_LIMITS,
): Promise<void> {
  try {
    const input = transInputOf(r, limits);
    if (trace) input.trace = trace;
    await fn(input);
  } catch (err) {
    throw withProtoField(err, TRANS_FIELDS);
  }
}

/**
 * PrepareWorkflow: the request decoded as Submit's, then `fn`; the reply is DtmProgressesReply with the
 * transaction's result filled in (DTM leaves it empty, so a gRPC workflow run again after it succeeded would
 * return no output).
 */
export async function workflowCall(
  r: DtmRequest,
  trace: TraceContext | undefined,
  fn: (t: TransInput) => Promise<{ trans: TransGlobal; branches: TransBranch[] }>,
  limits: EdgeLimits = DEFAULT_EDGE_LIMITS,
): Promise<DtmProgressesReply> {
  let out: { trans: TransGlobal; branches: TransBranch[] };
  try {
    const input = transInputOf(r, limits);
    if (trace) input.trace = trace;
    out = await fn(input);
  } catch (err) {
    throw withProtoField(err, TRANS_FIELDS);
  }
  const t = out.trans;
  return {
    Transaction: { Gid: t.gid, Status: t.status, RollbackReason: t.rollbackReason, Result: t.result },
    Progresses: out.branches.map((b) => ({ Status: b.status, BinData: b.binData, BranchID: b.branchId, Op: b.op })),
  };
}

function transInputOf(r: DtmRequest, limits: EdgeLimits): TransInput {
  const body: Record<string, unknown> = {
    gid: r.Gid,
    trans_type: r.TransType,
    steps: stepsOf(r.Steps),
    custom_data: r.CustomedData,
    query_prepared: r.QueryPrepared,
    rollback_reason: r.RollbackReason,
    req_extra: r.ReqExtra,
  };
  // proto3 cannot tell zero from absent: zero options are left out, as the Go SDK leaves them out
  // of its HTTP bodies, so that a submit does not override what its prepare stored
  const o = r.TransOptions;
  if (o) {
    if (o.WaitResult) body.wait_result = true;
    if (o.TimeoutToFail) body.timeout_to_fail = o.TimeoutToFail;
    if (o.RetryInterval) body.retry_interval = o.RetryInterval;
    if (o.RequestTimeout) body.request_timeout = o.RequestTimeout;
    if (o.RetryLimit) body.retry_limit = o.RetryLimit;
    if (Object.keys(o.BranchHeaders).length > 0) body.branch_headers = o.BranchHeaders;
  }
  return decodeTrans(body, { escapeGid: false, protocol: 'grpc', binPayloads: r.BinPayloads, limits });
}

/** RegisterBranch: the Data map holds the HTTP body's keys; the fields win; the body is BusiPayload. */
export async function branchCall(
  r: DtmBranchRequest,
  trace: TraceContext | undefined,
  fn: (b: BranchInput) => Promise<void>,
  limits?: EdgeLimits,
): Promise<void> {
  try {
    const body = { ...r.Data, gid: r.Gid, trans_type: r.TransType, branch_id: r.BranchID };
    const input = decodeBranch(body, {
      escapeGid: false,
      protocol: 'grpc',
      data: r.BusiPayload,
      ...(limits === undefined ? {} : { limits }),
    });
    if (trace) input.trace = trace;
    await fn(input);
  } catch (err) {
    throw withProtoField(err, BRANCH_FIELDS);
  }
}

/** Run a topic operation, naming Topic / URL in its input errors. */
export async function topicCall(r: DtmTopicRequest, fn: (r: DtmTopicRequest) => Promise<void>): Promise<void> {
  try {
    await fn(r);
  } catch (err) {
    throw withProtoField(err, TOPIC_FIELDS);
  }
}
