import type mysql from 'mysql2/promise';
import { UniqueConflictError } from '../../core/errors.js';
import type { Pending } from '../sql/commit-queue.js';
import type { BatchExecutor, Row, SqlWrite } from '../sql/dialect.js';
import { isConnectionError, isDeadlock, isUniqueViolation } from '../sql/errors.js';
import { settle } from '../sql/sql-batch.js';
import { sqlText } from './my-text.js';

/** What a statement returns: a header for writes, rows for reads. */
export type Result = mysql.ResultSetHeader | Row[];

/** One statement of a write, with `?` placeholders. */
export interface Stmt {
  sql: string;
  values: unknown[];
}

/**
 * One write of the group commit: statements that either do all of the write's work or none of it (their
 * conditions are in the SQL, chained through session variables), and `done`, which reads their results and
 * returns the caller's value or throws the logical failure (NotFound, UniqueConflict).
 */
export interface MyWrite extends SqlWrite<Result[]> {
  stmts: Stmt[];
  /** Approximate size of the write as SQL text (payload bytes count twice: hex). */
  weight: number;
  /**
   * saveNew: the gid it creates. Its statements are plain INSERTs (a duplicate is a unique-key error); the
   * text path looks a batch's new gids up when one of them may exist, so a gid that exists fails alone without
   * an error.
   */
  newGid?: string;
  /**
   * saveNew of a gid that may well exist (the submit of a prepared msg, tcc or xa; a workflow run again): a
   * batch holding it looks its new gids up first. Other new gids (a saga's) are sent without the lookup.
   */
  mayExist?: boolean;
  /** saveNew: how the text batch may merge its INSERTs with those of the batch's other saveNews. */
  merge?: MergeableInsert;
}

/**
 * A saveNew of at most one branch INSERT (stmts[0] its global row, stmts[1] its branch rows, if any): in a text
 * batch with other saveNews, its global row joins one multi-row INSERT of trans_global and its branch rows one of
 * trans_branch_op — two statements for all of them instead of two each, each parsed and answered by MySQL apart.
 */
export interface MergeableInsert {
  /** Each of its INSERTs' text up to the first row (`INSERT INTO t (…) VALUES `): the same for every saveNew. */
  heads: readonly [string, string];
  /** Rows of its branch INSERT (0 when it has none). */
  branchRows: number;
  /** @@auto_increment_increment: the step between the ids of the rows of one multi-row INSERT. */
  step: number;
  /** Takes the ids its rows got: its global row's and its first branch row's (the others follow by `step`). */
  ids(globalId: number, firstBranchId: number): void;
}

/** What a saveNew's write carries about the row it creates. */
export interface Creates {
  gid: string;
  mayExist: boolean;
  merge?: MergeableInsert | undefined;
}

/** A batch's SQL text stays under this (MySQL's max_allowed_packet is 16 MiB by default on MariaDB). */
export const MAX_BATCH_TEXT = 4 * 1024 * 1024;

/** A write of `stmts`, weighed as SQL text (payload bytes count twice: hex), for the commit queue's batch cut. */
export function myWrite(stmts: Stmt[], done: (results: Result[]) => unknown, creates?: Creates): MyWrite {
  let weight = 256;
  for (const s of stmts) {
    weight += s.sql.length;
    for (const v of s.values)
      weight += v instanceof Uint8Array ? 2 * v.byteLength + 3 : typeof v === 'string' ? v.length * 2 + 2 : 8;
  }
  if (creates === undefined) return { stmts, done, weight };
  const { gid: newGid, mayExist, merge } = creates;
  return merge === undefined
    ? { stmts, done, weight, newGid, mayExist }
    : { stmts, done, weight, newGid, mayExist, merge };
}

/** A statement's rows as text: its rendering past `head`, which it must start with. */
function rowsText(s: Stmt, head: string): string {
  const text = sqlText(s.sql, s.values);
  if (!text.startsWith(head)) throw new Error(`store: an INSERT to merge does not start with '${head}'`);
  return text.slice(head.length);
}

const OWN = 0;
const SKIPPED = 1;
const MERGED = 2;

/** How many times a short transaction is run when InnoDB keeps choosing it as a deadlock victim. */
export const DEADLOCK_ATTEMPTS = 3;

/**
 * `fn` in a short transaction of its own on one pooled connection (the cron's lease, retention's deletes), the
 * connection dropped on any error. A deadlock victim is run again, at most DEADLOCK_ATTEMPTS times in all: InnoDB
 * rolled all of it back, so nothing of the failed run remains (the group commit replays its victims the same way,
 * `retryBatch`). `fn` must do nothing but its queries on the connection.
 */
export async function shortTransaction<T>(pool: mysql.Pool, fn: (c: mysql.PoolConnection) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const conn = await pool.getConnection();
    try {
      await conn.query('START TRANSACTION');
      const out = await fn(conn);
      await conn.query('COMMIT');
      conn.release();
      return out;
    } catch (err) {
      conn.destroy(); // its transaction state is unknown: never back into the pool
      if (!isDeadlock(err) || attempt >= DEADLOCK_ATTEMPTS) throw err;
    }
  }
}

/**
 * MySQL's batches: the whole batch as ONE multi-statement query, `START TRANSACTION; …; COMMIT` — one round trip
 * and one redo-log flush. MySQL stops a multi-statement at the first error, before the COMMIT; the batch is then
 * rolled back and replayed with one savepoint per write (sql-batch.ts), its statements prepared (binary
 * parameters, so big payloads need no hex text). A write whose payload would not fit a text batch runs alone
 * that way. A deadlock victim's batch is run again as a whole.
 */
export class MyBatchExecutor implements BatchExecutor<mysql.PoolConnection, MyWrite, Result[]> {
  constructor(private readonly pool: mysql.Pool) {}

  acquire(): Promise<mysql.PoolConnection> {
    return this.pool.getConnection();
  }

  release(c: mysql.PoolConnection, healthy: boolean): void {
    if (healthy) c.release();
    else c.destroy();
  }

  async runFast(c: mysql.PoolConnection, batch: Pending<MyWrite>[]): Promise<boolean> {
    if (batch.length === 1 && batch[0]!.write.weight > MAX_BATCH_TEXT) return false;
    const sent = await MyBatchExecutor.runText(c, batch, batch.length > 1 && batch.some((p) => p.write.mayExist));
    // a gid that exists after all (a client's retry of a saga's submit, two writes of one gid): the batch again,
    // its new gids looked up, before the replay with savepoints
    return sent === 'taken' ? (await MyBatchExecutor.runText(c, batch, true)) === 'done' : sent === 'done';
  }

  /**
   * The whole batch as one multi-statement query: 'done', or 'failed' when a statement failed and 'taken' when
   * that was a unique key in a batch of several writes whose new gids were not looked up (then all is rolled
   * back).
   *
   * saveNew's INSERTs cannot carry a condition cheaply (INSERT … SELECT costs MySQL two to three times a plain
   * INSERT). With `lookup`, the gids the batch creates are looked up first, in one statement: a gid that exists,
   * or that an earlier write of the batch creates, fails with UniqueConflictError and sends nothing; a gid
   * another instance commits in between hits the unique key, and the batch replays with savepoints. The lookup
   * is a round trip, so it is made only where a gid may well exist (MyWrite.mayExist) or a batch sent without it
   * hit a unique key. A batch of one write (every write at concurrency 1) is never looked up: a gid that is taken
   * (a prepared msg, tcc or xa being submitted) hits the unique key instead, and after the ROLLBACK that one
   * write fails with UniqueConflictError, without a replay: two round trips, as with the lookup.
   */
  private static async runText(
    conn: mysql.PoolConnection,
    batch: Pending<MyWrite>[],
    lookup: boolean,
  ): Promise<'done' | 'failed' | 'taken'> {
    const newGids = lookup ? batch.flatMap((p) => (p.write.newGid === undefined ? [] : [p.write.newGid])) : [];
    const taken = new Set<string>();
    if (newGids.length > 0) {
      const [found] = (await conn.query('SELECT gid FROM trans_global WHERE gid IN (?)', [newGids])) as [
        Row[],
        unknown,
      ];
      for (const r of found) taken.add(String(r.gid));
    }
    const lone = batch.length === 1 && batch[0]!.write.stmts.length === 1;
    let mergeable = 0;
    for (const p of batch) if (p.write.merge !== undefined) mergeable++;
    const own: string[] = [];
    const merged: MergeableInsert[] = [];
    const globalRows: string[] = [];
    const branchRows: string[] = [];
    const kinds = batch.map((p) => {
      const w = p.write;
      if (w.newGid !== undefined) {
        if (taken.has(w.newGid)) return SKIPPED;
        taken.add(w.newGid);
      }
      if (w.merge !== undefined && mergeable > 1) {
        merged.push(w.merge);
        globalRows.push(rowsText(w.stmts[0]!, w.merge.heads[0]));
        if (w.merge.branchRows > 0) branchRows.push(rowsText(w.stmts[1]!, w.merge.heads[1]));
        return MERGED;
      }
      for (const s of w.stmts) own.push(sqlText(s.sql, s.values));
      return OWN;
    });
    // the merged INSERTs first: no write of a batch depends on another's row (a gid is written to only once its
    // saveNew has committed)
    const parts = lone ? own : ['START TRANSACTION'];
    if (merged.length > 0) {
      parts.push(merged[0]!.heads[0] + globalRows.join(', '));
      if (branchRows.length > 0) parts.push(merged[0]!.heads[1] + branchRows.join(', '));
    }
    if (!lone) for (const t of own) parts.push(t);
    let res: Result[];
    try {
      if (lone) {
        // one statement, autocommitted (the session setup turns autocommit on): atomic and durable on its own,
        // and one reply packet instead of three (MariaDB sends each statement's reply in a packet of its own)
        const [r] = (await conn.query(parts[0]!)) as unknown as [Result, unknown];
        res = [r];
      } else {
        parts.push('COMMIT');
        [res] = (await conn.query(parts.join(';\n'))) as unknown as [Result[], unknown];
      }
    } catch (err) {
      if (isConnectionError(err)) throw err; // COMMIT sent or not: unknown, so every caller hears of a failure
      // MySQL stopped at the failing statement, before the COMMIT: undo what ran before it (a lone statement
      // undid itself)
      if (!lone) await conn.query('ROLLBACK');
      // a lone write's unique-key error is that write's UniqueConflict: the replay would only say it again
      if (batch.length === 1 && isUniqueViolation(err)) {
        batch[0]!.reject(new UniqueConflictError());
        return 'done';
      }
      return !lookup && isUniqueViolation(err) && batch.some((p) => p.write.newGid !== undefined) ? 'taken' : 'failed';
    }
    let at = lone ? 0 : 1; // past START TRANSACTION's reply
    // the merged rows' ids: consecutive by the step from each multi-row INSERT's first
    let globalId = 0;
    let branchId = 0;
    if (merged.length > 0) {
      globalId = Number((res[at++] as mysql.ResultSetHeader).insertId);
      if (branchRows.length > 0) branchId = Number((res[at++] as mysql.ResultSetHeader).insertId);
    }
    batch.forEach((p, i) => {
      const kind = kinds[i];
      if (kind === SKIPPED) {
        p.reject(new UniqueConflictError());
      } else if (kind === MERGED) {
        const m = p.write.merge!;
        try {
          m.ids(globalId, branchId);
          p.resolve(undefined);
        } catch (err) {
          p.reject(err);
        }
        globalId += m.step;
        branchId += m.branchRows * m.step;
      } else {
        const n = p.write.stmts.length;
        settle(p, res.slice(at, at + n));
        at += n;
      }
    });
    return 'done';
  }

  async exec(c: mysql.PoolConnection, sql: string): Promise<void> {
    await c.query(sql);
  }

  async commit(c: mysql.PoolConnection): Promise<void> {
    await c.query('COMMIT');
  }

  async inSavepoint(c: mysql.PoolConnection, w: MyWrite): Promise<Result[]> {
    await c.query('SAVEPOINT w');
    const results: Result[] = [];
    for (const s of w.stmts) {
      const [r] = (await c.execute(s.sql, s.values as never[])) as unknown as [Result, unknown];
      results.push(r);
    }
    await c.query('RELEASE SAVEPOINT w');
    return results;
  }

  fatal(err: unknown): boolean {
    return isConnectionError(err) || isDeadlock(err);
  }

  retryBatch(err: unknown): boolean {
    return isDeadlock(err);
  }
}
