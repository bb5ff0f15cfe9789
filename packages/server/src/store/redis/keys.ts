/**
 * The Redis key layout of dtx (see README.md in this folder).
 *
 * - One hash per transaction, `<prefix>:t:<gid>`: the global fields, every branch and the uniqueness markers
 *   of (branch_id, op). A transaction is one key, so everything a script does to it is atomic on Redis
 *   Cluster too, and transactions spread over the cluster by gid.
 * - The indexes and the KV rows live in one hash slot of their own, `<prefix>:{<prefix>:i}:<name>` (or
 *   `<prefix>:i:<name>` when the prefix already carries a hash tag, such as DTM's default `{a}`).
 *
 * With a prefix that contains a hash tag (`{a}`, the default) every key shares that one slot: right for a
 * single Redis, and what DTM does. On Redis Cluster set a prefix without braces (e.g. `dtx`) so that
 * transactions spread over the slots.
 *
 * @module
 */

/** The hash tag Redis Cluster hashes a key by: the first non-empty `{...}`, or undefined. */
export function hashTagOf(key: string): string | undefined {
  const open = key.indexOf('{');
  if (open < 0) return undefined;
  const close = key.indexOf('}', open + 1);
  if (close < 0 || close === open + 1) return undefined;
  return key.slice(open + 1, close);
}

/** The names of every key of one dtx deployment (one prefix). */
export class RedisKeys {
  /** Where every index key starts: `<prefix>:i` or `<prefix>:{<prefix>:i}`. */
  private readonly index: string;

  constructor(readonly prefix: string) {
    this.index = hashTagOf(prefix) === undefined ? `${prefix}:{${prefix}:i}` : `${prefix}:i`;
  }

  /** The hash of one transaction. */
  trans(gid: string): string {
    return `${this.prefix}:t:${gid}`;
  }

  /** Trans id counter (string). */
  get seq(): string {
    return `${this.index}:seq`;
  }

  /** Every transaction: member gid, score id (the admin list). */
  get all(): string {
    return `${this.index}:all`;
  }

  /** Unfinished transactions: member gid, score next_cron_time in epoch ms (the cron). */
  get due(): string {
    return `${this.index}:due`;
  }

  /** Finished transactions: member gid, score update_time of the finish (retention). */
  get fin(): string {
    return `${this.index}:fin`;
  }

  /** The KV rows of one cat: field k. */
  kv(cat: string): string {
    return `${this.index}:kv:${cat}`;
  }

  /** KV id counter. */
  get kvSeq(): string {
    return `${this.index}:kvseq`;
  }

  /** The cats that have KV rows. */
  get kvCats(): string {
    return `${this.index}:kvcats`;
  }

  /** A SCAN MATCH pattern for every key of this prefix. */
  get pattern(): string {
    return `${this.prefix.replace(/[*?[\]\\]/g, '\\$&')}:*`;
  }
}
