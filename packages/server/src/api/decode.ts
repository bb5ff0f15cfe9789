import { type BranchOp, grpcUrlProblem, isHttpUrl, MAX_COMPENSATE_DELAY } from '@dtx/protocol';
import { DEFAULT_URL_POLICY, type UrlPolicy } from '../branch/url-policy.js';
import { InputError, LimitError } from '../core/errors.js';
import type { StoredOptions } from '../core/model.js';
import { MODE_TYPES, modeOf } from '../core/modes.js';
import { checkStoredText } from '../core/stored-text.js';
import type { BranchInput, TransInput } from '../core/trans-input.js';
import type { TransMode } from '../core/trans-mode.js';
import { WORKFLOW_OPS, WORKFLOW_STATUSES } from '../core/workflow.js';
import { typeName } from '../util/type-name.js';
import { isWellFormed } from './well-formed.js';

/**
 * Validation at the edge (spec §2.3, §2.5): keys are matched case-insensitively as Go does, unknown
 * keys are ignored, and a wrong type or value is an InputError naming the field. Shared by every
 * transport that carries DTM's JSON bodies.
 */

/** gid and branch_id: varchar(128) in the SQL stores. */
const MAX_ID = 128;
/**
 * A branch URL (action, compensate, query_prepared, confirm, cancel, url). The column is text (MySQL: TEXT,
 * 65,535 bytes); 8192 keeps well inside it even in 4-byte UTF-8, and inside the request line that common HTTP
 * servers accept (Node: 16 KiB of headers, nginx: 8 KiB buffers), so a longer URL could not be called anyway.
 */
const MAX_URL = 8192;
/** The trans types, as error messages list them. */
const TYPE_LIST = MODE_TYPES.join(', ');

export { WORKFLOW_OPS, WORKFLOW_STATUSES } from '../core/workflow.js';

/** The configurable limits of a transaction (config `Limits.*`). */
export interface EdgeLimits {
  /** Steps (and payloads) of one saga or msg. Default 1000. */
  maxSteps: number;
  /** Entries of branch_headers. Default 32. */
  maxBranchHeaders: number;
  /** Bytes (UTF-8) of all branch_headers names and values together. Default 8192. */
  maxBranchHeadersBytes: number;
  /** The branch-URL policy every URL must pass (config `BranchUrl.*`). Default: the default deny list. */
  urlPolicy?: UrlPolicy;
}

/**
 * The defaults: generous for real transactions (a saga of hundreds of steps, a few dozen headers) while keeping
 * one request's cost bounded (100,000 steps stalled the event loop for a second).
 */
export const DEFAULT_EDGE_LIMITS: EdgeLimits = { maxSteps: 1000, maxBranchHeaders: 32, maxBranchHeadersBytes: 8192 };

/** A character trim() would keep (\s is the set it removes). */
const NON_BLANK = /\S/;

export function parseJson(body: Buffer | string | undefined): unknown {
  const text = typeof body === 'string' ? body : body ? body.toString('utf8') : '';
  // (a test for any non-blank character, not trim(), which copies the whole body)
  if (!NON_BLANK.test(text)) throw new InputError('body', 'empty request body: expected a JSON object');
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

/** A text field: a string (absent or null reads as ''), storable as text (no NUL, no unpaired surrogate). */
/**
 * A string kept as bytes (a payload, registerBranch data) must still have a UTF-8 form: a JSON `\ud800` escape
 * gives a lone surrogate, whose bytes would be U+FFFD's, not what the caller sent.
 */
function checkEncodable(v: string, key: string): void {
  if (!isWellFormed(v)) throw new InputError(key, 'contains an unpaired UTF-16 surrogate, which has no UTF-8 form');
}

function str(m: Map<string, unknown>, key: string): string {
  const v = m.get(key);
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw new InputError(key, `expected a string, got ${typeName(v)}`);
  return checkStoredText(v, key);
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

/**
 * An object of strings. Keys and values are text that is stored (in options, ext_data or branch rows), so they
 * must be storable — except the value of `bytesKey` (a step's legacy `data`), which becomes payload bytes.
 */
function stringMap(v: unknown, key: string, bytesKey?: string): Record<string, string> {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v))
    throw new InputError(key, `expected an object of strings, got ${typeName(v)}`);
  for (const [k, x] of Object.entries(v)) {
    checkStoredText(k, `${key} key`);
    if (typeof x !== 'string') throw new InputError(`${key}.${k}`, `expected a string, got ${typeName(x)}`);
    if (k !== bytesKey) checkStoredText(x, `${key}.${k}`);
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
function headerMap(v: unknown, key: string, protocol: string, limits: EdgeLimits): Record<string, string> {
  const h = stringMap(v, key);
  const entries = Object.entries(h);
  if (entries.length > limits.maxBranchHeaders) {
    throw new LimitError(
      key,
      `${entries.length} headers, more than Limits.MaxBranchHeaders (${limits.maxBranchHeaders}) allows`,
    );
  }
  let bytes = 0;
  for (const [name, value] of entries) bytes += Buffer.byteLength(name) + Buffer.byteLength(value);
  if (bytes > limits.maxBranchHeadersBytes) {
    throw new LimitError(
      key,
      `${bytes} bytes of names and values, more than Limits.MaxBranchHeadersBytes (${limits.maxBranchHeadersBytes}) allows`,
    );
  }
  for (const [name, value] of entries) {
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

/** DTM strips \n, \r and ; from gids received over HTTP. */
export function cleanGid(raw: string): string {
  return raw.replace(/[\n\r;]/g, '');
}

export function checkGid(gid: string, field = 'gid'): string {
  if (gid === '') throw new InputError(field, 'required');
  return checkStoredText(gid, field, MAX_ID);
}

/**
 * A topic subscriber's URL: it becomes the branch URL of the msg steps that name the topic, over HTTP or gRPC,
 * so it must be one of those (an empty one is the topic's own error).
 */
export function checkSubscriberUrl(url: string, policy: UrlPolicy = DEFAULT_URL_POLICY): string {
  return checkUrl(url, 'url', 'grpc', false, policy);
}

/** A well-formed URL, then the branch-URL policy on it: refused, an InputError naming the URL and the rule. */
function checkUrl(url: string, field: string, protocol: string, allowTopic: boolean, policy: UrlPolicy): string {
  const checked = checkUrlForm(url, field, protocol, allowTopic);
  if (checked === '') return checked;
  const refused = policy.checkUrl(checked);
  if (refused !== undefined) throw new InputError(field, refused);
  return checked;
}

/**
 * Validate a branch URL and return the form that will be called: WHATWG-normalized (a space or a
 * non-ASCII character percent-encoded). A fragment is refused: the query parameters dtx appends would
 * land after the `#` and never reach the branch. In a grpc or json-rpc transaction a URL that is not
 * http(s) is a gRPC branch (spec §5.1): `host:port/package.Service/Method`, or a discovery target
 * `etcd://` / `discov://` / `discovery://` followed by the service and the method.
 */
function checkUrlForm(url: string, field: string, protocol: string, allowTopic: boolean): string {
  if (url === '') return url;
  const known = FORM_CACHE.get(url);
  if (known !== undefined) return known;
  checkStoredText(url, field, MAX_URL);
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
  // percent-encoding may lengthen it
  if (u.href.length > MAX_URL) throw new InputError(field, `longer than ${MAX_URL} characters once percent-encoded`);
  if (url.length <= FORM_CACHE_URL_MAX) {
    if (FORM_CACHE.size >= FORM_CACHE_MAX) FORM_CACHE.clear();
    FORM_CACHE.set(url, u.href);
  }
  return u.href;
}

/**
 * http(s) URLs that passed checkUrlForm, with the form they are called by. A transaction's URLs are few and the same
 * from one submit to the next, and parsing them was a few per cent of a submit. Such a URL's verdict depends on the
 * URL alone (not on the field, the protocol or allowTopic), and only successes are kept, so an error still names its
 * field. Bounded: entries of at most 512 characters, emptied at 2048 entries (at most a few MB).
 */
const FORM_CACHE = new Map<string, string>();
const FORM_CACHE_MAX = 2048;
const FORM_CACHE_URL_MAX = 512;

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
  /** Steps and branch_headers limits. Default {@link DEFAULT_EDGE_LIMITS}. */
  limits?: EdgeLimits;
}

export { MAX_COMPENSATE_DELAY };

/**
 * dtx: a saga step's `compensate_delay` (seconds, integer 0…{@link MAX_COMPENSATE_DELAY}), or undefined when the
 * step has none (DTM's bodies: nothing is allocated for them).
 */
function compensateDelayOf(s: unknown, i: number, mode: TransMode): number | undefined {
  if (!s || typeof s !== 'object' || Array.isArray(s) || !Object.hasOwn(s, 'compensate_delay')) return undefined;
  const d = (s as Record<string, unknown>).compensate_delay;
  const key = `steps[${i}].compensate_delay`;
  if (!mode.compensatingSteps) throw new InputError(key, 'only saga steps have a compensation to delay');
  if (typeof d !== 'number' || !Number.isInteger(d) || d < 0 || d > MAX_COMPENSATE_DELAY) {
    throw new InputError(
      key,
      `expected an integer number of seconds from 0 to ${MAX_COMPENSATE_DELAY} (7 days), got ${typeof d === 'number' ? d : typeName(d)}`,
    );
  }
  return d;
}

/** A prepare / submit / abort body (spec §2.3). */
export function decodeTrans(body: unknown, o: DecodeTransOptions = { escapeGid: true }): TransInput {
  const limits = o.limits ?? DEFAULT_EDGE_LIMITS;
  const m = fold(body);
  const rawGid = str(m, 'gid');
  const gid = checkGid(o.escapeGid ? cleanGid(rawGid) : rawGid);
  const transType = str(m, 'trans_type');
  if (transType === '') throw new InputError('trans_type', `required (one of ${TYPE_LIST})`);
  const mode = modeOf(transType);
  if (mode === undefined) throw new InputError('trans_type', `unknown trans type '${transType}' (one of ${TYPE_LIST})`);
  const protocol = o.protocol ?? (str(m, 'protocol') || 'http');
  checkMetadataValue(gid, 'gid', protocol);
  if (!['http', 'grpc', 'json-rpc'].includes(protocol)) {
    throw new InputError('protocol', `unknown protocol '${protocol}' (one of http, grpc, json-rpc)`);
  }

  const rawSteps = m.get('steps');
  let compensateDelays: number[] | undefined;
  const steps: Record<string, string>[] = [];
  if (rawSteps !== undefined && rawSteps !== null) {
    if (!Array.isArray(rawSteps)) throw new InputError('steps', `expected an array, got ${typeName(rawSteps)}`);
    if (rawSteps.length > limits.maxSteps) {
      throw new LimitError('steps', `${rawSteps.length} steps, more than Limits.MaxSteps (${limits.maxSteps}) allows`);
    }
    rawSteps.forEach((s, i) => {
      const delay = compensateDelayOf(s, i, mode);
      if (delay === undefined) {
        steps.push(stringMap(s, `steps[${i}]`, 'data'));
        return;
      }
      if (!compensateDelays) compensateDelays = new Array<number>(rawSteps.length).fill(0);
      compensateDelays[i] = delay;
      const { compensate_delay: _d, ...rest } = s as Record<string, unknown>;
      steps.push(stringMap(rest, `steps[${i}]`, 'data'));
    });
  }
  const rawPayloads = o.binPayloads ? undefined : m.get('payloads');
  const binPayloads: Uint8Array[] = o.binPayloads ? [...o.binPayloads] : [];
  if (rawPayloads !== undefined && rawPayloads !== null) {
    if (!Array.isArray(rawPayloads))
      throw new InputError('payloads', `expected an array of strings, got ${typeName(rawPayloads)}`);
    if (rawPayloads.length > limits.maxSteps) {
      throw new LimitError(
        'payloads',
        `${rawPayloads.length} payloads, more than Limits.MaxSteps (${limits.maxSteps}) allows`,
      );
    }
    rawPayloads.forEach((p, i) => {
      if (typeof p !== 'string') throw new InputError(`payloads[${i}]`, `expected a string, got ${typeName(p)}`);
      checkEncodable(p, `payloads[${i}]`);
      binPayloads.push(Buffer.from(p, 'utf8'));
    });
  }
  if (!o.binPayloads) for (const s of steps) if (s.data) binPayloads.push(Buffer.from(s.data, 'utf8'));

  const policy = limits.urlPolicy ?? DEFAULT_URL_POLICY;
  steps.forEach((s, i) => {
    if (s.action !== undefined) {
      s.action = checkUrl(s.action, `steps[${i}].action`, protocol, mode.topicSteps, policy);
    }
    if (mode.compensatingSteps && s.compensate !== undefined) {
      s.compensate = checkUrl(s.compensate, `steps[${i}].compensate`, protocol, false, policy);
    }
  });
  if (mode.stepBranches !== undefined && binPayloads.length < steps.length) {
    throw new InputError('payloads', `expected one payload per step (${steps.length}), got ${binPayloads.length}`);
  }
  const queryPrepared = checkUrl(str(m, 'query_prepared'), 'query_prepared', protocol, false, policy);
  const customData = str(m, 'custom_data');
  if (customData !== '') {
    let cd: unknown;
    try {
      cd = JSON.parse(customData);
    } catch {
      throw new InputError('custom_data', 'expected the text of a JSON object');
    }
    mode.checkCustomData?.(cd, customData, steps.length);
  }
  const reqExtra = stringMap(m.get('req_extra'), 'req_extra');
  mode.checkReqExtra?.(reqExtra);

  const opts: StoredOptions = {};
  const wait = bool(m, 'wait_result');
  if (wait !== undefined) opts.wait_result = wait;
  for (const key of ['timeout_to_fail', 'request_timeout', 'retry_interval', 'retry_limit'] as const) {
    const v = int(m, key);
    if (v !== undefined) opts[key] = v;
  }
  int(m, 'retry_count', Number.MAX_SAFE_INTEGER); // accepted and ignored
  const headers = headerMap(m.get('branch_headers'), 'branch_headers', protocol, limits);
  if (Object.keys(headers).length > 0) opts.branch_headers = headers;
  const concurrent = bool(m, 'concurrent');
  if (concurrent !== undefined) opts.concurrent = concurrent;
  if (compensateDelays?.some((d) => d > 0)) opts.compensate_delays = compensateDelays;

  return {
    gid,
    transType: mode.type,
    steps,
    binPayloads,
    customData,
    queryPrepared,
    protocol,
    rollbackReason: str(m, 'rollback_reason'),
    reqExtra,
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
  /** Carries the branch-URL policy (`urlPolicy`); the other limits do not apply to a branch. */
  limits?: EdgeLimits;
}

/** A registerBranch body (spec §2.5): every value must be a string. */
export function decodeBranch(body: unknown, o: DecodeBranchOptions = { escapeGid: true }): BranchInput {
  const protocol = o.protocol ?? 'http';
  const m = fold(body);
  for (const [k, v] of m) {
    if (typeof v !== 'string') throw new InputError(k, `expected a string, got ${typeName(v)}`);
    checkEncodable(v, k);
  }
  const rawGid = str(m, 'gid');
  const gid = checkMetadataValue(checkGid(o.escapeGid ? cleanGid(rawGid) : rawGid), 'gid', protocol);
  const transType = str(m, 'trans_type');
  // a branch is registered by URL (tcc, xa: the mode's second phase) or recorded as a step (workflow)
  const mode = modeOf(transType);
  const phase2 = mode?.phase2;
  if (mode === undefined || (phase2 === undefined && mode.start !== 'client')) {
    throw new InputError('trans_type', `unknow trans type: ${transType}`);
  }
  const branchId = checkMetadataValue(checkGid(str(m, 'branch_id'), 'branch_id'), 'branch_id', protocol);
  const rawData = m.get('data');
  const data = o.data ?? Buffer.from(typeof rawData === 'string' ? rawData : '', 'utf8');
  if (phase2 === undefined) {
    // a step's outcome (spec §6.8): no URL, the op and status it is recorded with, its bytes kept exactly
    const op = str(m, 'op');
    if (!WORKFLOW_OPS.includes(op)) {
      throw new InputError(
        'op',
        `expected one of ${WORKFLOW_OPS.join(', ')} for a workflow step, got '${op.slice(0, 60)}'`,
      );
    }
    const status = str(m, 'status');
    if (!WORKFLOW_STATUSES.includes(status)) {
      throw new InputError('status', `expected succeed or failed for a workflow step, got '${status.slice(0, 60)}'`);
    }
    return { gid, transType: mode.type, branchId, data, confirm: '', cancel: '', url: '', op: op as BranchOp, status };
  }
  let confirm = str(m, 'confirm');
  let cancel = str(m, 'cancel');
  let url = str(m, 'url');
  const policy = o.limits?.urlPolicy ?? DEFAULT_URL_POLICY;
  if (phase2.commit.url === 'url') {
    // one URL for both phases (xa)
    if (url === '') throw new InputError('url', `required for an ${transType} branch`);
    url = checkUrl(url, 'url', protocol, false, policy);
  } else {
    confirm = checkUrl(confirm, 'confirm', protocol, false, policy);
    cancel = checkUrl(cancel, 'cancel', protocol, false, policy);
  }
  return { gid, transType: mode.type, branchId, data, confirm, cancel, url };
}
