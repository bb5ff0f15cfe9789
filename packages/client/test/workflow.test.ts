// Workflow mode end to end: client.workflow on real coordinators — dtx by default, DTM v1.19.0 when
// DTX_TEST_DTM_BIN names its binary — with real HTTP branch services (Fastify), the resume endpoint on Fastify
// and Express, and a workflow host process killed between two steps.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import express from 'express';
import Fastify, { type FastifyInstance } from 'fastify';
import { workflowExpress } from '../src/adapters/express.js';
import { workflowFastify } from '../src/adapters/fastify.js';
import {
  BranchError,
  DtxClient,
  FailureError,
  generateGid,
  isFailure,
  type Workflow,
  WorkflowFailedError,
  WorkflowOngoingError,
} from '../src/index.js';
import { waitFor } from './support/poll.js';
import { startWorkflowCoordinator, type WorkflowCoordinator } from './support/workflow-coordinator.js';

/** One call a branch received. */
interface Received {
  gid: string;
  path: string;
  op: string;
  branchId: string;
  body: unknown;
}

const HOST_SCRIPT = fileURLToPath(new URL('./support/workflow-host.js', import.meta.url));

describe(`workflow over HTTP (${process.env.DTX_TEST_DTM_BIN ? 'DTM' : 'dtx'})`, () => {
  let coordinator: WorkflowCoordinator;
  let busi: FastifyInstance;
  let busiUrl: string;
  const received: Received[] = [];
  /** `<gid> <path>` → the HTTP status the branch answers instead of 200. */
  const script = new Map<string, number>();
  const clients: DtxClient[] = [];

  const newClient = (options: ConstructorParameters<typeof DtxClient>[1] = {}) => {
    const c = new DtxClient(coordinator.url, { requestTimeoutMs: 5_000, ...options });
    clients.push(c);
    return c;
  };
  const calls = (gid: string) => received.filter((r) => r.gid === gid).map((r) => `${r.path} ${r.branchId} ${r.op}`);

  before(async () => {
    coordinator = await startWorkflowCoordinator();
    busi = Fastify();
    busi.all('/busi/*', async (request, reply) => {
      const q = request.query as Record<string, string>;
      const path = request.url.split('?')[0] as string;
      received.push({ gid: q.gid ?? '', path, op: q.op ?? '', branchId: q.branch_id ?? '', body: request.body });
      const status = script.get(`${q.gid} ${path}`) ?? 200;
      if (status === 0) return new Promise(() => {}); // never answers: the host is killed meanwhile
      return reply
        .code(status)
        .send(
          status === 200
            ? { path, amount: (request.body as { amount?: number } | undefined)?.amount }
            : `${path} says ${status}`,
        );
    });
    await busi.listen({ port: 0, host: '127.0.0.1' });
    busiUrl = `http://127.0.0.1:${(busi.server.address() as AddressInfo).port}/busi`;
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await busi?.close();
    await coordinator?.stop();
  });

  /** The transfer workflow of these tests: two HTTP steps with compensations, and a local step between. */
  function registerTransfer(client: DtxClient, localSteps: string[] = []) {
    client.workflow.register(
      'transfer',
      async (wf: Workflow, input: { amount: number }) => {
        const out = await wf.call(`${busiUrl}/TransOut`, input, {
          onRollback: `${busiUrl}/TransOutRevert`,
          onCommit: async (ctx) => {
            localSteps.push(`commit ${ctx.branchId}`);
          },
        });
        const stamp = await wf.step(() => {
          localSteps.push('stamp');
          return randomUUID();
        });
        await wf.call(`${busiUrl}/TransIn`, input, {
          onRollback: `${busiUrl}/TransInRevert`,
          onCommit: async (ctx) => {
            localSteps.push(`commit ${ctx.branchId}`);
          },
        });
        return { out: out.json<{ path: string }>().path, stamp };
      },
      { retryInterval: 1 },
    );
  }

  async function stored(client: DtxClient, gid: string) {
    const t = (await client.query(gid)).transaction;
    return t?.status;
  }

  test('success: the steps run in order, onCommit last step first, the result is returned', async () => {
    const client = newClient();
    const local: string[] = [];
    registerTransfer(client, local);
    const gid = generateGid();
    const res = await client.workflow.execute<{ out: string; stamp: string }>('transfer', gid, { amount: 30 });
    assert.equal(res.out, '/busi/TransOut');
    assert.deepEqual(calls(gid), ['/busi/TransOut 01 action', '/busi/TransIn 03 action']);
    assert.deepEqual(local, ['stamp', 'commit 03', 'commit 01']);
    assert.deepEqual(
      received.filter((r) => r.gid === gid).map((r) => r.body),
      [{ amount: 30 }, { amount: 30 }],
    );
    assert.equal(await stored(client, gid), 'succeed');
    // executing a finished workflow again runs nothing
    const again = await client.workflow.execute<{ out: string; stamp: string } | undefined>('transfer', gid, {
      amount: 30,
    });
    assert.deepEqual(again, res, 'the recorded result');
    assert.equal(calls(gid).length, 2);
    assert.deepEqual(local, ['stamp', 'commit 03', 'commit 01']);
  });

  test('failure: a 409 step fails the workflow, the compensations run last step first', async () => {
    const client = newClient();
    registerTransfer(client);
    const gid = generateGid();
    script.set(`${gid} /busi/TransIn`, 409);
    const err = await client.workflow.execute('transfer', gid, { amount: 5 }).catch((e: unknown) => e);
    assert.ok(err instanceof WorkflowFailedError, String(err));
    assert.ok(isFailure(err));
    assert.match(err.rollbackReason, /TransIn says 409/);
    assert.deepEqual(calls(gid), [
      '/busi/TransOut 01 action',
      '/busi/TransIn 03 action',
      '/busi/TransInRevert 03 rollback',
      '/busi/TransOutRevert 01 rollback',
    ]);
    assert.equal(await stored(client, gid), 'failed');
    const again = await client.workflow.execute('transfer', gid, { amount: 5 }).catch((e: unknown) => e);
    assert.ok(again instanceof WorkflowFailedError);
    assert.equal(calls(gid).length, 4, 'nothing runs again');
  });

  test('a workflow function may catch a failed step and continue; the failure is recorded and replayed', async () => {
    const client = newClient();
    let runs = 0;
    client.workflow.register('tolerant', async (wf: Workflow) => {
      runs += 1;
      let first: string;
      try {
        await wf.call(`${busiUrl}/Flaky`, { amount: 1 });
        first = 'ok';
      } catch (e) {
        assert.ok(e instanceof FailureError);
        first = `failed: ${e.message}`;
      }
      await wf.call(`${busiUrl}/After`, { amount: 2 });
      return first;
    });
    const gid = generateGid();
    script.set(`${gid} /busi/Flaky`, 409);
    script.set(`${gid} /busi/After`, 500);
    await assert.rejects(client.workflow.execute('tolerant', gid, null), BranchError);
    script.delete(`${gid} /busi/After`);
    script.delete(`${gid} /busi/Flaky`); // would now succeed, but its failure is recorded
    assert.equal(await client.workflow.execute('tolerant', gid, null), 'failed: /busi/Flaky says 409');
    assert.equal(runs, 2);
    assert.deepEqual(calls(gid), ['/busi/Flaky 01 action', '/busi/After 02 action', '/busi/After 02 action']);
  });

  test('ongoing: a 425 step leaves the workflow prepared; a later execute continues after the recorded steps', async () => {
    const client = newClient();
    const local: string[] = [];
    registerTransfer(client, local);
    const gid = generateGid();
    script.set(`${gid} /busi/TransIn`, 425);
    const err = await client.workflow.execute('transfer', gid, { amount: 7 }).catch((e: unknown) => e);
    assert.ok(err instanceof WorkflowOngoingError, String(err));
    assert.equal(await stored(client, gid), 'prepared');
    script.delete(`${gid} /busi/TransIn`);
    const res = await client.workflow.execute<{ stamp: string }>('transfer', gid, { amount: 7 });
    assert.deepEqual(calls(gid), ['/busi/TransOut 01 action', '/busi/TransIn 03 action', '/busi/TransIn 03 action']);
    assert.equal(local.filter((s) => s === 'stamp').length, 1, 'the local step ran once');
    assert.equal(typeof res.stamp, 'string');
    assert.equal(await stored(client, gid), 'succeed');
  });

  test('replay by a fresh client: the recorded steps are not called again, a local step keeps its result', async () => {
    const first = newClient();
    const firstLocal: string[] = [];
    registerTransfer(first, firstLocal);
    const gid = generateGid();
    script.set(`${gid} /busi/TransIn`, 503);
    await assert.rejects(first.workflow.execute('transfer', gid, { amount: 9 }), BranchError);
    script.delete(`${gid} /busi/TransIn`);
    const second = newClient();
    const secondLocal: string[] = [];
    registerTransfer(second, secondLocal);
    const res = await second.workflow.execute<{ stamp: string }>('transfer', gid, { amount: 9 });
    assert.deepEqual(secondLocal, ['commit 03', 'commit 01'], 'the local step is replayed from its record');
    assert.equal(calls(gid).filter((c) => c.startsWith('/busi/TransOut ')).length, 1);
    const progress = (await second.query(gid)).branches ?? [];
    assert.ok(progress.length >= 3);
    assert.equal(typeof res.stamp, 'string');
  });

  test('a host killed between two steps: a new host resumes without calling the recorded step again', async () => {
    const gid = generateGid();
    script.set(`${gid} /busi/TransIn`, 0); // the killed host waits here forever
    const child: ChildProcess = spawn(process.execPath, [HOST_SCRIPT, coordinator.url, busiUrl, gid], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout?.on('data', (b: Buffer) => {
      output += b.toString();
    });
    child.stderr?.on('data', (b: Buffer) => {
      output += b.toString();
    });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    await waitFor(() => (calls(gid).includes('/busi/TransIn 03 action') ? true : undefined), {
      timeoutMs: 15_000,
      what: `the host process to reach TransIn (${output})`,
    });
    child.kill('SIGKILL');
    await exited;
    script.delete(`${gid} /busi/TransIn`);
    const client = newClient();
    const local: string[] = [];
    registerTransfer(client, local);
    await client.workflow.execute('transfer', gid, { amount: 11 });
    assert.deepEqual(calls(gid), ['/busi/TransOut 01 action', '/busi/TransIn 03 action', '/busi/TransIn 03 action']);
    assert.deepEqual(local, ['commit 03', 'commit 01'], 'the local step recorded by the killed host is replayed');
    assert.equal(await stored(client, gid), 'succeed');
  });

  test('concurrent executions of one gid on two clients agree on every recorded step and the result', async () => {
    const a = newClient();
    const b = newClient();
    registerTransfer(a);
    registerTransfer(b);
    const gid = generateGid();
    const [ra, rb] = await Promise.all([
      a.workflow.execute<{ stamp: string }>('transfer', gid, { amount: 3 }),
      b.workflow.execute<{ stamp: string }>('transfer', gid, { amount: 3 }),
    ]);
    assert.equal(ra.stamp, rb.stamp, 'both report the stamp that was recorded first');
    assert.equal(await stored(a, gid), 'succeed');
    const keys = ((await a.query(gid)).branches ?? []).map((p) => `${p.branch_id}-${p.op}`);
    assert.equal(new Set(keys).size, keys.length, `one record per step: ${keys.join(', ')}`);
  });

  for (const framework of ['fastify', 'express'] as const) {
    test(`the coordinator resumes an unfinished workflow through the ${framework} endpoint`, async () => {
      let host: { close(): Promise<void> };
      const port = await freeLoopbackPort();
      const client = newClient({ workflowResumeUrl: `http://127.0.0.1:${port}/api/workflow/resume` });
      const local: string[] = [];
      registerTransfer(client, local);
      if (framework === 'fastify') {
        const app = Fastify();
        await app.register(workflowFastify(client.workflow), { prefix: '/api' });
        await app.listen({ port, host: '127.0.0.1' });
        host = { close: () => app.close() };
      } else {
        const app = express();
        app.all('/api/workflow/resume', workflowExpress(client.workflow));
        const server = await new Promise<import('node:http').Server>((resolve) => {
          const s = app.listen(port, '127.0.0.1', () => resolve(s));
        });
        host = { close: () => new Promise((r) => server.close(() => r())) };
      }
      try {
        const gid = generateGid();
        script.set(`${gid} /busi/TransIn`, 500);
        await assert.rejects(client.workflow.execute('transfer', gid, { amount: 13 }), BranchError);
        script.delete(`${gid} /busi/TransIn`);
        await waitFor(
          async () => {
            await coordinator.kick();
            return (await stored(client, gid)) === 'succeed' ? true : undefined;
          },
          { timeoutMs: 30_000, intervalMs: 100, what: `workflow ${gid} resumed through ${framework}` },
        );
        assert.equal(calls(gid).filter((c) => c.startsWith('/busi/TransOut ')).length, 1);
        assert.equal(local.filter((s) => s === 'stamp').length, 1);
      } finally {
        await host.close();
      }
    });
  }

  test('typed input and output: text in, bytes out, a local step with the text codec', async () => {
    const client = newClient();
    let runs = 0;
    client.workflow.register(
      'echo',
      async (wf: Workflow, input: string) => {
        runs += 1;
        const tag = await wf.step(() => `tag-${randomUUID()}`, { codec: 'text' });
        await wf.call(`${busiUrl}/Echo`, { input });
        return Buffer.from(`${input}|${tag}`);
      },
      { input: 'text', output: 'bytes' },
    );
    const gid = generateGid();
    script.set(`${gid} /busi/Echo`, 503);
    await assert.rejects(client.workflow.execute('echo', gid, 'héllo'), BranchError);
    script.delete(`${gid} /busi/Echo`);
    const out = await client.workflow.execute<Uint8Array>('echo', gid, 'héllo');
    assert.ok(out instanceof Uint8Array);
    assert.match(Buffer.from(out).toString('utf8'), /^héllo\|tag-[0-9a-f-]{36}$/);
    assert.equal(runs, 2);
    assert.deepEqual(
      received.filter((r) => r.gid === gid).map((r) => r.body),
      [{ input: 'héllo' }, { input: 'héllo' }],
    );
  });

  test('register and execute check their arguments', async () => {
    const client = newClient();
    client.workflow.register('once', async () => 1);
    assert.throws(() => client.workflow.register('once', async () => 2), /already registered/);
    assert.throws(() => client.workflow.register('', async () => 2), /non-empty/);
    assert.throws(() => client.workflow.register('ri', async () => 2, { retryInterval: 0.5 }), /retryInterval/);
    await assert.rejects(client.workflow.execute('missing', generateGid(), null), /no workflow named 'missing'/);
    await assert.rejects(client.workflow.execute('once', '', null), /gid/);
  });

  test('the resume endpoints refuse a call naming no gid or an unknown workflow, and a body over the limit', async () => {
    const client = newClient();
    registerTransfer(client);
    const app = Fastify();
    await app.register(workflowFastify(client.workflow));
    try {
      const noGid = await app.inject({ method: 'POST', url: '/workflow/resume?op=transfer', payload: '{}' });
      assert.equal(noGid.statusCode, 400);
      assert.match(noGid.body, /gid/);
      const unknown = await app.inject({ method: 'GET', url: '/workflow/resume?gid=x&op=nope' });
      assert.equal(unknown.statusCode, 404);
      assert.match(unknown.body, /nope/);
    } finally {
      await app.close();
    }
    const big = express();
    big.all('/resume', workflowExpress(client.workflow, { bodyLimit: 16 }));
    const server = await new Promise<import('node:http').Server>((resolve) => {
      const s = big.listen(0, '127.0.0.1', () => resolve(s));
    });
    try {
      const port = (server.address() as AddressInfo).port;
      const res = await fetch(`http://127.0.0.1:${port}/resume?gid=g&op=transfer`, {
        method: 'POST',
        body: JSON.stringify({ amount: 1, padding: 'x'.repeat(64) }),
      });
      assert.equal(res.status, 413);
      assert.match(await res.text(), /bodyLimit \(16 bytes\)/);
    } finally {
      await new Promise((r) => server.close(() => r(undefined)));
    }
  });
});

async function freeLoopbackPort(): Promise<number> {
  const { freePort } = await import('./support/grpc-services.js');
  return freePort();
}
