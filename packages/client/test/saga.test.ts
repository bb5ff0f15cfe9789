// Sagas end to end: a real coordinator drives branch handlers defined here; assertions are on the branch
// status vector (spec §6.7) and the exact sequence of calls the handlers received.
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { CoordinatorError, DtxClient, FailureError, isCoordinatorError, OngoingError } from '../src/index.js';
import { type BranchService, startBranchService } from './support/branch-service.js';
import { type DtxServer, startDtxServer } from './support/dtx-server.js';
import { ERROR, failure, ONGOING, ReplyScript } from './support/reply-script.js';
import { branchStatuses, cronUntilStatus, waitForStatus } from './support/transactions.js';

describe('saga', () => {
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

  /** A two-step transfer: TransOut then TransIn. */
  const transfer = (options?: Parameters<DtxClient['saga']>[1]) =>
    client
      .saga(undefined, options)
      .add(`${busi.url}/TransOut`, `${busi.url}/TransOutCompensate`, { amount: 30 })
      .add(`${busi.url}/TransIn`, `${busi.url}/TransInCompensate`, { amount: 30 });

  test('success: every action runs once, in order', async () => {
    const saga = transfer();
    await saga.submit();
    const q = await waitForStatus(client, saga.gid, 'succeed');
    assert.deepEqual(branchStatuses(q), ['prepared', 'succeed', 'prepared', 'succeed']);
    assert.deepEqual(busi.trace(saga.gid), ['/TransOut action', '/TransIn action']);
    const [out, into] = busi.calls.filter((c) => c.gid === saga.gid);
    assert.equal(out?.method, 'POST');
    assert.equal(out?.body, '{"amount":30}');
    assert.deepEqual([out?.trans_type, out?.branch_id, into?.branch_id], ['saga', '01', '02']);
  });

  test('rollback: a 409 action compensates in reverse order and the saga fails with its reason', async () => {
    const saga = transfer();
    script.set(saga.gid, '/TransIn', failure('insufficient balance'));
    await saga.submit();
    const q = await waitForStatus(client, saga.gid, 'failed');
    assert.deepEqual(branchStatuses(q), ['succeed', 'succeed', 'succeed', 'failed']);
    assert.deepEqual(busi.trace(saga.gid), [
      '/TransOut action',
      '/TransIn action',
      '/TransInCompensate compensate',
      '/TransOutCompensate compensate',
    ]);
    assert.match(q.transaction?.rollback_reason ?? '', /insufficient balance/);
  });

  test('concurrent with orders: a step waits for its prerequisites', async () => {
    const saga = client
      .saga()
      .add(`${busi.url}/A`, `${busi.url}/ACompensate`, { step: 0 })
      .add(`${busi.url}/B`, `${busi.url}/BCompensate`, { step: 1 })
      .add(`${busi.url}/C`, `${busi.url}/CCompensate`, { step: 2 })
      .concurrent()
      .addBranchOrder(2, [0, 1]);
    await saga.submit();
    const q = await waitForStatus(client, saga.gid, 'succeed');
    assert.deepEqual(branchStatuses(q), ['prepared', 'succeed', 'prepared', 'succeed', 'prepared', 'succeed']);
    const trace = busi.trace(saga.gid);
    assert.equal(trace.length, 3);
    assert.equal(trace[2], '/C action');
    assert.deepEqual(trace.slice(0, 2).sort(), ['/A action', '/B action']);
  });

  test('concurrent with orders: a failed prerequisite keeps its dependant from running', async () => {
    const saga = client
      .saga()
      .add(`${busi.url}/A`, `${busi.url}/ACompensate`)
      .add(`${busi.url}/B`, `${busi.url}/BCompensate`)
      .addBranchOrder(1, [0]);
    script.set(saga.gid, '/A', failure('A refused'));
    await saga.submit();
    const q = await waitForStatus(client, saga.gid, 'failed');
    assert.deepEqual(branchStatuses(q), ['succeed', 'failed', 'prepared', 'prepared']);
    assert.deepEqual(busi.trace(saga.gid), ['/A action', '/ACompensate compensate']);
  });

  test('waitResult: a rolled-back saga rejects submit with a FailureError carrying the reason', async () => {
    const saga = transfer({ waitResult: true });
    script.set(saga.gid, '/TransIn', failure('account frozen'));
    await assert.rejects(saga.submit(), (err) => err instanceof FailureError && /account frozen/.test(err.message));
    const q = await client.query(saga.gid);
    assert.equal(q.transaction?.status, 'failed');
    assert.deepEqual(branchStatuses(q), ['succeed', 'succeed', 'succeed', 'failed']);
  });

  test('waitResult: a successful saga is finished when submit resolves', async () => {
    const saga = transfer({ waitResult: true });
    await saga.submit();
    const q = await client.query(saga.gid);
    assert.equal(q.transaction?.status, 'succeed');
  });

  test('waitResult: an ONGOING action leaves the saga submitted and submit rejects with OngoingError', async () => {
    const saga = transfer({ waitResult: true });
    script.set(saga.gid, '/TransIn', ONGOING);
    await assert.rejects(saga.submit(), (err) => err instanceof OngoingError && /is still submitted/.test(err.message));
    const q = await client.query(saga.gid);
    assert.equal(q.transaction?.status, 'submitted');
    assert.deepEqual(branchStatuses(q), ['prepared', 'succeed', 'prepared', 'prepared']);
    // The coordinator's cron finishes it; the handler now answers SUCCESS.
    await cronUntilStatus(server, client, saga.gid, 'succeed');
    const trace = busi.trace(saga.gid);
    assert.deepEqual(trace.slice(0, 2), ['/TransOut action', '/TransIn action']);
    assert.ok(trace.length >= 3 && trace.slice(2).every((t) => t === '/TransIn action'), trace.join(', '));
  });

  test('options reach the coordinator: branch headers are sent to every branch', async () => {
    const saga = transfer({ branchHeaders: { 'x-tenant': 't1' }, timeoutToFail: 600, retryInterval: 5 });
    await saga.submit();
    const q = await waitForStatus(client, saga.gid, 'succeed');
    const stored = JSON.parse(q.transaction?.options ?? '{}') as Record<string, unknown>;
    assert.deepEqual(stored.branch_headers, { 'x-tenant': 't1' });
    assert.equal(stored.timeout_to_fail, 600);
    assert.equal(stored.retry_interval, 5);
    const calls = busi.calls.filter((c) => c.gid === saga.gid);
    assert.equal(calls.length, 2);
    for (const c of calls) assert.equal(c.headers['x-tenant'], 't1');
  });

  describe('the outcomes of a submit', () => {
    test('waitResult: an action answering 500 once → OngoingError (still running), then the cron finishes it', async () => {
      const saga = transfer({ waitResult: true });
      script.set(saga.gid, '/TransIn', ERROR);
      await assert.rejects(saga.submit(), (err) => {
        assert.ok(err instanceof OngoingError, String(err));
        assert.match(err.message, /is still submitted .*will be retried/);
        return true;
      });
      assert.equal((await client.query(saga.gid)).transaction?.status, 'submitted');
      const q = await cronUntilStatus(server, client, saga.gid, 'succeed');
      assert.deepEqual(branchStatuses(q), ['prepared', 'succeed', 'prepared', 'succeed']);
      assert.deepEqual(busi.trace(saga.gid), ['/TransOut action', '/TransIn action', '/TransIn action']);
    });

    test('a saga submitted again after success resolves, and its branches are not called again', async () => {
      const saga = transfer({ waitResult: true });
      await saga.submit();
      const calls = busi.trace(saga.gid);
      await saga.submit();
      assert.deepEqual(busi.trace(saga.gid), calls);
      assert.equal((await client.query(saga.gid)).transaction?.status, 'succeed');
    });

    test('a saga submitted again after its rollback → FailureError with the stored rollback reason', async () => {
      const saga = transfer({ waitResult: true });
      script.set(saga.gid, '/TransIn', failure('insufficient balance'));
      await assert.rejects(saga.submit(), FailureError);
      const calls = busi.trace(saga.gid);
      await assert.rejects(saga.submit(), (err) => {
        assert.ok(err instanceof FailureError, String(err));
        assert.match(err.message, /insufficient balance/);
        assert.doesNotMatch(err.message, /cannot sumbmit/);
        return true;
      });
      assert.deepEqual(busi.trace(saga.gid), calls);
    });

    test('a saga submitted again while still submitted runs one more pass: OngoingError while it errs, then resolves', async () => {
      const saga = transfer({ waitResult: true });
      script.set(saga.gid, '/TransIn', ERROR, ERROR);
      await assert.rejects(saga.submit(), OngoingError);
      await assert.rejects(saga.submit(), OngoingError);
      await saga.submit();
      assert.equal((await client.query(saga.gid)).transaction?.status, 'succeed');
      assert.deepEqual(busi.trace(saga.gid), ['/TransOut action', ...Array(3).fill('/TransIn action')]);
    });

    test('a msg submitted again after delivery resolves without a second delivery', async () => {
      const msg = client.msg(undefined, { waitResult: true }).add(`${busi.url}/TransIn`, { amount: 1 });
      await msg.submit();
      await msg.submit();
      assert.deepEqual(busi.trace(msg.gid), ['/TransIn action']);
    });

    test('a coordinator that cannot be reached (a closed loopback port) → CoordinatorError', async () => {
      const port = await closedPort();
      const gone = new DtxClient(`http://127.0.0.1:${port}/api/dtmsvr`);
      try {
        const saga = gone.saga(undefined, { waitResult: true }).add(`${busi.url}/TransOut`, '', {});
        await assert.rejects(saga.submit(), (err) => {
          assert.ok(err instanceof CoordinatorError && isCoordinatorError(err), String(err));
          assert.equal(err.status, undefined);
          assert.match(err.message, /cannot reach the coordinator/);
          return true;
        });
        assert.deepEqual(busi.trace(saga.gid), []);
      } finally {
        await gone.close();
      }
    });
  });
});

/** A loopback port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as { port: number };
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}
