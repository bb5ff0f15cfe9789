/**
 * W3C trace context (https://www.w3.org/TR/trace-context/) as dtx carries it: the `traceparent` and
 * `tracestate` values a transaction was started with, stored with it and sent to its branches. Plain strings
 * and checks, no OpenTelemetry: this is what runs on every request, traced or not.
 *
 * @module
 */

/** A trace context as it travels: the `traceparent` header and, when there was one, the `tracestate` header. */
export interface TraceContext {
  /** `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`. */
  traceparent: string;
  /** The vendor list, forwarded as received; absent when there was none (or it could not be forwarded). */
  tracestate?: string;
}

/** The name of the `traceparent` header and gRPC metadata key. */
export const TRACEPARENT = 'traceparent';
/** The name of the `tracestate` header and gRPC metadata key. */
export const TRACESTATE = 'tracestate';

/** version-traceid-parentid-flags, lower-case hex, anything after the flags belonging to a later version. */
const TRACEPARENT_FORMAT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const ZERO_TRACE_ID = '0'.repeat(32);
const ZERO_SPAN_ID = '0'.repeat(16);
/**
 * The longest tracestate kept. W3C asks to propagate at least 512 characters; a longer list is dropped rather
 * than cut (cutting could split an entry).
 */
const MAX_TRACESTATE = 512;
/** What a gRPC metadata value (and an HTTP header value) may hold: printable ASCII. */
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

/** The single string of a header or metadata value: a repeated value is not one value. */
function single(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (Array.isArray(v) && v.length === 1 && typeof v[0] === 'string') return v[0];
  return undefined;
}

/**
 * The trace context of an incoming request, or undefined when it carries none or an invalid one (W3C: an
 * invalid traceparent is ignored, and so is the tracestate that came with it). A traceparent of a later version
 * is read as version 00 (its first four fields), as W3C asks. A tracestate that is longer than 512 characters or
 * not printable ASCII is dropped; the traceparent is kept.
 *
 * @param traceparent the `traceparent` header or metadata value(s), as the transport has them
 * @param tracestate the `tracestate` value(s); several are joined with commas (one list split over lines)
 */
export function parseTraceContext(traceparent: unknown, tracestate: unknown): TraceContext | undefined {
  if (traceparent === undefined) return undefined;
  const tp = single(traceparent)?.trim();
  if (tp === undefined) return undefined;
  const m = TRACEPARENT_FORMAT.exec(tp);
  if (!m) return undefined;
  const [, version, traceId, spanId, flags, rest] = m;
  if (version === 'ff' || traceId === ZERO_TRACE_ID || spanId === ZERO_SPAN_ID) return undefined;
  if (version === '00' && rest !== undefined) return undefined;
  const out: TraceContext = { traceparent: version === '00' ? tp : `00-${traceId}-${spanId}-${flags}` };
  const ts = Array.isArray(tracestate)
    ? tracestate.filter((v) => typeof v === 'string').join(',')
    : typeof tracestate === 'string'
      ? tracestate
      : '';
  const state = ts.trim();
  if (state !== '' && state.length <= MAX_TRACESTATE && PRINTABLE_ASCII.test(state)) out.tracestate = state;
  return out;
}

/** The trace context of HTTP request headers (Node's lower-cased header object). */
export function traceContextOfHeaders(
  headers: Record<string, string | string[] | undefined>,
): TraceContext | undefined {
  const tp = headers[TRACEPARENT];
  return tp === undefined ? undefined : parseTraceContext(tp, headers[TRACESTATE]);
}

/** The parts of a traceparent (assumed valid, as {@link parseTraceContext} returns it). */
export function traceparentParts(traceparent: string): { traceId: string; spanId: string; flags: number } {
  return {
    traceId: traceparent.slice(3, 35),
    spanId: traceparent.slice(36, 52),
    flags: Number.parseInt(traceparent.slice(53, 55), 16),
  };
}

/** A version 00 traceparent. */
export function formatTraceparent(traceId: string, spanId: string, flags: number): string {
  return `00-${traceId}-${spanId}-${(flags & 0xff).toString(16).padStart(2, '0')}`;
}
