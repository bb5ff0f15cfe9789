import type { BranchOp, GlobalStatus, TransType } from '@dtx/protocol';
import { Redis } from 'ioredis';
import { NotFoundError, StoreUnavailableError, UniqueConflictError } from '../../core/errors.js';
import { decodeOptions, type KV, type TransBranch, type TransGlobal } from '../../core/model.js';
import { stuckReasonOf } from '../../core/stuck.js';
import type { Logger } from '../../observe/logger.js';
import { errorMessage } from '../../util/error-message.js';
import { nextPositionOf } from '../scan-query.js';
import type {
  FailedAttempt,
  ScanQuery,
  StatusChange,
  Store,
  StoreObserver,
  StuckRule,
  UnfinishedCount,
} from '../store.js';
import type { StoreConfig } from '../store-config.js';
import { createRedisClient, type RedisClient } from './connect.js';
import { hashTagOf, RedisKeys } from './keys.js';
import { EncodedCommand } from './resp.js';
import { type LuaScript, loadScripts, pack, type ScriptName, unpack } from './scripts.js';

/**
 * The fields of a transaction hash that make up its global row, in the order lease.1.lua returns them and findTrans
 * reads them (the layout is described in lua/save-new.1.lua).
 */
export const GLOBAL_FIELDS = [
  'id',
  'g',
  'status',
  'update_time',
  'finish_time',
  'rollback_time',
  'next_cron_interval',
  'next_cron_time',
  'owner',
  'result',
  'rollback_reason',
  // dtx: attempt history, absent on older hashes
  'failed_attempts',
  'last_error',
  'stuck_alerted',
] as const;

/** How many index entries one findStuck call examines at most (it then returns a position to go on from). */
const STUCK_SCAN_MAX = 2000;

/**
 * A cron-index member whose transaction does not exist is forgotten only when it has been due for this long:
 * a younger one may be a creation in flight (reserve.3.lua runs before save-new.1.lua).
 */
const MISSING_GRACE_MS = 60_000;

/** Bound on the claim rounds of one lockDue / resetCronTime call (each round passes over what it found stale). */
const MAX_ROUNDS = 10;

/**
 * The TTL the scripts set on an unfinished transaction: none (0 makes them PERSIST the key, which also clears a TTL
 * an older version or DTM set). Only finished transactions expire, after Store.FinishedDataExpire.
 */
const UNFINISHED_TTL = 0;

/** How often (in the callers' clock) lockDue sweeps index entries of transactions that expired. */
const SWEEP_EVERY_MS = 60_000;

const isFinished = (s: string): boolean => s === 'succeed' || s === 'failed';

type Arg = string | number | Buffer;

/**
 * The client's EVALSHA / EVAL with Buffer replies: the *Buffer variants exist for every command but are not in
 * ioredis' types; call('evalsha') would lose its command name under auto-pipelining.
 */
const bufferCommands = (r: Redis) =>
  r as unknown as Record<'evalshaBuffer' | 'evalBuffer', (...a: Arg[]) => Promise<unknown>>;

const str = (b: Buffer | null | undefined): string => (b ? b.toString() : '');
const optTime = (b: Buffer | null | undefined): number | undefined => (b && b.length > 0 ? Number(b) : undefined);
const timeOrEmpty = (t: number | undefined): string => (t === undefined ? '' : String(t));

function decodeGlobal(v: readonly (Buffer | null)[]): TransGlobal {
  const [gid, transType, queryPrepared, protocol, createTime, options, customData, extData] = unpack(v[1]!);
  const opts = str(options);
  return {
    id: Number(str(v[0])),
    gid: str(gid),
    transType: str(transType) as TransType,
    status: str(v[2]) as GlobalStatus,
    queryPrepared: str(queryPrepared),
    protocol: str(protocol),
    createTime: Number(str(createTime)),
    updateTime: Number(str(v[3])),
    finishTime: optTime(v[4]),
    rollbackTime: optTime(v[5]),
    options: opts,
    customData: str(customData),
    nextCronInterval: Number(str(v[6])),
    nextCronTime: Number(str(v[7])),
    owner: str(v[8]),
    extData: str(extData),
    result: str(v[9]),
    rollbackReason: str(v[10]),
    failedAttempts: Number(str(v[11])) || 0,
    lastError: str(v[12]),
    stuckAlerted: str(v[13]) === '1',
    opts: decodeOptions(opts),
  };
}

/** Field g of a transaction hash: the columns that never change (save-new.1.lua). */
function packG(t: TransGlobal): string | Buffer {
  return pack([
    t.gid,
    t.transType,
    t.queryPrepared,
    t.protocol,
    String(t.createTime),
    t.options,
    t.customData,
    t.extData,
  ]);
}

/** The other global fields of a new transaction, as field/value pairs (empty ones left out). */
function packMutable(t: TransGlobal): string | Buffer {
  const out = [
    'status',
    t.status,
    'next_cron_time',
    String(t.nextCronTime),
    'next_cron_interval',
    String(t.nextCronInterval),
    'update_time',
    String(t.updateTime),
  ];
  if (t.owner) out.push('owner', t.owner);
  if (t.result) out.push('result', t.result);
  if (t.rollbackReason) out.push('rollback_reason', t.rollbackReason);
  if (t.finishTime !== undefined) out.push('finish_time', String(t.finishTime));
  if (t.rollbackTime !== undefined) out.push('rollback_time', String(t.rollbackTime));
  return pack(out);
}

/** Field s<i> of a branch: its state. */
function packState(b: TransBranch): string | Buffer {
  const state = [b.status, String(b.updateTime), timeOrEmpty(b.finishTime), timeOrEmpty(b.rollbackTime)];
  // the attempt record only once the branch was called (a new branch's state stays four values)
  if (b.attempts) state.push(String(b.attempts), timeOrEmpty(b.lastAttemptTime), b.lastResult ?? '', b.lastError ?? '');
  return pack(state);
}

/** Branch results as update-branches.1.lua takes them: marker, id, new s<id> value, packed. */
function packStates(branches: readonly TransBranch[]): string | Buffer {
  const values: (string | Buffer)[] = [];
  for (const b of branches) {
    if (b.id !== undefined) values.push(marker(b), String(b.id), packState(b));
  }
  return pack(values);
}

/** The branches as save-new.1.lua and insert-branches.1.lua take them: b<i> and s<i> of each. */
function packBranches(branches: readonly TransBranch[]): string | Buffer {
  const values: (string | Buffer)[] = [];
  for (const b of branches) {
    values.push(pack([b.branchId, b.op, b.url, String(b.createTime), b.binData]), packState(b));
  }
  return pack(values);
}

/** The uniqueness marker field of (branch_id, op); the length is in bytes, as Lua's # counts. */
const marker = (b: TransBranch): string => `u:${Buffer.byteLength(b.branchId)}:${b.branchId}:${b.op}`;

/** A KV row is stored as `<version>|<id>|<create_time>|<update_time>|<v>` (kv-create.3.lua). */
function decodeKv(cat: string, k: string, raw: string): KV {
  const parts: string[] = [];
  let from = 0;
  for (let i = 0; i < 4; i++) {
    const bar = raw.indexOf('|', from);
    parts.push(raw.slice(from, bar));
    from = bar + 1;
  }
  const [version, id, created, updated] = parts.map(Number) as [number, number, number, number];
  return { id, cat, k, v: raw.slice(from), version, createTime: created, updateTime: updated };
}

const isNoScript = (err: unknown): boolean => err instanceof Error && err.message.startsWith('NOSCRIPT');

/** Pairs of a flat `[member, score, member, score, ...]` reply. */
function pairs(flat: string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([flat[i]!, flat[i + 1]!]);
  return out;
}

export interface RedisStoreOptions {
  /** Key prefix, DTM's Store.RedisPrefix. Default `{a}`. On Redis Cluster use one without braces (see README). */
  prefix?: string | undefined;
  /**
   * Store.DataExpire, accepted for DTM's configuration files and without effect: an unfinished transaction never
   * expires (DTM lets it expire this long after its last write, which loses a transaction whose retries are
   * further apart than that).
   */
  dataExpire?: number | undefined;
  /** Seconds a finished transaction is kept (Store.FinishedDataExpire); 0 = no expiry. */
  finishedDataExpire?: number | undefined;
  /** Close the client in close(). Default true. */
  ownsClient?: boolean | undefined;
  /** Used to name the server in errors, e.g. `127.0.0.1:6379`. */
  where?: string | undefined;
  log?: Logger | undefined;
  /** Told of the commands written together in each corked event-loop turn (metrics). */
  observer?: StoreObserver | undefined;
}

/**
 * The Redis store: one hash per transaction, written by Lua scripts (one per file in `lua/`), and three sorted
 * sets that index the transactions — the cron's due set, the admin list and the retention set. With a prefix that
 * has a hash tag (the default `{a}`) every key is in one slot and the scripts keep the indexes exact. Without one
 * (Redis Cluster) the indexes live in a slot of their own: the hash is the truth, the indexes are hints written
 * before a transaction appears and cleaned after it is finished or gone, and repaired by whoever finds them stale.
 * See README.md in this folder.
 */
export class RedisStore implements Store {
  readonly keys: RedisKeys;
  /** The ioredis client (a Redis or a Cluster; both speak the same command interface). */
  readonly client: RedisClient;
  private readonly r: Redis;
  private readonly scripts: Record<ScriptName, LuaScript>;
  private readonly finishedTtl: number;
  private readonly where: string;
  private readonly log: Logger | undefined;
  /**
   * Every key in one hash slot (the prefix has a hash tag, e.g. `{a}`): the scripts that change a transaction
   * update the indexes in the same atomic step, and the separate index scripts are skipped on the hot path.
   */
  readonly oneSlot: boolean;
  private lastSweep = Number.NEGATIVE_INFINITY;
  /** The client when it is one Redis (not a cluster): its socket is corked per event-loop turn. */
  private readonly standalone: Redis | undefined;
  private corked = false;
  /** Commands written in the current corked turn (the batch size told to the observer). */
  private heldCommands = 0;
  /** The latest connection error since the connection was last ready, for error messages. */
  private connectionError: string | undefined;
  private readonly background = new Set<Promise<unknown>>();

  constructor(
    client: RedisClient,
    private readonly o: RedisStoreOptions = {},
  ) {
    this.client = client;
    this.r = client as unknown as Redis;
    this.standalone = client instanceof Redis ? client : undefined;
    this.keys = new RedisKeys(o.prefix ?? '{a}');
    this.oneSlot = hashTagOf(this.keys.prefix) !== undefined;
    this.finishedTtl = Math.max(0, Math.floor(o.finishedDataExpire ?? 86400));
    this.where = o.where ?? 'redis';
    this.log = o.log;
    client.on('error', (err: Error) => {
      this.connectionError = err.message;
    });
    client.on('ready', () => {
      this.connectionError = undefined;
    });
    this.scripts = loadScripts();
  }

  /** Turn a client-side failure (no connection, timeout) into StoreUnavailableError; Redis' own errors pass. */
  private unavailable(err: unknown): Error {
    if (err instanceof Error && (err.name === 'ReplyError' || err instanceof StoreUnavailableError)) return err;
    const why = this.connectionError ? `not reachable (${this.connectionError}): ` : '';
    return new StoreUnavailableError(`redis store (${this.where}): ${why}${errorMessage(err)}`, { cause: err });
  }

  /** The script `name`, checked to take as many KEYS as `keys` holds (its file name says how many). */
  private script(name: ScriptName, keys: string[]): LuaScript {
    const script = this.scripts[name];
    if (keys.length !== script.keys) {
      throw new Error(`redis store: script ${name} takes ${script.keys} KEYS, called with ${keys.length}`);
    }
    return script;
  }

  private async run(name: ScriptName, keys: string[], args: Arg[]): Promise<unknown> {
    const script = this.script(name, keys);
    this.hold();
    try {
      return await this.evalsha(script, keys, args, 'utf8');
    } catch (err) {
      if (!isNoScript(err)) throw this.unavailable(err);
    }
    // this Redis (or cluster node) does not know the script yet: EVAL sends it, and Redis keeps it
    try {
      return await this.r.eval(script.lua, script.keys, ...keys, ...args);
    } catch (err) {
      throw this.unavailable(err);
    }
  }

  /** run() with the reply's strings as Buffers (binary payloads). */
  private async runBuffer(name: ScriptName, keys: string[], args: Arg[]): Promise<unknown> {
    const r = bufferCommands(this.r);
    const script = this.script(name, keys);
    this.hold();
    try {
      return await this.evalsha(script, keys, args, null);
    } catch (err) {
      if (!isNoScript(err)) throw this.unavailable(err);
    }
    try {
      return await r.evalBuffer(script.lua, script.keys, ...keys, ...args);
    } catch (err) {
      throw this.unavailable(err);
    }
  }

  /**
   * EVALSHA of `script`. On one Redis the request is encoded here into one Buffer (EncodedCommand): the scripts'
   * packed arguments are long, and ioredis' own encoding concatenates each into a string that the socket then
   * converts again. A cluster routes by the command's keys, so it gets ioredis' command.
   */
  private evalsha(script: LuaScript, keys: string[], args: Arg[], replyEncoding: 'utf8' | null): Promise<unknown> {
    const one = this.standalone;
    if (one) {
      const c = new EncodedCommand('evalsha', [script.sha, script.keys, ...keys, ...args], replyEncoding);
      one.sendCommand(c); // it returns c.promise (typed unknown)
      return c.promise;
    }
    if (replyEncoding === null) return bufferCommands(this.r).evalshaBuffer(script.sha, script.keys, ...keys, ...args);
    return this.r.evalsha(script.sha, script.keys, ...keys, ...args);
  }

  private async cmd<T>(send: (r: Redis) => Promise<T>): Promise<T> {
    this.hold();
    try {
      return await send(this.r);
    } catch (err) {
      throw this.unavailable(err);
    }
  }

  /**
   * Coalesce the writes of one event-loop turn into one syscall: the socket is corked at the first command of the
   * turn and uncorked when the turn's I/O callbacks are done (setImmediate). Under load most commands are issued
   * from different I/O callbacks, so ioredis' own auto-pipelining (per tick) would write each one on its own. On a
   * cluster (one socket per node) ioredis' per-node pipelining is left to do the work.
   */
  private hold(): void {
    if (this.corked) {
      this.heldCommands++;
      return;
    }
    const stream = this.standalone?.stream as { cork(): void; uncork(): void; writable: boolean } | undefined;
    if (!stream?.writable) return;
    stream.cork();
    this.corked = true;
    this.heldCommands = 1;
    setImmediate(() => {
      this.corked = false;
      stream.uncork();
      this.o.observer?.batch(this.heldCommands);
    });
  }

  /** Run a repair of an index without failing the operation that found it stale; the next finder repairs it. */
  private async repair(what: string, p: Promise<unknown>): Promise<void> {
    try {
      await p;
    } catch (err) {
      this.log?.warn('redis store: index repair failed; it will be retried', { what, error: errorMessage(err) });
    }
  }

  async ping(): Promise<void> {
    await this.cmd((r) => r.ping());
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.background]);
    if (this.o.ownsClient === false) return;
    // QUIT lets the replies in flight arrive; a Redis that is gone gets two seconds, then the socket is closed
    const quit = this.client.quit().catch(() => undefined);
    const timer = setTimeout(() => this.client.disconnect(), 2000);
    await quit;
    clearTimeout(timer);
    this.client.disconnect();
  }

  /** Delete every key of this prefix (DTM's `-r`; tests). Returns how many keys were deleted. */
  async reset(): Promise<number> {
    return this.cmd(() => deleteKeys(this.client, this.keys.pattern));
  }

  async findTrans(gid: string): Promise<TransGlobal | undefined> {
    const v = await this.cmd((r) => r.hmgetBuffer(this.keys.trans(gid), ...GLOBAL_FIELDS));
    return v[1] && v[2] ? decodeGlobal(v) : undefined;
  }

  /**
   * Walks the cron's due set (every unfinished gid, scored by next_cron_time) in pages and reads the trans_type,
   * create_time and status of each: O(unfinished transactions) per call, pipelined. The metrics cache the answer
   * (Metrics.UnfinishedRefreshInterval), so a scrape does not pay it each time.
   */
  async countUnfinished(): Promise<UnfinishedCount[]> {
    const groups = new Map<string, UnfinishedCount>();
    const PAGE = 500;
    for (let start = 0; ; start += PAGE) {
      const flat = await this.cmd((r) =>
        r.zrange(this.keys.due, String(start), String(start + PAGE - 1), 'WITHSCORES'),
      );
      const entries = pairs(flat);
      const rows = await Promise.all(
        entries.map(([gid]) => this.cmd((r) => r.hmgetBuffer(this.keys.trans(gid), 'g', 'status'))),
      );
      for (let i = 0; i < entries.length; i++) {
        const [g, status] = rows[i]!;
        if (!g || !status) continue; // a creation in flight, or a stale index entry
        const st = status.toString() as GlobalStatus;
        if (isFinished(st)) continue;
        const [, transType, , , createTime] = unpack(g);
        const tt = str(transType);
        const created = Number(str(createTime));
        const due = Number(entries[i]![1]);
        const key = `${tt}\n${st}`;
        const c = groups.get(key);
        if (!c) {
          groups.set(key, { transType: tt, status: st, count: 1, oldestCreateTime: created, oldestNextCronTime: due });
          continue;
        }
        c.count++;
        if (created < c.oldestCreateTime) c.oldestCreateTime = created;
        if (due < c.oldestNextCronTime) c.oldestNextCronTime = due;
      }
      if (entries.length < PAGE) break;
    }
    return [...groups.values()];
  }

  async findBranches(gid: string): Promise<TransBranch[]> {
    const flat = (await this.runBuffer('branches.1', [this.keys.trans(gid)], [])) as Buffer[];
    const out: TransBranch[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const [branchId, op, url, createTime, binData] = unpack(flat[i]!);
      const [status, updateTime, finishTime, rollbackTime, attempts, lastAttemptTime, lastResult, lastError] = unpack(
        flat[i + 1]!,
      );
      out.push({
        id: i / 2 + 1,
        gid,
        branchId: str(branchId),
        op: str(op) as BranchOp,
        status: str(status) as TransBranch['status'],
        url: str(url),
        binData: binData!,
        createTime: Number(str(createTime)),
        updateTime: Number(str(updateTime)),
        finishTime: optTime(finishTime),
        rollbackTime: optTime(rollbackTime),
        attempts: Number(str(attempts)) || 0,
        lastAttemptTime: optTime(lastAttemptTime),
        lastResult: str(lastResult),
        lastError: str(lastError),
      });
    }
    return out;
  }

  async scanTrans(q: ScanQuery): Promise<{ trans: TransGlobal[]; nextPosition: string }> {
    const out: TransGlobal[] = [];
    if (q.limit <= 0) return { trans: out, nextPosition: '' };
    const filtered =
      q.status || q.transType || q.gidPrefix || q.createTimeStart !== undefined || q.createTimeEnd !== undefined;
    const from = q.position ? Number(q.position) : Number.POSITIVE_INFINITY;
    if (Number.isNaN(from)) return { trans: out, nextPosition: '' };
    let max = from === Number.POSITIVE_INFINITY ? '+inf' : `(${from}`;
    let lastScore = '';
    for (;;) {
      const want = q.limit - out.length;
      const batch = filtered ? Math.max(want, 100) : want;
      const flat = await this.cmd((r) =>
        r.zrevrangebyscore(this.keys.all, max, '-inf', 'WITHSCORES', 'LIMIT', 0, batch),
      );
      const entries = pairs(flat);
      if (entries.length === 0) break;
      const rows = await Promise.all(entries.map(([gid]) => this.findTrans(gid)));
      for (let i = 0; i < entries.length && out.length < q.limit; i++) {
        const t = rows[i];
        lastScore = entries[i]![1];
        if (!t) continue; // expired, or a creation in flight
        if (q.status && t.status !== q.status) continue;
        if (q.transType && t.transType !== q.transType) continue;
        if (q.gidPrefix && !t.gid.startsWith(q.gidPrefix)) continue;
        if (q.createTimeStart !== undefined && t.createTime < q.createTimeStart) continue;
        if (q.createTimeEnd !== undefined && t.createTime > q.createTimeEnd) continue;
        out.push(t);
      }
      if (out.length >= q.limit || entries.length < batch) break;
      max = `(${lastScore}`;
    }
    return { trans: out, nextPosition: out.length === q.limit ? lastScore : '' };
  }

  async saveNew(trans: TransGlobal, branches: TransBranch[]): Promise<void> {
    const k = this.keys;
    const gid = trans.gid;
    const finished = isFinished(trans.status);
    const rest = [gid, packG(trans), packMutable(trans), packBranches(branches)];
    const ttl = finished ? this.finishedTtl : UNFINISHED_TTL;
    let r: unknown;
    if (this.oneSlot) {
      r = await this.run('save-new.5', [k.trans(gid), k.seq, k.all, k.due, k.fin], [ttl, '', ...rest]);
    } else {
      // the index first: an entry without a transaction is repaired, a transaction without one never found
      const id = await this.run('reserve.3', [k.seq, k.all, k.due], [gid, finished ? '' : String(trans.nextCronTime)]);
      r = await this.run('save-new.1', [k.trans(gid)], [ttl, String(id), ...rest]);
      if (r !== 'UNIQUE_CONFLICT' && finished) {
        await this.run('index-finish.2', [k.due, k.fin], [gid, String(trans.updateTime)]);
      }
    }
    if (r === 'UNIQUE_CONFLICT') throw new UniqueConflictError();
    trans.id = Number(r);
    branches.forEach((b, i) => {
      b.id = i + 1;
    });
  }

  async insertBranches(gid: string, status: GlobalStatus, branches: TransBranch[]): Promise<void> {
    const ttl = isFinished(status) ? this.finishedTtl : UNFINISHED_TTL;
    const r = await this.run('insert-branches.1', [this.keys.trans(gid)], [ttl, status, packBranches(branches)]);
    if (r === 'NOT_FOUND') throw new NotFoundError();
    if (r === 'UNIQUE_CONFLICT') throw new UniqueConflictError();
    const first = Number(r);
    branches.forEach((b, i) => {
      b.id = first + i;
    });
  }

  async updateBranches(gid: string, status: GlobalStatus, branches: TransBranch[]): Promise<void> {
    const ttl = isFinished(status) ? this.finishedTtl : UNFINISHED_TTL;
    const r = await this.run('update-branches.1', [this.keys.trans(gid)], [ttl, status, packStates(branches)]);
    if (r === 'NOT_FOUND') throw new NotFoundError();
  }

  async changeStatus(
    gid: string,
    from: GlobalStatus,
    to: GlobalStatus,
    change: StatusChange,
    now: number,
  ): Promise<void> {
    const k = this.keys;
    const finished = isFinished(to);
    const next = change.nextCronTime;
    // moving earlier: the index first, so that it is never later than the truth
    if (!this.oneSlot && !finished && next !== undefined) {
      await this.cmd((r) => r.zadd(k.due, 'XX', 'LT', next, gid));
    }
    const opt = (v: string | number | undefined) => (v === undefined ? '' : String(v));
    const before = await this.run(
      this.oneSlot ? 'change-status.3' : 'change-status.1',
      this.oneSlot ? [k.trans(gid), k.due, k.fin] : [k.trans(gid)],
      [
        finished ? this.finishedTtl : UNFINISHED_TTL,
        from,
        to,
        String(now),
        change.rollbackReason ?? '',
        change.result ?? '',
        opt(change.finishTime),
        opt(change.rollbackTime),
        opt(next),
        opt(change.nextCronInterval),
        gid,
        change.branches ? packStates(change.branches) : '',
      ],
    );
    if (before === 'NOT_FOUND') throw new NotFoundError();
    if (this.oneSlot) return; // the script moved it between the indexes
    if (finished) {
      // AFTER the hash says finished; if this is lost, lease.1.lua finds the trans finished and repairs it
      await this.repair('index-finish', this.run('index-finish.2', [k.due, k.fin], [gid, String(now)]));
    } else if (next !== undefined && before !== '' && next > Number(before)) {
      await this.repair('index-cas', this.run('index-cas.1', [k.due], [gid, String(before), String(next)]));
    }
  }

  async touchCronTime(
    gid: string,
    status: GlobalStatus,
    nextCronTime: number,
    interval: number,
    now: number,
    resetFailedAttempts = false,
  ) {
    const k = this.keys;
    if (!this.oneSlot) await this.cmd((r) => r.zadd(k.due, 'XX', 'LT', nextCronTime, gid));
    const before = await this.run(
      this.oneSlot ? 'touch-cron-time.2' : 'touch-cron-time.1',
      this.oneSlot ? [k.trans(gid), k.due] : [k.trans(gid)],
      [
        isFinished(status) ? this.finishedTtl : UNFINISHED_TTL,
        status,
        String(nextCronTime),
        String(interval),
        String(now),
        gid,
        resetFailedAttempts ? '1' : '',
      ],
    );
    if (!this.oneSlot && typeof before === 'string' && before !== '' && nextCronTime > Number(before)) {
      await this.repair('index-cas', this.run('index-cas.1', [k.due], [gid, before, String(nextCronTime)]));
    }
  }

  async recordFailedAttempt(
    gid: string,
    status: GlobalStatus,
    branch: TransBranch | undefined,
    a: FailedAttempt,
    now: number,
  ): Promise<void> {
    const k = this.keys;
    const next = a.nextCronTime;
    if (!this.oneSlot) await this.cmd((r) => r.zadd(k.due, 'XX', 'LT', next, gid));
    const b = branch?.id === undefined ? undefined : branch;
    const before = await this.run(
      this.oneSlot ? 'record-failure.2' : 'record-failure.1',
      this.oneSlot ? [k.trans(gid), k.due] : [k.trans(gid)],
      [
        isFinished(status) ? this.finishedTtl : UNFINISHED_TTL,
        status,
        String(next),
        String(a.nextCronInterval),
        String(now),
        gid,
        String(a.failedAttempts),
        a.lastError,
        b ? marker(b) : '',
        b ? String(b.id) : '',
        b ? packState({ ...b, updateTime: now }) : '',
      ],
    );
    if (!this.oneSlot && typeof before === 'string' && before !== '' && next > Number(before)) {
      await this.repair('index-cas', this.run('index-cas.1', [k.due], [gid, before, String(next)]));
    }
  }

  async claimStuckAlert(gid: string, status: GlobalStatus): Promise<boolean> {
    return (await this.run('claim-stuck-alert.1', [this.keys.trans(gid)], [status])) === 1;
  }

  /**
   * Walks the id index from `position` down, in batches, keeping the stuck ones. At most STUCK_SCAN_MAX entries
   * per call: a page may then hold fewer than `limit` rows with a position to go on from.
   */
  async findStuck(rule: StuckRule, position: string, limit: number) {
    const out: TransGlobal[] = [];
    const from = position ? Number(position) : Number.POSITIVE_INFINITY;
    if (limit <= 0 || Number.isNaN(from)) return { trans: out, nextPosition: '' };
    let max = from === Number.POSITIVE_INFINITY ? '+inf' : `(${from}`;
    let lastScore = '';
    let examined = 0;
    for (;;) {
      const flat = await this.cmd((r) => r.zrevrangebyscore(this.keys.all, max, '-inf', 'WITHSCORES', 'LIMIT', 0, 200));
      const entries = pairs(flat);
      if (entries.length === 0) return { trans: out, nextPosition: '' };
      const rows = await Promise.all(entries.map(([gid]) => this.findTrans(gid)));
      for (let i = 0; i < entries.length; i++) {
        lastScore = entries[i]![1];
        examined++;
        const t = rows[i];
        if (t && stuckReasonOf(t, rule) !== undefined) out.push(t);
        if (out.length >= limit || examined >= STUCK_SCAN_MAX) return { trans: out, nextPosition: lastScore };
      }
      if (entries.length < 200) return { trans: out, nextPosition: '' };
      max = `(${lastScore}`;
    }
  }

  /** Reads the unfinished transactions (the due index), in batches. */
  async countStuck(rule: StuckRule): Promise<{ attempts: number; age: number }> {
    const c = { attempts: 0, age: 0 };
    for (let start = 0; ; start += 500) {
      const gids = await this.cmd((r) => r.zrange(this.keys.due, String(start), String(start + 499)));
      const rows = await Promise.all(gids.map((gid) => this.findTrans(gid)));
      for (const t of rows) {
        const reason = t && stuckReasonOf(t, rule);
        if (reason) c[reason]++;
      }
      if (gids.length < 500) return c;
    }
  }

  async lockDue(dueBefore: number, leaseUntil: number, owner: string, limit: number, now: number) {
    const k = this.keys;
    const out: TransGlobal[] = [];
    // members this call found stale (and repaired) are passed over, so that stale hints never hide due work
    const skip: string[] = [];
    for (let round = 0; round < MAX_ROUNDS && out.length < limit; round++) {
      const want = limit - out.length;
      const claimed = pairs(
        (await this.run('claim-due.1', [k.due], [String(dueBefore), String(leaseUntil), want, ...skip])) as string[],
      );
      if (claimed.length === 0) break;
      const results = await Promise.all(
        claimed.map(
          ([gid]) =>
            this.runBuffer(
              'lease.1',
              [k.trans(gid)],
              [UNFINISHED_TTL, String(dueBefore), String(leaseUntil), owner, String(now)],
            ) as Promise<Buffer[]>,
        ),
      );
      const repairs: Promise<void>[] = [];
      for (const [i, [gid, old]] of claimed.entries()) {
        const r = results[i]!;
        if (str(r[0]) === 'LEASED') {
          out.push(decodeGlobal(r.slice(1)));
        } else {
          skip.push(gid);
          repairs.push(this.repairClaim(gid, old, String(leaseUntil), r.map(str), now));
        }
      }
      await Promise.all(repairs);
      if (claimed.length < want) break;
    }
    this.maybeSweep(now);
    return out;
  }

  /** Put right an index member that a claim moved although its transaction was not leased or reset. */
  private repairClaim(gid: string, old: string, claimedScore: string, r: string[], now: number): Promise<void> {
    const k = this.keys;
    switch (r[0]) {
      case 'MISSING':
        return this.repair(
          'index-missing',
          this.run('index-missing.3', [k.due, k.all, k.fin], [gid, claimedScore, old, String(now - MISSING_GRACE_MS)]),
        );
      case 'FINISHED':
        return this.repair('index-finish', this.run('index-finish.2', [k.due, k.fin], [gid, r[1]!]));
      case 'NOTDUE':
        return this.repair('index-cas', this.run('index-cas.1', [k.due], [gid, claimedScore, r[1]!]));
      default:
        return Promise.resolve();
    }
  }

  /**
   * Index entries of transactions that Redis expired (Store.FinishedDataExpire) are removed by a retention
   * round over what expired a minute ago at the latest, run from lockDue at most once a minute (the cron calls it
   * every few seconds on every instance; Retention.FinishedAge is 0 by default).
   */
  private maybeSweep(now: number): void {
    if (this.finishedTtl <= 0 || now - this.lastSweep < SWEEP_EVERY_MS) return;
    this.lastSweep = now;
    const p = this.deleteFinished(now - this.finishedTtl * 1000 - 60_000, 500)
      .catch((err) => this.log?.warn('redis store: sweep of expired transactions failed', { error: errorMessage(err) }))
      .finally(() => this.background.delete(p));
    this.background.add(p);
  }

  async resetCronTime(after: number, limit: number, now: number): Promise<{ count: number; hasRemaining: boolean }> {
    const k = this.keys;
    let count = 0;
    const skip: string[] = [];
    for (let round = 0; round < MAX_ROUNDS && count < limit; round++) {
      const want = limit - count;
      const picked = pairs(
        (await this.run('claim-reset.1', [k.due], [String(after), String(now), want, ...skip])) as string[],
      );
      if (picked.length === 0) break;
      const results = await Promise.all(
        picked.map(
          ([gid]) =>
            this.run('reset-cron.1', [k.trans(gid)], [UNFINISHED_TTL, String(after), String(now)]) as Promise<string[]>,
        ),
      );
      const repairs: Promise<void>[] = [];
      for (const [i, [gid, old]] of picked.entries()) {
        const r = results[i]!;
        skip.push(gid); // when now > after, a reset member is still after `after`: never twice in one call
        if (r[0] === 'RESET') count++;
        else repairs.push(this.repairClaim(gid, old, String(now), r, now));
      }
      await Promise.all(repairs);
      if (picked.length < want) break;
    }
    return { count, hasRemaining: count === limit };
  }

  async resetTransCronTime(gid: string, now: number): Promise<void> {
    const k = this.keys;
    await this.cmd((r) => r.zadd(k.due, 'XX', 'LT', now, gid));
    const status = await this.run(
      'reset-trans-cron-time.1',
      [k.trans(gid)],
      [UNFINISHED_TTL, this.finishedTtl, String(now)],
    );
    if (status === 'NOT_FOUND') throw new NotFoundError();
    if (!isFinished(String(status))) await this.cmd((r) => r.zadd(k.due, 'LT', now, gid));
  }

  async deleteFinished(before: number, limit: number): Promise<number> {
    const k = this.keys;
    let deleted = 0;
    for (let round = 0; round < 100 && deleted < limit; round++) {
      const want = limit - deleted;
      const gids = await this.cmd((r) => r.zrangebyscore(k.fin, '-inf', `(${before}`, 'LIMIT', 0, want));
      if (gids.length === 0) break;
      const results = await Promise.all(
        gids.map((gid) => this.run('delete-finished.1', [k.trans(gid)], [String(before)]) as Promise<string[]>),
      );
      const repairs: Promise<unknown>[] = [];
      for (const [i, gid] of gids.entries()) {
        const r = results[i]!;
        if (r[0] === 'DELETED') deleted++;
        if (r[0] === 'DELETED' || r[0] === 'MISSING') repairs.push(this.run('index-forget.2', [k.all, k.fin], [gid]));
        else if (r[0] === 'UNFINISHED') repairs.push(this.cmd((c) => c.zrem(k.fin, gid)));
        else if (r[0] === 'RECENT') repairs.push(this.cmd((c) => c.zadd(k.fin, r[1]!, gid)));
      }
      await Promise.all(repairs);
      if (gids.length < want) break;
    }
    return deleted;
  }

  async scanKV(cat: string, position: string, limit: number): Promise<{ kv: KV[]; nextPosition: string }> {
    const below = position ? Number(position) : Number.POSITIVE_INFINITY;
    const all = await this.kvOf(cat);
    const kv = all
      .filter((r) => (r.id ?? 0) < below)
      .sort((a, b) => (b.id ?? 0) - (a.id ?? 0))
      .slice(0, Math.max(0, limit));
    return { kv, nextPosition: nextPositionOf(kv, limit) };
  }

  private async kvOf(cat: string, key = ''): Promise<KV[]> {
    if (key) {
      const raw = await this.cmd((r) => r.hget(this.keys.kv(cat), key));
      return raw === null ? [] : [decodeKv(cat, key, raw)];
    }
    const h = await this.cmd((r) => r.hgetall(this.keys.kv(cat)));
    return Object.entries(h).map(([k, raw]) => decodeKv(cat, k, raw));
  }

  async findKV(cat: string, key: string): Promise<KV[]> {
    const cats = cat ? [cat] : await this.cmd((r) => r.smembers(this.keys.kvCats));
    const rows = (await Promise.all(cats.map((c) => this.kvOf(c, key)))).flat();
    return rows.sort((a, b) => (a.id ?? 0) - (b.id ?? 0));
  }

  async createKV(cat: string, k: string, v: string, now: number): Promise<void> {
    const keys = this.keys;
    const r = await this.run('kv-create.3', [keys.kv(cat), keys.kvSeq, keys.kvCats], [cat, k, v, String(now)]);
    if (r === 'UNIQUE_CONFLICT') throw new UniqueConflictError();
  }

  async updateKV(kv: KV, now: number): Promise<void> {
    const r = await this.run('kv-update.1', [this.keys.kv(kv.cat)], [kv.k, String(kv.version), kv.v, String(now)]);
    if (r === 'NOT_FOUND') throw new NotFoundError();
    kv.version += 1;
  }

  async deleteKV(cat: string, k: string): Promise<void> {
    const r = await this.run('kv-delete.2', [this.keys.kv(cat), this.keys.kvCats], [cat, k]);
    if (r === 'NOT_FOUND') throw new NotFoundError();
  }
}

/** Delete every key matching `pattern` (SCAN + UNLINK; on a cluster, on every master). */
export async function deleteKeys(client: RedisClient, pattern: string): Promise<number> {
  const nodes = 'nodes' in client && typeof client.nodes === 'function' ? client.nodes('master') : [client as Redis];
  let n = 0;
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      // one UNLINK per key: keys of different slots cannot share a command on a cluster
      if (keys.length > 0) n += (await Promise.all(keys.map((key) => node.unlink(key)))).reduce((a, b) => a + b, 0);
    } while (cursor !== '0');
  }
  return n;
}

/** The Redis store of a configuration (Store.Driver redis); connects in the background. */
export async function openRedisStore(
  config: { Store: StoreConfig },
  o: { reset?: boolean | undefined; log?: Logger | undefined; observer?: StoreObserver | undefined } = {},
): Promise<RedisStore> {
  const s = config.Store;
  const client = createRedisClient({
    host: s.Host,
    port: s.Port,
    username: s.User,
    password: s.Password,
    log: o.log,
  });
  const store = new RedisStore(client, {
    prefix: s.RedisPrefix,
    dataExpire: s.DataExpire,
    finishedDataExpire: s.FinishedDataExpire,
    where: s.Host.includes(',') ? `cluster ${s.Host}` : `${s.Host}:${s.Port}`,
    log: o.log,
    observer: o.observer,
  });
  if (o.reset) {
    try {
      await store.reset();
    } catch (err) {
      await store.close();
      throw err;
    }
  }
  return store;
}
