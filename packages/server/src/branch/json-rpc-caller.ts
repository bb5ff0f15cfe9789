import { randomBytes } from 'node:crypto';
import { classifyHttpReply, JsonRpcCode } from '@dtx/protocol';
import type { Agent } from 'undici';
import { errorMessage } from '../util/error-message.js';
import {
  type BranchCall,
  type BranchCaller,
  type BranchOutcome,
  extraHeaders,
  isTimeoutError,
  MAX_MESSAGE,
  withTraceHeaders,
} from './caller.js';
import { type HttpCallerOptions, sendText } from './http-caller.js';
import { outboundAgent } from './outbound.js';
import { PlainHttpPool } from './plain-http.js';

/** The branch's params: its payload, a JSON object (an empty payload counts as `{}`). */
function paramsOf(payload: Uint8Array): Record<string, unknown> {
  const text = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8');
  if (text.trim() === '') return {};
  const v = JSON.parse(text) as unknown;
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('expected a JSON object');
  return v as Record<string, unknown>;
}

/**
 * Reads the reply of a JSON-RPC branch (spec §5.3): the HTTP rules of §5.4 first (status, then the
 * FAILURE / ONGOING substrings); a 200 whose `error` member is set is then FAILURE for code -32901,
 * ONGOING for -32902 and a retryable error for any other code. DTM means the same codes but never
 * matches them (a float-versus-int comparison in Go); honouring them is a safe superset.
 */
export function classifyJsonRpcReply(status: number, body: string): BranchOutcome {
  const http = classifyHttpReply(status, body);
  if (http === 'ERROR') return { result: 'ERROR', message: `http status ${status}: ${body}` };
  if (http !== 'SUCCESS') return { result: http, message: body };
  let reply: { error?: unknown };
  try {
    reply = JSON.parse(body) as { error?: unknown };
  } catch {
    return { result: 'SUCCESS', message: body };
  }
  const err = reply && typeof reply === 'object' ? reply.error : undefined;
  if (err === undefined || err === null) return { result: 'SUCCESS', message: body };
  const code = typeof err === 'object' ? (err as { code?: unknown }).code : undefined;
  if (code === JsonRpcCode.Failure) return { result: 'FAILURE', message: body };
  if (code === JsonRpcCode.Ongoing) return { result: 'ONGOING', message: body };
  return { result: 'ERROR', message: `json-rpc error: ${body}` };
}

/**
 * JSON-RPC branches (spec §5.3): the payload object gains `gid`, `trans_type`, `branch_id` and `op`
 * and is POSTed as the params of a JSON-RPC 2.0 request whose method is the URL's `method` query
 * parameter; the URL is called as written. Headers, trace context, timeout, URL policy, redirects and the client
 * (dtx's own for plain http, undici otherwise) as for plain HTTP branches.
 */
export class JsonRpcBranchCaller implements BranchCaller {
  private readonly agent: Agent;
  private readonly hideReplies: boolean;
  /** Plain http with headers it can send goes through dtx's own client, as for HTTP branches (plain-http.ts). */
  private readonly plain: PlainHttpPool;

  constructor(o: HttpCallerOptions = {}) {
    this.agent = outboundAgent(o);
    this.plain = new PlainHttpPool(o);
    this.hideReplies = o.hideReplies === true;
  }

  async call(c: BranchCall): Promise<BranchOutcome> {
    const t = c.trans;
    let params: Record<string, unknown>;
    let u: URL;
    try {
      params = paramsOf(c.payload);
      u = new URL(c.url);
    } catch (err) {
      return { result: 'ERROR', message: `json-rpc branch '${c.url}': bad payload or url: ${errorMessage(err)}` };
    }
    params.gid = t.gid;
    params.trans_type = t.transType;
    params.branch_id = c.branchId;
    params.op = c.op;
    const body = JSON.stringify({
      params,
      jsonrpc: '2.0',
      method: u.searchParams.get('method') ?? '',
      id: randomBytes(5).toString('hex'),
    });
    const headers: Record<string, string> = { 'content-type': 'application/json', ...extraHeaders(t) };
    if (c.trace) withTraceHeaders(headers, c.trace);
    try {
      const res = await sendText(
        this.plain,
        this.agent,
        { origin: u.origin, path: `${u.pathname}${u.search}`, method: 'POST', headers, body: Buffer.from(body) },
        c.timeoutMs,
      );
      const out = classifyJsonRpcReply(res.statusCode, res.body);
      if (this.hideReplies) {
        out.message = out.message.startsWith('json-rpc error') ? 'json-rpc error' : `http status ${res.statusCode}`;
      }
      if (out.message.length > MAX_MESSAGE) out.message = out.message.slice(0, MAX_MESSAGE);
      return out;
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
