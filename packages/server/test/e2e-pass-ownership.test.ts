import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Busi } from './support/busi.js';
import { startTestDtx, type TestDtx, testStoreConfig } from './support/dtx.js';
import { call } from './support/http.js';
import { waitFor } from './support/poll.js';
import { gidFor, sagaBody } from './support/trans.js';

// A pass owns its branch calls: no branch of a transaction is ever called twice at once, by this instance or
// another one on the same store, however long the call takes compared with the lease (RetryInterval, or a
// transaction's own retry_interval) and with the server's RequestTimeout.

/** Busi calls of one gid in flight at once, per handler, and the largest number seen. */
class Overlaps {
  private readonly now = new Map<string, number>();
  readonly max = new Map<string, number>();
  enter(key: string): void {
    const n = (this.now.get(key) ?? 0) + 1;
    this.now.set(key, n);
    this.max.set(key, Math.max(this.max.get(key) ?? 0, n));
  }
  leave(key: string): void {
    this.now.set(key, (this.now.get(key) ?? 1) - 1);
  }
}

describe('a pass owns its branch calls', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dtx-own-'));
  // two instances on one store (a shared SQLite file by default; DTX_TEST_STORE for the others)
  const shared = testStoreConfig(dir);
  let a: TestDtx;
  let b: TestDtx;
  const busi = new Busi();
  const overlaps = new Overlaps();
  /** Milliseconds the next calls of a handler take before answering. */
  const slow = new Map<string, number>();

  before(async () => {
    busi.onCall = async (c) => {
      const key = `${c.query.gid} ${c.name}`;
      overlaps.enter(key);
      const ms = slow.get(c.name) ?? 0;
      if (ms > 0) await new Promise((r) => setTimeout(r, ms)); // the branch's own work, not a wait of the test
      overlaps.leave(key);
    };
    await busi.start();
    // RequestTimeout 1: the saga pass of old ended after RequestTimeout + 2 s whatever the call's own timeout
    a = await startTestDtx({ Store: shared, RequestTimeout: 1 });
    b = await startTestDtx({ Store: shared, RequestTimeout: 1 });
  });
  after(async () => {
    await b?.server.stop();
    await a?.stop();
    await busi.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a call longer than the lease is not started again by another instance', async () => {
    const gid = gidFor('own-lease');
    slow.set('TransOut', 2500);
    // retry_interval 1: the lease written at creation ends after 1 s, the call takes 2.5 s (its timeout is 5 s)
    const body = sagaBody(busi, gid, { retry_interval: 1, request_timeout: 5 });
    const r = await call('POST', `${a.api}/submit`, body);
    assert.equal(r.status, 200, r.text);
    // the other instance's cron runs with no forwarded window, as in production, while the call is in flight
    let pickedByB = 0;
    await waitFor(
      'the saga to succeed',
      async () => {
        if ((await b.cronOnce(0, 0)) === gid) pickedByB++;
        return (await a.status(gid)) === 'succeed';
      },
      20_000,
    );
    slow.delete('TransOut');
    assert.equal(overlaps.max.get(`${gid} TransOut`), 1, 'TransOut was called twice at once');
    assert.equal(busi.calls.filter((c) => c.query.gid === gid && c.name === 'TransOut').length, 1);
    assert.equal(pickedByB, 0, 'the other instance leased the saga while its call was running');
  });

  it('a pass that outlives its deadline keeps the gid until its calls have ended', async () => {
    const gid = gidFor('own-deadline');
    slow.set('TransOut', 3500);
    // request_timeout 6 > RequestTimeout 1 + 2 s: the pass deadline follows the transaction's own timeout
    const r = await call('POST', `${a.api}/submit`, sagaBody(busi, gid, { request_timeout: 6, wait_result: true }));
    slow.delete('TransOut');
    assert.equal(r.status, 200, r.text);
    assert.equal(await a.status(gid), 'succeed');
    assert.equal(busi.calls.filter((c) => c.query.gid === gid && c.name === 'TransOut').length, 1);
  });

  it('the same instance never starts a second pass while a call of the first runs', async () => {
    const gid = gidFor('own-same');
    slow.set('TransOut', 3500); // longer than RequestTimeout + 2 s, shorter than the call's own timeout
    const r = await call('POST', `${a.api}/submit`, sagaBody(busi, gid, { request_timeout: 5 }));
    assert.equal(r.status, 200, r.text);
    // a wide window picks the saga at once: only the pass already running may call it
    await waitFor(
      'the saga to succeed',
      async () => {
        await a.cronOnce(0, 3600);
        return (await a.status(gid)) === 'succeed';
      },
      20_000,
    );
    slow.delete('TransOut');
    assert.equal(overlaps.max.get(`${gid} TransOut`), 1, 'TransOut was called twice at once');
  });
});

describe('a branch call is bounded as a whole by its timeout', () => {
  let dtx: TestDtx;
  let dribbler: Server;
  let url = '';
  let closed = 0;

  before(async () => {
    // answers 200 at once, then one byte of body every 100 ms, for ever: each gap is far below any timeout
    dribbler = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{');
      const timer = setInterval(() => res.write(' '), 100);
      res.on('close', () => {
        clearInterval(timer);
        closed++;
      });
    });
    await new Promise<void>((r) => dribbler.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(dribbler.address() as AddressInfo).port}/api/busi`;
    dtx = await startTestDtx();
  });
  after(async () => {
    await dtx?.stop();
    dribbler.closeAllConnections();
    await new Promise((r) => dribbler.close(r));
  });

  it('a branch that dribbles its reply is cut at request_timeout, retried, and the reply says ONGOING', async () => {
    const gid = gidFor('dribble');
    const body = {
      gid,
      trans_type: 'saga',
      wait_result: true,
      request_timeout: 1,
      steps: [{ action: `${url}/TransOut`, compensate: `${url}/TransOutRevert` }],
      payloads: ['{}'],
    };
    const r = await call('POST', `${dtx.api}/submit`, body);
    assert.equal(r.status, 425, r.text);
    assert.match(r.text, /took longer than its timeout of 1000 ms/);
    assert.equal(await dtx.status(gid), 'submitted');
    await waitFor('the dribbling connection to be closed', () => closed >= 1);
  });
});
