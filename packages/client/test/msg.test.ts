// Two-phase messages end to end: prepare / submit, and doAndSubmit with the sub-transaction barrier on SQLite
// (spec §9.5), against a real coordinator and branch handlers defined here.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import {
  BranchBarrier,
  DtxClient,
  DuplicatedError,
  ensureBarrierTable,
  FailureError,
  sqliteBarrierDb,
} from '../src/index.js';
import { type BranchService, startBranchService } from './support/branch-service.js';
import { type DtxServer, startDtxServer } from './support/dtx-server.js';
import { ReplyScript } from './support/reply-script.js';
import { branchRows, branchStatuses, cronUntilStatus, waitForStatus } from './support/transactions.js';

describe('msg', () => {
  let server: DtxServer;
  let client: DtxClient;
  let busi: BranchService;
  const script = new ReplyScript();
  const db = new Database(':memory:');
  const barrierDb = sqliteBarrierDb(db);

  const balance = () => (db.prepare('SELECT balance FROM account WHERE id = 1').get() as { balance: number }).balance;
  const barrierRows = (gid: string) =>
    db.prepare('SELECT branch_id, op, barrier_id, reason FROM barrier WHERE gid = ? ORDER BY id').all(gid);

  before(async () => {
    await ensureBarrierTable(barrierDb);
    db.exec('CREATE TABLE account (id integer PRIMARY KEY, balance integer NOT NULL)');
    db.exec('INSERT INTO account (id, balance) VALUES (1, 100)');
    server = await startDtxServer();
    client = new DtxClient(server.url);
    busi = await startBranchService((app) => {
      // The back-check of msgs sent with doAndSubmit: the barrier decides whether the local transaction committed.
      app.get('/QueryPrepared', async (req, reply) => {
        try {
          await BranchBarrier.fromQuery(req.query as Record<string, unknown>).queryPrepared(barrierDb);
          return reply.code(200).send({ dtm_result: 'SUCCESS' });
        } catch (err) {
          if (err instanceof FailureError) return reply.code(409).send({ error: err.message });
          return reply.code(500).send({ error: String(err) });
        }
      });
      app.route({
        method: ['GET', 'POST'],
        url: '/:name',
        handler: async (req, reply) => {
          const { gid } = req.query as { gid?: string };
          const r = script.next(gid, req.url.split('?')[0] ?? '');
          return reply.code(r.status).type('application/json').send(r.body);
        },
      });
    });
  });
  after(async () => {
    await client.close();
    await busi.close();
    await server.stop();
    db.close();
  });

  test('prepare then submit delivers to two branches, in order', async () => {
    const msg = client.msg().add(`${busi.url}/TransIn`, { amount: 1 }).add(`${busi.url}/TransIn2`, { amount: 2 });
    await msg.prepare(`${busi.url}/QueryPrepared`);
    let q = await client.query(msg.gid);
    assert.equal(q.transaction?.status, 'prepared');
    assert.equal(q.transaction?.query_prepared, `${busi.url}/QueryPrepared`);
    assert.deepEqual(branchRows(q), ['01 action prepared', '02 action prepared']);
    assert.deepEqual(busi.trace(msg.gid), []);

    await msg.submit();
    q = await waitForStatus(client, msg.gid, 'succeed');
    assert.deepEqual(branchStatuses(q), ['succeed', 'succeed']);
    assert.deepEqual(busi.trace(msg.gid), ['/TransIn action', '/TransIn2 action']);
    const bodies = busi.calls.filter((c) => c.gid === msg.gid).map((c) => [c.trans_type, c.branch_id, c.body]);
    assert.deepEqual(bodies, [
      ['msg', '01', '{"amount":1}'],
      ['msg', '02', '{"amount":2}'],
    ]);
  });

  test('submit without prepare delivers too', async () => {
    const msg = client.msg().add(`${busi.url}/TransIn`, { amount: 3 });
    await msg.submit();
    await waitForStatus(client, msg.gid, 'succeed');
    assert.deepEqual(busi.trace(msg.gid), ['/TransIn action']);
  });

  test('doAndSubmit: the local transaction commits, then the msg is submitted and delivered', async () => {
    const start = balance();
    const msg = client.msg().add(`${busi.url}/TransIn`, { amount: 30 });
    await msg.doAndSubmit(`${busi.url}/QueryPrepared`, barrierDb, (tx) => {
      tx.prepare('UPDATE account SET balance = balance - 30 WHERE id = 1').run();
    });
    const q = await waitForStatus(client, msg.gid, 'succeed');
    assert.deepEqual(branchStatuses(q), ['succeed']);
    assert.deepEqual(busi.trace(msg.gid), ['/TransIn action']);
    assert.equal(balance(), start - 30);
    assert.deepEqual(barrierRows(msg.gid), [{ branch_id: '00', op: 'msg', barrier_id: '01', reason: 'msg' }]);
  });

  test('doAndSubmit: a FailureError of the business rolls back and aborts the msg', async () => {
    const start = balance();
    const msg = client.msg().add(`${busi.url}/TransIn`, { amount: 30 });
    await assert.rejects(
      msg.doAndSubmit(`${busi.url}/QueryPrepared`, barrierDb, (tx) => {
        tx.prepare('UPDATE account SET balance = balance - 30 WHERE id = 1').run();
        throw new FailureError('insufficient balance');
      }),
      (err) => err instanceof FailureError && err.message === 'insufficient balance',
    );
    const q = await client.query(msg.gid);
    assert.equal(q.transaction?.status, 'failed');
    assert.deepEqual(branchStatuses(q), ['prepared']);
    assert.equal(balance(), start);
    assert.deepEqual(barrierRows(msg.gid), []);
    assert.deepEqual(busi.trace(msg.gid), []);
  });

  test('doAndSubmit: another error makes the client ask the back-check itself, which aborts', async () => {
    const start = balance();
    const msg = client.msg().add(`${busi.url}/TransIn`, { amount: 30 });
    await assert.rejects(
      msg.doAndSubmit(`${busi.url}/QueryPrepared`, barrierDb, (tx) => {
        tx.prepare('UPDATE account SET balance = balance - 30 WHERE id = 1').run();
        throw new Error('disk full');
      }),
      /disk full/,
    );
    const q = await client.query(msg.gid);
    assert.equal(q.transaction?.status, 'failed');
    assert.equal(balance(), start);
    const checks = busi.calls.filter((c) => c.gid === msg.gid);
    assert.deepEqual(
      checks.map((c) => [c.method, c.path, c.trans_type, c.branch_id, c.op]),
      [['GET', '/QueryPrepared', 'msg', '00', 'msg']],
    );
    assert.deepEqual(barrierRows(msg.gid), [{ branch_id: '00', op: 'msg', barrier_id: '01', reason: 'rollback' }]);
  });

  test('doAndSubmit: a back-check that came first wins, the business never runs (DuplicatedError)', async () => {
    const msg = client.msg().add(`${busi.url}/TransIn`, { amount: 30 });
    // The coordinator's back-check arrives before the local transaction starts: answer it as the coordinator would.
    const early = await fetch(`${busi.url}/QueryPrepared?gid=${msg.gid}&trans_type=msg&branch_id=00&op=msg`);
    assert.equal(early.status, 409);
    let ran = false;
    await assert.rejects(
      msg.doAndSubmit(`${busi.url}/QueryPrepared`, barrierDb, () => {
        ran = true;
      }),
      DuplicatedError,
    );
    assert.equal(ran, false);
    assert.equal((await client.query(msg.gid)).transaction?.status, 'prepared');
    // The coordinator's own back-check (after the timeout) then drops the msg.
    await cronUntilStatus(server, client, msg.gid, 'failed');
    assert.ok(!busi.trace(msg.gid).includes('/TransIn action'));
    assert.deepEqual(barrierRows(msg.gid), [{ branch_id: '00', op: 'msg', barrier_id: '01', reason: 'rollback' }]);
  });
});
