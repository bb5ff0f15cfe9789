import type { BranchOp, BranchStatus, GlobalStatus, TransOptions, TransType } from '@dtx/protocol';
import type { TraceContext } from './ports.js';

/**
 * A transaction's options as dtx stores them in the `options` column: DTM's, plus the W3C trace context the
 * transaction was started with (dtx only: left out of the options a query shows, see {@link publicOptionsText}).
 */
export interface StoredOptions extends TransOptions {
  /** The `traceparent` its branches continue; absent when the request carried none. */
  traceparent?: string;
  /** The `tracestate` that came with it. */
  tracestate?: string;
  /**
   * dtx: per saga step, the seconds its compensation waits after the rollback began (`compensate_delay`);
   * absent when no step has one. The rollback start is the transaction's `rollback_time`, written with the
   * move to aborting.
   */
  compensate_delays?: number[];
}

/**
 * A global transaction as the core sees it. Times are epoch milliseconds.
 * `options` is the persisted JSON text; `opts` is its parsed form, reloaded on every pass.
 */
export interface TransGlobal {
  id?: number;
  gid: string;
  transType: TransType;
  status: GlobalStatus;
  queryPrepared: string;
  protocol: string;
  createTime: number;
  updateTime: number;
  finishTime?: number | undefined;
  rollbackTime?: number | undefined;
  options: string;
  customData: string;
  nextCronInterval: number;
  nextCronTime: number;
  owner: string;
  extData: string;
  result: string;
  rollbackReason: string;
  /** dtx: failed attempts in a row since the last success (branch calls and msg back-checks); 0 when absent. */
  failedAttempts?: number | undefined;
  /** dtx: the error of the last failed attempt (at most 1 KiB, see replyExcerpt); '' when none. */
  lastError?: string | undefined;
  /** dtx: the stuck alert was sent (claimed by compare-and-set, so that exactly one instance sends it). */
  stuckAlerted?: boolean | undefined;
  /** Parsed `options`, kept in step with it by whoever sets either (the stores decode it on read); not stored separately. */
  opts: StoredOptions;
}

/** One (branch_id, op) row of a transaction. */
export interface TransBranch {
  id?: number;
  gid: string;
  url: string;
  binData: Uint8Array;
  branchId: string;
  op: BranchOp;
  status: BranchStatus;
  createTime: number;
  updateTime: number;
  finishTime?: number | undefined;
  rollbackTime?: number | undefined;
  /** dtx: calls made to this branch; 0 when absent. */
  attempts?: number | undefined;
  /** dtx: when the last call ended (epoch ms). */
  lastAttemptTime?: number | undefined;
  /** dtx: what the last call answered: SUCCESS, FAILURE, ONGOING or ERROR; '' before the first. */
  lastResult?: string | undefined;
  /** dtx: the error of the last call that did not succeed (at most 1 KiB); kept after a later success. */
  lastError?: string | undefined;
}

/** A key-value row (topics live under cat `topics`). */
export interface KV {
  id?: number;
  cat: string;
  k: string;
  v: string;
  version: number;
  createTime: number;
  updateTime: number;
}

/** Topic subscriber, as stored in the `v` of a topics KV row. */
export interface Subscriber {
  url: string;
  remark: string;
}

const OPTION_KEYS = [
  'wait_result',
  'timeout_to_fail',
  'request_timeout',
  'retry_interval',
  'branch_headers',
  'concurrent',
  'retry_limit',
  'retry_count',
  // dtx: last, so that the text without them is what DTM's options would be
  'traceparent',
  'tracestate',
  'compensate_delays',
] as const;

/**
 * Serialize options as DTM does: empty ones omitted, except `concurrent`. Built as text rather than through an
 * object and JSON.stringify (every submit stores it): the keys need no escaping, the values are JSON.stringify'd.
 */
export function encodeOptions(opts: StoredOptions & { retry_count?: number }): string {
  const o = opts as Record<string, unknown>;
  let out = '{';
  for (const k of OPTION_KEYS) {
    const v = o[k];
    let text: string;
    if (k === 'concurrent') text = v === true ? 'true' : 'false';
    else if (k === 'branch_headers') {
      if (!v || typeof v !== 'object' || Object.keys(v).length === 0) continue;
      text = JSON.stringify(v);
    } else if (!v) continue;
    else text = JSON.stringify(v);
    if (out.length > 1) out += ',';
    out += `"${k}":${text}`;
  }
  return `${out}}`;
}

/** Parse the stored options text; tolerant of '' (old rows). */
export function decodeOptions(text: string): StoredOptions {
  if (!text) return {};
  try {
    const o = JSON.parse(text) as StoredOptions;
    return o && typeof o === 'object' ? o : {};
  } catch {
    return {};
  }
}

/** Options with the trace context of `trace` (the same object when there is none: nothing more is stored). */
export function withTraceContext(opts: TransOptions, trace: TraceContext | undefined): StoredOptions {
  if (!trace) return opts;
  // Object.assign rather than `{ ...opts, traceparent }`: on Node 20 an optimised spread followed by a new
  // property makes a new hidden class on every call.
  const out: StoredOptions = Object.assign({}, opts);
  out.traceparent = trace.traceparent;
  if (trace.tracestate) out.tracestate = trace.tracestate;
  return out;
}

/** The trace context a transaction was started with, or undefined. */
export function traceContextOf(t: TransGlobal): TraceContext | undefined {
  const traceparent = t.opts.traceparent;
  if (!traceparent) return undefined;
  const tracestate = t.opts.tracestate;
  return tracestate ? { traceparent, tracestate } : { traceparent };
}

/**
 * The options text a query shows: the stored text, without the trace context and step delays dtx keeps there, so that it reads
 * as DTM's would.
 */
export function publicOptionsText(t: TransGlobal): string {
  const o = t.opts;
  if (o.traceparent === undefined && o.tracestate === undefined && o.compensate_delays === undefined) return t.options;
  const { traceparent: _p, tracestate: _s, compensate_delays: _d, ...dtm } = o;
  return encodeOptions(dtm);
}
