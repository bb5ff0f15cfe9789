/**
 * The Redis store on the real Redis of scripts/services.sh (DTX_REDIS_URL, default redis://127.0.0.1:6379): the
 * Store conformance suite, each test under a key prefix of its own, then what only Redis has to show — expiry on
 * write and on finish, the index being a hint that is repaired after a crash between an index write and a
 * transaction write, the index agreeing with next_cron_time, the cluster-friendly key layout, several instances on
 * one prefix, and reset.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, afterEach, before, describe, it } from 'node:test';
import { DEFAULT_CONFIG, type DtxConfig } from '../src/config.js';
import { openStore } from '../src/store/open-store.js';
import { clusterNodes, createRedisClient, type RedisClient } from '../src/store/redis/connect.js';
import { hashTagOf, RedisKeys } from '../src/store/redis/keys.js';
import { deleteKeys, RedisStore, type RedisStoreOptions } from '../src/store/redis/redis-store.js';
import { at, makeBranch, makeTrans, outcome, plain, storeConformance, T0 } from './store-conformance.js';

const url = new URL(process.env.DTX_REDIS_URL ?? 'redis://127.0.0.1:6379');
const HOST = url.hostname;
const PORT = Number(url.port || 6379);
/** Every prefix of this file starts with it; the whole file's keys are deleted at the end. */
const BASE = `dtxtest-${process.pid}-${randomBytes(3).toString('hex')}`;
let prefixes = 0;
/** A prefix without a hash tag: the cluster layout (indexes in a slot of their own, written around the trans). */
const freshPrefix = () => `${BASE}-${++prefixes}`;
/** A prefix with a hash tag, like DTM's default `{a}`: every key in one slot, indexes written in the same script. */
const freshTaggedPrefix = () => `{${BASE}}-${++prefixes}`;

function newStore(o: RedisStoreOptions = {}): RedisStore {
  return new RedisStore(createRedisClient({ host: HOST, port: PORT }), { prefix: freshPrefix(), ...o });
}

/** A plain client for looking at keys behind the store's back. */
let raw: RedisClient;
before(() => {
  raw = createRedisClient({ host: HOST, port: PORT });
});
after(async () => {
  await deleteKeys(raw, `${BASE}-*`);
  await deleteKeys(raw, `{${BASE}}-*`);
  raw.disconnect();
});

storeConformance('redis, cluster layout (prefix without a hash tag)', async () => newStore());
storeConformance('redis, one slot (prefix with a hash tag, as the default {a})', async () =>
  newStore({ prefix: freshTaggedPrefix() }),
);

/** CRC16/XMODEM mod 16384: the hash slot Redis Cluster gives a key (by its hash tag when it has one). */
function slotOf(key: string): number {
  const s = Buffer.from(hashTagOf(key) ?? key);
  let crc = 0;
  for (const byte of s) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % 16384;
}

describe('RedisStore: Redis specifics', () => {
  let store: RedisStore;
  afterEach(async () => {
    await store?.close();
  });
  const k = () => store.keys;
  const dueScore = async (gid: string) => {
    const s = await raw.zscore(k().due, gid);
    return s === null ? undefined : Number(s);
  };

  it('the slot function agrees with Redis Cluster (known vectors)', () => {
    assert.equal(slotOf('123456789'), 0x31c3 % 16384); // the CRC16/XMODEM check value
    assert.equal(slotOf('foo'), 12182);
    assert.equal(slotOf('{user1000}.following'), slotOf('{user1000}.followers'));
    assert.equal(slotOf('foo{}{bar}'), slotOf('foo{}{bar}'), 'an empty tag hashes the whole key');
    assert.equal(hashTagOf('foo{}{bar}'), undefined);
    assert.equal(hashTagOf('foo{{bar}}zap'), '{bar');
  });

  it('cluster layout: one key per transaction, spread by gid; every index and KV key in one slot', async () => {
    store = newStore({ prefix: `${BASE}-nobrace-${++prefixes}` });
    const gids = Array.from({ length: 20 }, (_, i) => `layout-${i}`);
    for (const gid of gids) {
      await store.saveNew(makeTrans(gid, { status: 'prepared' }), [
        makeBranch(gid, '01', 'try'),
        makeBranch(gid, '01', 'cancel'),
      ]);
      await store.insertBranches(gid, 'prepared', [makeBranch(gid, '02', 'try')]);
    }
    await store.changeStatus('layout-0', 'prepared', 'failed', {}, at(1));
    await store.createKV('topics', 't', '[]', at(1));
    const keys = (await raw.keys(`${store.keys.prefix}:*`)).sort();
    const transKeys = keys.filter((key) => key.startsWith(`${store.keys.prefix}:t:`));
    assert.deepEqual(transKeys, gids.map((g) => store.keys.trans(g)).sort(), 'exactly one key per transaction');
    const indexKeys = keys.filter((key) => !transKeys.includes(key));
    assert.deepEqual(
      indexKeys,
      [k().all, k().due, k().fin, k().kv('topics'), k().kvCats, k().kvSeq, k().seq].sort(),
      'the only other keys are the indexes and KV',
    );
    assert.equal(new Set(indexKeys.map(slotOf)).size, 1, 'index and KV keys share one slot (scripts span them)');
    assert.ok(new Set(transKeys.map(slotOf)).size >= 15, 'transactions spread over slots by gid');

    // DTM's default prefix {a}: everything in slot 'a' (one Redis, or one cluster node)
    const dtm = new RedisKeys('{a}');
    const all = [dtm.trans('x'), dtm.trans('y{z}'), dtm.due, dtm.all, dtm.fin, dtm.seq, dtm.kv('topics')];
    assert.deepEqual(new Set(all.map(slotOf)), new Set([slotOf('a')]));
    // gids with braces stay one key under a brace-less prefix
    const plainKeys = new RedisKeys('dtx');
    assert.equal(plainKeys.trans('}{weird}'), 'dtx:t:}{weird}');
    assert.equal(hashTagOf(plainKeys.due), 'dtx:i');
  });

  it('an unfinished transaction never expires, whatever Store.DataExpire; finishing sets FinishedDataExpire', async () => {
    store = newStore({ dataExpire: 5, finishedDataExpire: 300 });
    const gid = 'ttl';
    const ttl = () => raw.ttl(k().trans(gid));
    await store.saveNew(makeTrans(gid, { status: 'prepared' }), [makeBranch(gid, '01', 'try')]);
    assert.equal(await ttl(), -1, 'after saveNew: no expiry');
    // retries pushed further out than DataExpire (5 s): the transaction must still be there when they come
    await store.touchCronTime(gid, 'prepared', Date.now() + 3600_000, 3600, Date.now());
    assert.equal(await ttl(), -1, 'a next cron time beyond DataExpire keeps the key');
    const writes: [string, () => Promise<unknown>][] = [
      ['insertBranches', () => store.insertBranches(gid, 'prepared', [makeBranch(gid, '02', 'try')])],
      ['touchCronTime', () => store.touchCronTime(gid, 'prepared', at(50), 10, at(2))],
      ['changeStatus', () => store.changeStatus(gid, 'prepared', 'submitted', {}, at(3))],
      [
        'updateBranches',
        async () => {
          const [b] = await store.findBranches(gid);
          await store.updateBranches(gid, 'submitted', [{ ...b!, status: 'succeed', updateTime: at(4) }]);
        },
      ],
      ['lockDue', () => store.lockDue(at(100), at(200), 'o', 10, at(5))],
      ['resetTransCronTime', () => store.resetTransCronTime(gid, at(6))],
      ['resetCronTime', () => store.resetCronTime(at(5), 10, at(7))],
    ];
    for (const [name, write] of writes) {
      await raw.expire(k().trans(gid), 1000); // as an older version, or DataExpire in DTM, would have left it
      await write();
      assert.equal(await ttl(), -1, `${name} clears any expiry of the unfinished transaction`);
    }
    await store.changeStatus(gid, 'submitted', 'succeed', { finishTime: at(8) }, at(8));
    const t2 = await ttl();
    assert.ok(t2 > 200 && t2 <= 300, `after finishing: ${t2}`);
    // a transaction created finished gets the finished expiry at once
    await store.saveNew(makeTrans('born-done', { status: 'failed' }), []);
    const t3 = await raw.ttl(k().trans('born-done'));
    assert.ok(t3 > 200 && t3 <= 300, `created finished: ${t3}`);

    // FinishedDataExpire 0: finished transactions stay too
    await store.close();
    store = newStore({ dataExpire: 0, finishedDataExpire: 0 });
    await store.saveNew(makeTrans('forever'), []);
    assert.equal(await raw.ttl(k().trans('forever')), -1);
    await store.changeStatus('forever', 'submitted', 'succeed', {}, at(1));
    assert.equal(await raw.ttl(k().trans('forever')), -1);
  });

  it('a saga of 40,000 branch rows is saved, registered and updated, next to small writes', async () => {
    store = newStore();
    const rows = (g: string, n: number, from = 0) =>
      Array.from({ length: n }, (_, i) =>
        makeBranch(g, String(from + i).padStart(6, '0'), i % 2 ? 'compensate' : 'action'),
      );
    const huge = rows('huge', 40_000);
    await store.saveNew(makeTrans('taken'), []);
    const settled = await Promise.all([
      outcome(store.saveNew(makeTrans('small'), rows('small', 2))),
      outcome(store.saveNew(makeTrans('huge'), huge)),
      outcome(store.saveNew(makeTrans('taken'), rows('taken', 1))),
    ]);
    assert.deepEqual(settled, ['ok', 'ok', 'UniqueConflict']);
    assert.equal((await store.findBranches('huge')).length, 40_000);
    await store.insertBranches('small', 'submitted', rows('small', 30_000, 2));
    assert.equal((await store.findBranches('small')).length, 30_002);
    await store.updateBranches(
      'huge',
      'submitted',
      huge.map((b) => ({ ...b, status: 'succeed' as const, updateTime: at(7) })),
    );
    assert.equal((await store.findBranches('huge')).filter((b) => b.status === 'succeed').length, 40_000);
  });

  for (const [layout, prefix] of [
    ['cluster layout', freshPrefix],
    ['one slot', freshTaggedPrefix],
  ] as const)
    it(`next_cron_time and the cron index agree after every operation that moves it (${layout})`, async () => {
      store = newStore({ prefix: prefix() });
      const gid = 'agree';
      const agree = async (what: string) => {
        const t = await store.findTrans(gid);
        assert.equal(await dueScore(gid), t?.nextCronTime, `${what}: index score = next_cron_time`);
      };
      await store.saveNew(makeTrans(gid, { status: 'prepared', nextCronTime: at(10) }), []);
      await agree('saveNew');
      await store.touchCronTime(gid, 'prepared', at(40), 20, at(1));
      await agree('touchCronTime later');
      await store.touchCronTime(gid, 'prepared', at(5), 20, at(1));
      await agree('touchCronTime earlier');
      await store.changeStatus(gid, 'prepared', 'submitted', { nextCronTime: at(90) }, at(2));
      await agree('changeStatus with a later next_cron_time');
      await store.changeStatus(gid, 'submitted', 'aborting', { nextCronTime: at(3) }, at(2));
      await agree('changeStatus with an earlier next_cron_time');
      const [leased] = await store.lockDue(at(4), at(30), 'me', 1, at(3));
      assert.equal(leased?.gid, gid);
      await agree('lockDue');
      await store.resetTransCronTime(gid, at(7));
      await agree('resetTransCronTime');
      await store.touchCronTime(gid, 'aborting', at(500), 20, at(8));
      assert.deepEqual(await store.resetCronTime(at(100), 10, at(9)), { count: 1, hasRemaining: false });
      await agree('resetCronTime');
      await store.changeStatus(gid, 'aborting', 'failed', { rollbackTime: at(10) }, at(10));
      assert.equal(await dueScore(gid), undefined, 'finished: out of the cron index');
      assert.equal(Number(await raw.zscore(k().fin, gid)), at(10), 'in the retention index by its update_time');
    });

  it('one slot: the scripts keep the indexes exact in the same step', async () => {
    store = newStore({ prefix: freshTaggedPrefix() });
    assert.equal(store.oneSlot, true);
    await store.saveNew(makeTrans('one', { nextCronTime: at(10) }), []);
    await store.changeStatus('one', 'submitted', 'succeed', {}, at(3));
    assert.equal(await dueScore('one'), undefined);
    assert.equal(Number(await raw.zscore(k().fin, 'one')), at(3));
    // a duplicate submit of a finished gid touches no index
    assert.equal(await outcome(store.saveNew(makeTrans('one', { nextCronTime: at(2) }), [])), 'UniqueConflict');
    assert.equal(await dueScore('one'), undefined);
    assert.equal(await raw.zcard(k().all), 1);
    // created finished: straight into the retention index
    await store.saveNew(makeTrans('born-done', { status: 'failed', updateTime: at(4) }), []);
    assert.equal(Number(await raw.zscore(k().fin, 'born-done')), at(4));
    assert.equal(await dueScore('born-done'), undefined);
    // the index and KV keys share the transactions' slot
    const keys = await raw.keys(`${store.keys.prefix}:*`);
    assert.equal(new Set(keys.map(slotOf)).size, 1, keys.join(' '));
  });

  describe('index repair after a crash between an index write and a transaction write', () => {
    it('a creation that stopped after reserve: a recent member is kept, an old one forgotten', async () => {
      store = newStore();
      // reserve.3.lua ran (index first), save-new.1.lua never did
      await raw.zadd(k().due, at(10), 'half-new');
      await raw.zadd(k().all, 99, 'half-new');
      await store.saveNew(makeTrans('whole', { nextCronTime: at(10) }), []);
      // the cron within the grace minute: the member may be a creation in flight, so it is put back
      let got = await store.lockDue(at(20), at(30), 'o1', 10, at(20));
      assert.deepEqual(
        got.map((t) => t.gid),
        ['whole'],
      );
      assert.equal(await dueScore('half-new'), at(10), 'recent: its score is put back');
      // the creation completes late: the index still finds it
      await store.saveNew(makeTrans('half-new', { nextCronTime: at(10) }), []);
      got = await store.lockDue(at(20), at(30), 'o2', 10, at(20));
      assert.deepEqual(
        got.map((t) => t.gid),
        ['half-new'],
      );
      // one that never completes is forgotten after the grace period, everywhere
      await raw.zadd(k().due, at(10), 'never');
      await raw.zadd(k().all, 100, 'never');
      got = await store.lockDue(at(500), at(600), 'o3', 10, at(500));
      assert.deepEqual(got.map((t) => t.gid).sort(), ['half-new', 'whole']);
      assert.equal(await dueScore('never'), undefined);
      assert.equal(await raw.zscore(k().all, 'never'), null);
      const page = await store.scanTrans({ position: '', limit: 10 });
      assert.deepEqual(page.trans.map((t) => t.gid).sort(), ['half-new', 'whole'], 'scanTrans skips index-only gids');
    });

    it('a finish whose index step was lost: lockDue drops the member and files it for retention', async () => {
      store = newStore();
      await store.saveNew(makeTrans('done', { nextCronTime: at(10) }), []);
      await store.changeStatus('done', 'submitted', 'succeed', { finishTime: at(3) }, at(3));
      // simulate the crash: the index still says unfinished
      await raw.zadd(k().due, at(10), 'done');
      await raw.zrem(k().fin, 'done');
      assert.deepEqual(await store.lockDue(at(20), at(30), 'o', 10, at(20)), []);
      assert.equal(await dueScore('done'), undefined);
      assert.equal(Number(await raw.zscore(k().fin, 'done')), at(3));
      assert.equal((await store.findTrans('done'))?.owner, '', 'a finished trans is never leased');
      assert.equal(await store.deleteFinished(at(50), 10), 1);
    });

    it('a later next_cron_time whose index step was lost: lockDue finds it not due and moves the index to it', async () => {
      store = newStore();
      await store.saveNew(makeTrans('later', { nextCronTime: at(10) }), []);
      await store.touchCronTime('later', 'submitted', at(300), 20, at(1));
      await raw.zadd(k().due, at(10), 'later'); // as if the raise after the write was lost
      assert.deepEqual(await store.lockDue(at(20), at(30), 'o', 10, at(20)), []);
      assert.equal(await dueScore('later'), at(300));
      assert.equal((await store.findTrans('later'))?.owner, '', 'not leased');
      assert.equal((await store.findTrans('later'))?.nextCronTime, at(300), 'the truth is untouched');
    });

    it('stale members ahead in the cron index never hide due work, whatever the limit', async () => {
      store = newStore();
      await store.saveNew(makeTrans('done-dup', { nextCronTime: at(1) }), []);
      await store.changeStatus('done-dup', 'submitted', 'succeed', {}, at(1));
      // a duplicate submit of a finished gid: reserve lowers (adds) the member before save-new refuses it
      assert.equal(await outcome(store.saveNew(makeTrans('done-dup', { nextCronTime: at(2) }), [])), 'UniqueConflict');
      assert.equal(await dueScore('done-dup'), at(2));
      await raw.zadd(k().due, at(3), 'in-flight'); // a creation in flight (recent: put back)
      await store.saveNew(makeTrans('later-truth', { nextCronTime: at(4) }), []);
      await store.touchCronTime('later-truth', 'submitted', at(900), 10, at(1));
      await raw.zadd(k().due, at(4), 'later-truth'); // a lost raise
      await store.saveNew(makeTrans('really-due', { nextCronTime: at(5) }), []);
      const got = await store.lockDue(at(10), at(20), 'o', 1, at(10));
      assert.deepEqual(
        got.map((t) => t.gid),
        ['really-due'],
      );
      assert.equal(await dueScore('done-dup'), undefined);
      assert.equal(await dueScore('in-flight'), at(3));
      assert.equal(await dueScore('later-truth'), at(900));
      // resetCronTime likewise counts only what it reset, and passes over a member it put back
      await raw.zadd(k().due, at(5000), 'in-flight-2');
      await store.saveNew(makeTrans('far', { nextCronTime: at(6000) }), []);
      assert.deepEqual(await store.resetCronTime(at(1000), 1, at(30)), { count: 1, hasRemaining: true });
      assert.equal((await store.findTrans('far'))?.nextCronTime, at(30));
      assert.equal(await dueScore('in-flight-2'), at(5000), 'put back');
    });

    it('a member missing from the cron index is put back by resetTransCronTime', async () => {
      store = newStore();
      await store.saveNew(makeTrans('lost', { nextCronTime: at(10) }), []);
      await raw.zrem(k().due, 'lost');
      await store.resetTransCronTime('lost', at(2));
      assert.equal(await dueScore('lost'), at(2));
      assert.deepEqual(
        (await store.lockDue(at(5), at(15), 'o', 10, at(3))).map((t) => t.gid),
        ['lost'],
      );
    });

    it('retention forgets index entries whose transaction expired, and keeps unfinished ones out of it', async () => {
      store = newStore();
      await store.saveNew(makeTrans('expired'), []);
      await store.changeStatus('expired', 'submitted', 'succeed', {}, at(1));
      await raw.del(k().trans('expired')); // what FinishedDataExpire does
      await raw.zadd(k().fin, at(1), 'running'); // a stale entry for an unfinished trans
      await store.saveNew(makeTrans('running'), []);
      assert.equal(await store.deleteFinished(at(100), 10), 0, 'nothing deleted: one expired, one unfinished');
      assert.equal(await raw.zscore(k().all, 'expired'), null);
      assert.equal(await raw.zscore(k().fin, 'expired'), null);
      assert.equal(await raw.zscore(k().fin, 'running'), null);
      assert.notEqual(await raw.zscore(k().all, 'running'), null, 'the unfinished trans stays listed');
      assert.equal((await store.findTrans('running'))?.status, 'submitted');
    });

    it('lockDue sweeps the indexes of transactions Redis expired, at most once a minute', async () => {
      store = newStore({ finishedDataExpire: 100 });
      await store.saveNew(makeTrans('old-done'), []);
      await store.changeStatus('old-done', 'submitted', 'succeed', {}, T0);
      await raw.del(k().trans('old-done'));
      await store.lockDue(T0 + 1000, T0 + 2000, 'o', 10, T0 + 1000); // too early: expired a minute ago at most
      assert.notEqual(await raw.zscore(k().all, 'old-done'), null);
      const later = T0 + 100_000 + 120_000;
      await store.lockDue(later, later, 'o', 10, later);
      await store.close(); // waits for the background sweep
      assert.equal(await raw.zscore(k().all, 'old-done'), null);
      assert.equal(await raw.zscore(k().fin, 'old-done'), null);
    });
  });

  it('two instances on one prefix: concurrent lockDue never leases a gid twice', async () => {
    store = newStore();
    const other = new RedisStore(createRedisClient({ host: HOST, port: PORT }), { prefix: store.keys.prefix });
    try {
      for (let i = 0; i < 60; i++) await store.saveNew(makeTrans(`multi-${i}`, { nextCronTime: at(1) }), []);
      const rounds = await Promise.all(
        Array.from({ length: 6 }, (_, i) => (i % 2 ? other : store).lockDue(at(5), at(60), `inst-${i}`, 15, at(2))),
      );
      const all = rounds.flat().map((t) => t.gid);
      assert.equal(all.length, 60);
      assert.equal(new Set(all).size, 60, 'each gid leased exactly once');
      for (const [i, rows] of rounds.entries()) {
        for (const t of rows) assert.equal((await store.findTrans(t.gid))?.owner, `inst-${i}`);
      }
    } finally {
      await other.close();
    }
  });

  it('returns branch payloads as independent Buffers and keeps large batches of branches', async () => {
    store = newStore();
    const many = Array.from({ length: 300 }, (_, i) => makeBranch('wide', String(i).padStart(3, '0'), 'action'));
    await store.saveNew(makeTrans('wide'), many);
    await store.insertBranches(
      'wide',
      'submitted',
      Array.from({ length: 300 }, (_, i) => makeBranch('wide', String(i).padStart(3, '0'), 'compensate')),
    );
    const found = await store.findBranches('wide');
    assert.equal(found.length, 600);
    assert.deepEqual(
      found.map((b) => b.id),
      Array.from({ length: 600 }, (_, i) => i + 1),
    );
    assert.deepEqual(plain(found[0]!), plain({ ...many[0]!, id: 1 }));
    await store.updateBranches(
      'wide',
      'submitted',
      found.map((b) => ({ ...b, status: 'succeed' as const, finishTime: at(9), updateTime: at(9) })),
    );
    const updated = await store.findBranches('wide');
    assert.ok(updated.every((b) => b.status === 'succeed' && b.finishTime === at(9)));
  });

  it('a Redis that forgot the scripts (SCRIPT FLUSH, a restart) gets them sent again, on both layouts', async () => {
    for (const [i, prefix] of [freshPrefix(), freshTaggedPrefix()].entries()) {
      if (i > 0) await store.close(); // (afterEach closes the last one)
      store = newStore({ prefix });
      await store.saveNew(makeTrans('flushed'), [makeBranch('flushed', '01', 'action')]);
      await raw.script('FLUSH');
      // a reply read as text (changeStatus) and one read as bytes (findBranches) each take the EVAL path once
      await store.changeStatus('flushed', 'submitted', 'succeed', { finishTime: at(3) }, at(3));
      await raw.script('FLUSH');
      const [b] = await store.findBranches('flushed');
      assert.equal(b?.branchId, '01');
      assert.equal((await store.findTrans('flushed'))?.status, 'succeed');
    }
  });

  it('updateBranches ignores an id whose row has another branch_id or op', async () => {
    store = newStore();
    await store.saveNew(makeTrans('ids'), [makeBranch('ids', '01', 'compensate'), makeBranch('ids', '01', 'action')]);
    const [c, a] = await store.findBranches('ids');
    await store.updateBranches('ids', 'submitted', [{ ...a!, id: c!.id, status: 'succeed', updateTime: at(5) }]);
    assert.deepEqual(
      (await store.findBranches('ids')).map((b) => b.status),
      ['prepared', 'prepared'],
    );
  });

  it('reset() deletes the keys of its prefix only', async () => {
    store = newStore();
    const neighbour = newStore();
    try {
      await store.saveNew(makeTrans('mine'), [makeBranch('mine', '01', 'action')]);
      await store.createKV('topics', 'mine', '[]', at(1));
      await neighbour.saveNew(makeTrans('theirs'), []);
      assert.ok((await store.reset()) >= 5);
      assert.deepEqual(await raw.keys(`${store.keys.prefix}:*`), []);
      assert.equal((await neighbour.findTrans('theirs'))?.gid, 'theirs');
      await store.saveNew(makeTrans('mine'), []);
      assert.equal((await store.findTrans('mine'))?.id, 1, 'ids start again');
    } finally {
      await neighbour.close();
    }
  });

  it('openStore: Store.Driver redis with DTM keys, reset honoured', async () => {
    const prefix = freshPrefix();
    const config: DtxConfig = structuredClone(DEFAULT_CONFIG);
    Object.assign(config.Store, { Driver: 'redis', Host: HOST, Port: PORT, RedisPrefix: prefix, DataExpire: 1234 });
    const first = await openStore(config);
    await first.saveNew(makeTrans('cfg'), []);
    const ttl = await raw.ttl(`${prefix}:t:cfg`);
    await first.close();
    assert.equal(ttl, -1, 'DataExpire is accepted; an unfinished transaction has no expiry');
    store = (await openStore(config, { reset: true })) as RedisStore;
    assert.ok(store instanceof RedisStore);
    assert.equal(store.keys.prefix, prefix);
    assert.equal(await store.findTrans('cfg'), undefined, 'reset emptied the prefix');
  });

  it('parses a cluster Host list', () => {
    assert.deepEqual(clusterNodes('h1:7000, h2:7001,h3', 6379), [
      { host: 'h1', port: 7000 },
      { host: 'h2', port: 7001 },
      { host: 'h3', port: 6379 },
    ]);
    assert.throws(() => clusterNodes('h1:x', 6379), /bad port/);
  });

  it('concurrent saveNew of one gid: exactly one wins, and the admin index has it once', async () => {
    store = newStore();
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => outcome(store.saveNew(makeTrans('race', { customData: `c${i}` }), []))),
    );
    assert.equal(results.filter((r) => r === 'ok').length, 1, results.join(','));
    assert.equal(await raw.zcard(k().all), 1);
    const t = await store.findTrans('race');
    assert.equal(Number(await raw.zscore(k().all, 'race')), t?.id, 'index score = stored id');
  });
});
