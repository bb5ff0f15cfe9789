// The two sagas against a running dtx (DTX_URL, default http://127.0.0.1:36789/api/dtmsvr): one that commits,
// and one that rolls back because its second branch refuses.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildApp } from '../src/app.js';
import { openDatabase } from '../src/db.js';

const dtxUrl = process.env.DTX_URL ?? 'http://127.0.0.1:36789/api/dtmsvr';

describe('transfer saga', () => {
  let dir;
  let db;
  let app;
  let base;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'starter-'));
    if (!process.env.DATABASE_URL) process.env.SQLITE_PATH = join(dir, 'test.sqlite');
    db = await openDatabase();
    await db.setBalance(1, 100);
    await db.setBalance(2, 0);
    let port = 0;
    app = buildApp({ db, dtxUrl, busiUrl: () => `http://127.0.0.1:${port}/api` });
    await app.listen({ port: 0, host: '127.0.0.1' });
    port = app.server.address().port;
    base = `http://127.0.0.1:${port}/api`;
  });
  after(async () => {
    await app?.close();
    await db?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const transfer = async (body) => {
    const res = await fetch(`${base}/transfer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: await res.json() };
  };
  /** Polls the coordinator until the transaction `gid` has the status `status`. */
  const waitForStatus = async (gid, status) => {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const q = await (await fetch(`${dtxUrl}/query?gid=${encodeURIComponent(gid)}`)).json();
      if (q.transaction?.status === status) return;
      if (Date.now() > deadline) assert.fail(`transaction ${gid} is ${q.transaction?.status}, not ${status}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };

  it('commits: 30 move from account 1 to account 2', async () => {
    const r = await transfer({ from: 1, to: 2, amount: 30 });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.result, 'succeeded');
    assert.equal(await db.balance(1), 70);
    assert.equal(await db.balance(2), 30);
  });

  it('rolls back: TransIn to a missing account refuses, TransOut is compensated', async () => {
    const r = await transfer({ from: 1, to: 99, amount: 30 });
    assert.equal(r.status, 409, JSON.stringify(r.body));
    assert.equal(r.body.result, 'rolled back');
    assert.match(r.body.reason, /account 99/);
    await waitForStatus(r.body.gid, 'failed');
    assert.equal(await db.balance(1), 70, 'the 30 taken by TransOut are back');
    assert.equal(await db.balance(2), 30);
  });
});
