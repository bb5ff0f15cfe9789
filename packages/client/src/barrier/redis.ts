/**
 * The barrier on Redis (spec §9.7): an amount check-and-adjust — the flash-sale stock or balance decrement — that
 * runs at most once per branch, op and barrier id, with the same rules as the SQL barrier, in one Lua script.
 * Works with an ioredis `Redis` or `Cluster` (anything with `eval` / `evalsha` of that shape).
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { BranchOp, MSG_BRANCH_ID } from '@dtx/protocol';
import { DuplicatedError, FailureError } from '../errors.js';
import type { BarrierKey } from './barrier-db.js';
import { type BarrierOutcome, type BranchBarrier, formatBarrierId, originOpOf } from './branch-barrier.js';

/** The part of an ioredis client the Redis barrier uses. */
export interface RedisEvalLike {
  eval(script: string, numberOfKeys: number, ...keysAndArgs: (string | number)[]): Promise<unknown>;
  evalsha(sha1: string, numberOfKeys: number, ...keysAndArgs: (string | number)[]): Promise<unknown>;
}

/** Options of {@link redisCheckAdjustAmount} and {@link redisQueryPrepared}. */
export interface RedisBarrierOptions {
  /**
   * The Redis key of a barrier entry. Default DTM's `<gid>-<branch_id>-<op>-<barrier_id>`, without a prefix, so
   * that Go services using DTM's `RedisCheckAdjustAmount` on the same Redis see the same keys.
   *
   * On Redis Cluster the script's keys — the amount key and two barrier keys — must share a hash slot: give the
   * amount key a hash tag and put the same tag into the barrier keys, for example
   * `keyOf: (k, amountKey) => \`${amountKey}:${k.gid}-${k.branch_id}-${k.op}-${k.barrier_id}\`` with amount keys
   * such as `{stock:42}`. ({@link redisQueryPrepared} passes an empty `amountKey`: tag by gid there.)
   */
  keyOf?: (key: BarrierKey, amountKey: string) => string;
}

const dtmKey = (k: BarrierKey): string => `${k.gid}-${k.branch_id}-${k.op}-${k.barrier_id}`;

/**
 * check-adjust-amount: one guarded amount adjustment.
 *
 * KEYS[1] the amount key (an integer string)
 * KEYS[2] the barrier key of this op
 * KEYS[3] the barrier key of the forward op this op undoes (when ARGV[2] is not '')
 * ARGV[1] the amount to add (an integer; negative to take)
 * ARGV[2] the origin op ('' when this op compensates nothing)
 * ARGV[3] expiry of the barrier keys, in seconds
 * ARGV[4] this op (the value written into the barrier keys)
 *
 * Returns 'DUPLICATE' (this op already ran, or its compensation came first), 'NULL_COMPENSATION' (a compensation
 * whose forward op never ran: nothing adjusted, the forward op is now blocked), 'FAILURE' (the amount key is
 * missing or would go below 0: nothing written) or 'SUCCESS' (adjusted, barrier written).
 *
 * Unlike DTM's script, the duplicate check comes before the amount check, so a repeated request is a success even
 * when the amount has gone down since.
 */
const CHECK_ADJUST_AMOUNT = `
if redis.call('EXISTS', KEYS[2]) == 1 then
  return 'DUPLICATE'
end
if ARGV[2] ~= '' and redis.call('EXISTS', KEYS[3]) == 0 then
  redis.call('SET', KEYS[3], ARGV[4], 'EX', ARGV[3])
  redis.call('SET', KEYS[2], ARGV[4], 'EX', ARGV[3])
  return 'NULL_COMPENSATION'
end
local amount = redis.call('GET', KEYS[1])
if not amount or not tonumber(amount) or tonumber(amount) + tonumber(ARGV[1]) < 0 then
  return 'FAILURE'
end
redis.call('SET', KEYS[2], ARGV[4], 'EX', ARGV[3])
redis.call('INCRBY', KEYS[1], ARGV[1])
return 'SUCCESS'
`;

/**
 * query-prepared: the msg back-check.
 *
 * KEYS[1] the barrier key of the msg's guarded call (gid, `00`, `msg`, `01`)
 * ARGV[1] expiry in seconds
 *
 * Writes 'rollback' unless the key exists, then returns the key's value: 'rollback' means the local transaction
 * did not run (and now never will), anything else that it did.
 */
const QUERY_PREPARED = `
redis.call('SET', KEYS[1], 'rollback', 'NX', 'EX', ARGV[1])
return redis.call('GET', KEYS[1])
`;

const sha1 = (s: string): string => createHash('sha1').update(s).digest('hex');
const CHECK_ADJUST_AMOUNT_SHA = sha1(CHECK_ADJUST_AMOUNT);
const QUERY_PREPARED_SHA = sha1(QUERY_PREPARED);

async function evalScript(
  redis: RedisEvalLike,
  script: string,
  sha: string,
  keys: string[],
  args: (string | number)[],
): Promise<unknown> {
  try {
    return await redis.evalsha(sha, keys.length, ...keys, ...args);
  } catch (err) {
    if (!String((err as Error)?.message).includes('NOSCRIPT')) throw err;
    return redis.eval(script, keys.length, ...keys, ...args);
  }
}

function positiveSeconds(expireSeconds: number): number {
  if (!Number.isSafeInteger(expireSeconds) || expireSeconds <= 0) {
    throw new RangeError(`expireSeconds must be a positive integer, got ${expireSeconds}`);
  }
  return expireSeconds;
}

/**
 * Adds `amount` to the integer at `amountKey` at most once for this branch, op and barrier id, in one atomic Lua
 * script (spec §9.7) — DTM's `RedisCheckAdjustAmount`:
 * 1. this op already ran for this barrier id (a repeated request), or its compensation already ran (the forward
 *    op arrives late: hanging) → `duplicate`, nothing adjusted (for op `msg`: {@link DuplicatedError});
 * 2. a compensation (`compensate`, `cancel`, `rollback`) whose forward op never ran → `null-compensation`: nothing
 *    adjusted, and the forward op is blocked for good;
 * 3. the amount key is missing, or the amount would go below 0 → {@link FailureError}, nothing written (a saga
 *    then compensates, which step 2 turns into a null compensation);
 * 4. otherwise the amount is adjusted and this op's barrier key written → `executed`.
 *
 * Barrier keys expire after `expireSeconds`: keep it longer than a transaction can take (DTM's examples use a day
 * or more). Each call takes the next barrier id of `barrier` (`01`, `02`, …); a compensation must make the same
 * calls in the same order as its forward op.
 *
 * @param amount - an integer; negative to take from the amount, positive to give back.
 * @throws {@link FailureError} when the amount key is missing or too low.
 * @throws {@link DuplicatedError} for op `msg` when the back-check already rolled the msg back.
 */
export async function redisCheckAdjustAmount(
  barrier: BranchBarrier,
  redis: RedisEvalLike,
  amountKey: string,
  amount: number,
  expireSeconds: number,
  o: RedisBarrierOptions = {},
): Promise<BarrierOutcome> {
  if (!Number.isSafeInteger(amount)) throw new RangeError(`amount must be an integer, got ${amount}`);
  positiveSeconds(expireSeconds);
  const barrier_id = barrier.nextBarrierId();
  const { gid, branch_id, op } = barrier;
  const keyOf = o.keyOf ?? dtmKey;
  const origin = originOpOf(op) ?? '';
  const own = keyOf({ gid, branch_id, op, barrier_id }, amountKey);
  const originKey = origin ? keyOf({ gid, branch_id, op: origin, barrier_id }, amountKey) : own;
  const r = await evalScript(
    redis,
    CHECK_ADJUST_AMOUNT,
    CHECK_ADJUST_AMOUNT_SHA,
    [amountKey, own, originKey],
    [amount, origin, expireSeconds, op],
  );
  switch (r) {
    case 'SUCCESS':
      return 'executed';
    case 'NULL_COMPENSATION':
      return 'null-compensation';
    case 'DUPLICATE':
      if (op === BranchOp.Msg) {
        throw new DuplicatedError(
          `msg ${gid} was already rolled back by the back-check (barrier ${branch_id}/${op}/${barrier_id}); ` +
            `nothing was adjusted`,
        );
      }
      return 'duplicate';
    case 'FAILURE':
      throw new FailureError(`'${amountKey}' is missing or below ${-amount}: cannot add ${amount}`);
    default:
      throw new Error(`unexpected reply of the Redis barrier script: ${String(r)}`);
  }
}

/**
 * The msg back-check on Redis (DTM's `RedisQueryPrepared`), for the `query_prepared` route of a msg whose local
 * work is a {@link redisCheckAdjustAmount} with op `msg`: marks the msg's barrier key (gid, `00`, `msg`, `01`) as
 * rolled back unless the local work already wrote it, then reads who won.
 *
 * @throws {@link FailureError} when the msg is rolled back (its local work never ran, and now never will: a later
 * call gets {@link DuplicatedError}).
 */
export async function redisQueryPrepared(
  barrier: BranchBarrier,
  redis: RedisEvalLike,
  expireSeconds: number,
  o: RedisBarrierOptions = {},
): Promise<void> {
  positiveSeconds(expireSeconds);
  const key = (o.keyOf ?? dtmKey)(
    { gid: barrier.gid, branch_id: MSG_BRANCH_ID, op: BranchOp.Msg, barrier_id: formatBarrierId(1) },
    '',
  );
  const v = await evalScript(redis, QUERY_PREPARED, QUERY_PREPARED_SHA, [key], [expireSeconds]);
  if (v === BranchOp.Rollback) {
    throw new FailureError(`msg ${barrier.gid} is rolled back: its local work did not run`);
  }
}
