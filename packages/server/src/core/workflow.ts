import { branchProtocolOf } from '@dtx/protocol';
import { formatTime } from '../util/format-time.js';
import { InputError } from './errors.js';
import type { TransPass } from './pass.js';
import { neverAborts, noFinalFailure, type TransMode } from './trans-mode.js';

/**
 * Workflow mode (spec §6.8). The server keeps state only: the workflow's function runs in its client (the
 * workflow host), which records each step with registerBranch and the outcome with submit. The server's one
 * move is the resume call: a workflow left prepared (its host crashed, or a step answered ONGOING) is handed
 * back to its host through the resume URL it gave (query_prepared), which runs the function again; the steps
 * already recorded are replayed, not called.
 */

/** The branch id of the resume call (spec §6.8), as DTM sends it. */
export const WORKFLOW_RESUME_BRANCH_ID = '00';
/**
 * The `op` label of the resume call in the branch metrics. The call's own op is the workflow's name, which the
 * caller chooses: never a label, so that the metrics stay bounded.
 */
export const WORKFLOW_METRICS_OP = 'workflow';
/** A workflow's name (custom_data.name): the op of its resume call, so a short printable name. */
export const MAX_WORKFLOW_NAME = 128;

/** The ops a workflow step is recorded under (spec §1.4). */
export const WORKFLOW_OPS: readonly string[] = ['action', 'commit', 'rollback', 'business'];
/** The outcomes a workflow step or a workflow is recorded with. */
export const WORKFLOW_STATUSES: readonly string[] = ['succeed', 'failed'];

/** Standard base64 with its padding, as Go's encoding/json writes []byte. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

/** The bytes of a standard base64 text; an InputError naming `field` when it is not one. */
export function base64Bytes(v: string, field: string): Uint8Array {
  if (!BASE64.test(v)) throw new InputError(field, 'expected standard base64 (A-Z a-z 0-9 + /, padded with =)');
  return Buffer.from(v, 'base64');
}

/** A workflow's custom_data, `{"name":N,"data":<base64 of the input>}` (spec §2.8), read. */
export interface WorkflowCustomData {
  name: string;
  /** The workflow's input bytes. */
  data: Uint8Array;
}

/** What the input to a workflow looks like, for messages. */
const CUSTOM_DATA_SHAPE = 'the text of a JSON object {"name":<workflow name>,"data":<base64 of the input>}';

/**
 * Reads a workflow's custom_data: a JSON object whose `name` (keys matched case-insensitively, as Go does) is a
 * non-empty printable name of at most {@link MAX_WORKFLOW_NAME} characters, and whose `data` is base64, null or
 * absent (no input). Throws an InputError naming the field.
 */
export function workflowCustomDataOf(text: string, field = 'custom_data'): WorkflowCustomData {
  if (text === '') throw new InputError(field, `required for a workflow: ${CUSTOM_DATA_SHAPE}`);
  let cd: unknown;
  try {
    cd = JSON.parse(text);
  } catch {
    throw new InputError(field, `expected ${CUSTOM_DATA_SHAPE}`);
  }
  if (!cd || typeof cd !== 'object' || Array.isArray(cd)) throw new InputError(field, `expected ${CUSTOM_DATA_SHAPE}`);
  let name: unknown;
  let data: unknown;
  for (const [k, v] of Object.entries(cd)) {
    const key = k.toLowerCase();
    if (key === 'name') name = v;
    else if (key === 'data') data = v;
  }
  if (typeof name !== 'string' || name === '') {
    throw new InputError(`${field}.name`, "required: the workflow's name, a non-empty string");
  }
  if (name.length > MAX_WORKFLOW_NAME) {
    throw new InputError(`${field}.name`, `longer than ${MAX_WORKFLOW_NAME} characters`);
  }
  if (!PRINTABLE_ASCII.test(name)) {
    throw new InputError(`${field}.name`, 'must be printable ASCII (it is sent as the op of the resume call)');
  }
  if (data !== undefined && data !== null && typeof data !== 'string') {
    throw new InputError(`${field}.data`, 'expected the base64 text of the input bytes, or null');
  }
  return { name, data: typeof data === 'string' ? base64Bytes(data, `${field}.data`) : new Uint8Array(0) };
}

/** Throws the InputError of a workflow's custom_data that is not {name, data} (prepareWorkflow). */
export function checkWorkflowCustomData(text: string): void {
  workflowCustomDataOf(text);
}

/** True when two byte arrays hold the same bytes. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/** `workflow.WorkflowData{Data}` as protobuf bytes (spec §4.5): field 1, length-delimited; empty for no input. */
export function workflowDataMessage(data: Uint8Array): Uint8Array {
  if (data.byteLength === 0) return data;
  const len: number[] = [];
  let n = data.byteLength;
  while (n > 0x7f) {
    len.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  len.push(n);
  const out = new Uint8Array(1 + len.length + data.byteLength);
  out[0] = 0x0a;
  out.set(len, 1);
  out.set(data, 1 + len.length);
  return out;
}

/**
 * One workflow pass (spec §6.8, improved): a prepared workflow is resumed by calling its resume URL, branch id
 * `00`, op = its name, with its input (HTTP: POSTed, or GET when empty; gRPC: `workflow.Workflow/Execute` with
 * `WorkflowData{Data}`). The host runs the workflow again, which submits its outcome itself.
 *
 * Unlike DTM: the call is one of the pass (the lease is kept past its end, so no other instance resumes the
 * same workflow while it runs); a call that errs, answers ONGOING, or answers without the workflow having been
 * decided, is a failed attempt — backed off (doubling, at most MaxRetryInterval), recorded (failed_attempts,
 * last_error), logged and alerted on like any other. A workflow is never timed out by the server.
 */
export async function processWorkflow(p: TransPass): Promise<void> {
  const t = p.trans;
  if (t.status !== 'prepared') return; // decided: nothing to resume
  let cd: WorkflowCustomData;
  try {
    cd = workflowCustomDataOf(t.customData);
  } catch (err) {
    await failedResume(p, `cannot resume: ${(err as Error).message}`);
    return;
  }
  const url = t.queryPrepared;
  if (url === '') {
    await failedResume(p, 'cannot resume: the workflow was prepared without a resume URL (query_prepared)');
    return;
  }
  const grpc = branchProtocolOf(t.protocol, url) === 'grpc';
  const payload = grpc ? workflowDataMessage(cd.data) : cd.data;
  const out = await p.callUrl(url, WORKFLOW_RESUME_BRANCH_ID, cd.name, payload, WORKFLOW_METRICS_OP);
  if (out.result === 'SUCCESS' || out.result === 'FAILURE') {
    // the host ran it to its end: it submitted the outcome (succeed or failed) before it answered
    const stored = await p.deps.store.findTrans(t.gid);
    if (!stored) return;
    if (stored.status !== 'prepared') {
      t.status = stored.status;
      p.deps.log.info('workflow resumed', { gid: t.gid, trans_type: t.transType, status: t.status });
      return;
    }
    await failedResume(
      p,
      `the resume call answered ${out.result}${out.message ? ` (${out.message})` : ''}, but the workflow is still prepared: the host did not submit its outcome`,
    );
    return;
  }
  await failedResume(p, out.message || out.result, out.result === 'ONGOING');
}

/** A resume that did not decide the workflow: backed off, recorded and alerted on; asked again later. */
async function failedResume(p: TransPass, error: string, ongoing = false): Promise<void> {
  const t = p.trans;
  p.lastError = error;
  // reported as the resume call, labelled as in the branch metrics (branch 00, op workflow)
  await p.backoffAndAlert(t.queryPrepared, error, undefined, {
    branchId: WORKFLOW_RESUME_BRANCH_ID,
    op: WORKFLOW_METRICS_OP,
  });
  const fields = {
    gid: t.gid,
    trans_type: t.transType,
    branch_id: WORKFLOW_RESUME_BRANCH_ID,
    url: t.queryPrepared,
    failed_attempts: t.failedAttempts,
    error: t.lastError,
    next_retry_at: formatTime(t.nextCronTime),
    next_retry_in_s: t.nextCronInterval,
  };
  if (ongoing) p.deps.log.info('workflow answered ONGOING, will resume it again', fields);
  else p.deps.log.warn('workflow resume failed, will retry', fields);
}

/** A workflow submit's req_extra, when given: status succeed or failed, result base64 (spec §6.8). */
export function checkWorkflowOutcome(extra: Record<string, string>): void {
  const status = extra.status;
  if (status !== undefined && !WORKFLOW_STATUSES.includes(status)) {
    throw new InputError('req_extra.status', `expected succeed or failed, got '${status.slice(0, 60)}'`);
  }
  if (extra.result !== undefined) base64Bytes(extra.result, 'req_extra.result');
}

/**
 * WORKFLOW (spec §6.8): created with prepareWorkflow; its client runs the function, records each step with
 * registerBranch and the outcome with submit; the server resumes one left prepared. Never aborted; no branch
 * FAILURE is final (the server makes no branch call but the resume).
 */
export const workflowMode: TransMode = {
  type: 'workflow',
  start: 'client',
  compensatingSteps: false,
  topicSteps: false,
  // the server never times a workflow out: its pass only resumes it
  alwaysPost: false,
  holdsResults: false,
  defaultTimeout: false,
  failureIsFinal: noFinalFailure,
  abortMove: neverAborts,
  checkCustomData: (_cd, text) => {
    workflowCustomDataOf(text);
  },
  checkReqExtra: checkWorkflowOutcome,
  process: processWorkflow,
};
