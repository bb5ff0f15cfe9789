import { classifyHttpReply } from '@dtx/protocol';
import type { Agent, Dispatcher } from 'undici';
import { modeOf } from '../core/modes.js';
import { errorMessage } from '../util/error-message.js';
import {
  type BranchCall,
  type BranchCaller,
  type BranchOutcome,
  CallTimeoutError,
  extraHeaders,
  isTimeoutError,
  MAX_MESSAGE,
  MAX_REPLY_READ,
  mayHaveExtraHeaders,
  type ReplyOptions,
  type TextReply,
  withTraceHeaders,
} from './caller.js';
import { type OutboundOptions, outboundAgent } from './outbound.js';
import { PlainHttpPool, type PlainRequest } from './plain-http.js';

/** How the HTTP (and JSON-RPC) branch callers are built. */
export interface HttpCallerOptions extends OutboundOptions, ReplyOptions {}

/** DTM's four query parameters of a branch call, added to the branch URL (after its own query, if any). */
function dtmQuery(gid: string, transType: string, branchId: string, op: string): string {
  return `gid=${encodeURIComponent(gid)}&trans_type=${encodeURIComponent(transType)}&branch_id=${encodeURIComponent(branchId)}&op=${encodeURIComponent(op)}`;
}

/**
 * The headers of a call with no extra headers and no trace context, shared by all such calls (undici only reads
 * them); frozen, so that nothing can change them for every later call.
 */
const JSON_ONLY: Record<string, string> = Object.freeze({ 'content-type': 'application/json' });

/**
 * Plain HTTP branches (spec §5.2): POST when there is a payload or the trans is xa, else GET, with the
 * transaction's headers and its W3C trace context (`traceparent`, `tracestate`); the reply is read by the one
 * rule of §5.4. Connections are kept alive and pooled per origin; each new one is checked by the branch-URL
 * policy against the address it connects to, and redirects are not followed (a 3xx is a retryable error).
 */
export class HttpBranchCaller implements BranchCaller {
  private readonly agent: Agent;
  private readonly hideReplies: boolean;
  /** The common calls (plain http, headers it can send): dtx's own client, see plain-http.ts. */
  private readonly plain: PlainHttpPool;

  constructor(o: HttpCallerOptions = {}) {
    this.agent = outboundAgent(o);
    this.plain = new PlainHttpPool(o);
    this.hideReplies = o.hideReplies === true;
  }

  async call(c: BranchCall): Promise<BranchOutcome> {
    const t = c.trans;
    let headers = JSON_ONLY;
    if (c.trace || mayHaveExtraHeaders(t)) {
      headers = { 'content-type': 'application/json', ...extraHeaders(t) };
      if (c.trace) withTraceHeaders(headers, c.trace);
    }
    const post = c.payload.byteLength > 0 || modeOf(t.transType)?.alwaysPost === true;
    try {
      const { origin, path } = splitUrl(c.url);
      const sep = c.url.includes('?') ? '&' : '?';
      const req = {
        origin,
        path: `${path}${sep}${dtmQuery(t.gid, t.transType, c.branchId, c.op)}`,
        method: post ? ('POST' as const) : ('GET' as const),
        headers,
        body: post ? c.payload : null,
      };
      const res = await sendText(this.plain, this.agent, req, c.timeoutMs);
      let body = res.body;
      const result = classifyHttpReply(res.statusCode, body);
      if (this.hideReplies) return { result, message: `http status ${res.statusCode}` };
      if (body.length > MAX_MESSAGE) body = body.slice(0, MAX_MESSAGE);
      if (result === 'ERROR') return { result, message: `http status ${res.statusCode}: ${body}` };
      return { result, message: body };
    } catch (err) {
      return isTimeoutError(err)
        ? { result: 'ERROR', message: errorMessage(err), timeout: true }
        : { result: 'ERROR', message: errorMessage(err) };
    }
  }

  async close(): Promise<void> {
    this.plain.close();
    await this.agent.close();
  }
}

/**
 * Sends a branch request through dtx's own client when it can take it — plain http, headers it can send (see
 * plain-http.ts) — and through undici's agent otherwise: https, and headers that frame or route the request (a
 * Host of the transaction's own, …), which keep undici's handling.
 */
export function sendText(plain: PlainHttpPool, agent: Agent, req: PlainRequest, timeoutMs: number): Promise<TextReply> {
  return req.origin.startsWith('http://') && (req.headers === JSON_ONLY || PlainHttpPool.canSend(req.headers))
    ? plain.request(req, timeoutMs)
    : requestText(agent, req, timeoutMs);
}

/** What {@link requestText} sends (undici's dispatch options, its timeouts set from the call's), the body whole. */
export interface TextRequest {
  origin: string;
  path: string;
  method: Dispatcher.HttpMethod;
  headers: Record<string, string>;
  body: string | Uint8Array | null;
}

/**
 * Send a request and read its reply as text, at most MAX_REPLY_READ bytes of it: the rest is not read into memory
 * (the connection is dropped instead of drained when the body is longer). undici's bodyTimeout only bounds the gaps
 * between chunks, so a branch dribbling its reply is cut here once the call is past its `timeoutMs` (which is also
 * undici's headersTimeout and bodyTimeout): a call lasts at most that plus one body gap, less than twice its
 * timeout. (A timer and an AbortSignal per call would bound it exactly, at a measurable cost on every call.)
 *
 * This is undici's dispatch with a handler of its own rather than `request()`: no response stream, no async
 * iterator and no parsed header object per call (the status is all a branch reply needs), which is a large part
 * of a branch call's CPU.
 */
export function requestText(agent: Dispatcher, opts: TextRequest, timeoutMs: number): Promise<TextReply> {
  const deadline = Date.now() + timeoutMs;
  return new Promise<TextReply>((resolve, reject) => {
    // One literal of all the fields, not `{ ...opts, headersTimeout, bodyTimeout }`: on Node 20, once optimised,
    // a spread followed by more properties makes a new hidden class on every call (old-space garbage, and undici's
    // reads of these options go megamorphic).
    const dispatch: Dispatcher.DispatchOptions = {
      origin: opts.origin,
      path: opts.path,
      method: opts.method,
      headers: opts.headers,
      body: opts.body,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    };
    agent.dispatch(dispatch, new TextReplyHandler(resolve, reject, deadline, timeoutMs));
  });
}

/** undici's handler interface (onConnect … onComplete / onError), which its dispatchers call without a wrapper. */
class TextReplyHandler {
  private statusCode = 0;
  private readonly chunks: Buffer[] = [];
  private size = 0;
  /** Resolved or rejected already: what undici reports after that (the abort we caused) is not news. */
  private settled = false;
  private abort: ((err?: Error) => void) | undefined;

  constructor(
    private readonly resolve: (r: TextReply) => void,
    private readonly reject: (err: Error) => void,
    private readonly deadline: number,
    private readonly timeoutMs: number,
  ) {}

  onConnect(abort: (err?: Error) => void): void {
    this.abort = abort;
  }

  onHeaders(statusCode: number): boolean {
    this.statusCode = statusCode;
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.settled) return false;
    this.chunks.push(chunk);
    this.size += chunk.byteLength;
    if (this.size >= MAX_REPLY_READ) {
      this.finish();
      this.abort?.(new Error('reply longer than it is read'));
      return false;
    }
    if (Date.now() > this.deadline) {
      this.settled = true;
      const err = new CallTimeoutError(this.timeoutMs);
      this.reject(err);
      this.abort?.(err);
      return false;
    }
    return true;
  }

  onComplete(): void {
    if (!this.settled) this.finish();
  }

  onError(err: Error): void {
    if (this.settled) return;
    this.settled = true;
    this.reject(err);
  }

  private finish(): void {
    this.settled = true;
    const c = this.chunks;
    const all = c.length === 1 ? c[0]! : Buffer.concat(c);
    const body = (all.byteLength > MAX_REPLY_READ ? all.subarray(0, MAX_REPLY_READ) : all).toString('utf8');
    this.resolve({ statusCode: this.statusCode, body });
  }
}

/** undici wants origin and path separately. */
function splitUrl(url: string): { origin: string; path: string } {
  const schemeEnd = url.indexOf('//') + 2;
  const slash = url.indexOf('/', schemeEnd);
  const q = url.indexOf('?', schemeEnd);
  const cut = slash === -1 ? q : q === -1 ? slash : Math.min(slash, q);
  if (cut === -1) return { origin: url, path: '/' };
  const path = url.slice(cut);
  return { origin: url.slice(0, cut), path: path.startsWith('/') ? path : `/${path}` };
}
