import { type KV, publicOptionsText, type TransBranch, type TransGlobal } from '../core/model.js';
import { DEFAULT_REDACTOR, type HeaderRedactor } from '../core/redact.js';
import { compensateDue } from '../core/saga.js';
import { stuckReasonOf } from '../core/stuck.js';
import type { StuckRule } from '../store/store.js';
import { formatTime } from '../util/format-time.js';

function put(o: Record<string, unknown>, k: string, v: unknown): void {
  if (v === undefined || v === null || v === '' || v === 0 || v === false) return;
  o[k] = v;
}

/**
/**
 * The transaction object of query / all (spec §2.6). The trace context dtx stores with it is not shown; the
 * values of secret headers (`Redact.Headers` and the always-masked ones) are `***` in branch_headers, in the
 * options text and in ext_data's legacy headers. dtx adds failed_attempts, last_error and, under `rule`,
 * stuck / stuck_reason (omitted when empty, as DTM's keys).
 */
export function renderTrans(
  t: TransGlobal,
  rule?: StuckRule,
  redact: HeaderRedactor = DEFAULT_REDACTOR,
): Record<string, unknown> {
  const o: Record<string, unknown> = {
    id: t.id ?? 0,
    create_time: formatTime(t.createTime) ?? null,
    update_time: formatTime(t.updateTime) ?? null,
  };
  put(o, 'gid', t.gid);
  put(o, 'trans_type', t.transType);
  put(o, 'status', t.status);
  put(o, 'query_prepared', t.queryPrepared);
  put(o, 'protocol', t.protocol);
  put(o, 'finish_time', formatTime(t.finishTime));
  put(o, 'rollback_time', formatTime(t.rollbackTime));
  put(o, 'result', t.result);
  put(o, 'rollback_reason', t.rollbackReason);
  put(o, 'options', redact.jsonText(publicOptionsText(t), 'branch_headers'));
  put(o, 'custom_data', t.customData);
  put(o, 'next_cron_interval', t.nextCronInterval);
  put(o, 'next_cron_time', formatTime(t.nextCronTime));
  put(o, 'owner', t.owner);
  put(o, 'ext_data', redact.jsonText(t.extData, 'headers'));
  const opts = t.opts;
  put(o, 'wait_result', opts.wait_result);
  put(o, 'timeout_to_fail', opts.timeout_to_fail);
  put(o, 'request_timeout', opts.request_timeout);
  put(o, 'retry_interval', opts.retry_interval);
  if (opts.branch_headers && Object.keys(opts.branch_headers).length > 0)
    o.branch_headers = redact.headers(opts.branch_headers);
  o.concurrent = opts.concurrent === true;
  put(o, 'retry_limit', opts.retry_limit);
  if (opts.compensate_delays) {
    o.compensate_delays = opts.compensate_delays;
    // while the rollback runs: when each step's compensation may be called (null: no delay)
    if (t.status === 'aborting' && t.rollbackTime) {
      o.compensate_due = opts.compensate_delays.map((d, i) => (d > 0 ? formatTime(compensateDue(t, i)) : null));
    }
  }
  put(o, 'failed_attempts', t.failedAttempts);
  put(o, 'last_error', t.lastError);
  const reason = rule && stuckReasonOf(t, rule);
  if (reason) {
    o.stuck = true;
    o.stuck_reason = reason;
  }
  return o;
}

/** The branch object of query (spec §2.6); bin_data is base64. */
export function renderBranch(b: TransBranch): Record<string, unknown> {
  const o: Record<string, unknown> = {
    id: b.id ?? 0,
    create_time: formatTime(b.createTime) ?? null,
    update_time: formatTime(b.updateTime) ?? null,
  };
  put(o, 'gid', b.gid);
  put(o, 'url', b.url);
  if (b.binData.byteLength > 0) o.bin_data = Buffer.from(b.binData).toString('base64');
  put(o, 'branch_id', b.branchId);
  put(o, 'op', b.op);
  put(o, 'status', b.status);
  put(o, 'finish_time', formatTime(b.finishTime));
  put(o, 'rollback_time', formatTime(b.rollbackTime));
  put(o, 'attempts', b.attempts);
  put(o, 'last_attempt_time', formatTime(b.lastAttemptTime));
  put(o, 'last_result', b.lastResult);
  put(o, 'last_error', b.lastError);
  return o;
}

export function renderKV(kv: KV): Record<string, unknown> {
  return {
    id: kv.id ?? 0,
    create_time: formatTime(kv.createTime) ?? null,
    update_time: formatTime(kv.updateTime) ?? null,
    cat: kv.cat,
    k: kv.k,
    v: kv.v,
    version: kv.version,
  };
}

/**
 * The reply of prepareWorkflow (spec §2.8): the transaction object (gid, status, rollback_reason and result are
 * strings, result the base64 the workflow was submitted with) and its recorded steps as `progresses` (branch
 * objects: branch_id, op and status strings, bin_data base64), in the order they were recorded. DTM's Go client
 * reads it with protobuf-JSON rules, ignoring the other keys.
 */
export function workflowReply(transaction: Record<string, unknown>, branches: TransBranch[]): Record<string, unknown> {
  return { dtm_result: 'SUCCESS', transaction, progresses: branches.map(renderBranch) };
}
