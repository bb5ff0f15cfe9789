import mysql from 'mysql2/promise';

/**
 * A statement's SQL split at its `?` placeholders, once per SQL string: the group commit's text batches render
 * every statement of every write, and the driver's `format` scans the whole SQL for quotes, comments and
 * placeholders each time (about 7 % of the coordinator's CPU on MySQL at concurrency 50).
 */
const splits = new Map<string, readonly string[]>();
/** Distinct SQL strings kept split (the hot path has a few dozen; beyond this the oldest is dropped). */
const SPLITS_MAX = 512;

/**
 * `sql` split at its placeholders. Only the store's own statements come here: a `?` is always a placeholder, so
 * SQL holding a quote, a comment, a backtick or `??` (an identifier placeholder) is refused rather than split.
 */
function split(sql: string): readonly string[] {
  let parts = splits.get(sql);
  if (parts === undefined) {
    if (/['"`#]|--|\/\*|\?\?/.test(sql)) throw new Error(`store: statement not splittable at '?': ${sql}`);
    parts = sql.split('?');
    if (splits.size >= SPLITS_MAX) splits.delete(splits.keys().next().value as string);
    splits.set(sql, parts);
  }
  return parts;
}

/** One value as MySQL text, as the driver's `format` writes it (strings, numbers and NULL without its dispatch). */
function literal(v: unknown): string {
  if (typeof v === 'number') return `${v}`;
  if (v === null || v === undefined) return 'NULL';
  return mysql.escape(v as never);
}

/**
 * `sql` with each `?` replaced by its value as an escaped literal, as `mysql.format(sql, values)` would give it
 * for the store's statements. The counts must match: a missing value is a bug, never a `?` left in the text.
 */
export function sqlText(sql: string, values: readonly unknown[]): string {
  const parts = split(sql);
  if (parts.length !== values.length + 1)
    throw new Error(`store: ${values.length} values for ${parts.length - 1} placeholders: ${sql}`);
  let out = parts[0]!;
  for (let i = 0; i < values.length; i++) out += literal(values[i]) + parts[i + 1]!;
  return out;
}
