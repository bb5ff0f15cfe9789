import type { TransGlobal } from '../core/model.js';
import { TRACEPARENT, TRACESTATE, type TraceContext } from '../observe/trace-context.js';

/** The BranchCaller port (defined by the core) and what it takes and gives; implemented by this folder. */
export type { BranchCall, BranchCaller, BranchOutcome } from '../core/ports.js';

/** True for the errors of a call that ran out of its time: undici's headers / body timeouts and ours. */
export function isTimeoutError(err: unknown): boolean {
  const e = err as { code?: unknown; name?: unknown };
  return e.code === 'UND_ERR_HEADERS_TIMEOUT' || e.code === 'UND_ERR_BODY_TIMEOUT' || e.name === 'CallTimeoutError';
}

/** The error of a reply still arriving when its call's time is up. */
export class CallTimeoutError extends Error {
  constructor(timeoutMs: number) {
    super(`the branch call took longer than its timeout of ${timeoutMs} ms`);
    this.name = 'CallTimeoutError';
  }
}

/** A reply of an HTTP branch call: its status and its body as text, at most MAX_REPLY_READ bytes of it. */
export interface TextReply {
  statusCode: number;
  body: string;
}

/** Upper bound of a reply body kept in memory for messages. */
export const MAX_MESSAGE = 4096;

/** What every protocol's caller is built with, besides its connections. */
export interface ReplyOptions {
  /**
   * Config `Redact.BranchReplies`: keep no reply body in outcome messages (so none reaches the rollback reason,
   * the last error, logs, alerts or spans); the message is then the HTTP status or gRPC code only. The body is
   * still read to classify the reply.
   */
  hideReplies?: boolean | undefined;
}

/** Upper bound of a reply body read to classify it (the rest is never read). */
export const MAX_REPLY_READ = 256 * 1024;

/**
 * The extra headers (HTTP) or metadata (gRPC) of every branch call of a transaction: ext_data.headers (DTM's
 * legacy passthrough), then branch_headers, which win on a clash (spec §5.2, §12.3).
 */
export function extraHeaders(t: TransGlobal): Record<string, string> {
  const out: Record<string, string> = {};
  if (!mayHaveExtraHeaders(t)) return out;
  if (t.extData) {
    try {
      const h = (JSON.parse(t.extData) as { headers?: Record<string, string> }).headers;
      if (h && typeof h === 'object') Object.assign(out, h);
    } catch {
      // not JSON: no legacy headers
    }
  }
  if (t.opts.branch_headers) Object.assign(out, t.opts.branch_headers);
  return out;
}

/** False when {@link extraHeaders} of `t` is certainly empty: no ext_data and no branch_headers (a cheap test). */
export function mayHaveExtraHeaders(t: TransGlobal): boolean {
  return t.extData !== '' || t.opts.branch_headers !== undefined;
}

/**
 * HTTP headers with the trace context set: `traceparent` and `tracestate` replace any of the same name (in any
 * case) that ext_data.headers or branch_headers brought; a tracestate of theirs is dropped when the context has
 * none, as it belonged to another trace.
 */
export function withTraceHeaders(headers: Record<string, string>, trace: TraceContext): Record<string, string> {
  for (const k of Object.keys(headers)) {
    const lower = k.toLowerCase();
    if (lower === TRACEPARENT || lower === TRACESTATE) delete headers[k];
  }
  headers[TRACEPARENT] = trace.traceparent;
  if (trace.tracestate) headers[TRACESTATE] = trace.tracestate;
  return headers;
}
