import type { TransGlobal } from '../../core/model.js';
import type { Store } from '../store.js';
import type { CommitQueueOptions, Pending } from './commit-queue.js';

/** A row as a driver returns it. */
export type Row = Record<string, unknown>;

/** What a statement run through the pool returns, whatever the driver. */
export interface SqlResult {
  rows: Row[];
  /** Rows the statement wrote (matched, for an UPDATE); for a SELECT the number of rows. */
  affected: number;
}

/** Per-statement options of {@link SqlDialect.query}. */
export interface QueryOptions {
  /** A prepared-statement name, for the statements of the hot path (PostgreSQL plans it once per connection). */
  name?: string;
  timeoutMs?: number;
}

/**
 * One write of the group commit, as a backend builds it: statements that do all of the write's work or none
 * of it, and `done`, which reads what they returned (`R`, the backend's result) and gives the caller's value or
 * throws the logical failure (NotFoundError, UniqueConflictError).
 */
export interface SqlWrite<R> {
  done(result: R): unknown;
}

/** The parameters of the Store method `K`. */
export type WriteArgs<K extends keyof Store> = Parameters<Store[K]>;

/** The six writes of the hot path, built by each backend in its own SQL (they differ most between databases). */
export interface WriteBuilder<W> {
  saveNew(...args: WriteArgs<'saveNew'>): W;
  insertBranches(...args: WriteArgs<'insertBranches'>): W;
  updateBranches(...args: WriteArgs<'updateBranches'>): W;
  changeStatus(...args: WriteArgs<'changeStatus'>): W;
  touchCronTime(...args: WriteArgs<'touchCronTime'>): W;
  recordFailedAttempt(...args: WriteArgs<'recordFailedAttempt'>): W;
}

/**
 * How one database runs a batch of the group commit on a connection `C` of its own pool. The shared part
 * (sql-batch.ts) takes the connection, counts, and replays a failed batch with one savepoint per write.
 */
export interface BatchExecutor<C, W extends SqlWrite<R>, R> {
  /** A connection of the group commit's pool. */
  acquire(): Promise<C>;
  /** Back to the pool; destroyed instead when not healthy (its transaction state is unknown). */
  release(c: C, healthy: boolean): void;
  /**
   * The fast path: the whole batch committed in as few round trips as the database allows. Settles every write
   * and returns true, or returns false having settled none when the database rolled everything back (a statement
   * failed); throws when whether it committed is unknown (the connection went away).
   */
  runFast(c: C, batch: Pending<W>[]): Promise<boolean>;
  /** A statement of the batch's plumbing: BEGIN, ROLLBACK, SAVEPOINT w, ROLLBACK TO SAVEPOINT w, … */
  exec(c: C, sql: string): Promise<void>;
  /** COMMIT; throws when the database did not commit. */
  commit(c: C): Promise<void>;
  /**
   * The write's statements between `SAVEPOINT w` and `RELEASE SAVEPOINT w`, which it sends too. Rejects with the
   * write's failure; savepoint w is then still open.
   */
  inSavepoint(c: C, w: W): Promise<R>;
  /** A failure after which the batch cannot go on on this connection: rejects the whole batch. */
  fatal(err: unknown): boolean;
  /** A failure that rolled the whole transaction back but may simply be run again (a deadlock victim). */
  retryBatch(err: unknown): boolean;
}

/**
 * One SQL database under the shared store (sql-store.ts): its pools and the text it speaks. The shared
 * statements (reads, KV, the stuck rule) are written once with `$n` placeholders; `query` runs them in the
 * driver's form. What differs too much to share — the writes of the hot path, the cron lease, retention,
 * bootstrap — is the dialect's own.
 */
export interface SqlDialect<P, C, W extends SqlWrite<R>, R> {
  /** The driver's name in errors (`postgres`, `mysql`). */
  readonly driver: string;
  /** The database's name in messages (`PostgreSQL`, `MySQL`). */
  readonly title: string;
  /** Where the store lives, for logs and errors (host:port/db …). */
  readonly label: string;
  /** The pool of reads and single-statement writes. */
  readonly pool: P;
  /** How the commit queue cuts batches for this database (maxInFlight, weights). */
  readonly queue: Omit<CommitQueueOptions<W>, 'observer' | 'maxBatch'>;

  /** A table's name as the statements write it (qualified by the schema where there is one). */
  table(name: 'trans_global' | 'trans_branch_op' | 'kv'): string;
  /** An epoch-ms time as the parameter the database compares with its time columns. */
  time(ms: number): unknown;
  /** One statement with `$n` placeholders through the pool; driver errors as they came. */
  query(sql: string, values: readonly unknown[], o?: QueryOptions): Promise<SqlResult>;

  /** Create what is missing (database, schema) and migrate (see migrator.ts); `reset` drops the tables first. */
  bootstrap(reset: boolean): Promise<void>;
  /** Close both pools. */
  end(): Promise<void>;

  readonly writes: WriteBuilder<W>;
  readonly executor: BatchExecutor<C, W, R>;

  /** The cron lease (Store.lockDue): skip rows another instance holds, never wait for them. */
  lockDue(dueBefore: number, leaseUntil: number, owner: string, limit: number, now: number): Promise<TransGlobal[]>;
  /** Store.resetCronTime: how many rows it rescheduled. */
  resetCronTime(after: number, limit: number, now: number): Promise<number>;
  /** Store.deleteFinished: how many globals it deleted, with their branches. */
  deleteFinished(before: number, limit: number): Promise<number>;
}
