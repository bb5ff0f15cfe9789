import type { BranchStatus, GlobalStatus, TransOptions } from '@dtx/protocol';

/**
 * A global transaction as the core sees it. Times are epoch milliseconds.
 * `options` is the persisted JSON text; `opts` is its parsed form, reloaded on every pass.
 */
export interface TransGlobal {
  id?: number;
  gid: string;
  transType: string;
  status: GlobalStatus;
  queryPrepared: string;
  protocol: string;
  createTime: number;
  updateTime: number;
  finishTime?: number | undefined;
  rollbackTime?: number | undefined;
  options: string;
  customData: string;
  nextCronInterval: number;
  nextCronTime: number;
  owner: string;
  extData: string;
  result: string;
  rollbackReason: string;
  /** Parsed `options`, kept in step with it by whoever sets either (the stores decode it on read); not stored separately. */
  opts: TransOptions;
}

/** One (branch_id, op) row of a transaction. */
export interface TransBranch {
  id?: number;
  gid: string;
  url: string;
  binData: Uint8Array;
  branchId: string;
  op: string;
  status: BranchStatus;
  createTime: number;
  updateTime: number;
  finishTime?: number | undefined;
  rollbackTime?: number | undefined;
}

/** A key-value row (topics live under cat `topics`). */
export interface KV {
  id?: number;
  cat: string;
  k: string;
  v: string;
  version: number;
  createTime: number;
  updateTime: number;
}

/** Topic subscriber, as stored in the `v` of a topics KV row. */
export interface Subscriber {
  url: string;
  remark: string;
}

const OPTION_KEYS = [
  'wait_result',
  'timeout_to_fail',
  'request_timeout',
  'retry_interval',
  'branch_headers',
  'concurrent',
  'retry_limit',
  'retry_count',
] as const;

/** Serialize options as DTM does: empty ones omitted, except `concurrent`. */
export function encodeOptions(opts: TransOptions & { retry_count?: number }): string {
  const out: Record<string, unknown> = {};
  for (const k of OPTION_KEYS) {
    const v = (opts as Record<string, unknown>)[k];
    if (k === 'concurrent') out[k] = v === true;
    else if (k === 'branch_headers') {
      if (v && typeof v === 'object' && Object.keys(v).length > 0) out[k] = v;
    } else if (v) out[k] = v;
  }
  return JSON.stringify(out);
}

/** Parse the stored options text; tolerant of '' (old rows). */
export function decodeOptions(text: string): TransOptions {
  if (!text) return {};
  try {
    const o = JSON.parse(text) as TransOptions;
    return o && typeof o === 'object' ? o : {};
  } catch {
    return {};
  }
}
