import type { BranchOp, BranchStatus, GlobalStatus, Protocol, TransType } from './enums.js';

/** Per-transaction options (spec §2.3). All are optional; zero means "use the server default". */
export interface TransOptions {
  /** Process synchronously before replying to submit/abort. */
  wait_result?: boolean;
  /** Seconds after create_time before a prepared tcc/xa/msg times out, or a submitted saga aborts. */
  timeout_to_fail?: number;
  /** Per-branch-call timeout in seconds. */
  request_timeout?: number;
  /** Base retry interval in seconds. */
  retry_interval?: number;
  /** Headers sent on every branch call. */
  branch_headers?: Record<string, string>;
  /** msg: deliver all branches in parallel. */
  concurrent?: boolean;
  /** saga: immediate in-pass retries of an action. */
  retry_limit?: number;
}

/**
 * dtx: the largest `compensate_delay` a saga step may ask for: 7 days, in seconds. The coordinator refuses more;
 * the SDK checks it before sending.
 */
export const MAX_COMPENSATE_DELAY = 7 * 24 * 3600;

/** The body of prepare / submit / abort, as a DTM client sends it. */
export interface TransRequest extends TransOptions {
  gid: string;
  trans_type: TransType | string;
  /** Saga: `{action, compensate}` per step (dtx: plus an optional `compensate_delay` in seconds); msg: `{action}`. */
  steps?: Record<string, string | number>[];
  payloads?: string[];
  custom_data?: string;
  query_prepared?: string;
  protocol?: Protocol | string;
  rollback_reason?: string;
  req_extra?: Record<string, string>;
}

/** The transaction object of query / all (spec §2.6). */
export interface TransGlobalJson {
  id: number;
  create_time: string | null;
  update_time: string | null;
  gid: string;
  trans_type: string;
  status: GlobalStatus;
  query_prepared?: string;
  protocol?: string;
  finish_time?: string;
  rollback_time?: string;
  result?: string;
  rollback_reason?: string;
  options?: string;
  custom_data?: string;
  next_cron_interval?: number;
  next_cron_time?: string;
  owner?: string;
  ext_data?: string;
  concurrent: boolean;
  /** dtx: saga only, when a step has a `compensate_delay`: the seconds per step (0: none). */
  compensate_delays?: number[];
  /** dtx: while such a saga is `aborting`, when each step's compensation may run (`null`: no delay). */
  compensate_due?: (string | null)[];
  [option: string]: unknown;
}

/** The branch object of query (spec §2.6). `bin_data` is base64. */
export interface TransBranchJson {
  id: number;
  create_time: string | null;
  update_time: string | null;
  gid: string;
  url?: string;
  bin_data?: string;
  branch_id: string;
  op: BranchOp | string;
  status: BranchStatus;
  finish_time?: string;
  rollback_time?: string;
}

/** Reply of GET /api/dtmsvr/query. */
export interface QueryReply {
  transaction: TransGlobalJson | null;
  branches: TransBranchJson[];
}

/** The transaction info a branch receives (query parameters over HTTP, `dtm-*` metadata over gRPC). */
export interface BranchInfo {
  gid: string;
  trans_type: string;
  branch_id: string;
  op: string;
}
