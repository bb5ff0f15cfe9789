/**
 * Reading the {@link BranchInfo} that DTM sends with every branch call: as query parameters over HTTP
 * (`gid`, `trans_type`, `branch_id`, `op`) and as `dtm-*` metadata over gRPC.
 *
 * @module
 */
import type { BranchInfo } from '@dtx/protocol';
import { brand, DtxError } from '../errors.js';

/** The four fields of a {@link BranchInfo}, in the order they are checked. */
export const BRANCH_INFO_FIELDS = ['trans_type', 'gid', 'branch_id', 'op'] as const;

/** A field of {@link BranchInfo}. */
export type BranchInfoField = (typeof BRANCH_INFO_FIELDS)[number];

/**
 * A branch request lacks one of `trans_type`, `gid`, `branch_id`, `op`. DTM always sends all four, so this means
 * the route was called by something else, or wired to the wrong framework hook.
 */
export class BranchInfoError extends DtxError {
  /**
   * @param field - the missing (or empty) field.
   * @param where - where it was looked for, e.g. `the query string`.
   */
  constructor(
    readonly field: BranchInfoField,
    where: string,
  ) {
    super(
      `missing branch info field "${field}" in ${where}: a branch request needs trans_type, gid, branch_id and op, ` +
        'as DTM sends them',
    );
  }
}
brand(BranchInfoError, 'BranchInfoError');

/** A query-string object as frameworks parse it, or a header / metadata map. */
export type StringMap = Readonly<Record<string, unknown>>;

function firstString(value: unknown): string | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (typeof v === 'string') return v;
  if (v instanceof Uint8Array) return Buffer.from(v).toString('utf8');
  return undefined;
}

function pick(source: StringMap, keyOf: (field: BranchInfoField) => string, where: string): BranchInfo {
  const out: Partial<Record<BranchInfoField, string>> = {};
  for (const field of BRANCH_INFO_FIELDS) {
    const value = firstString(source[keyOf(field)]);
    if (value === undefined || value === '') throw new BranchInfoError(field, where);
    out[field] = value;
  }
  return out as BranchInfo;
}

/**
 * Checks that all four fields of `info` are non-empty strings and returns a copy with only those fields.
 * @throws {@link BranchInfoError} naming the first missing field.
 */
export function validateBranchInfo(info: Readonly<Partial<BranchInfo>>): BranchInfo {
  return pick(info, (f) => f, 'the branch info');
}

/**
 * Reads the branch info from a parsed query string (`gid`, `trans_type`, `branch_id`, `op`). Array values
 * (a repeated parameter) use their first element.
 * @throws {@link BranchInfoError} naming the first missing field.
 */
export function branchInfoFromQuery(query: StringMap): BranchInfo {
  return pick(query, (f) => f, 'the query string');
}

/**
 * Reads the branch info from gRPC metadata or HTTP headers with DTM's `dtm-*` keys (`dtm-gid`,
 * `dtm-trans_type`, `dtm-branch_id`, `dtm-op`). Keys are matched case-insensitively; array values
 * (gRPC metadata) use their first element.
 * @throws {@link BranchInfoError} naming the first missing field.
 */
export function branchInfoFromMetadata(metadata: StringMap): BranchInfo {
  const lower: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(metadata)) lower[k.toLowerCase()] = v;
  return pick(lower, (f) => `dtm-${f}`, 'the dtm-* metadata');
}
