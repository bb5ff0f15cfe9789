import type { BranchOp, BranchStatus, GlobalStatus, TransType } from '@dtx/protocol';
import { decodeOptions, type KV, type TransBranch, type TransGlobal } from '../../core/model.js';
import type { UnfinishedCount } from '../store.js';
import { optionalTime, requiredTime } from './time.js';

/**
 * DTM's column names (spec §8.3, §8.4), shared by the PostgreSQL and MySQL stores. Columns that old DTM
 * versions have and dtx does not use (`commit_time`, the deprecated branch `data`) are never read.
 */
export const GLOBAL_COLUMNS = [
  'id',
  'gid',
  'trans_type',
  'status',
  'query_prepared',
  'protocol',
  'create_time',
  'update_time',
  'finish_time',
  'rollback_time',
  'options',
  'custom_data',
  'next_cron_interval',
  'next_cron_time',
  'owner',
  'ext_data',
  'result',
  'rollback_reason',
  // dtx: attempt history (schema version 3), left to their defaults by saveNew
  'failed_attempts',
  'last_error',
  'stuck_alerted',
] as const;

const NOT_INSERTED: readonly string[] = [
  'id',
  'finish_time',
  'rollback_time',
  'failed_attempts',
  'last_error',
  'stuck_alerted',
];

/** The columns saveNew writes (everything but the id and the columns left to their defaults). */
export const GLOBAL_INSERT_COLUMNS = GLOBAL_COLUMNS.filter((c) => !NOT_INSERTED.includes(c));

export const BRANCH_COLUMNS = [
  'id',
  'gid',
  'url',
  'bin_data',
  'branch_id',
  'op',
  'status',
  'finish_time',
  'rollback_time',
  'create_time',
  'update_time',
  // dtx: attempt history (schema version 3)
  'attempts',
  'last_attempt_time',
  'last_result',
  'last_error',
] as const;

export const BRANCH_INSERT_COLUMNS = [
  'gid',
  'url',
  'bin_data',
  'branch_id',
  'op',
  'status',
  'create_time',
  'update_time',
] as const;

export const KV_COLUMNS = ['id', 'cat', 'k', 'v', 'version', 'create_time', 'update_time'] as const;

/** The statuses the cron leases (spec §7.3), and the finished ones retention deletes. */
export const UNFINISHED_STATUSES = `('prepared', 'submitted', 'aborting')`;
export const FINISHED_STATUSES = `('succeed', 'failed')`;

type Row = Record<string, unknown>;

const str = (v: unknown): string => (v === null || v === undefined ? '' : String(v));
const num = (v: unknown): number => (v === null || v === undefined ? 0 : Number(v));

/** The values of a global row in GLOBAL_INSERT_COLUMNS order; `time` renders a time for the driver. */
export function globalInsertValues<T>(t: TransGlobal, time: (ms: number) => T): unknown[] {
  return [
    t.gid,
    t.transType,
    t.status,
    t.queryPrepared,
    t.protocol,
    time(t.createTime),
    time(t.updateTime),
    t.options,
    t.customData,
    t.nextCronInterval,
    time(t.nextCronTime),
    t.owner,
    t.extData,
    t.result,
    t.rollbackReason,
  ];
}

/**
 * The values of a new branch row in BRANCH_INSERT_COLUMNS order after gid, appended to `out` (a multi-row
 * INSERT's values, built without a copy per row); `time` renders a time for the driver.
 */
export function branchInsertValues<T>(b: TransBranch, time: (ms: number) => T, out: unknown[] = []): unknown[] {
  out.push(b.url, payload(b.binData), b.branchId, b.op, b.status, time(b.createTime), time(b.updateTime));
  return out;
}

/** A driver's row (times as the driver's text, or Date) → the core's TransGlobal. NULLs of old DTM rows become ''/0. */
export function globalFromRow(r: Row): TransGlobal {
  const options = str(r.options);
  return {
    id: Number(r.id),
    gid: str(r.gid),
    transType: str(r.trans_type) as TransType,
    status: str(r.status) as GlobalStatus,
    queryPrepared: str(r.query_prepared),
    protocol: str(r.protocol),
    createTime: requiredTime(r.create_time),
    updateTime: requiredTime(r.update_time),
    finishTime: optionalTime(r.finish_time),
    rollbackTime: optionalTime(r.rollback_time),
    options,
    customData: str(r.custom_data),
    nextCronInterval: num(r.next_cron_interval),
    nextCronTime: requiredTime(r.next_cron_time),
    owner: str(r.owner),
    extData: str(r.ext_data),
    result: str(r.result),
    rollbackReason: str(r.rollback_reason),
    failedAttempts: num(r.failed_attempts),
    lastError: str(r.last_error),
    stuckAlerted: num(r.stuck_alerted) === 1,
    opts: decodeOptions(options),
  };
}

export function branchFromRow(r: Row): TransBranch {
  const bin = r.bin_data;
  return {
    id: Number(r.id),
    gid: str(r.gid),
    url: str(r.url),
    binData: bin instanceof Uint8Array ? bin : new Uint8Array(0),
    branchId: str(r.branch_id),
    op: str(r.op) as BranchOp,
    status: str(r.status) as BranchStatus,
    finishTime: optionalTime(r.finish_time),
    rollbackTime: optionalTime(r.rollback_time),
    createTime: requiredTime(r.create_time),
    updateTime: requiredTime(r.update_time),
    attempts: num(r.attempts),
    lastAttemptTime: optionalTime(r.last_attempt_time),
    lastResult: str(r.last_result),
    lastError: str(r.last_error),
  };
}

export function kvFromRow(r: Row): KV {
  return {
    id: Number(r.id),
    cat: str(r.cat),
    k: str(r.k),
    v: str(r.v),
    version: num(r.version),
    createTime: requiredTime(r.create_time),
    updateTime: requiredTime(r.update_time),
  };
}

/** The payload as a Buffer view (no copy): what both drivers send as binary. */
export function payload(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/**
 * Set the ids the database gave to freshly inserted branches. Rows are matched on (branch_id, op), unique
 * within a gid, so the order the database returns them in does not matter.
 */
export function assignBranchIds(branches: TransBranch[], rows: Row[]): void {
  const ids = new Map<string, number>();
  for (const r of rows) ids.set(`${str(r.branch_id)}\u0000${str(r.op)}`, Number(r.id));
  for (const b of branches) {
    const id = ids.get(`${b.branchId}\u0000${b.op}`);
    if (id === undefined) throw new Error(`store: no id returned for branch ${b.branchId}/${b.op} of ${b.gid}`);
    b.id = id;
  }
}

/**
 * countUnfinished's query over `table`: its condition is that of the partial index trans_global_due (PostgreSQL) and
 * a range of the status_next_cron_time key (MySQL), so only unfinished rows are visited.
 */
export function countUnfinishedSql(table: string): string {
  return `SELECT trans_type, status, COUNT(*) AS n, MIN(create_time) AS oldest, MIN(next_cron_time) AS due
    FROM ${table} WHERE status IN ${UNFINISHED_STATUSES} GROUP BY trans_type, status`;
}

/** A row of {@link countUnfinishedSql}. */
export function unfinishedCountOf(r: Record<string, unknown>): UnfinishedCount {
  return {
    transType: String(r.trans_type),
    status: String(r.status) as GlobalStatus,
    count: Number(r.n),
    oldestCreateTime: requiredTime(r.oldest),
    oldestNextCronTime: requiredTime(r.due),
  };
}
