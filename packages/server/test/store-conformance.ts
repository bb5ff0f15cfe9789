/**
 * The Store conformance suite (spec §8.1, §8.2, §7.3, §2.9, §2.10, §2.12 and DTM's test/store_test.go).
 * Every backend runs it unchanged:
 *
 *   storeConformance('postgres', () => openFreshPostgresStore(), () => dropTheDatabase());
 *
 * `makeStore` is called before every test and must return an **empty** store (fresh file, truncated tables,
 * flushed keyspace); the suite closes it after the test. `cleanup` runs once after the whole suite.
 * Times are epoch milliseconds chosen by the test (whole seconds, so that second-precision backends keep them
 * exactly); nothing here reads the clock.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, afterEach, beforeEach, describe, it } from 'node:test';
import type { BranchOp, BranchStatus, GlobalStatus, TransType } from '@dtx/protocol';
import { NotFoundError, UniqueConflictError } from '../src/core/errors.js';
import { decodeOptions, encodeOptions, type KV, type TransBranch, type TransGlobal } from '../src/core/model.js';
import type { ScanQuery, Store } from '../src/store/store.js';

/** 2026-01-01T00:00:00Z. */
export const T0 = 1_767_225_600_000;
/** T0 + `sec` seconds. */
export const at = (sec: number): number => T0 + sec * 1000;

/** A global transaction with every column set to something non-default unless overridden. */
export function makeTrans(gid: string, over: Partial<TransGlobal> = {}): TransGlobal {
  const options =
    over.options ??
    encodeOptions({ wait_result: true, timeout_to_fail: 60, retry_interval: 15, branch_headers: { 'x-a': '1' } });
  const t: TransGlobal = {
    gid,
    transType: 'saga',
    status: 'submitted',
    queryPrepared: '',
    protocol: 'http',
    createTime: T0,
    updateTime: T0,
    options,
    customData: '',
    nextCronInterval: 10,
    nextCronTime: at(10),
    owner: '',
    extData: '',
    result: '',
    rollbackReason: '',
    failedAttempts: 0,
    lastError: '',
    stuckAlerted: false,
    opts: decodeOptions(options),
    ...over,
  };
  return t;
}

export function makeBranch(gid: string, branchId: string, op: BranchOp, over: Partial<TransBranch> = {}): TransBranch {
  return {
    gid,
    url: `http://busi.example:8081/api/busi/${op}`,
    binData: Buffer.from(JSON.stringify({ amount: 30, branch: branchId, op })),
    branchId,
    op,
    status: 'prepared',
    createTime: T0,
    updateTime: T0,
    attempts: 0,
    lastResult: '',
    lastError: '',
    ...over,
  };
}

/** Bytes that are not valid UTF-8 (lone continuation bytes, truncated sequences, 0xff/0xfe, NUL). */
export const NON_UTF8 = Uint8Array.from([
  0xff, 0xfe, 0x00, 0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28, 0xa1, 0xf0, 0x90, 0x28, 0xbc, 0x80, 0x00, 0xed, 0xa0, 0x80,
]);

const bytes = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength);

/** Drop undefined-valued keys and view byte arrays as Buffers, so rows compare with deepStrictEqual. */
export function plain(o: object): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) {
    if (v === undefined) continue;
    out[k] = v instanceof Uint8Array ? bytes(v) : v;
  }
  return out;
}

/** Compare big payloads without dumping megabytes into the failure message. */
export function assertSameBytes(actual: Uint8Array, expected: Uint8Array, what: string): void {
  assert.ok(actual instanceof Uint8Array, `${what}: binData is a Uint8Array`);
  assert.equal(actual.byteLength, expected.byteLength, `${what}: length`);
  const a = bytes(actual);
  const e = bytes(expected);
  if (!a.equals(e)) {
    let i = 0;
    while (a[i] === e[i]) i++;
    assert.fail(`${what}: bytes differ first at offset ${i} (${a[i]} != ${e[i]})`);
  }
}

/** Settle without letting a rejection go unhandled meanwhile: 'ok', 'NotFound', 'UniqueConflict' or 'other: …'. */
export async function outcome(p: Promise<unknown>): Promise<'ok' | 'NotFound' | 'UniqueConflict' | string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    if (err instanceof NotFoundError) return 'NotFound';
    if (err instanceof UniqueConflictError) return 'UniqueConflict';
    return `other: ${String(err)}`;
  }
}

const gidsOf = (rows: { gid: string }[]): string[] => rows.map((r) => r.gid);

export function storeConformance(name: string, makeStore: () => Promise<Store>, cleanup?: () => Promise<void>): void {
  describe(`Store conformance: ${name}`, () => {
    let store: Store;
    beforeEach(async () => {
      store = await makeStore();
    });
    afterEach(async () => {
      await store.close();
    });
    if (cleanup) after(cleanup);

    /** Save `n` trans g<prefix>-0..n-1 with the given shape; returns them in creation order. */
    async function saveMany(prefix: string, n: number, over: Partial<TransGlobal> = {}): Promise<TransGlobal[]> {
      const out: TransGlobal[] = [];
      for (let i = 0; i < n; i++) {
        const t = makeTrans(`${prefix}-${i}`, over);
        await store.saveNew(t, []);
        out.push(t);
      }
      return out;
    }

    it('ping resolves', async () => {
      await store.ping();
    });

    describe('saveNew, findTrans, findBranches', () => {
      it('round-trips every column of the global and sets its id', async () => {
        const options = encodeOptions({
          wait_result: true,
          timeout_to_fail: 60,
          request_timeout: 7,
          retry_interval: 15,
          branch_headers: { 'x-tenant': 'a', authorization: 'Bearer z' },
          concurrent: true,
          retry_limit: 3,
        });
        const t = makeTrans('gid-all-fields', {
          transType: 'msg',
          status: 'prepared',
          queryPrepared: 'http://busi.example:8081/api/busi/query',
          protocol: 'grpc',
          createTime: at(1),
          updateTime: at(2),
          options,
          opts: decodeOptions(options),
          customData: '{"orders":{"1":[0]},"concurrent":true}',
          nextCronInterval: 15,
          nextCronTime: at(16),
          owner: 'owner-at-creation',
          extData: '{"headers":{"x-trace":"abc"}}',
          result: 'cmVzdWx0IMOp',
          rollbackReason: 'raison: solde insuffisant — ü',
        });
        await store.saveNew(t, []);
        assert.ok(Number.isSafeInteger(t.id) && (t.id ?? 0) > 0, `saveNew sets a positive integer id, got ${t.id}`);
        const found = await store.findTrans('gid-all-fields');
        assert.ok(found, 'found after saveNew');
        assert.deepEqual(plain(found), plain(t));
        assert.deepEqual(found.opts, {
          wait_result: true,
          timeout_to_fail: 60,
          request_timeout: 7,
          retry_interval: 15,
          branch_headers: { 'x-tenant': 'a', authorization: 'Bearer z' },
          concurrent: true,
          retry_limit: 3,
        });
        assert.equal(found.finishTime, undefined);
        assert.equal(found.rollbackTime, undefined);
      });

      it('findTrans of an unknown gid is undefined; findBranches of it is []', async () => {
        assert.equal(await store.findTrans('no-such-gid'), undefined);
        assert.deepEqual(await store.findBranches('no-such-gid'), []);
        await store.saveNew(makeTrans('no-branches'), []);
        assert.deepEqual(await store.findBranches('no-branches'), []);
      });

      it('round-trips branches in insertion order, with every column and the exact bytes', async () => {
        const all256 = Uint8Array.from({ length: 256 }, (_, i) => i);
        const branches = [
          makeBranch('gid-br', '01', 'compensate', { binData: NON_UTF8, url: 'http://b/comp?x=1&y=é' }),
          makeBranch('gid-br', '01', 'action', { createTime: at(1), updateTime: at(2) }),
          makeBranch('gid-br', '03', 'compensate', { binData: new Uint8Array(0) }),
          makeBranch('gid-br', '02', 'action', { binData: all256, status: 'succeed' as BranchStatus }),
        ];
        const t = makeTrans('gid-br');
        await store.saveNew(t, branches);
        const ids = branches.map((b) => b.id);
        for (const id of ids) assert.ok(Number.isSafeInteger(id) && (id ?? 0) > 0, `branch id set, got ${id}`);
        assert.equal(new Set(ids).size, ids.length, 'branch ids are distinct');

        const found = await store.findBranches('gid-br');
        assert.deepEqual(
          found.map((b) => `${b.branchId}/${b.op}`),
          ['01/compensate', '01/action', '03/compensate', '02/action'],
          'insertion order, not sorted by branch_id or op',
        );
        assert.deepEqual(found.map(plain), branches.map(plain));
        for (let i = 0; i < found.length; i++) {
          assertSameBytes(found[i]!.binData, branches[i]!.binData, `branch ${i}`);
        }
        assert.equal(found[2]!.binData.byteLength, 0, 'empty payload stays empty');
      });

      it('saves, updates and finishes the 2,000 branches of a saga of 1,000 steps (Limits.MaxSteps)', async () => {
        const gid = 'gid-max-steps';
        const branches: TransBranch[] = [];
        for (let i = 1; i <= 1000; i++) {
          const id = String(i).padStart(4, '0');
          branches.push(makeBranch(gid, id, 'compensate'), makeBranch(gid, id, 'action'));
        }
        await store.saveNew(makeTrans(gid), branches);
        const ids = branches.map((b) => b.id);
        assert.equal(new Set(ids).size, 2000, 'branch ids set and distinct');
        let found = await store.findBranches(gid);
        assert.deepEqual(
          found.map((b) => [b.id, b.branchId, b.op]),
          branches.map((b) => [b.id, b.branchId, b.op]),
          'every row, in insertion order, under the id it was given',
        );
        const done = (b: TransBranch, t: number, attempts: number): TransBranch => ({
          ...b,
          status: 'succeed',
          finishTime: at(t),
          updateTime: at(t),
          attempts,
          lastAttemptTime: at(t),
          lastResult: 'SUCCESS',
        });
        const first = found.slice(0, 1500).map((b) => done(b, 5, 1));
        await store.updateBranches(gid, 'submitted', first);
        assert.deepEqual((await store.findBranches(gid)).slice(0, 1500).map(plain), first.map(plain));
        // the status change carries the rest, over 1,000 of them in one write again
        const rest = found.map((b) => done(b, 6, 2));
        await store.changeStatus(gid, 'submitted', 'succeed', { finishTime: at(7), branches: rest }, at(7));
        assert.equal((await store.findTrans(gid))?.status, 'succeed');
        found = await store.findBranches(gid);
        assert.deepEqual(found.map(plain), rest.map(plain));
      });

      it('keeps a 5 MiB payload byte for byte', async () => {
        const big = randomBytes(5 * 1024 * 1024);
        big.set(NON_UTF8, 1000);
        await store.saveNew(makeTrans('gid-big'), [makeBranch('gid-big', '01', 'action', { binData: big })]);
        const [b] = await store.findBranches('gid-big');
        assert.ok(b);
        assertSameBytes(b.binData, big, '5 MiB payload');
      });

      it('a duplicate gid is a UniqueConflictError and writes nothing', async () => {
        const first = makeTrans('gid-dup', { customData: 'first' });
        await store.saveNew(first, [makeBranch('gid-dup', '01', 'action')]);
        const second = makeTrans('gid-dup', {
          customData: 'second',
          status: 'prepared',
          transType: 'tcc',
          nextCronTime: at(99),
        });
        await assert.rejects(
          store.saveNew(second, [makeBranch('gid-dup', '05', 'try'), makeBranch('gid-dup', '06', 'try')]),
          UniqueConflictError,
        );
        const found = await store.findTrans('gid-dup');
        assert.ok(found);
        assert.deepEqual(plain(found), plain(first));
        assert.deepEqual(
          (await store.findBranches('gid-dup')).map((b) => `${b.branchId}/${b.op}`),
          ['01/action'],
        );
        const page = await store.scanTrans({ position: '', limit: 10 });
        assert.deepEqual(gidsOf(page.trans), ['gid-dup'], 'exactly one global row');
      });

      it('returns copies: mutating a returned row or the saved object does not change the store', async () => {
        const t = makeTrans('gid-copy');
        const b = makeBranch('gid-copy', '01', 'action');
        await store.saveNew(t, [b]);
        t.status = 'failed';
        t.customData = 'mutated';
        b.status = 'failed';
        b.url = 'mutated';
        const found = await store.findTrans('gid-copy');
        assert.ok(found);
        found.status = 'succeed';
        found.opts.retry_interval = 99;
        const [fb] = await store.findBranches('gid-copy');
        assert.ok(fb);
        fb.status = 'succeed';
        const again = await store.findTrans('gid-copy');
        assert.equal(again?.status, 'submitted');
        assert.equal(again?.customData, '');
        assert.equal(again?.opts.retry_interval, 15);
        const [bAgain] = await store.findBranches('gid-copy');
        assert.equal(bAgain?.status, 'prepared');
        assert.equal(bAgain?.url, 'http://busi.example:8081/api/busi/action');
      });

      it('holds its own copy of payload bytes (the caller may reuse its buffer)', async () => {
        const payload = Uint8Array.from([1, 2, 3, 4]);
        await store.saveNew(makeTrans('gid-bytes'), [makeBranch('gid-bytes', '01', 'action', { binData: payload })]);
        payload.fill(0xee); // e.g. a pooled request buffer reused after the write resolved
        const [b] = await store.findBranches('gid-bytes');
        assert.ok(b);
        assertSameBytes(b.binData, Uint8Array.from([1, 2, 3, 4]), 'stored payload after the input buffer changed');
        b.binData.fill(0xdd);
        const [again] = await store.findBranches('gid-bytes');
        assert.ok(again);
        assertSameBytes(again.binData, Uint8Array.from([1, 2, 3, 4]), 'stored payload after a read copy changed');
      });
    });

    describe('insertBranches (registerBranch; spec §8.1 LockGlobalSaveBranches with −1)', () => {
      it('appends after the existing branches when the status matches, and sets ids (TestStoreSave)', async () => {
        const first = makeBranch('gid-ins', '01', 'action');
        await store.saveNew(makeTrans('gid-ins', { transType: 'tcc', status: 'prepared' }), [first]);
        const added = [makeBranch('gid-ins', '02', 'try'), makeBranch('gid-ins', '02', 'confirm')];
        await store.insertBranches('gid-ins', 'prepared', added);
        for (const b of added) assert.ok(Number.isSafeInteger(b.id) && (b.id ?? 0) > 0, 'id set');
        assert.equal(new Set([first.id, ...added.map((b) => b.id)]).size, 3, 'ids distinct');
        const found = await store.findBranches('gid-ins');
        assert.deepEqual(
          found.map((b) => `${b.branchId}/${b.op}`),
          ['01/action', '02/try', '02/confirm'],
        );
        assert.deepEqual(found.map(plain), [first, ...added].map(plain));
      });

      it('throws NotFoundError when the global has another status or does not exist, writing nothing', async () => {
        await store.saveNew(makeTrans('gid-ins-st', { status: 'prepared' }), [makeBranch('gid-ins-st', '01', 'try')]);
        await assert.rejects(
          store.insertBranches('gid-ins-st', 'submitted', [makeBranch('gid-ins-st', '02', 'try')]),
          NotFoundError,
        );
        await assert.rejects(
          store.insertBranches('gid-missing', 'prepared', [makeBranch('gid-missing', '01', 'try')]),
          NotFoundError,
        );
        assert.deepEqual(
          (await store.findBranches('gid-ins-st')).map((b) => b.branchId),
          ['01'],
        );
        assert.deepEqual(await store.findBranches('gid-missing'), []);
      });

      it('a duplicate (gid, branch_id, op) is a UniqueConflictError and none of the batch is written', async () => {
        await store.saveNew(makeTrans('gid-ins-dup', { status: 'prepared' }), [makeBranch('gid-ins-dup', '01', 'try')]);
        await assert.rejects(
          store.insertBranches('gid-ins-dup', 'prepared', [
            makeBranch('gid-ins-dup', '03', 'try'),
            makeBranch('gid-ins-dup', '01', 'try', { url: 'http://other' }),
          ]),
          UniqueConflictError,
        );
        const found = await store.findBranches('gid-ins-dup');
        assert.deepEqual(
          found.map((b) => `${b.branchId}/${b.op}`),
          ['01/try'],
          'the new 03/try of the failed batch is not written',
        );
        assert.equal(found[0]?.url, 'http://busi.example:8081/api/busi/try', 'the existing row is unchanged');
        // TestWorkflowBranchConflict: a second (00, action) of a workflow
        await store.saveNew(makeTrans('gid-wf', { transType: 'workflow', status: 'prepared' }), []);
        await store.insertBranches('gid-wf', 'prepared', [makeBranch('gid-wf', '00', 'action')]);
        await assert.rejects(
          store.insertBranches('gid-wf', 'prepared', [makeBranch('gid-wf', '00', 'action')]),
          UniqueConflictError,
        );
      });

      it('a duplicate inside one batch is a UniqueConflictError and none of the batch is written', async () => {
        await store.saveNew(makeTrans('gid-ins-dup2', { status: 'prepared' }), []);
        await assert.rejects(
          store.insertBranches('gid-ins-dup2', 'prepared', [
            makeBranch('gid-ins-dup2', '05', 'action'),
            makeBranch('gid-ins-dup2', '05', 'action'),
          ]),
          UniqueConflictError,
        );
        assert.deepEqual(await store.findBranches('gid-ins-dup2'), []);
      });

      it('the same branch_id with another op, or under another gid, is not a conflict', async () => {
        await store.saveNew(makeTrans('gid-a', { status: 'prepared' }), [makeBranch('gid-a', '01', 'try')]);
        await store.saveNew(makeTrans('gid-b', { status: 'prepared' }), [makeBranch('gid-b', '01', 'try')]);
        await store.insertBranches('gid-a', 'prepared', [
          makeBranch('gid-a', '01', 'confirm'),
          makeBranch('gid-a', '01', 'cancel'),
        ]);
        await store.insertBranches('gid-b', 'prepared', [makeBranch('gid-b', '01', 'confirm')]);
        assert.equal((await store.findBranches('gid-a')).length, 3);
        assert.equal((await store.findBranches('gid-b')).length, 2);
      });
    });

    describe('updateBranches (conditional on the global status, spec §8.2)', () => {
      async function seed(): Promise<TransBranch[]> {
        const branches = [
          makeBranch('gid-up', '01', 'compensate'),
          makeBranch('gid-up', '01', 'action'),
          makeBranch('gid-up', '02', 'compensate'),
          makeBranch('gid-up', '02', 'action'),
        ];
        await store.saveNew(makeTrans('gid-up'), branches);
        return store.findBranches('gid-up');
      }

      it('writes status, finish_time, rollback_time and update_time of the addressed rows only', async () => {
        const rows = await seed();
        const before = rows.map(plain);
        const a1 = { ...rows[1]!, status: 'succeed' as BranchStatus, finishTime: at(5), updateTime: at(5) };
        const c2 = { ...rows[2]!, status: 'failed' as BranchStatus, rollbackTime: at(6), updateTime: at(6) };
        // columns updateBranches must not write
        a1.url = 'http://changed';
        a1.binData = Buffer.from('changed');
        a1.createTime = at(77);
        await store.updateBranches('gid-up', 'submitted', [a1, c2]);
        const after = (await store.findBranches('gid-up')).map(plain);
        assert.deepEqual(after[0], before[0], 'untouched row');
        assert.deepEqual(after[3], before[3], 'untouched row');
        assert.deepEqual(after[1], { ...before[1], status: 'succeed', finishTime: at(5), updateTime: at(5) });
        assert.deepEqual(after[2], { ...before[2], status: 'failed', rollbackTime: at(6), updateTime: at(6) });
        assert.equal((await store.findTrans('gid-up'))?.status, 'submitted', 'the global is not changed');
      });

      it('throws NotFoundError and writes nothing when the global status moved or the gid is missing', async () => {
        const rows = await seed();
        const before = rows.map(plain);
        await store.changeStatus('gid-up', 'submitted', 'aborting', {}, at(3));
        const a1 = { ...rows[1]!, status: 'succeed' as BranchStatus, finishTime: at(5), updateTime: at(5) };
        await assert.rejects(store.updateBranches('gid-up', 'submitted', [a1]), NotFoundError);
        assert.deepEqual((await store.findBranches('gid-up')).map(plain), before);
        await assert.rejects(store.updateBranches('gid-nope', 'submitted', [a1]), NotFoundError);
        assert.deepEqual((await store.findBranches('gid-up')).map(plain), before);
        // with the current status it succeeds
        await store.updateBranches('gid-up', 'aborting', [a1]);
        assert.equal((await store.findBranches('gid-up'))[1]?.status, 'succeed');
      });

      it("never writes a branch of another gid, even when addressed by that branch's id", async () => {
        await seed();
        await store.saveNew(makeTrans('gid-other'), [makeBranch('gid-other', '01', 'action')]);
        const [other] = await store.findBranches('gid-other');
        assert.ok(other);
        await store
          .updateBranches('gid-up', 'submitted', [
            { ...other, status: 'succeed', finishTime: at(5), updateTime: at(5) },
          ])
          .catch(() => undefined); // rejecting is fine too; writing is not
        const [otherAfter] = await store.findBranches('gid-other');
        assert.deepEqual(plain(otherAfter!), plain(other));
      });
    });

    describe('changeStatus (compare-and-set)', () => {
      it('CAS: a wrong `from` or a missing gid is NotFoundError and changes nothing (TestStoreChangeStatus)', async () => {
        const t = makeTrans('gid-cas', { status: 'prepared' });
        await store.saveNew(t, []);
        const before = plain((await store.findTrans('gid-cas'))!);
        await assert.rejects(
          store.changeStatus('gid-cas', 'submitted', 'succeed', { finishTime: at(9) }, at(9)),
          NotFoundError,
        );
        await assert.rejects(store.changeStatus('gid-none', 'prepared', 'submitted', {}, at(9)), NotFoundError);
        assert.deepEqual(plain((await store.findTrans('gid-cas'))!), before);

        await store.changeStatus('gid-cas', 'prepared', 'submitted', {}, at(2));
        let found = await store.findTrans('gid-cas');
        assert.equal(found?.status, 'submitted');
        assert.equal(found?.updateTime, at(2));
        assert.equal(found?.finishTime, undefined);

        await store.changeStatus('gid-cas', 'submitted', 'succeed', { finishTime: at(4) }, at(4));
        found = await store.findTrans('gid-cas');
        assert.equal(found?.status, 'succeed');
        assert.equal(found?.updateTime, at(4));
        assert.equal(found?.finishTime, at(4));
        assert.equal(found?.rollbackTime, undefined);
        // the old status is gone: repeating the move loses
        await assert.rejects(store.changeStatus('gid-cas', 'submitted', 'succeed', {}, at(5)), NotFoundError);
      });

      it('writes rollback_reason only when non-empty and never clears it; rollback_time and finish_time', async () => {
        await store.saveNew(makeTrans('gid-rb'), []);
        await store.changeStatus('gid-rb', 'submitted', 'aborting', { rollbackReason: 'insufficient balance' }, at(3));
        let found = await store.findTrans('gid-rb');
        assert.equal(found?.rollbackReason, 'insufficient balance');
        assert.equal(found?.rollbackTime, undefined);
        await store.changeStatus('gid-rb', 'aborting', 'failed', { rollbackReason: '', rollbackTime: at(8) }, at(8));
        found = await store.findTrans('gid-rb');
        assert.equal(found?.status, 'failed');
        assert.equal(found?.rollbackReason, 'insufficient balance', "'' does not clear the reason");
        assert.equal(found?.rollbackTime, at(8));
        assert.equal(found?.updateTime, at(8));
        assert.equal(found?.finishTime, undefined, 'finish_time only when given');

        await store.saveNew(makeTrans('gid-rb2', { rollbackReason: 'from submit' }), []);
        await store.changeStatus('gid-rb2', 'submitted', 'aborting', {}, at(3));
        assert.equal((await store.findTrans('gid-rb2'))?.rollbackReason, 'from submit', 'undefined keeps it');
      });

      it('writes result, next_cron_time and next_cron_interval when given, and leaves other columns alone', async () => {
        const t = makeTrans('gid-cols', { transType: 'workflow', status: 'prepared', result: '' });
        await store.saveNew(t, []);
        const before = plain((await store.findTrans('gid-cols'))!);
        await store.changeStatus(
          'gid-cols',
          'prepared',
          'submitted',
          { nextCronTime: at(50), nextCronInterval: 20 },
          at(30),
        );
        let found = plain((await store.findTrans('gid-cols'))!);
        assert.deepEqual(found, {
          ...before,
          status: 'submitted',
          updateTime: at(30),
          nextCronTime: at(50),
          nextCronInterval: 20,
        });
        await store.changeStatus('gid-cols', 'submitted', 'succeed', { result: 'b2s=', finishTime: at(31) }, at(31));
        found = plain((await store.findTrans('gid-cols'))!);
        assert.deepEqual(found, {
          ...before,
          status: 'succeed',
          updateTime: at(31),
          nextCronTime: at(50),
          nextCronInterval: 20,
          result: 'b2s=',
          finishTime: at(31),
        });
      });

      it('of several concurrent moves from the same status exactly one wins', async () => {
        await store.saveNew(makeTrans('gid-race'), []);
        const targets: GlobalStatus[] = ['succeed', 'aborting', 'failed', 'succeed', 'aborting'];
        const results = await Promise.all(
          targets.map((to, i) =>
            outcome(store.changeStatus('gid-race', 'submitted', to, { rollbackReason: `r${i}` }, at(i + 1))),
          ),
        );
        assert.equal(results.filter((r) => r === 'ok').length, 1, `one winner: ${results.join(', ')}`);
        assert.equal(results.filter((r) => r === 'NotFound').length, targets.length - 1, results.join(', '));
        const w = results.indexOf('ok');
        const found = await store.findTrans('gid-race');
        assert.equal(found?.status, targets[w]);
        assert.equal(found?.rollbackReason, `r${w}`);
        assert.equal(found?.updateTime, at(w + 1));
      });

      it('with branches: the results and the move in one write, the attempt record too; none of it when the CAS loses', async () => {
        const gid = 'gid-cs-br';
        await store.saveNew(makeTrans(gid), [
          makeBranch(gid, '01', 'compensate'),
          makeBranch(gid, '01', 'action'),
          makeBranch(gid, '02', 'compensate'),
          makeBranch(gid, '02', 'action'),
        ]);
        const rows = await store.findBranches(gid);
        const before = rows.map(plain);
        const done = (b: TransBranch, t: number): TransBranch => ({
          ...b,
          status: 'succeed',
          finishTime: at(t),
          updateTime: at(t),
          attempts: 1,
          lastAttemptTime: at(t),
          lastResult: 'SUCCESS',
        });
        const a1 = done(rows[1]!, 5);
        const a2 = done(rows[3]!, 6);
        // a lost CAS writes neither the status nor any branch
        await assert.rejects(
          store.changeStatus(gid, 'aborting', 'succeed', { finishTime: at(7), branches: [a1, a2] }, at(7)),
          NotFoundError,
        );
        assert.deepEqual((await store.findBranches(gid)).map(plain), before);
        assert.equal((await store.findTrans(gid))?.status, 'submitted');

        await store.changeStatus(gid, 'submitted', 'succeed', { finishTime: at(7), branches: [a1, a2] }, at(7));
        const found = await store.findTrans(gid);
        assert.equal(found?.status, 'succeed');
        assert.equal(found?.finishTime, at(7));
        const after = (await store.findBranches(gid)).map(plain);
        assert.deepEqual(after[0], before[0], 'untouched row');
        assert.deepEqual(after[2], before[2], 'untouched row');
        assert.deepEqual(after[1], plain(a1));
        assert.deepEqual(after[3], plain(a2));
      });

      it('with 1 to 20 branch results: writes each of them and leaves the rest (so does updateBranches)', async () => {
        for (const via of ['changeStatus', 'updateBranches'] as const)
          for (const n of [1, 15, 16, 17, 20]) {
            const gid = `gid-cs-${via}-n${n}`;
            const all: TransBranch[] = [];
            for (let i = 1; i <= 20; i++) {
              const id = String(i).padStart(2, '0');
              all.push(makeBranch(gid, id, 'compensate'), makeBranch(gid, id, 'action'));
            }
            await store.saveNew(makeTrans(gid), all);
            const rows = await store.findBranches(gid);
            // every other action, from the last one back: not in id order, not contiguous
            const picked = rows
              .filter((b) => b.op === 'action')
              .reverse()
              .slice(0, n);
            const results = picked.map((b, i) => ({
              ...b,
              status: (i % 3 === 0 ? 'failed' : 'succeed') as BranchStatus,
              finishTime: at(10 + i),
              rollbackTime: i % 2 ? at(30 + i) : undefined,
              updateTime: at(50 + i),
              attempts: i + 1,
              lastAttemptTime: at(70 + i),
              lastResult: i % 3 === 0 ? 'FAILURE' : 'SUCCESS',
              lastError: i % 3 === 0 ? `branch ${b.branchId} said no` : '',
            }));
            if (via === 'updateBranches') {
              await assert.rejects(store.updateBranches(gid, 'prepared', results), NotFoundError, `${n}: lost CAS`);
              assert.deepEqual((await store.findBranches(gid)).map(plain), rows.map(plain), `${n}: lost CAS wrote`);
              await store.updateBranches(gid, 'submitted', results);
              assert.equal((await store.findTrans(gid))?.status, 'submitted');
            } else {
              await store.changeStatus(
                gid,
                'submitted',
                'aborting',
                { rollbackReason: `because of ${n}`, branches: results },
                at(9),
              );
              const t = await store.findTrans(gid);
              assert.equal(t?.status, 'aborting');
              assert.equal(t?.rollbackReason, `because of ${n}`);
            }
            const byId = new Map(results.map((b) => [b.id, b]));
            assert.deepEqual(
              (await store.findBranches(gid)).map(plain),
              rows.map((b) => plain(byId.get(b.id) ?? b)),
              `${n} results written, the other ${40 - n} rows untouched`,
            );
          }
      });

      it("with branches: never writes a branch of another gid, even when addressed by that branch's id", async () => {
        await store.saveNew(makeTrans('gid-cs-x'), [makeBranch('gid-cs-x', '01', 'action')]);
        await store.saveNew(makeTrans('gid-cs-y'), [makeBranch('gid-cs-y', '01', 'action')]);
        const [other] = await store.findBranches('gid-cs-y');
        await store.changeStatus(
          'gid-cs-x',
          'submitted',
          'succeed',
          { branches: [{ ...other!, status: 'succeed', finishTime: at(5), updateTime: at(5) }] },
          at(5),
        );
        assert.equal((await store.findTrans('gid-cs-x'))?.status, 'succeed');
        assert.deepEqual(plain((await store.findBranches('gid-cs-y'))[0]!), plain(other!));
      });
    });

    describe('attempt history, stuck rule and the stuck-alert flag', () => {
      // at most 1 KiB of UTF-8 with multi-byte characters, as replyExcerpt makes them
      const ERR = `http status 503: ${'é€'.repeat(150)}`.slice(0, 300);

      async function seed(gid: string): Promise<TransBranch[]> {
        await store.saveNew(makeTrans(gid), [makeBranch(gid, '01', 'compensate'), makeBranch(gid, '01', 'action')]);
        return store.findBranches(gid);
      }

      it('updateBranches writes the attempt record; a later success keeps the last error', async () => {
        const rows = await seed('gid-at');
        const a = { ...rows[1]!, attempts: 3, lastAttemptTime: at(7), lastResult: 'FAILURE', lastError: ERR };
        await store.updateBranches('gid-at', 'submitted', [a]);
        let got = (await store.findBranches('gid-at'))[1]!;
        assert.deepEqual(
          [got.attempts, got.lastAttemptTime, got.lastResult, got.lastError],
          [3, at(7), 'FAILURE', ERR],
        );
        const ok = {
          ...got,
          status: 'succeed' as BranchStatus,
          attempts: 4,
          lastAttemptTime: at(9),
          lastResult: 'SUCCESS',
        };
        await store.updateBranches('gid-at', 'submitted', [ok]);
        got = (await store.findBranches('gid-at'))[1]!;
        assert.deepEqual(
          [got.status, got.attempts, got.lastAttemptTime, got.lastResult, got.lastError],
          ['succeed', 4, at(9), 'SUCCESS', ERR],
        );
        assert.equal((await store.findBranches('gid-at'))[0]!.attempts, 0, 'the other branch untouched');
      });

      it('recordFailedAttempt writes the branch and the global together while the status matches', async () => {
        const rows = await seed('gid-fa');
        const beforeT = plain((await store.findTrans('gid-fa'))!);
        const b = { ...rows[1]!, attempts: 2, lastAttemptTime: at(4), lastResult: 'ERROR', lastError: ERR };
        const attempt = { nextCronTime: at(44), nextCronInterval: 40, failedAttempts: 2, lastError: ERR };
        await store.recordFailedAttempt('gid-fa', 'submitted', b, attempt, at(4));
        assert.deepEqual(plain((await store.findTrans('gid-fa'))!), {
          ...beforeT,
          nextCronTime: at(44),
          nextCronInterval: 40,
          failedAttempts: 2,
          lastError: ERR,
          updateTime: at(4),
        });
        const got = (await store.findBranches('gid-fa'))[1]!;
        assert.deepEqual(
          [got.status, got.attempts, got.lastAttemptTime, got.lastResult, got.lastError],
          ['prepared', 2, at(4), 'ERROR', ERR],
        );
        // the msg back-check: no branch, the global only
        await store.recordFailedAttempt(
          'gid-fa',
          'submitted',
          undefined,
          { ...attempt, failedAttempts: 3, lastError: 'x' },
          at(5),
        );
        const t = (await store.findTrans('gid-fa'))!;
        assert.deepEqual([t.failedAttempts, t.lastError], [3, 'x']);
        assert.equal((await store.findBranches('gid-fa'))[1]!.attempts, 2);
      });

      it('recordFailedAttempt is a silent no-op, for the branch too, when the status moved', async () => {
        const rows = await seed('gid-fb');
        await store.changeStatus('gid-fb', 'submitted', 'aborting', { rollbackReason: 'r' }, at(2));
        const beforeT = plain((await store.findTrans('gid-fb'))!);
        const beforeB = (await store.findBranches('gid-fb')).map(plain);
        const b = { ...rows[1]!, attempts: 1, lastAttemptTime: at(4), lastResult: 'ERROR', lastError: 'e' };
        await store.recordFailedAttempt(
          'gid-fb',
          'submitted',
          b,
          { nextCronTime: at(44), nextCronInterval: 40, failedAttempts: 1, lastError: 'e' },
          at(4),
        );
        assert.deepEqual(plain((await store.findTrans('gid-fb'))!), beforeT);
        assert.deepEqual((await store.findBranches('gid-fb')).map(plain), beforeB);
      });

      it('touchCronTime zeroes failed_attempts only when asked to', async () => {
        await seed('gid-tr');
        const attempt = { nextCronTime: at(44), nextCronInterval: 40, failedAttempts: 5, lastError: 'e' };
        await store.recordFailedAttempt('gid-tr', 'submitted', undefined, attempt, at(4));
        await store.touchCronTime('gid-tr', 'submitted', at(50), 40, at(5));
        assert.equal((await store.findTrans('gid-tr'))!.failedAttempts, 5);
        await store.claimStuckAlert('gid-tr', 'submitted');
        // the cron lease hands the pass the attempt columns too
        const [leased] = await store.lockDue(at(51), at(55), 'me', 1, at(5));
        assert.deepEqual([leased?.failedAttempts, leased?.lastError, leased?.stuckAlerted], [5, 'e', true]);
        await store.touchCronTime('gid-tr', 'submitted', at(60), 10, at(6), true);
        const t = (await store.findTrans('gid-tr'))!;
        assert.deepEqual([t.failedAttempts, t.lastError, t.nextCronTime], [0, 'e', at(60)]);
      });

      it('claimStuckAlert: exactly one of concurrent claims wins, once; never on another status', async () => {
        await seed('gid-cl');
        assert.equal(await store.claimStuckAlert('gid-cl', 'aborting'), false);
        assert.equal(await store.claimStuckAlert('gid-missing', 'submitted'), false);
        assert.equal((await store.findTrans('gid-cl'))!.stuckAlerted, false);
        const wins = await Promise.all(Array.from({ length: 5 }, () => store.claimStuckAlert('gid-cl', 'submitted')));
        assert.equal(wins.filter((w) => w).length, 1);
        assert.equal(await store.claimStuckAlert('gid-cl', 'submitted'), false);
        assert.equal((await store.findTrans('gid-cl'))!.stuckAlerted, true);
      });

      it('findStuck / countStuck: unfinished by failed attempts or age, newest first, paged', async () => {
        const fail = (gid: string, n: number) =>
          store.recordFailedAttempt(
            gid,
            'submitted',
            undefined,
            { nextCronTime: at(99), nextCronInterval: 20, failedAttempts: n, lastError: 'e' },
            at(9),
          );
        // created at T0 + i s; s1..s3 fail 3 times, s4 twice, s5 is old, s6 is finished with 9 failures
        for (let i = 1; i <= 6; i++) await store.saveNew(makeTrans(`s${i}`, { createTime: at(i * 100) }), []);
        for (const g of ['s1', 's2', 's3', 's6']) await fail(g, g === 's6' ? 9 : 3);
        await fail('s4', 2);
        await store.changeStatus('s6', 'submitted', 'failed', { rollbackTime: at(9) }, at(9));
        const rule = { failedAttempts: 3, createdBefore: 0 };
        const page1 = await store.findStuck(rule, '', 2);
        assert.deepEqual(gidsOf(page1.trans), ['s3', 's2']);
        assert.notEqual(page1.nextPosition, '');
        const page2 = await store.findStuck(rule, page1.nextPosition, 2);
        assert.deepEqual(gidsOf(page2.trans), ['s1']);
        assert.equal(page2.nextPosition, '');
        assert.deepEqual(await store.countStuck(rule), { attempts: 3, age: 0 });
        // the age rule: created before T0 + 450 s → s1..s4 (s1..s3 count as attempts)
        const both = { failedAttempts: 3, createdBefore: at(450) };
        assert.deepEqual(gidsOf((await store.findStuck(both, '', 10)).trans), ['s4', 's3', 's2', 's1']);
        assert.deepEqual(await store.countStuck(both), { attempts: 3, age: 1 });
        // 0 disables the attempts rule
        const ageOnly = { failedAttempts: 0, createdBefore: at(250) };
        assert.deepEqual(gidsOf((await store.findStuck(ageOnly, '', 10)).trans), ['s2', 's1']);
        assert.deepEqual(await store.countStuck(ageOnly), { attempts: 0, age: 2 });
        assert.deepEqual(await store.countStuck({ failedAttempts: 0, createdBefore: 0 }), { attempts: 0, age: 0 });
      });
    });

    describe('touchCronTime', () => {
      it('writes next_cron_time, next_cron_interval and update_time while the status matches', async () => {
        await store.saveNew(makeTrans('gid-touch'), []);
        const before = plain((await store.findTrans('gid-touch'))!);
        await store.touchCronTime('gid-touch', 'submitted', at(40), 20, at(20));
        assert.deepEqual(plain((await store.findTrans('gid-touch'))!), {
          ...before,
          nextCronTime: at(40),
          nextCronInterval: 20,
          updateTime: at(20),
        });
      });

      it('is a silent no-op when the status moved or the gid is missing', async () => {
        await store.saveNew(makeTrans('gid-touch2'), []);
        await store.changeStatus('gid-touch2', 'submitted', 'succeed', { finishTime: at(3) }, at(3));
        const before = plain((await store.findTrans('gid-touch2'))!);
        await store.touchCronTime('gid-touch2', 'submitted', at(40), 20, at(20));
        assert.deepEqual(plain((await store.findTrans('gid-touch2'))!), before);
        await store.touchCronTime('gid-not-there', 'submitted', at(40), 20, at(20));
        assert.equal(await store.findTrans('gid-not-there'), undefined);
      });
    });

    describe('lockDue (the cron lease, spec §7.3)', () => {
      it('DTM TestStoreLockTrans: due in the window, touched out of it, back in, finished', async () => {
        const now = T0;
        await store.saveNew(makeTrans('gid-lock', { nextCronTime: at(10) }), []);
        // Lock(window 20) → found; the lease pushes it to now + RetryInterval (10 s)
        let got = await store.lockDue(at(20), at(10), 'owner-1', 1, now);
        assert.deepEqual(gidsOf(got), ['gid-lock']);
        // TouchCronTime to +30 → Lock(20) → none
        await store.touchCronTime('gid-lock', 'submitted', at(30), 10, now);
        got = await store.lockDue(at(20), at(10), 'owner-2', 1, now);
        assert.deepEqual(got, []);
        // touch to +10 → found
        await store.touchCronTime('gid-lock', 'submitted', at(10), 10, now);
        got = await store.lockDue(at(20), at(10), 'owner-3', 1, now);
        assert.deepEqual(gidsOf(got), ['gid-lock']);
        // finished → none, even far in the future
        await store.changeStatus('gid-lock', 'submitted', 'succeed', { finishTime: now }, now);
        got = await store.lockDue(at(100_000), at(100_010), 'owner-4', 1, now);
        assert.deepEqual(got, []);
      });

      it('DTM TestStoreResetCronTime: resetCronTime makes backed-off trans due, lockDue takes them one by one', async () => {
        const now = T0;
        const lockOne = () => store.lockDue(at(2), at(10), 'owner', 1, now);
        const finish = async (t: TransGlobal) =>
          store.changeStatus(t.gid, t.status, 'succeed', { finishTime: now }, now);
        await saveMany('late', 10, { nextCronTime: at(110) });
        await store.saveNew(makeTrans('soon', { nextCronTime: at(90) }), []);
        assert.deepEqual(await lockOne(), [], 'nothing due in 2 s');

        assert.deepEqual(await store.resetCronTime(at(100), 9, now), { count: 9, hasRemaining: true });
        const locked = new Set<string>();
        for (let i = 0; i < 9; i++) {
          const [t] = await lockOne();
          assert.ok(t, `lock #${i + 1} finds a reset trans`);
          assert.ok(t.gid.startsWith('late-'), t.gid);
          locked.add(t.gid);
          await finish(t);
        }
        assert.equal(locked.size, 9, 'nine different trans');
        assert.deepEqual(await lockOne(), [], 'the tenth was not reset');

        assert.deepEqual(await store.resetCronTime(at(100), 10, now), { count: 1, hasRemaining: false });
        const [tenth] = await lockOne();
        assert.ok(tenth, 'the tenth is due after its reset');
        assert.ok(tenth.gid.startsWith('late-') && !locked.has(tenth.gid), `the tenth: ${tenth.gid}`);

        assert.deepEqual(await store.resetCronTime(at(88), 10, now), { count: 1, hasRemaining: false });
        const [soon] = await lockOne();
        assert.equal(soon?.gid, 'soon');

        assert.deepEqual(await store.resetCronTime(at(88), 10, now), { count: 0, hasRemaining: false });
        assert.deepEqual(await lockOne(), []);
      });

      it('leases at most `limit` rows, writing owner, next_cron_time = leaseUntil and update_time', async () => {
        const saved = await saveMany('due', 5, { nextCronTime: at(1) });
        const now = at(5);
        const first = await store.lockDue(at(5), at(15), 'owner-A', 3, now);
        assert.equal(first.length, 3);
        for (const t of first) {
          assert.equal(t.owner, 'owner-A');
          assert.equal(t.nextCronTime, at(15));
          assert.equal(t.updateTime, now);
          const stored = await store.findTrans(t.gid);
          assert.deepEqual(plain(stored!), plain(t), 'the returned row is the stored row');
          const orig = saved.find((s) => s.gid === t.gid)!;
          assert.deepEqual(plain(t), plain({ ...orig, owner: 'owner-A', nextCronTime: at(15), updateTime: now }));
        }
        const second = await store.lockDue(at(5), at(15), 'owner-B', 3, now);
        assert.equal(second.length, 2, 'the two left');
        for (const t of second) assert.equal((await store.findTrans(t.gid))?.owner, 'owner-B');
        assert.deepEqual(
          [...gidsOf(first), ...gidsOf(second)].sort(),
          gidsOf(saved).sort(),
          'every due trans leased exactly once',
        );
        assert.deepEqual(await store.lockDue(at(5), at(15), 'owner-C', 3, now), [], 'all leased until +15');
        const again = await store.lockDue(at(16), at(30), 'owner-D', 10, at(16));
        assert.equal(again.length, 5, 'the lease expired at +15');
      });

      it('leases only prepared, submitted and aborting trans, and only when next_cron_time < dueBefore', async () => {
        const statuses: GlobalStatus[] = ['prepared', 'submitted', 'aborting', 'succeed', 'failed'];
        for (const st of statuses) await store.saveNew(makeTrans(`st-${st}`, { status: st, nextCronTime: at(1) }), []);
        await store.saveNew(makeTrans('st-boundary', { nextCronTime: at(5) }), []);
        const got = await store.lockDue(at(5), at(20), 'o', 100, at(4));
        assert.deepEqual(gidsOf(got).sort(), ['st-aborting', 'st-prepared', 'st-submitted']);
        for (const st of ['succeed', 'failed']) {
          const t = await store.findTrans(`st-${st}`);
          assert.equal(t?.owner, '', `a ${st} trans is not leased`);
          assert.equal(t?.nextCronTime, at(1));
        }
        assert.equal((await store.findTrans('st-boundary'))?.owner, '', 'next_cron_time == dueBefore is not due');
      });

      it('concurrent lockDue calls never lease the same gid twice', async () => {
        const saved = await saveMany('conc', 20, { nextCronTime: at(1) });
        const owners = ['c1', 'c2', 'c3', 'c4'];
        const results = await Promise.all(owners.map((o) => store.lockDue(at(5), at(60), o, 8, at(2))));
        const all = results.flatMap(gidsOf);
        assert.equal(new Set(all).size, all.length, `no gid twice: ${all.join(',')}`);
        for (const [i, rows] of results.entries()) {
          assert.ok(rows.length <= 8, 'limit honoured');
          for (const t of rows) assert.equal((await store.findTrans(t.gid))?.owner, owners[i], `${t.gid} owner`);
        }
        const rest = await store.lockDue(at(5), at(60), 'c5', 100, at(2));
        assert.deepEqual([...all, ...gidsOf(rest)].sort(), gidsOf(saved).sort(), 'every due trans leased once');
      });
    });

    describe('resetCronTime and resetTransCronTime (spec §2.10, §7.7)', () => {
      it('reschedules to now only unfinished trans strictly later than `after`, and counts them', async () => {
        await saveMany('far', 5, { nextCronTime: at(200) });
        await store.saveNew(makeTrans('at-after', { nextCronTime: at(100) }), []);
        await store.saveNew(makeTrans('near', { nextCronTime: at(50) }), []);
        await store.saveNew(makeTrans('far-done', { status: 'succeed', nextCronTime: at(300) }), []);
        await store.saveNew(makeTrans('far-prepared', { status: 'prepared', nextCronTime: at(300) }), []);

        assert.deepEqual(await store.resetCronTime(at(100), 4, at(1)), { count: 4, hasRemaining: true });
        assert.deepEqual(await store.resetCronTime(at(100), 4, at(2)), { count: 2, hasRemaining: false });
        assert.deepEqual(await store.resetCronTime(at(100), 4, at(3)), { count: 0, hasRemaining: false });

        const reset = [...['far-0', 'far-1', 'far-2', 'far-3', 'far-4'], 'far-prepared'];
        for (const gid of reset) {
          const t = await store.findTrans(gid);
          assert.ok(t?.nextCronTime === at(1) || t?.nextCronTime === at(2), `${gid} rescheduled: ${t?.nextCronTime}`);
          assert.equal(t?.updateTime, t?.nextCronTime, `${gid} update_time = now`);
        }
        assert.equal((await store.findTrans('at-after'))?.nextCronTime, at(100), 'not strictly later');
        assert.equal((await store.findTrans('near'))?.nextCronTime, at(50));
        const done = await store.findTrans('far-done');
        assert.equal(done?.nextCronTime, at(300), 'finished trans are left alone');
        assert.equal(done?.updateTime, T0);
      });

      it('resetTransCronTime sets next_cron_time = update_time = now; NotFoundError for a missing gid', async () => {
        await store.saveNew(makeTrans('gid-rt', { nextCronTime: at(500), updateTime: at(0) }), []);
        const before = plain((await store.findTrans('gid-rt'))!);
        await store.resetTransCronTime('gid-rt', at(7));
        assert.deepEqual(plain((await store.findTrans('gid-rt'))!), {
          ...before,
          nextCronTime: at(7),
          updateTime: at(7),
        });
        await assert.rejects(store.resetTransCronTime('gid-absent', at(7)), NotFoundError);
        assert.equal(await store.findTrans('gid-absent'), undefined);
      });
    });

    describe('scanTrans (admin list, spec §2.9)', () => {
      it('pages by id descending; next_position is empty once a page is not full', async () => {
        const saved = await saveMany('scan', 5);
        const ids = saved.map((t) => t.id!);
        assert.deepEqual(
          [...ids].sort((a, b) => a - b),
          ids,
          'ids grow with insertion',
        );
        const newestFirst = gidsOf(saved).reverse();
        const p1 = await store.scanTrans({ position: '', limit: 2 });
        assert.deepEqual(gidsOf(p1.trans), newestFirst.slice(0, 2));
        assert.notEqual(p1.nextPosition, '');
        const p2 = await store.scanTrans({ position: p1.nextPosition, limit: 2 });
        assert.deepEqual(gidsOf(p2.trans), newestFirst.slice(2, 4));
        assert.notEqual(p2.nextPosition, '');
        const p3 = await store.scanTrans({ position: p2.nextPosition, limit: 2 });
        assert.deepEqual(gidsOf(p3.trans), newestFirst.slice(4));
        assert.equal(p3.nextPosition, '', 'a page that is not full ends the scan');
        // the rows are complete
        assert.deepEqual(plain(p1.trans[0]!), plain(saved[4]!));
      });

      it('a full last page gives a cursor whose next page is empty with an empty cursor', async () => {
        const saved = await saveMany('full', 4);
        const p1 = await store.scanTrans({ position: '', limit: 4 });
        assert.deepEqual(gidsOf(p1.trans), gidsOf(saved).reverse());
        assert.notEqual(p1.nextPosition, '');
        const p2 = await store.scanTrans({ position: p1.nextPosition, limit: 4 });
        assert.deepEqual(p2, { trans: [], nextPosition: '' });
        const big = await store.scanTrans({ position: '', limit: 100 });
        assert.equal(big.trans.length, 4);
        assert.equal(big.nextPosition, '');
      });

      it('filters by status, transType and an inclusive create_time range, also while paging', async () => {
        const rows: [string, TransType, GlobalStatus, number][] = [
          ['f1', 'saga', 'succeed', at(10)],
          ['f2', 'tcc', 'succeed', at(20)],
          ['f3', 'saga', 'failed', at(30)],
          ['f4', 'saga', 'succeed', at(40)],
          ['f5', 'msg', 'prepared', at(50)],
          ['f6', 'saga', 'succeed', at(60)],
        ];
        for (const [gid, transType, status, createTime] of rows) {
          await store.saveNew(makeTrans(gid, { transType, status, createTime }), []);
        }
        const scan = async (q: Partial<ScanQuery>) => {
          const out: string[] = [];
          let position = '';
          for (let i = 0; i < 10; i++) {
            const page = await store.scanTrans({ position, limit: 2, ...q });
            assert.ok(page.trans.length <= 2, 'limit honoured');
            out.push(...gidsOf(page.trans));
            if (!page.nextPosition) return out;
            position = page.nextPosition;
          }
          assert.fail('scan did not end');
        };
        assert.deepEqual(await scan({}), ['f6', 'f5', 'f4', 'f3', 'f2', 'f1']);
        assert.deepEqual(await scan({ status: 'succeed' }), ['f6', 'f4', 'f2', 'f1']);
        assert.deepEqual(await scan({ transType: 'saga' }), ['f6', 'f4', 'f3', 'f1']);
        assert.deepEqual(await scan({ status: 'succeed', transType: 'saga' }), ['f6', 'f4', 'f1']);
        assert.deepEqual(await scan({ createTimeStart: at(20), createTimeEnd: at(50) }), ['f5', 'f4', 'f3', 'f2']);
        assert.deepEqual(await scan({ createTimeStart: at(21) }), ['f6', 'f5', 'f4', 'f3']);
        assert.deepEqual(await scan({ createTimeEnd: at(19) }), ['f1']);
        assert.deepEqual(
          await scan({ transType: 'saga', status: 'succeed', createTimeStart: at(10), createTimeEnd: at(40) }),
          ['f4', 'f1'],
        );
        assert.deepEqual(await scan({ status: 'aborting' }), []);
        assert.deepEqual(await scan({ transType: 'xa' }), []);
      });
    });

    describe('scanTrans gidPrefix (admin list filter)', () => {
      it('keeps gids that start with the prefix exactly: case-sensitive, LIKE wildcards and backslash literal', async () => {
        for (const gid of ['ord-1', 'ord-2', 'ORD-3', 'or_x', 'or%y', 'orAz', 'o\\rd', 'o\\x', 'xord', 'ord']) {
          await store.saveNew(makeTrans(gid), []);
        }
        const scan = async (gidPrefix: string, limit = 100) => {
          const out: string[] = [];
          let position = '';
          for (let i = 0; i < 20; i++) {
            const page = await store.scanTrans({ position, limit, gidPrefix });
            out.push(...gidsOf(page.trans));
            if (!page.nextPosition) return out.sort();
            position = page.nextPosition;
          }
          assert.fail('scan did not end');
        };
        assert.deepEqual(await scan('ord'), ['ord', 'ord-1', 'ord-2']);
        assert.deepEqual(await scan('ord', 1), ['ord', 'ord-1', 'ord-2'], 'while paging');
        assert.deepEqual(await scan('ORD'), ['ORD-3']);
        assert.deepEqual(await scan('or_'), ['or_x'], '_ is no wildcard');
        assert.deepEqual(await scan('or%'), ['or%y'], '% is no wildcard');
        assert.deepEqual(await scan('o\\'), ['o\\rd', 'o\\x'], 'a backslash is itself');
        assert.deepEqual(await scan('zz'), []);
        const both = await store.scanTrans({ position: '', limit: 100, gidPrefix: 'ord-', status: 'succeed' });
        assert.deepEqual(both.trans, [], 'combined with the other filters');
      });
    });

    describe('countUnfinished (metrics)', () => {
      it('groups unfinished transactions by trans_type and status with their oldest create and due times', async () => {
        const rows: [string, TransType, GlobalStatus, number, number][] = [
          ['u1', 'saga', 'submitted', at(30), at(100)],
          ['u2', 'saga', 'submitted', at(10), at(200)],
          ['u3', 'saga', 'aborting', at(20), at(50)],
          ['u4', 'msg', 'prepared', at(40), at(60)],
          ['u5', 'saga', 'succeed', at(1), at(1)],
          ['u6', 'tcc', 'failed', at(2), at(2)],
        ];
        assert.deepEqual(await store.countUnfinished(), [], 'none yet');
        for (const [gid, transType, status, createTime, nextCronTime] of rows) {
          await store.saveNew(makeTrans(gid, { transType, status, createTime, nextCronTime }), []);
        }
        const sorted = async () =>
          (await store.countUnfinished()).sort((a, b) =>
            `${a.transType}/${a.status}`.localeCompare(`${b.transType}/${b.status}`),
          );
        assert.deepEqual(await sorted(), [
          { transType: 'msg', status: 'prepared', count: 1, oldestCreateTime: at(40), oldestNextCronTime: at(60) },
          { transType: 'saga', status: 'aborting', count: 1, oldestCreateTime: at(20), oldestNextCronTime: at(50) },
          { transType: 'saga', status: 'submitted', count: 2, oldestCreateTime: at(10), oldestNextCronTime: at(100) },
        ]);
        // finishing one moves it out of the counts
        await store.changeStatus('u3', 'aborting', 'failed', { rollbackTime: at(70) }, at(70));
        await store.changeStatus('u1', 'submitted', 'succeed', { finishTime: at(70) }, at(70));
        assert.deepEqual(await sorted(), [
          { transType: 'msg', status: 'prepared', count: 1, oldestCreateTime: at(40), oldestNextCronTime: at(60) },
          { transType: 'saga', status: 'submitted', count: 1, oldestCreateTime: at(10), oldestNextCronTime: at(200) },
        ]);
      });
    });

    describe('KV (topics, spec §2.11, §2.12, §8.1)', () => {
      it('createKV starts at version 1; an existing (cat, k) is a UniqueConflictError that changes nothing', async () => {
        await store.createKV('topics', 't1', '[{"url":"http://a","remark":""}]', at(1));
        const [kv] = await store.findKV('topics', 't1');
        assert.ok(kv);
        assert.ok(Number.isSafeInteger(kv.id) && (kv.id ?? 0) > 0, 'id set');
        assert.deepEqual(plain(kv), {
          id: kv.id,
          cat: 'topics',
          k: 't1',
          v: '[{"url":"http://a","remark":""}]',
          version: 1,
          createTime: at(1),
          updateTime: at(1),
        });
        await assert.rejects(store.createKV('topics', 't1', 'other', at(2)), UniqueConflictError);
        assert.deepEqual(await store.findKV('topics', 't1'), [kv]);
        await store.createKV('other-cat', 't1', 'x', at(3)); // the same key in another cat is fine
        assert.equal((await store.findKV('other-cat', 't1'))[0]?.v, 'x');
      });

      it('findKV: an empty cat or key means any; nothing matching is []', async () => {
        await store.createKV('topics', 'a', 'va', at(1));
        await store.createKV('topics', 'b', 'vb', at(1));
        await store.createKV('other', 'a', 'vo', at(1));
        const keys = (rows: KV[]) => rows.map((r) => `${r.cat}/${r.k}=${r.v}`).sort();
        assert.deepEqual(keys(await store.findKV('topics', 'a')), ['topics/a=va']);
        assert.deepEqual(keys(await store.findKV('topics', '')), ['topics/a=va', 'topics/b=vb']);
        assert.deepEqual(keys(await store.findKV('', 'a')), ['other/a=vo', 'topics/a=va']);
        assert.deepEqual(keys(await store.findKV('', '')), ['other/a=vo', 'topics/a=va', 'topics/b=vb']);
        assert.deepEqual(await store.findKV('topics', 'missing'), []);
        assert.deepEqual(await store.findKV('nocat', ''), []);
      });

      it('updateKV is a CAS on the version: version+1 and update_time; a stale version is NotFoundError', async () => {
        await store.createKV('topics', 'cas', 'v1', at(1));
        const [kv] = await store.findKV('topics', 'cas');
        assert.ok(kv);
        const stale = { ...kv };
        await store.updateKV({ ...kv, v: 'v2' }, at(5));
        const [updated] = await store.findKV('topics', 'cas');
        assert.deepEqual(plain(updated!), { ...plain(kv), v: 'v2', version: 2, updateTime: at(5) });
        await assert.rejects(store.updateKV({ ...stale, v: 'lost' }, at(6)), NotFoundError);
        assert.deepEqual(await store.findKV('topics', 'cas'), [updated]);
        await assert.rejects(
          store.updateKV({ ...stale, k: 'missing', version: 1, v: 'x' }, at(6)),
          NotFoundError,
          'a missing key',
        );
        assert.deepEqual(await store.findKV('topics', 'missing'), []);
      });

      it('of concurrent updates from one version exactly one wins (TestConcurrentUpdateTopic)', async () => {
        await store.createKV('topics', 'race', 'v0', at(1));
        const [kv] = await store.findKV('topics', 'race');
        assert.ok(kv);
        const results = await Promise.all(
          Array.from({ length: 6 }, (_, i) => outcome(store.updateKV({ ...kv, v: `w${i}` }, at(2 + i)))),
        );
        assert.equal(results.filter((r) => r === 'ok').length, 1, results.join(', '));
        assert.equal(results.filter((r) => r === 'NotFound').length, 5, results.join(', '));
        const [after] = await store.findKV('topics', 'race');
        assert.equal(after?.version, 2);
        assert.equal(after?.v, `w${results.indexOf('ok')}`);
      });

      it('version arithmetic: N updates and N more leave version 2N+1', async () => {
        const n = 7;
        await store.createKV('topics', 'arith', '[]', at(0));
        for (let i = 0; i < 2 * n; i++) {
          const [kv] = await store.findKV('topics', 'arith');
          assert.ok(kv);
          await store.updateKV({ ...kv, v: `[${i}]` }, at(i + 1));
        }
        const [kv] = await store.findKV('topics', 'arith');
        assert.equal(kv?.version, 2 * n + 1);
        assert.equal(kv?.v, `[${2 * n - 1}]`);
        assert.equal(kv?.createTime, at(0));
        assert.equal(kv?.updateTime, at(2 * n));
      });

      it('deleteKV removes one row; a missing row is NotFoundError; the key can be created again', async () => {
        await store.createKV('topics', 'del', 'v', at(1));
        await store.createKV('topics', 'keep', 'v', at(1));
        await store.createKV('other', 'del', 'v', at(1));
        const [old] = await store.findKV('topics', 'del');
        await store.updateKV({ ...old!, v: 'v2' }, at(2));
        await store.deleteKV('topics', 'del');
        assert.deepEqual(await store.findKV('topics', 'del'), []);
        assert.equal((await store.findKV('topics', 'keep')).length, 1);
        assert.equal((await store.findKV('other', 'del')).length, 1);
        await assert.rejects(store.deleteKV('topics', 'del'), NotFoundError);
        await assert.rejects(store.deleteKV('nocat', 'nokey'), NotFoundError);
        await store.createKV('topics', 'del', 'again', at(3));
        const [again] = await store.findKV('topics', 'del');
        assert.equal(again?.version, 1);
        assert.equal(again?.v, 'again');
      });

      it('scanKV pages one cat by id descending; next_position is empty once a page is not full', async () => {
        for (const k of ['k1', 'k2', 'k3', 'k4', 'k5']) {
          await store.createKV('topics', k, `v-${k}`, at(1));
          await store.createKV('noise', k, 'n', at(1));
        }
        const p1 = await store.scanKV('topics', '', 2);
        assert.deepEqual(
          p1.kv.map((r) => r.k),
          ['k5', 'k4'],
        );
        assert.notEqual(p1.nextPosition, '');
        assert.deepEqual(plain(p1.kv[0]!), plain((await store.findKV('topics', 'k5'))[0]!), 'complete rows');
        const p2 = await store.scanKV('topics', p1.nextPosition, 2);
        assert.deepEqual(
          p2.kv.map((r) => r.k),
          ['k3', 'k2'],
        );
        assert.notEqual(p2.nextPosition, '');
        const p3 = await store.scanKV('topics', p2.nextPosition, 2);
        assert.deepEqual(
          p3.kv.map((r) => r.k),
          ['k1'],
        );
        assert.equal(p3.nextPosition, '');
        const whole = await store.scanKV('topics', '', 5);
        assert.equal(whole.kv.length, 5);
        assert.ok(
          whole.kv.every((r) => r.cat === 'topics'),
          'only the asked cat',
        );
        assert.deepEqual(await store.scanKV('topics', whole.nextPosition, 5), { kv: [], nextPosition: '' });
        assert.deepEqual(await store.scanKV('empty-cat', '', 5), { kv: [], nextPosition: '' });
      });
    });

    describe('deleteFinished (retention)', () => {
      it('deletes old finished trans with their branches in bounded batches, never unfinished or recent ones', async () => {
        const finished = async (gid: string, status: 'succeed' | 'failed', updated: number) => {
          await store.saveNew(makeTrans(gid, { status: 'submitted' }), [makeBranch(gid, '01', 'action')]);
          await store.changeStatus(gid, 'submitted', status, {}, updated);
        };
        for (let i = 0; i < 5; i++) await finished(`old-${i}`, i % 2 ? 'failed' : 'succeed', at(10));
        await finished('recent', 'succeed', at(100));
        await store.saveNew(makeTrans('running', { status: 'submitted', updateTime: at(1) }), [
          makeBranch('running', '01', 'action'),
        ]);
        await store.saveNew(makeTrans('waiting', { status: 'prepared', updateTime: at(1) }), []);
        assert.equal(await store.deleteFinished(at(50), 3), 3);
        assert.equal(await store.deleteFinished(at(50), 3), 2);
        assert.equal(await store.deleteFinished(at(50), 3), 0);
        for (let i = 0; i < 5; i++) {
          assert.equal(await store.findTrans(`old-${i}`), undefined);
          assert.deepEqual(await store.findBranches(`old-${i}`), []);
        }
        assert.equal((await store.findTrans('recent'))?.status, 'succeed');
        assert.equal((await store.findBranches('recent')).length, 1);
        assert.equal((await store.findTrans('running'))?.status, 'submitted');
        assert.equal((await store.findBranches('running')).length, 1);
        assert.equal((await store.findTrans('waiting'))?.status, 'prepared');
        // a deleted gid can be used again
        await store.saveNew(makeTrans('old-0', { status: 'prepared' }), []);
        assert.equal((await store.findTrans('old-0'))?.status, 'prepared');
      });
    });
  });
}
