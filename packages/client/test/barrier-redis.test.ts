/**
 * The Redis barrier (spec §9.7) on the real Redis of scripts/services.sh (DTX_REDIS_URL, default
 * redis://127.0.0.1:6379): normal, duplicate and out-of-order delivery, insufficient amount, concurrent
 * duplicates, and the msg back-check. Every key of the file carries a unique gid or amount key and is deleted at
 * the end.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { BranchBarrier } from '../src/barrier/branch-barrier.js';
import { redisCheckAdjustAmount, redisQueryPrepared } from '../src/barrier/redis.js';
import { DuplicatedError, FailureError } from '../src/errors.js';

const RUN = `dtxbar-${randomUUID().slice(0, 8)}`;
const DAY = 86400;

describe('barrier on Redis', () => {
  let redis: Redis;
  before(() => {
    redis = new Redis(process.env.DTX_REDIS_URL ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
  });
  after(async () => {
    const keys = await redis.keys(`${RUN}*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  });

  let seq = 0;
  const newGid = () => `${RUN}-gid-${++seq}`;
  /** An amount key holding `value`. */
  async function stock(value: number): Promise<string> {
    const key = `${RUN}-stock-${++seq}`;
    await redis.set(key, value);
    return key;
  }
  const amountOf = async (key: string) => Number(await redis.get(key));
  const barrier = (gid: string, op: string, trans_type = 'saga', branch_id = '01') =>
    new BranchBarrier({ gid, trans_type, branch_id, op });
  const take = (gid: string, key: string, op = 'action') =>
    redisCheckAdjustAmount(barrier(gid, op), redis, key, -30, DAY);
  const giveBack = (gid: string, key: string, op = 'compensate') =>
    redisCheckAdjustAmount(barrier(gid, op), redis, key, 30, DAY);

  test('normal: an action adjusts once and writes its barrier key with the expiry; its compensation undoes it', async () => {
    const key = await stock(100);
    const gid = newGid();
    assert.equal(await take(gid, key), 'executed');
    assert.equal(await amountOf(key), 70);
    assert.equal(await redis.get(`${gid}-01-action-01`), 'action', "DTM's key layout");
    const ttl = await redis.ttl(`${gid}-01-action-01`);
    assert.ok(ttl > DAY - 10 && ttl <= DAY, `expiry ${ttl}`);
    assert.equal(await giveBack(gid, key), 'executed');
    assert.equal(await amountOf(key), 100);
  });

  test('duplicate delivery: a repeated action or compensation is a success without effect', async () => {
    const key = await stock(100);
    const gid = newGid();
    assert.equal(await take(gid, key), 'executed');
    assert.equal(await take(gid, key), 'duplicate');
    assert.equal(await amountOf(key), 70);
    assert.equal(await giveBack(gid, key), 'executed');
    assert.equal(await giveBack(gid, key), 'duplicate');
    assert.equal(await amountOf(key), 100);
  });

  test('a duplicate is a success even when the amount has run out since', async () => {
    const key = await stock(30);
    const gid = newGid();
    assert.equal(await take(gid, key), 'executed');
    assert.equal(await amountOf(key), 0);
    assert.equal(await take(gid, key), 'duplicate', 'not FAILURE: the action did happen');
  });

  test('compensation before its action: a null compensation, and the late action is blocked (hanging)', async () => {
    const key = await stock(100);
    const gid = newGid();
    assert.equal(await giveBack(gid, key), 'null-compensation');
    assert.equal(await amountOf(key), 100, 'nothing given back');
    assert.equal(await take(gid, key), 'duplicate', 'the late action is skipped');
    assert.equal(await amountOf(key), 100, 'nothing taken');
    assert.equal(await giveBack(gid, key), 'duplicate');
    // tcc: cancel before try, likewise
    const tccGid = newGid();
    assert.equal(
      await redisCheckAdjustAmount(barrier(tccGid, 'cancel', 'tcc'), redis, key, 30, DAY),
      'null-compensation',
    );
    assert.equal(await redisCheckAdjustAmount(barrier(tccGid, 'try', 'tcc'), redis, key, -30, DAY), 'duplicate');
    assert.equal(await amountOf(key), 100);
  });

  test('insufficient amount or a missing key: FailureError, nothing written; the compensation is then null', async () => {
    const key = await stock(20);
    const gid = newGid();
    await assert.rejects(take(gid, key), FailureError);
    assert.equal(await amountOf(key), 20);
    assert.equal(await redis.exists(`${gid}-01-action-01`), 0, 'no barrier key: the action did not happen');
    assert.equal(await giveBack(gid, key), 'null-compensation');
    assert.equal(await amountOf(key), 20);
    await assert.rejects(take(newGid(), `${RUN}-no-such-key`), FailureError);
  });

  test('concurrent duplicates: the effect happens exactly once', async () => {
    const key = await stock(1000);
    const gid = newGid();
    const outcomes = await Promise.all(Array.from({ length: 20 }, () => take(gid, key)));
    assert.equal(outcomes.filter((o) => o === 'executed').length, 1, outcomes.join(','));
    assert.equal(outcomes.filter((o) => o === 'duplicate').length, 19);
    assert.equal(await amountOf(key), 970);
    // concurrent action and compensation: whichever comes first, the amount ends where it started
    for (let i = 0; i < 10; i++) {
      const g = newGid();
      await Promise.all([take(g, key), giveBack(g, key)]);
      assert.equal(await amountOf(key), 970, `pair ${i}`);
    }
  });

  test('each guarded call of one request takes the next barrier id', async () => {
    const a = await stock(100);
    const b = await stock(100);
    const gid = newGid();
    const bb = barrier(gid, 'action');
    assert.equal(await redisCheckAdjustAmount(bb, redis, a, -10, DAY), 'executed');
    assert.equal(await redisCheckAdjustAmount(bb, redis, b, -20, DAY), 'executed');
    assert.equal(await redis.get(`${gid}-01-action-02`), 'action');
    // the compensation makes the same two calls: both undo
    const cb = barrier(gid, 'compensate');
    assert.equal(await redisCheckAdjustAmount(cb, redis, a, 10, DAY), 'executed');
    assert.equal(await redisCheckAdjustAmount(cb, redis, b, 20, DAY), 'executed');
    assert.deepEqual([await amountOf(a), await amountOf(b)], [100, 100]);
  });

  test('msg: the back-check first rolls the msg back for good (DuplicatedError later); after the work, it succeeds', async () => {
    const key = await stock(100);
    const gid = newGid();
    const msgBarrier = () => barrier(gid, 'msg', 'msg', '00');
    await assert.rejects(redisQueryPrepared(msgBarrier(), redis, DAY), FailureError);
    await assert.rejects(redisQueryPrepared(msgBarrier(), redis, DAY), FailureError, 'the answer is final');
    await assert.rejects(redisCheckAdjustAmount(msgBarrier(), redis, key, -30, DAY), DuplicatedError);
    assert.equal(await amountOf(key), 100, 'the local work did not happen');

    const done = newGid();
    const doneBarrier = () => barrier(done, 'msg', 'msg', '00');
    assert.equal(await redisCheckAdjustAmount(doneBarrier(), redis, key, -30, DAY), 'executed');
    await redisQueryPrepared(doneBarrier(), redis, DAY);
    assert.equal(await amountOf(key), 70);
    assert.equal(await redis.get(`${done}-00-msg-01`), 'msg');
  });

  test('keyOf puts the barrier keys next to the amount key (Redis Cluster hash tags)', async () => {
    const key = `{${RUN}-tagged}`;
    await redis.set(key, 50);
    const gid = newGid();
    const keyOf = (k: { gid: string; branch_id: string; op: string; barrier_id: string }, amountKey: string) =>
      `${amountKey}:${k.gid}-${k.branch_id}-${k.op}-${k.barrier_id}`;
    assert.equal(await redisCheckAdjustAmount(barrier(gid, 'action'), redis, key, -5, DAY, { keyOf }), 'executed');
    assert.equal(await redis.get(`${key}:${gid}-01-action-01`), 'action');
    assert.equal(await redis.exists(`${gid}-01-action-01`), 0);
    await redis.del(key, `${key}:${gid}-01-action-01`);
  });

  test('loads the script when Redis does not know it (NOSCRIPT), and refuses bad arguments', async () => {
    let evalshas = 0;
    let evals = 0;
    const forgetful = {
      evalsha: async () => {
        evalshas++;
        throw new Error('NOSCRIPT No matching script. Please use EVAL.');
      },
      eval: (script: string, n: number, ...rest: (string | number)[]) => {
        evals++;
        return redis.eval(script, n, ...rest);
      },
    };
    const key = await stock(10);
    assert.equal(await redisCheckAdjustAmount(barrier(newGid(), 'action'), forgetful, key, -1, DAY), 'executed');
    assert.deepEqual([evalshas, evals], [1, 1]);
    assert.equal(await amountOf(key), 9);
    await assert.rejects(redisCheckAdjustAmount(barrier(newGid(), 'action'), redis, 'k', 1.5, DAY), RangeError);
    await assert.rejects(redisCheckAdjustAmount(barrier(newGid(), 'action'), redis, 'k', 1, 0), RangeError);
  });
});
