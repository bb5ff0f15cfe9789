import type { ScanQuery } from './store.js';

/** A condition with one `?` placeholder and its value. */
export interface Condition {
  sql: string;
  value: unknown;
}

/**
 * The filters of the admin list (spec §2.9) for every SQL store: cursor (`id <` position), status, trans_type and an
 * inclusive create_time range. `time` turns epoch ms into what the dialect stores.
 */
export function scanConditions(
  q: ScanQuery,
  time: (ms: number) => unknown,
  prefix: (p: string) => Condition = likePrefix,
): Condition[] {
  const c: Condition[] = [];
  if (q.position) c.push({ sql: 'id < ?', value: Number(q.position) });
  if (q.status) c.push({ sql: 'status = ?', value: q.status });
  if (q.transType) c.push({ sql: 'trans_type = ?', value: q.transType });
  if (q.createTimeStart !== undefined) c.push({ sql: 'create_time >= ?', value: time(q.createTimeStart) });
  if (q.createTimeEnd !== undefined) c.push({ sql: 'create_time <= ?', value: time(q.createTimeEnd) });
  if (q.gidPrefix) c.push(prefix(q.gidPrefix));
  return c;
}

/**
 * `gid LIKE ?` with `%`, `_` and backslash of the prefix escaped by a backslash (the default LIKE escape of PostgreSQL
 * and MySQL; both compare the gid column exactly).
 */
export function likePrefix(prefix: string): Condition {
  return { sql: 'gid LIKE ?', value: `${prefix.replace(/[\\%_]/g, '\\$&')}%` };
}

/**
 * SQLite's LIKE ignores ASCII case and has no default escape: the prefix is compared as the first characters of
 * the gid instead (the length is a number this code computed, not input).
 */
export function substrPrefix(prefix: string): Condition {
  return { sql: `substr(gid, 1, ${[...prefix].length}) = ?`, value: prefix };
}

/** findKV's filters: an empty cat or key means "any". */
export function kvConditions(cat: string, key: string): Condition[] {
  const c: Condition[] = [];
  if (cat) c.push({ sql: 'cat = ?', value: cat });
  if (key) c.push({ sql: 'k = ?', value: key });
  return c;
}

/**
 * `WHERE …` (or '') and its values. `placeholder(n)` renders the n-th (1-based) parameter: `?` by default,
 * `$n` for PostgreSQL; `first` is the number of parameters that come before these in the statement.
 */
export function whereOf(
  conds: Condition[],
  placeholder: (n: number) => string = () => '?',
  first = 0,
): { where: string; values: unknown[] } {
  if (conds.length === 0) return { where: '', values: [] };
  const where = conds.map((c, i) => c.sql.replace('?', placeholder(first + i + 1))).join(' AND ');
  return { where: `WHERE ${where}`, values: conds.map((c) => c.value) };
}

/** next_position of a page read by id descending: the last id when the page is full, else '' (spec §2.9). */
export function nextPositionOf(rows: readonly { id?: number | undefined }[], limit: number): string {
  const last = rows[rows.length - 1];
  return rows.length === limit && last?.id !== undefined ? String(last.id) : '';
}
