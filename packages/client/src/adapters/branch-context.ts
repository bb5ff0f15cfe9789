/**
 * What a branch handler receives, independent of the web framework.
 *
 * @module
 */
import type { BranchInfo } from '@dtx/protocol';
import { BranchBarrier } from '../barrier/branch-barrier.js';
import { branchInfoFromQuery, type StringMap } from '../barrier/branch-info.js';

/** Request headers as Node parses them (lower-case names). */
export type BranchHeaders = Readonly<Record<string, string | string[] | undefined>>;

/**
 * The request of one branch call.
 *
 * @typeParam Body - the type you expect the JSON body to have (not checked: validate it if it matters).
 * @typeParam Raw - the framework's own request objects.
 */
export interface BranchContext<Body = unknown, Raw = unknown> {
  /** The parsed JSON body; `undefined` when the request has none (a GET back-check, an XA phase 2). */
  readonly body: Body;
  /** The parsed query string. */
  readonly query: StringMap;
  /** The request headers, including the `branch_headers` of the transaction. */
  readonly headers: BranchHeaders;
  /**
   * gid, trans_type, branch_id and op from the query string.
   * @throws {@link BranchInfoError} (an HTTP 500) when one is missing.
   */
  readonly branchInfo: BranchInfo;
  /**
   * The barrier of this request, created from the query string on first use; the same object for the whole
   * request, so its guarded calls are numbered `01`, `02`, ….
   * @throws {@link BranchInfoError} (an HTTP 500) when a field of the branch info is missing.
   */
  readonly barrier: BranchBarrier;
  /** The framework's request and reply objects. */
  readonly raw: Raw;
}

/**
 * A branch handler: return a value (sent as JSON with 200, or `{"dtm_result":"SUCCESS"}` for `undefined`), or
 * throw `FailureError` (409, roll back), `OngoingError` (425, ask again later) or any other error (500, retry).
 * See {@link branchOutcome}.
 */
export type BranchHandler<Body = unknown, Raw = unknown> = (ctx: BranchContext<Body, Raw>) => unknown;

/** The parts of a request a {@link BranchContext} is made of. */
export interface BranchContextParts<Body, Raw> {
  readonly body: Body;
  readonly query: StringMap;
  readonly headers: BranchHeaders;
  readonly raw: Raw;
}

/** Builds the {@link BranchContext} of one request; `branchInfo` and `barrier` are read lazily. */
export function createBranchContext<Body, Raw>(parts: BranchContextParts<Body, Raw>): BranchContext<Body, Raw> {
  let barrier: BranchBarrier | undefined;
  return {
    body: parts.body,
    query: parts.query,
    headers: parts.headers,
    raw: parts.raw,
    get branchInfo() {
      return branchInfoFromQuery(parts.query);
    },
    get barrier() {
      barrier ??= BranchBarrier.fromQuery(parts.query);
      return barrier;
    },
  };
}

/** `gid=… trans_type=… branch_id=… op=…` of a query, with whichever fields are present, for log lines. */
export function describeBranch(query: StringMap): string {
  return ['gid', 'trans_type', 'branch_id', 'op']
    .filter((k) => query[k] !== undefined)
    .map((k) => `${k}=${String(query[k])}`)
    .join(' ');
}
