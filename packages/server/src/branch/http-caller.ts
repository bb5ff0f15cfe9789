import { classifyHttpReply } from '@dtx/protocol';
import type { Agent, Dispatcher } from 'undici';
import { modeOf } from '../core/modes.js';
import { errorMessage } from '../util/error-message.js';
import {
  type BranchCall,
  type BranchCaller,
  type BranchOutcome,
  extraHeaders,
  isTimeoutError,
  MAX_MESSAGE,
  MAX_REPLY_READ,
  type ReplyOptions,
  withTraceHeaders,
} from './caller.js';
import { type OutboundOptions, outboundAgent } from './outbound.js';

/** How the HTTP (and JSON-RPC) branch callers are built. */
export interface HttpCallerOptions extends OutboundOptions, ReplyOptions {}

/** Branch URL with DTM's four query parameters added (existing ones kept). */
export function branchUrl(url: string, gid: string, transType: string, branchId: string, op: string): string {
  const sep = url.includes('?') ? '&' : '?';
  return `${url}${sep}gid=${encodeURIComponent(gid)}&trans_type=${encodeURIComponent(transType)}&branch_id=${encodeURIComponent(branchId)}&op=${encodeURIComponent(op)}`;
}

/**
 * Plain HTTP branches (spec §5.2): POST when there is a payload or the trans is xa, else GET, with the
 * transaction's headers and its W3C trace context (`traceparent`, `tracestate`); the reply is read by the one
 * rule of §5.4. Connections are kept alive and pooled per origin; each new one is checked by the branch-URL
 * policy against the address it connects to, and redirects are not followed (a 3xx is a retryable error).
 */
export class HttpBranchCaller implements BranchCaller {
  private readonly agent: Agent;
  private readonly hideReplies: boolean;

  constructor(o: HttpCallerOptions = {}) {
    this.agent = outboundAgent(o);
    this.hideReplies = o.hideReplies === true;
  }

  async call(c: BranchCall): Promise<BranchOutcome> {
    const t = c.trans;
    const headers: Record<string, string> = { 'content-type': 'application/json', ...extraHeaders(t) };
    if (c.trace) withTraceHeaders(headers, c.trace);
    const post = c.payload.byteLength > 0 || modeOf(t.transType)?.alwaysPost === true;
    const deadline = Date.now() + c.timeoutMs;
    try {
      const res = await this.agent.request({
        ...splitUrl(branchUrl(c.url, t.gid, t.transType, c.branchId, c.op)),
        method: post ? 'POST' : 'GET',
        headers,
        body: post ? c.payload : null,
        headersTimeout: c.timeoutMs,
        bodyTimeout: c.timeoutMs,
      });
      let body = await readReply(res.body, deadline, c.timeoutMs);
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
    await this.agent.close();
  }
}

/** The error of a reply still arriving when its call's time is up. */
export class CallTimeoutError extends Error {
  constructor(timeoutMs: number) {
    super(`the branch call took longer than its timeout of ${timeoutMs} ms`);
    this.name = 'CallTimeoutError';
  }
}

/**
 * A reply body as text, at most MAX_REPLY_READ bytes of it: the rest is not read into memory (the connection is
 * dropped instead of drained when the body is longer). undici's bodyTimeout only bounds the gaps between chunks,
 * so a branch dribbling its reply is cut here once the call is past `deadline` (epoch ms): a call lasts at most
 * its headersTimeout plus one body gap after that, less than twice its timeout. (A timer and an AbortSignal per
 * call would bound it exactly, at a measurable cost on every call.)
 */
export async function readReply(
  body: Dispatcher.ResponseData['body'],
  deadline: number,
  timeoutMs: number,
): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const b = chunk as Buffer;
    chunks.push(b);
    size += b.byteLength;
    if (size >= MAX_REPLY_READ) {
      body.destroy();
      break;
    }
    if (Date.now() > deadline) {
      body.destroy();
      throw new CallTimeoutError(timeoutMs);
    }
  }
  const all = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
  return (size > MAX_REPLY_READ ? all.subarray(0, MAX_REPLY_READ) : all).toString('utf8');
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
