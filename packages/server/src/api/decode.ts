import type { TransOptions } from '@dtx/protocol';
import { grpcUrlProblem, isHttpUrl } from '../branch/dispatch.js';
import { InputError } from '../core/errors.js';
import type { BranchInput, TransInput } from '../core/trans-input.js';
import { isWellFormed } from './well-formed.js';

/**
 * Validation at the edge (spec §2.3, §2.5): keys are matched case-insensitively as Go does, unknown
 * keys are ignored, and a wrong type or value is an InputError naming the field. Shared by every
 * transport that carries DTM's JSON bodies.
 */

const MAX_ID = 128;
const TYPES = ['saga', 'tcc', 'msg', 'xa'];

export function parseJson(body: Buffer | string | undefined): unknown {
  const text = typeof body === 'string' ? body : body ? body.toString('utf8') : '';
  if (text.trim() === '') throw new InputError('body', 'empty request body: expected a JSON object');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new InputError('body', `malformed JSON: ${(err as Error).message}`);
  }
}

/** Lower-cased view of a JSON object's keys. */
function fold(body: unknown): Map<string, unknown> {
  if (!body || typeof body !== 'object' || Array.isArray(body)) {
    throw new InputError('body', 'expected a JSON object');
  }
  const m = new Map<string, unknown>();
  for (const [k, v] of Object.entries(body)) m.set(k.toLowerCase(), v);
  return m;
}

/**
 * A string must be well-formed: a JSON `\ud800` escape yields a lone surrogate, which no store or wire can keep
 * (UTF-8 encoding turns it into U+FFFD, a different string).
 */
function checkText(v: string, key: string): string {
  if (!isWellFormed(v)) {
    throw new InputError(key, 'contains a lone UTF-16 surrogate (a \\ud800-\\udfff escape not in a pair)');
  }
  return v;
}

function str(m: Map<string, unknown>, key: string): string {
  const v = m.get(key);
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw new InputError(key, `expected a string, got ${typeName(v)}`);
  return checkText(v, key);
}

/** Ten years in seconds: the largest duration option that still yields representable times. */
const MAX_SECONDS = 10 * 365 * 24 * 3600;

function int(m: Map<string, unknown>, key: string, max = MAX_SECONDS): number | undefined {
  const v = m.get(key);
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v))
    throw new InputError(key, `expected an integer, got ${typeName(v)}`);
  if (v < 0) throw new InputError(key, `must not be negative, got ${v}`);
  if (v > max) throw new InputError(key, `must be at most ${max}, got ${v}`);
  return v;
}

function bool(m: Map<string, unknown>, key: string): boolean | undefined {
  const v = m.get(key);
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw new InputError(key, `expected true or false, got ${typeName(v)}`);
  return v;
}

function stringMap(v: unknown, key: string): Record<string, string> {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v))
    throw new InputError(key, `expected an object of strings, got ${typeName(v)}`);
  for (const [k, x] of Object.entries(v)) {
    checkText(k, key);
    if (typeof x !== 'string') throw new InputError(`${key}.${k}`, `expected a string, got ${typeName(x)}`);
    checkText(x, `${key}.${k}`);
  }
  return v as Record<string, string>;
}

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Headers that frame or route the HTTP exchange itself: the caller sets them, never a transaction. */
const RESERVED_HEADERS = new Set([
  'connection',
  'content-length',
  'expect',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** gRPC metadata: keys (lower-cased) of these characters, values of printable ASCII (what grpc-js sends). */
const METADATA_KEY = /^[0-9a-z_.-]+$/;
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

/**
 * branch_headers: names must be HTTP tokens and values sendable, or no branch call could ever be made.
 * A gRPC transaction sends them as metadata too, which is narrower: no `grpc-` names (the transport's
 * own), no `-bin` names (binary values), values of printable ASCII only.
 */
function headerMap(v: unknown, key: string, protocol: string): Record<string, string> {
  const h = stringMap(v, key);
  for (const [name, value] of Object.entries(h)) {
    if (!HEADER_NAME.test(name)) throw new InputError(`${key}.${name}`, 'not a valid HTTP header name');
    if (RESERVED_HEADERS.has(name.toLowerCase())) {
      throw new InputError(`${key}.${name}`, 'this header is set by the HTTP client and cannot be given');
    }
    if (/[\r\n\0]/.test(value)) throw new InputError(`${key}.${name}`, 'header value contains CR, LF or NUL');
    if (protocol === 'grpc') {
      const k = name.toLowerCase();
      if (!METADATA_KEY.test(k) || k.startsWith('grpc-') || k.endsWith('-bin')) {
        throw new InputError(
          `${key}.${name}`,
          'not usable as gRPC metadata (letters, digits, - _ . only; no grpc- prefix, no -bin suffix)',
        );
      }
      if (!PRINTABLE_ASCII.test(value)) {
        throw new InputError(`${key}.${name}`, 'a gRPC metadata value must be printable ASCII');
      }
    }
  }
  return h;
}

/** A gid or branch id that travels as gRPC metadata (dtm-gid, dtm-branch_id) must be printable ASCII. */
function checkMetadataValue(v: string, field: string, protocol: string): string {
  if (protocol === 'grpc' && !PRINTABLE_ASCII.test(v)) {
    throw new InputError(field, 'must be printable ASCII in a gRPC transaction (it is sent as metadata)');
  }
  return v;
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v)}`.slice(0, 60);
}

/** DTM strips \n, \r and ; from gids received over HTTP. */
export function cleanGid(raw: string): string {
  return raw.replace(/[\n\r;]/g, '');
}

export function checkGid(gid: string, field = 'gid'): string {
  if (gid === '') throw new InputError(field, 'required');
  if (gid.length > MAX_ID) throw new InputError(field, `longer than ${MAX_ID} characters`);
  return gid;
}

/**
 * Validate a branch URL and return the form that will be called: WHATWG-normalized (a space or a
 * non-ASCII character percent-encoded). A fragment is refused: the query parameters dtx appends would
 * land after the `#` and never reach the branch. In a grpc or json-rpc transaction a URL that is not
 * http(s) is a gRPC branch (spec §5.1): `host:port/package.Service/Method`, or a discovery target
 * `etcd://` / `discov://` / `discovery://` followed by the service and the method.
 */
function checkUrl(url: string, field: string, protocol: string, allowTopic: boolean): string {
  if (url === '') return url;
  if (allowTopic && url.startsWith('topic://')) {
    if (url.length === 'topic://'.length) throw new InputError(field, 'empty topic name');
    return url;
  }
  if (!isHttpUrl(url)) {
    if (protocol === 'http') {
      throw new InputError(field, `expected an http:// or https:// URL, got '${url.slice(0, 200)}'`);
    }
    const problem = grpcUrlProblem(url);
    if (problem !== undefined) {
      throw new InputError(
        field,
        `expected an http(s):// URL or a gRPC URL host:port/package.Service/Method (${problem}), got '${url.slice(0, 200)}'`,
      );
    }
    return url;
  }
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new InputError(field, `not a valid URL: '${url.slice(0, 200)}'`);
  }
  if (url.includes('#')) throw new InputError(field, `must not contain a fragment (#): '${url.slice(0, 200)}'`);
  return u.href;
}

export interface DecodeTransOptions {
  /** Strip \n \r ; from the gid (HTTP does, gRPC does not). */
  escapeGid: boolean;
  /** The protocol whatever the body says (gRPC: always `grpc`, spec §4.2). Default: the body's, else http. */
  protocol?: string;
  /**
   * The payload bytes, given beside the body (gRPC's BinPayloads, sent to the branches unchanged). When
   * set, the body's `payloads` and legacy `steps[].data` are not read.
   */
  binPayloads?: Uint8Array[];
}

/** A prepare / submit / abort body (spec §2.3). */
export function decodeTrans(body: unknown, o: DecodeTransOptions = { escapeGid: true }): TransInput {
  const m = fold(body);
  const rawGid = str(m, 'gid');
  const gid = checkGid(o.escapeGid ? cleanGid(rawGid) : rawGid);
  const transType = str(m, 'trans_type');
  if (transType === '') throw new InputError('trans_type', 'required (one of saga, tcc, msg, xa)');
  if (transType === 'workflow') throw new InputError('trans_type', 'workflow is not supported by this dtx version yet');
  if (!TYPES.includes(transType))
    throw new InputError('trans_type', `unknown trans type '${transType}' (one of saga, tcc, msg, xa)`);
  const protocol = o.protocol ?? (str(m, 'protocol') || 'http');
  checkMetadataValue(gid, 'gid', protocol);
  if (!['http', 'grpc', 'json-rpc'].includes(protocol)) {
    throw new InputError('protocol', `unknown protocol '${protocol}' (one of http, grpc, json-rpc)`);
  }

  const rawSteps = m.get('steps');
  const steps: Record<string, string>[] = [];
  if (rawSteps !== undefined && rawSteps !== null) {
    if (!Array.isArray(rawSteps)) throw new InputError('steps', `expected an array, got ${typeName(rawSteps)}`);
    rawSteps.forEach((s, i) => {
      steps.push(stringMap(s, `steps[${i}]`));
    });
  }
  const rawPayloads = o.binPayloads ? undefined : m.get('payloads');
  const binPayloads: Uint8Array[] = o.binPayloads ? [...o.binPayloads] : [];
  if (rawPayloads !== undefined && rawPayloads !== null) {
    if (!Array.isArray(rawPayloads))
      throw new InputError('payloads', `expected an array of strings, got ${typeName(rawPayloads)}`);
    rawPayloads.forEach((p, i) => {
      if (typeof p !== 'string') throw new InputError(`payloads[${i}]`, `expected a string, got ${typeName(p)}`);
      checkText(p, `payloads[${i}]`);
      binPayloads.push(Buffer.from(p, 'utf8'));
    });
  }
  if (!o.binPayloads) for (const s of steps) if (s.data) binPayloads.push(Buffer.from(s.data, 'utf8'));

  steps.forEach((s, i) => {
    if (s.action !== undefined) s.action = checkUrl(s.action, `steps[${i}].action`, protocol, transType === 'msg');
    if (transType === 'saga' && s.compensate !== undefined) {
      s.compensate = checkUrl(s.compensate, `steps[${i}].compensate`, protocol, false);
    }
  });
  if ((transType === 'saga' || transType === 'msg') && binPayloads.length < steps.length) {
    throw new InputError('payloads', `expected one payload per step (${steps.length}), got ${binPayloads.length}`);
  }
  const queryPrepared = checkUrl(str(m, 'query_prepared'), 'query_prepared', protocol, false);
  const customData = str(m, 'custom_data');
  if (customData !== '') {
    try {
      JSON.parse(customData);
    } catch {
      throw new InputError('custom_data', 'expected the text of a JSON object');
    }
  }

  const opts: TransOptions = {};
  const wait = bool(m, 'wait_result');
  if (wait !== undefined) opts.wait_result = wait;
  for (const key of ['timeout_to_fail', 'request_timeout', 'retry_interval', 'retry_limit'] as const) {
    const v = int(m, key);
    if (v !== undefined) opts[key] = v;
  }
  int(m, 'retry_count', Number.MAX_SAFE_INTEGER); // accepted and ignored
  const headers = headerMap(m.get('branch_headers'), 'branch_headers', protocol);
  if (Object.keys(headers).length > 0) opts.branch_headers = headers;
  const concurrent = bool(m, 'concurrent');
  if (concurrent !== undefined) opts.concurrent = concurrent;

  return {
    gid,
    transType,
    steps,
    binPayloads,
    customData,
    queryPrepared,
    protocol,
    rollbackReason: str(m, 'rollback_reason'),
    reqExtra: stringMap(m.get('req_extra'), 'req_extra'),
    opts,
  };
}

/** A `{"gid": ...}` body (forceStop, resetNextCronTime). */
export function decodeGidBody(body: unknown): string {
  return checkGid(cleanGid(str(fold(body), 'gid')));
}

export interface DecodeBranchOptions {
  /** Strip \n \r ; from the gid (HTTP does, gRPC does not). */
  escapeGid: boolean;
  /** The transport's protocol: `grpc` accepts gRPC branch URLs (spec §4.2). Default http. */
  protocol?: string;
  /** The branch body given beside the map (gRPC's BusiPayload); the map's `data` is then not read. */
  data?: Uint8Array;
}

/** A registerBranch body (spec §2.5): every value must be a string. */
export function decodeBranch(body: unknown, o: DecodeBranchOptions = { escapeGid: true }): BranchInput {
  const protocol = o.protocol ?? 'http';
  const m = fold(body);
  for (const [k, v] of m) {
    if (typeof v !== 'string') throw new InputError(k, `expected a string, got ${typeName(v)}`);
    checkText(v, k);
  }
  const rawGid = str(m, 'gid');
  const gid = checkMetadataValue(checkGid(o.escapeGid ? cleanGid(rawGid) : rawGid), 'gid', protocol);
  const transType = str(m, 'trans_type');
  if (transType === 'workflow') throw new InputError('trans_type', 'workflow is not supported by this dtx version yet');
  if (transType !== 'tcc' && transType !== 'xa') throw new InputError('trans_type', `unknow trans type: ${transType}`);
  const branchId = checkMetadataValue(checkGid(str(m, 'branch_id'), 'branch_id'), 'branch_id', protocol);
  let confirm = str(m, 'confirm');
  let cancel = str(m, 'cancel');
  let url = str(m, 'url');
  if (transType === 'tcc') {
    confirm = checkUrl(confirm, 'confirm', protocol, false);
    cancel = checkUrl(cancel, 'cancel', protocol, false);
  } else {
    if (url === '') throw new InputError('url', 'required for an xa branch');
    url = checkUrl(url, 'url', protocol, false);
  }
  const data = o.data ?? Buffer.from(str(m, 'data'), 'utf8');
  return { gid, transType, branchId, data, confirm, cancel, url };
}
