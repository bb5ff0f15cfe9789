// The coordinator's back-check of a prepared msg that its client never submitted (spec §6.4): driven with the
// test-mode cron step and a clock moved 60 s forward, past the default 35 s timeout.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { DtxClient } from '../src/index.js';
import { type BranchService, startBranchService } from './support/branch-service.js';
import { type DtxServer, startDtxServer } from './support/dtx-server.js';
import { failure, ONGOING, ReplyScript } from './support/reply-script.js';
import { branchStatuses, cronUntilStatus } from './support/transactions.js';

describe('msg back-check', () => {
  let server: DtxServer;
  let client: DtxClient;
  let busi: BranchService;
  const script = new ReplyScript();

  before(async () => {
    server = await startDtxServer();
    client = new DtxClient(server.url);
    busi = await startBranchService((app) => {
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
  });

  const prepared = async () => {
    const msg = client.msg().add(`${busi.url}/TransIn`, { amount: 30 });
    await msg.prepare(`${busi.url}/QueryPrepared`);
    return msg;
  };

  test('SUCCESS from the back-check submits the msg and delivers it', async () => {
    const msg = await prepared();
    const q = await cronUntilStatus(server, client, msg.gid, 'succeed');
    assert.deepEqual(branchStatuses(q), ['succeed']);
    assert.deepEqual(busi.trace(msg.gid), ['/QueryPrepared msg', '/TransIn action']);
    const [check] = busi.calls.filter((c) => c.gid === msg.gid);
    assert.deepEqual(
      [check?.method, check?.trans_type, check?.branch_id, check?.op, check?.body],
      ['GET', 'msg', '00', 'msg', ''],
    );
  });

  test('FAILURE from the back-check fails the msg; nothing is delivered', async () => {
    const msg = await prepared();
    script.set(msg.gid, '/QueryPrepared', failure('not committed'));
    const q = await cronUntilStatus(server, client, msg.gid, 'failed');
    assert.deepEqual(branchStatuses(q), ['prepared']);
    assert.deepEqual(busi.trace(msg.gid), ['/QueryPrepared msg']);
  });

  test('ONGOING from the back-check asks again later', async () => {
    const msg = await prepared();
    script.set(msg.gid, '/QueryPrepared', ONGOING);
    await cronUntilStatus(server, client, msg.gid, 'succeed');
    assert.deepEqual(busi.trace(msg.gid), ['/QueryPrepared msg', '/QueryPrepared msg', '/TransIn action']);
  });

  test('a msg within its timeout is not back-checked', async () => {
    const msg = client.msg(undefined, { timeoutToFail: 3600 }).add(`${busi.url}/TransIn`);
    await msg.prepare(`${busi.url}/QueryPrepared`);
    for (let i = 0; i < 3; i++) await server.cronOnce(60, 180);
    assert.equal((await client.query(msg.gid)).transaction?.status, 'prepared');
    assert.deepEqual(busi.trace(msg.gid), []);
    await msg.submit();
    await cronUntilStatus(server, client, msg.gid, 'succeed');
  });
});
