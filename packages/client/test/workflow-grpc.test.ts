// Workflow mode over gRPC end to end: DtxGrpcClient's client.workflow on a real coordinator (dtx by default, DTM
// v1.19.0 when DTX_TEST_DTM_BIN names its binary), gRPC branch steps on a real grpc-js service, an HTTP step from
// the same workflow, and the coordinator resuming an unfinished workflow through workflow.Workflow/Execute.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { GrpcStatus } from '@dtx/protocol';
import { Server, ServerCredentials, type ServerUnaryCall, type sendUnaryData } from '@grpc/grpc-js';
import Fastify, { type FastifyInstance } from 'fastify';
import { DtxGrpcClient, workflowGrpcService, workflowServiceDefinition } from '../src/grpc/index.js';
import {
  BranchError,
  DtxClient,
  generateGid,
  type Workflow,
  WorkflowFailedError,
  WorkflowOngoingError,
} from '../src/index.js';
import { BUSI_METHODS, type BusiReq, busiReq, busiService, freePort, metadataOf } from './support/grpc-services.js';
import { waitFor } from './support/poll.js';
import { startWorkflowCoordinator, type WorkflowCoordinator } from './support/workflow-coordinator.js';

const busi = busiService();

describe(`workflow over gRPC (${process.env.DTX_TEST_DTM_BIN ? 'DTM' : 'dtx'})`, () => {
  let coordinator: WorkflowCoordinator;
  let server: Server;
  let hostAddress: string;
  let http: FastifyInstance;
  let httpUrl: string;
  let dtx: DtxGrpcClient;
  let query: DtxClient;
  const received: { gid: string; call: string }[] = [];
  /** `<gid> <method>` → the gRPC status the branch answers instead of OK. */
  const script = new Map<string, number>();
  const local: string[] = [];

  const calls = (gid: string) => received.filter((r) => r.gid === gid).map((r) => r.call);

  before(async () => {
    coordinator = await startWorkflowCoordinator();
    const port = await freePort();
    hostAddress = `127.0.0.1:${port}`;
    dtx = new DtxGrpcClient(coordinator.grpcAddress, { workflowResumeUrl: hostAddress, requestTimeoutMs: 5_000 });
    query = new DtxClient(coordinator.url);
    server = new Server();
    const impl: Record<string, (call: ServerUnaryCall<BusiReq, unknown>, cb: sendUnaryData<unknown>) => void> = {};
    for (const m of BUSI_METHODS) {
      impl[m] = (call, cb) => {
        const md = metadataOf(call.metadata);
        const gid = md['dtm-gid'] ?? '';
        received.push({ gid, call: `${m} ${md['dtm-branch_id']} ${md['dtm-op']} ${call.request.Amount}` });
        const code = script.get(`${gid} ${m}`);
        if (code === undefined) cb(null, { Message: `${m} ok` });
        else cb({ code, details: `${m} says ${code}`, name: 'Error', message: `${m} says ${code}` });
      };
    }
    server.addService(busi, impl);
    server.addService(workflowServiceDefinition(), workflowGrpcService(dtx.workflow));
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(hostAddress, ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())),
    );
    http = Fastify();
    http.post('/busi/Audit', async (request) => {
      const q = request.query as Record<string, string>;
      received.push({ gid: q.gid ?? '', call: `Audit ${q.branch_id} ${q.op} ${q.trans_type}` });
      return { audited: true };
    });
    await http.listen({ port: 0, host: '127.0.0.1' });
    httpUrl = `http://127.0.0.1:${(http.server.address() as AddressInfo).port}`;

    dtx.workflow.register(
      'grpcTransfer',
      async (wf: Workflow, amount: number) => {
        const req = busiReq(busi, amount);
        const out = await wf.grpc(`${hostAddress}/busi.Busi/TransOut`, req, {
          onRollback: `${hostAddress}/busi.Busi/TransOutRevert`,
        });
        await wf.step(() => {
          local.push('local');
          return 1;
        });
        await wf.grpc(`${hostAddress}/busi.Busi/TransIn`, req, {
          onRollback: `${hostAddress}/busi.Busi/TransInRevert`,
        });
        await wf.call(`${httpUrl}/busi/Audit`, { amount });
        return busi.TransOut!.responseDeserialize(Buffer.from(out)).Message;
      },
      { retryInterval: 1 },
    );
  });

  after(async () => {
    await dtx?.close();
    await query?.close();
    await http?.close();
    await new Promise<void>((resolve) => (server ? server.tryShutdown(() => resolve()) : resolve()));
    await coordinator?.stop();
  });

  test('success: gRPC steps and an HTTP step, the decoded reply of a recorded step', async () => {
    const gid = generateGid();
    assert.equal(await dtx.workflow.execute('grpcTransfer', gid, 40), 'TransOut ok');
    assert.deepEqual(calls(gid), ['TransOut 01 action 40', 'TransIn 03 action 40', 'Audit 04 action workflow']);
    assert.equal((await query.query(gid)).transaction?.status, 'succeed');
    // dtx's PrepareWorkflow reply carries the stored result; DTM's gRPC reply leaves it empty
    const again = await dtx.workflow.execute('grpcTransfer', gid, 40);
    assert.equal(again, coordinator.kind === 'dtx' ? 'TransOut ok' : undefined);
    assert.equal(calls(gid).length, 3);
  });

  test('failure: Aborted fails the workflow, the gRPC compensations run last step first', async () => {
    const gid = generateGid();
    script.set(`${gid} TransIn`, GrpcStatus.ABORTED);
    const err = await dtx.workflow.execute('grpcTransfer', gid, 8).catch((e: unknown) => e);
    assert.ok(err instanceof WorkflowFailedError, String(err));
    assert.match(err.rollbackReason, /TransIn says 10/);
    assert.deepEqual(calls(gid), [
      'TransOut 01 action 8',
      'TransIn 03 action 8',
      'TransInRevert 03 rollback 8',
      'TransOutRevert 01 rollback 8',
    ]);
    assert.equal((await query.query(gid)).transaction?.status, 'failed');
  });

  test('ongoing: FailedPrecondition leaves the workflow prepared', async () => {
    const gid = generateGid();
    script.set(`${gid} TransIn`, GrpcStatus.FAILED_PRECONDITION);
    await assert.rejects(dtx.workflow.execute('grpcTransfer', gid, 2), WorkflowOngoingError);
    assert.equal((await query.query(gid)).transaction?.status, 'prepared');
    script.delete(`${gid} TransIn`);
    assert.equal(await dtx.workflow.execute('grpcTransfer', gid, 2), 'TransOut ok');
  });

  test('the resume service refuses a call without dtm-gid, or naming an unknown workflow', async () => {
    const data = Buffer.from([]);
    const bad = await dtx.invokeBranch(`${hostAddress}/workflow.Workflow/Execute`, data, { 'dtm-op': 'grpcTransfer' });
    assert.equal(bad.code, GrpcStatus.INVALID_ARGUMENT);
    assert.match(bad.details, /dtm-gid/);
    const unknown = await dtx.invokeBranch(`${hostAddress}/workflow.Workflow/Execute`, data, {
      'dtm-gid': generateGid(),
      'dtm-op': 'nope',
    });
    assert.equal(unknown.code, GrpcStatus.NOT_FOUND);
    assert.match(unknown.details, /nope/);
  });

  test('the coordinator resumes an unfinished workflow through workflow.Workflow/Execute', async () => {
    const gid = generateGid();
    const before = local.length;
    script.set(`${gid} TransIn`, GrpcStatus.INTERNAL);
    await assert.rejects(dtx.workflow.execute('grpcTransfer', gid, 21), BranchError);
    script.delete(`${gid} TransIn`);
    await waitFor(
      async () => {
        await coordinator.kick();
        return (await query.query(gid)).transaction?.status === 'succeed' ? true : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 100, what: `workflow ${gid} resumed over gRPC` },
    );
    assert.equal(calls(gid).filter((c) => c.startsWith('TransOut ')).length, 1);
    assert.equal(local.length - before, 1, 'the local step ran once');
  });
});
