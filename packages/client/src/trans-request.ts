/**
 * The body of prepare / submit / abort as Go's dtmcli sends it (spec §2.3): always `gid`, `trans_type`,
 * `protocol` and `concurrent`; `steps`, `payloads`, `custom_data`, `query_prepared`, `rollback_reason` and the
 * options only when they are set. Keys come in Go's order, which makes captured bodies easy to compare.
 */
import { Protocol, type TransRequest } from '@dtx/protocol';
import type { TransParts, WirePayload } from './coordinator-transport.js';

/** The parts a transaction mode contributes to a request. */
export type TransRequestParts = TransParts;

/** A payload as HTTP carries it: JSON text (bytes are read as UTF-8). */
export function payloadText(payload: WirePayload): string {
  return typeof payload === 'string' ? payload : Buffer.from(payload).toString('utf8');
}

/** Assembles the request body from its parts. */
export function buildTransRequest(parts: TransRequestParts): TransRequest {
  const req: TransRequest = { gid: parts.gid, trans_type: parts.transType };
  if (parts.steps !== undefined && parts.steps.length > 0) req.steps = parts.steps;
  if (parts.payloads !== undefined && parts.payloads.length > 0) req.payloads = parts.payloads.map(payloadText);
  if (parts.customData !== undefined && parts.customData !== '') req.custom_data = parts.customData;
  if (parts.queryPrepared !== undefined && parts.queryPrepared !== '') req.query_prepared = parts.queryPrepared;
  req.protocol = Protocol.Http;
  if (parts.rollbackReason !== undefined && parts.rollbackReason !== '') req.rollback_reason = parts.rollbackReason;
  const o = parts.options ?? {};
  if (o.wait_result !== undefined) req.wait_result = o.wait_result;
  if (o.timeout_to_fail !== undefined) req.timeout_to_fail = o.timeout_to_fail;
  if (o.request_timeout !== undefined) req.request_timeout = o.request_timeout;
  if (o.retry_interval !== undefined) req.retry_interval = o.retry_interval;
  if (o.branch_headers !== undefined) req.branch_headers = o.branch_headers;
  req.concurrent = parts.concurrent ?? false;
  if (o.retry_limit !== undefined) req.retry_limit = o.retry_limit;
  return req;
}
