/**
 * One HTTP exchange over an undici dispatcher (a keep-alive `Pool` or `Agent`), read to the end as text.
 * Internal: the client turns the reply into results and errors; this file only moves bytes.
 */
import type { Dispatcher } from 'undici';
import { callSignal } from './retry.js';
import { injectTraceHeaders } from './trace-propagation.js';

/** The part of an HTTP reply the SDK looks at. */
export interface HttpReply {
  /** The HTTP status code. */
  status: number;
  /** The whole body, decoded as UTF-8. */
  text: string;
}

/** What to send. */
export interface HttpCall {
  method: 'GET' | 'POST';
  /** Absolute URL including its query string. */
  url: URL;
  /** The body; sent with `Content-Type: application/json`. */
  body?: string;
  headers?: Record<string, string>;
  /** Milliseconds before the whole exchange is abandoned. */
  timeoutMs: number;
  /** Ends the exchange early when it aborts. Default: none. */
  signal?: AbortSignal;
}

/**
 * Sends `call` and reads the reply, with the active trace context injected into the headers (see
 * trace-propagation.ts). Transport errors and timeouts are thrown as they come from undici.
 */
export async function httpCall(dispatcher: Dispatcher, call: HttpCall): Promise<HttpReply> {
  // Object.assign, not `{ ...call.headers }`: on Node 20 adding a property to an optimised spread's copy makes a
  // new hidden class on every call.
  const headers: Record<string, string> = Object.assign({}, call.headers);
  if (call.body !== undefined) headers['content-type'] = 'application/json';
  injectTraceHeaders(headers);
  const res = await dispatcher.request({
    origin: call.url.origin,
    path: `${call.url.pathname}${call.url.search}`,
    method: call.method,
    headers,
    body: call.body ?? null,
    signal: callSignal(call.timeoutMs, call.signal),
  });
  return { status: res.statusCode, text: await res.body.text() };
}

/** `url` with `params` set in its query string; parameters already in `url` are kept unless overwritten. */
export function urlWithQuery(url: string, params: Record<string, string>): URL {
  const u = new URL(url);
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  return u;
}
