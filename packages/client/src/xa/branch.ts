/**
 * The branch side of XA (spec §9.6, §12.5): a branch handler runs its work inside a local XA transaction that it
 * prepares, after registering itself with the coordinator from inside it; the coordinator later calls the same
 * handler (the `phase2_url`) with op `commit` or `rollback`, and the handler commits or rolls back the prepared
 * transaction by its xid.
 *
 * @module
 */
import { setTimeout as pause } from 'node:timers/promises';
import { BranchOp, TransType } from '@dtx/protocol';
import { type BarrierKey, barrierRow } from '../barrier/barrier-db.js';
import type { StringMap } from '../barrier/branch-info.js';
import type { CallOptions, TransportClient } from '../coordinator-transport.js';
import { brand, DtxError, DuplicatedError, FailureError } from '../errors.js';
import type { XaDialect } from './dialect.js';

/** The xid of an XA branch, as DTM's clients make it: `<gid>-<branch_id>`. */
export function xaXid(gid: string, branchId: string): string {
  return `${gid}-${branchId}`;
}

/** The barrier id of the XA branch's single guarded row (spec §9.6). */
export const XA_BARRIER_ID = '01';

/** Which branch of which global transaction a local XA transaction belongs to. */
export interface XaBranchRef {
  /** The global id. */
  readonly gid: string;
  /** The branch id. */
  readonly branchId: string;
  /** Written into the barrier rows: `xa` for an XA global transaction, `workflow` in a workflow. Default `xa`. */
  readonly transType?: string;
}

/** An XA branch call as the branch handler receives it: from {@link xaBranchFromQuery} / {@link xaBranchFromMetadata}. */
export interface XaBranch extends XaBranchRef {
  readonly transType: string;
  /** `action` (run the local XA transaction), `commit` or `rollback` (phase 2). */
  readonly op: string;
  /** Where the coordinator calls phase 2 (op action only). */
  readonly phase2Url: string | undefined;
  /** Registers the branch (its phase-2 URL) with the coordinator of the call. */
  register(call?: CallOptions): Promise<void>;
}

/** The ops an XA branch is called with. */
const XA_OPS: readonly string[] = [BranchOp.Action, BranchOp.Commit, BranchOp.Rollback];

/**
 * An XA branch call lacks a field, or has a wrong one. The XA global transaction of the SDK (and of DTM's clients)
 * sends `gid`, `trans_type=xa`, `branch_id`, `op` and, on the action call, `phase2_url` and `dtm`; the coordinator
 * sends the first four on phase 2. So this means the route was called by something else, or wired wrongly.
 */
export class XaBranchInfoError extends DtxError {
  constructor(
    /** The field, as the request names it (e.g. `phase2_url`, or `dtm-phase2_url` in gRPC metadata). */
    readonly field: string,
    problem: string,
  ) {
    super(
      `bad XA branch call: ${problem}. An XA branch is called with gid, trans_type=xa, branch_id, op ` +
        '(action, commit or rollback) and, for op action, phase2_url — as client.xa() and the coordinator send them',
    );
  }
}
brand(XaBranchInfoError, 'XaBranchInfoError');

function firstString(value: unknown): string | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (typeof v === 'string') return v;
  if (v instanceof Uint8Array) return Buffer.from(v).toString('utf8');
  return undefined;
}

function xaBranchOf<P, R>(
  read: (field: string) => string | undefined,
  keyOf: (field: string) => string,
  where: string,
  client: TransportClient<P, R>,
): XaBranch {
  const need = (field: string): string => {
    const v = read(field);
    if (v === undefined || v === '') {
      throw new XaBranchInfoError(keyOf(field), `missing "${keyOf(field)}" in ${where}`);
    }
    return v;
  };
  const transType = need('trans_type');
  const gid = need('gid');
  const branchId = need('branch_id');
  const op = need('op');
  if (transType !== TransType.Xa) {
    throw new XaBranchInfoError(keyOf('trans_type'), `"${keyOf('trans_type')}" is '${transType}', not 'xa'`);
  }
  if (!XA_OPS.includes(op)) {
    throw new XaBranchInfoError(keyOf('op'), `"${keyOf('op')}" is '${op}', not action, commit or rollback`);
  }
  const phase2Url = op === BranchOp.Action ? need('phase2_url') : read('phase2_url');
  const dtm = read('dtm');
  const own = client.transport.address;
  if (dtm !== undefined && dtm !== '' && dtm.replace(/\/+$/, '') !== own) {
    throw new DtxError(
      `the XA branch was called for coordinator ${dtm}, but the client talks to ${own}: pass a client of that ` +
        'coordinator',
    );
  }
  return {
    gid,
    branchId,
    transType,
    op,
    phase2Url: phase2Url === '' ? undefined : phase2Url,
    async register(call?: CallOptions) {
      if (phase2Url === undefined || phase2Url === '') {
        throw new XaBranchInfoError(keyOf('phase2_url'), `missing "${keyOf('phase2_url')}" in ${where}`);
      }
      await client.transport.registerXaBranch({ gid, branchId, url: phase2Url }, call);
    },
  };
}

/**
 * The XA branch of an HTTP branch call, from its query string (`gid`, `trans_type`, `branch_id`, `op`,
 * `phase2_url`, `dtm`).
 * @param query the parsed query string, e.g. Fastify's `request.query` or the branch context's `ctx.query`
 * @param client a client of the coordinator (named by `dtm` on the action call), for the registration
 * @throws XaBranchInfoError naming a missing or wrong field; DtxError when `dtm` names another coordinator
 */
export function xaBranchFromQuery<P, R>(query: StringMap, client: TransportClient<P, R>): XaBranch {
  return xaBranchOf(
    (f) => firstString(query[f]),
    (f) => f,
    'the query string',
    client,
  );
}

/**
 * The XA branch of a gRPC branch call, from its `dtm-*` metadata (`dtm-gid`, `dtm-trans_type`, `dtm-branch_id`,
 * `dtm-op`, `dtm-phase2_url`, `dtm-dtm`); keys are matched case-insensitively.
 * @param metadata the incoming metadata as a map, e.g. `call.metadata.getMap()` in grpc-js
 * @throws XaBranchInfoError naming a missing or wrong key; DtxError when `dtm-dtm` names another coordinator
 */
export function xaBranchFromMetadata<P, R>(metadata: StringMap, client: TransportClient<P, R>): XaBranch {
  const lower: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(metadata)) lower[k.toLowerCase()] = v;
  return xaBranchOf(
    (f) => firstString(lower[`dtm-${f}`]),
    (f) => `dtm-${f}`,
    'the dtm-* metadata',
    client,
  );
}

/** Options of {@link runXaBranch}. */
export interface RunXaBranchOptions<T> {
  /**
   * Runs after `fn`, still inside the local XA transaction, before it is prepared: an XA branch registers itself
   * here, so the coordinator knows of every transaction that gets prepared (and of nothing that does not, since a
   * failure here rolls it back). Default: none.
   */
  beforePrepare?: (result: T) => Promise<void> | void;
  /**
   * How long the barrier insert waits for another local transaction of the same branch that still runs (a
   * repeated action call; PostgreSQL — MySQL refuses its `XA START` at once) before giving up with
   * `XaXidInUseError`. Default: `5_000` ms.
   */
  lockTimeoutMs?: number;
}

function barrierKey(ref: XaBranchRef): BarrierKey {
  return { gid: ref.gid, branch_id: ref.branchId, op: BranchOp.Action, barrier_id: XA_BARRIER_ID };
}

function checkXid(dialect: XaDialect<unknown, unknown>, xid: string): void {
  const bytes = Buffer.byteLength(xid, 'utf8');
  if (bytes > dialect.maxXidBytes) {
    throw new DtxError(
      `XA xid '${xid}' (gid-branch_id) is ${bytes} bytes; ${dialect.dialect} accepts at most ${dialect.maxXidBytes}: ` +
        'use a shorter gid',
    );
  }
}

/**
 * The primitive under {@link xaLocalTransaction} (and a workflow's XA step): runs `fn` inside a local XA
 * transaction with xid {@link xaXid}`(gid, branchId)` and prepares it (spec §9.6):
 * 1. `XA START` (PostgreSQL `BEGIN`) on a connection of its own;
 * 2. the barrier row (gid, branch_id, `action`, `01`) is inserted inside it. When the row exists already the
 *    branch has been decided before: by its phase-2 rollback (reason `rollback`: {@link FailureError}, the late
 *    action is refused for good) or by an earlier run that committed (reason `action`: {@link DuplicatedError},
 *    which HTTP and gRPC handlers answer as success). Either way `fn` is not run and nothing is prepared;
 * 3. `fn(connection)`, then `beforePrepare(result)`;
 * 4. `XA END` + `XA PREPARE` (PostgreSQL `PREPARE TRANSACTION`).
 *
 * If any step throws, the XA transaction is rolled back and the error rethrown. Phase 2 is {@link xaPhase2}.
 * @returns what `fn` returned
 * @throws XaXidInUseError when a transaction with this xid is running or prepared (a repeated action call)
 */
export async function runXaBranch<Db, Conn, T>(
  dialect: XaDialect<Db, Conn>,
  db: Db,
  ref: XaBranchRef,
  fn: (conn: Conn) => Promise<T> | T,
  options: RunXaBranchOptions<T> = {},
): Promise<T> {
  const xid = xaXid(ref.gid, ref.branchId);
  checkXid(dialect as XaDialect<unknown, unknown>, xid);
  const local = await dialect.start(db, xid);
  let result: T;
  try {
    const key = barrierKey(ref);
    const inserted = await local.insertBarrier(
      barrierRow(key, ref.transType ?? TransType.Xa, BranchOp.Action),
      options.lockTimeoutMs ?? 5_000,
    );
    if (inserted === 0) {
      const reason = await local.barrierReason(key);
      if (reason === BranchOp.Rollback) {
        throw new FailureError(`XA branch ${xid} was rolled back before its local transaction ran`);
      }
      throw new DuplicatedError(`XA branch ${xid} has run and committed already`);
    }
    result = await fn(local.handle);
    await options.beforePrepare?.(result);
  } catch (err) {
    await local.abort();
    throw err;
  }
  await local.prepare();
  return result;
}

/** Options of {@link xaPhase2} and {@link xaLocalTransaction}. */
export interface XaPhase2Options {
  /**
   * How long the rollback may wait for the branch's barrier row when its local transaction is still running or
   * prepared (the rollback then fails and the coordinator retries it later), and how long a repeated action's
   * barrier insert waits for a first one still running (then `XaXidInUseError`). Default: `5_000` ms.
   */
  lockTimeoutMs?: number;
  /**
   * How long phase 2 keeps asking when the database lists the xid as prepared but answers "unknown xid" (MariaDB:
   * the transaction is still bound to its session, e.g. for the moment the server takes to close the session
   * that prepared it). After that it throws and the coordinator retries later. Default: `3_000` ms.
   */
  preparedWaitMs?: number;
}

/**
 * Phase 2 of an XA branch, for the coordinator's commit or rollback call (spec §9.6): `XA COMMIT` / `XA ROLLBACK`
 * of xid {@link xaXid}`(gid, branchId)` (PostgreSQL `COMMIT PREPARED` / `ROLLBACK PREPARED`), from any connection
 * of `db`. Idempotent, and safer than DTM's clients about an xid the database does not know:
 * - when the xid is still listed among the prepared transactions (`XA RECOVER`, `pg_prepared_xacts` — on MariaDB
 *   a prepared transaction is unknown to other sessions while its own session lives), it asks again for up to
 *   `preparedWaitMs`, then throws: the coordinator retries later;
 * - commit of an xid that is really gone succeeds only when the branch's barrier row says its work committed
 *   (a repeated commit); otherwise it throws, because the branch's work was never prepared and is lost;
 * - rollback of an xid that is really gone succeeds (a repeated rollback, or a branch whose local transaction
 *   never prepared).
 *
 * After a rollback the barrier row (gid, branch_id, `action`, `01`) is written with reason `rollback`, so a
 * local transaction of the branch that arrives late is refused ({@link runXaBranch}).
 */
export async function xaPhase2<Db, Conn>(
  dialect: XaDialect<Db, Conn>,
  db: Db,
  ref: XaBranchRef,
  op: 'commit' | 'rollback',
  options: XaPhase2Options = {},
): Promise<void> {
  if (op !== BranchOp.Commit && op !== BranchOp.Rollback) {
    throw new DtxError(`XA phase 2: op must be commit or rollback, not '${String(op)}'`);
  }
  const xid = xaXid(ref.gid, ref.branchId);
  const key = barrierKey(ref);
  const deadline = Date.now() + (options.preparedWaitMs ?? 3_000);
  for (;;) {
    const outcome = op === BranchOp.Commit ? await dialect.commit(db, xid) : await dialect.rollback(db, xid);
    if (outcome === 'done') break;
    if (!(await dialect.recover(db)).includes(xid)) {
      // Really gone: a repeated phase 2, or (rollback) a branch whose local transaction never prepared.
      if (op === BranchOp.Rollback) break;
      const reason = await dialect.barrierReason(db, key);
      if (reason === BranchOp.Action) return; // committed before: a repeated commit
      throw new DtxError(
        `cannot commit XA branch ${xid}: the database has no prepared transaction with this xid and the branch's ` +
          `work was never committed (barrier row: ${reason === undefined ? 'none' : `reason ${reason}`})`,
      );
    }
    // Listed as prepared, yet unknown to this connection: still bound to its session, which is closing (or
    // still open). Ask again for a moment, then leave it to the coordinator's retry.
    if (Date.now() >= deadline) {
      throw new DtxError(
        `XA ${op} of ${xid}: the transaction is prepared but not reachable from this connection yet (its session ` +
          'is still open): try again later',
      );
    }
    await pause(PREPARED_POLL_MS);
  }
  if (op === BranchOp.Commit) return;
  const inserted = await dialect.insertBarrier(
    db,
    barrierRow(key, ref.transType ?? TransType.Xa, BranchOp.Rollback),
    options.lockTimeoutMs ?? 5_000,
  );
  if (inserted === 0 && (await dialect.barrierReason(db, key)) === BranchOp.Action) {
    throw new DtxError(`cannot roll back XA branch ${xid}: its local transaction has committed`);
  }
}

/** How often {@link xaPhase2} looks again at a prepared transaction another session still holds. */
const PREPARED_POLL_MS = 50;

/**
 * The whole XA branch handler, as DTM's `XaLocalTransaction`: the same route serves the action call and the
 * coordinator's phase 2 (the SDK sends the action's own URL as `phase2_url`).
 * - op `action`: {@link runXaBranch} — `fn` runs inside the local XA transaction, the branch registers itself
 *   with the coordinator from inside it, then it is prepared. Returns `fn`'s result.
 * - op `commit` / `rollback`: {@link xaPhase2}; `fn` is not called. Returns `undefined`.
 *
 * ```ts
 * app.post('/api/busi/TransOutXa', fastifyBranch(async (ctx) => {
 *   const branch = xaBranchFromQuery(ctx.query, dtx);
 *   await xaLocalTransaction(mysqlXa, pool, branch, async (conn) => {
 *     await conn.execute('update account set balance = balance - ? where id = ?', [30, 1]);
 *   });
 * }));
 * ```
 *
 * Errors keep their meaning for the handler's answer: throw `FailureError` in `fn` to make the global transaction
 * roll back; a {@link DuplicatedError} (the branch ran already) is answered as success.
 */
export async function xaLocalTransaction<Db, Conn, T>(
  dialect: XaDialect<Db, Conn>,
  db: Db,
  branch: XaBranch,
  fn: (conn: Conn) => Promise<T> | T,
  options: XaPhase2Options = {},
): Promise<T | undefined> {
  if (branch.op === BranchOp.Commit || branch.op === BranchOp.Rollback) {
    await xaPhase2(dialect, db, branch, branch.op, options);
    return undefined;
  }
  return runXaBranch(dialect, db, branch, fn, {
    beforePrepare: () => branch.register(),
    ...(options.lockTimeoutMs === undefined ? {} : { lockTimeoutMs: options.lockTimeoutMs }),
  });
}
