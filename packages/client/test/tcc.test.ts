// TCC end to end: the SDK calls each try and registers its confirm / cancel; the coordinator then confirms or
// cancels every branch, last first (spec §6.5, §12.5).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { DtxClient, FailureError, generateGid, OngoingError, Tcc } from '../src/index.js';
import { type BranchService, startBranchService } from './support/branch-service.js';
import { type DtxServer, startDtxServer } from './support/dtx-server.js';
import { failure, ONGOING, ReplyScript, SUCCESS } from './support/reply-script.js';
import { branchRows, cronUntilStatus, waitForStatus } from './support/transactions.js';

describe('tcc', () => {
  let server: DtxServer;
  let client: DtxClient;
  let busi: BranchService;
  const script = new ReplyScript();

  before(async () => {
    server = await startDtxServer();
    client = new DtxClient(server.url);
    busi = await startBranchService((app) => {
      // A branch whose try runs a TCC of its own (nested): one sub-branch, id <branch_id>01.
      app.post('/NestedTry', async (req, reply) => {
        const tcc = Tcc.fromQuery(req.query as Record<string, unknown>, client);
        await tcc.callBranch(
          JSON.parse(req.body as string),
          `${busi.url}/TransInTry`,
          `${busi.url}/TransInConfirm`,
          `${busi.url}/TransInCancel`,
        );
        return reply.code(SUCCESS.status).type('application/json').send(SUCCESS.body);
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
  });

  const transOut = (tcc: Tcc) =>
    tcc.callBranch(
      { amount: 30 },
      `${busi.url}/TransOutTry`,
      `${busi.url}/TransOutConfirm`,
      `${busi.url}/TransOutCancel`,
    );
  const transIn = (tcc: Tcc) =>
    tcc.callBranch({ amount: 30 }, `${busi.url}/TransInTry`, `${busi.url}/TransInConfirm`, `${busi.url}/TransInCancel`);

  test('confirm: every try succeeds, the coordinator confirms last branch first', async () => {
    const gid = generateGid();
    const result = await client.tccGlobalTransaction(gid, async (tcc) => {
      await transOut(tcc);
      const r = await transIn(tcc);
      return r.status;
    });
    assert.equal(result, 200);
    const q = await waitForStatus(client, gid, 'succeed');
    assert.deepEqual(branchRows(q), [
      '01 cancel prepared',
      '01 confirm succeed',
      '02 cancel prepared',
      '02 confirm succeed',
    ]);
    assert.deepEqual(busi.trace(gid), [
      '/TransOutTry try',
      '/TransInTry try',
      '/TransInConfirm confirm',
      '/TransOutConfirm confirm',
    ]);
    const [try1, , , confirm1] = busi.calls.filter((c) => c.gid === gid);
    assert.deepEqual(
      [try1?.query.dtm, try1?.trans_type, try1?.branch_id, try1?.body],
      [client.url, 'tcc', '01', '{"amount":30}'],
    );
    assert.deepEqual([confirm1?.branch_id, confirm1?.body], ['01', '{"amount":30}']);
  });

  test('cancel: a try answering 409 cancels every registered branch and the transaction fails', async () => {
    const gid = generateGid();
    script.set(gid, '/TransInTry', failure('insufficient balance'));
    await assert.rejects(
      client.tccGlobalTransaction(gid, async (tcc) => {
        await transOut(tcc);
        await transIn(tcc);
      }),
      (err) => err instanceof FailureError && /insufficient balance/.test(err.message),
    );
    const q = await waitForStatus(client, gid, 'failed');
    assert.deepEqual(branchRows(q), [
      '01 cancel succeed',
      '01 confirm prepared',
      '02 cancel succeed',
      '02 confirm prepared',
    ]);
    assert.deepEqual(busi.trace(gid), [
      '/TransOutTry try',
      '/TransInTry try',
      '/TransInCancel cancel',
      '/TransOutCancel cancel',
    ]);
    assert.match(q.transaction?.rollback_reason ?? '', /insufficient balance/);
  });

  test('cancel: an error thrown by the body aborts with its message as rollback_reason', async () => {
    const gid = generateGid();
    await assert.rejects(
      client.tccGlobalTransaction(gid, async (tcc) => {
        await transOut(tcc);
        throw new Error('price changed');
      }),
      /price changed/,
    );
    const q = await waitForStatus(client, gid, 'failed');
    assert.equal(q.transaction?.rollback_reason, 'price changed');
    assert.deepEqual(busi.trace(gid), ['/TransOutTry try', '/TransOutCancel cancel']);
  });

  test('nested: a try that runs its own TCC registers sub-branch 0101', async () => {
    const gid = generateGid();
    await client.tccGlobalTransaction(gid, (tcc) =>
      tcc.callBranch({ amount: 5 }, `${busi.url}/NestedTry`, `${busi.url}/NestedConfirm`, `${busi.url}/NestedCancel`),
    );
    const q = await waitForStatus(client, gid, 'succeed');
    assert.deepEqual(branchRows(q), [
      '01 cancel prepared',
      '01 confirm succeed',
      '0101 cancel prepared',
      '0101 confirm succeed',
    ]);
    assert.deepEqual(busi.trace(gid), [
      '/NestedTry try',
      '/TransInTry try',
      '/TransInConfirm confirm',
      '/NestedConfirm confirm',
    ]);
  });

  test('waitResult: a confirm answering ONGOING rejects submit with an OngoingError', async () => {
    const gid = generateGid();
    script.set(gid, '/TransInConfirm', ONGOING);
    await assert.rejects(
      client.tccGlobalTransaction(
        gid,
        async (tcc) => {
          await transOut(tcc);
          await transIn(tcc);
        },
        { waitResult: true },
      ),
      OngoingError,
    );
    assert.equal((await client.query(gid)).transaction?.status, 'submitted');
    await cronUntilStatus(server, client, gid, 'succeed');
  });

  test('waitResult: a confirmed TCC is finished when the call resolves', async () => {
    const gid = generateGid();
    await client.tccGlobalTransaction(gid, (tcc) => transOut(tcc), { waitResult: true });
    assert.equal((await client.query(gid)).transaction?.status, 'succeed');
  });
});
