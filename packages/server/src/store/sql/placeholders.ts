/** A statement with `$n` placeholders rewritten for a driver that takes `?` in order of appearance. */
export interface PositionalSql {
  sql: string;
  /** The 0-based index of the value each `?` takes, in order. */
  order: number[];
}

/**
 * Rewrite `$1 … $n` (PostgreSQL's numbered placeholders, the form the shared statements are written in) as `?`,
 * with the order of values that makes them mean the same: a number used twice takes its value twice. The
 * statements are our own text (no `$` inside literals), so a plain scan is exact.
 */
export function toPositional(sql: string): PositionalSql {
  const order: number[] = [];
  const out = sql.replace(/\$(\d+)/g, (_, n: string) => {
    order.push(Number(n) - 1);
    return '?';
  });
  return { sql: out, order };
}

/** {@link toPositional} once per statement text. Statement texts are few: the cache is bounded by the code. */
export class PositionalCache {
  private readonly cache = new Map<string, PositionalSql>();

  /** The `?` form of `sql` and `values` in the order it takes them. */
  apply(sql: string, values: readonly unknown[]): { sql: string; values: unknown[] } {
    let p = this.cache.get(sql);
    if (p === undefined) {
      p = toPositional(sql);
      this.cache.set(sql, p);
    }
    return { sql: p.sql, values: p.order.map((i) => values[i]) };
  }
}
