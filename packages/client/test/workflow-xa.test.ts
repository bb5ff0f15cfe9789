// XA inside a workflow (wf.xa) end to end on real MariaDB and PostgreSQL with a real coordinator — dtx by default,
// DTM v1.19.0 when DTX_TEST_DTM_BIN names its binary — over HTTP and gRPC:
// the workflow prepares local XA transactions as steps and commits them after it succeeds, rolls them back after
// it fails; a workflow host process SIGKILLed around the prepare or before the commit is resumed by the
// coordinator through the resume endpoint of this process, and the XA branches end as the record says.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import Fastify, { type FastifyInstance } from 'fastify';
import { workflowFastify } from '../src/adapters/fastify.js';
import { DtxGrpcClient, workflowGrpcService, workflowServiceDefinition } from '../src/grpc/index.js';
import { DtxClient, DtxError, WorkflowFailedError, WorkflowOngoingError } from '../src/index.js';
import { uniqueSuffix } from './support/db.js';
import { freePort } from './support/grpc-services.js';
import { waitFor } from './support/poll.js';
import { startWorkflowCoordinator, type WorkflowCoordinator } from './support/workflow-coordinator.js';
import {
  REFUSED,
  registerXaTransfer,
  type XaCrashPoint,
  type XaTransferInput,
  type XaTransferResult,
} from './support/workflow-xa.js';
import { openXaHarness, type XaHarness } from './support/xa-db.js';

const HOST = fileURLToPath(new URL('./support/workflow-xa-host.js', import.meta.url));

const COMMITTED = [
  '01/business=succeed',
  '01/action=succeed',
  '02/business=succeed',
  '02/action=succeed',
  '03/action=succeed',
  '02/commit=succeed',
  '01/commit=succeed',
];
const ROLLED_BACK = [
  '01/business=succeed',
  '01/action=succeed',
  '02/business=succeed',
  '02/action=succeed',
  '03/action=failed',
  '02/rollback=succeed',
  '01/rollback=succeed',
];

for (const name of ['mysql', 'postgres'] as const) {
  const label = name === 'mysql' ? 'MariaDB' : 'PostgreSQL';
  describe(`workflow XA on ${label} (${process.env.DTX_TEST_DTM_BIN ? 'DTM' : 'dtx'})`, () => {
    let server: WorkflowCoordinator;
    let h: XaHarness;
    let http: DtxClient;
    let grpc: DtxGrpcClient;
    let resumeApp: FastifyInstance;
    let resumeUrl: string;
    let grpcHost: Server;
    let grpcHostAddress: string;
    const steps: string[] = [];
    // Short gids: the MySQL xid (gid-branch_id) has at most 64 bytes. Fixed width: DTM's BoltDB store keys a
    // branch as gid + 3 digits and reads a gid's branches from the first key at or after the gid, so the branches
    // of `…-10` are invisible while `…-1` has some.
    const prefix = `w${uniqueSuffix().slice(0, 8)}`;
    let n = 0;
    const nextGid = () => `${prefix}-${String(++n).padStart(3, '0')}`;
    const stepsOf = (gid: string) => steps.filter((s) => s.startsWith(`${gid} `)).map((s) => s.slice(gid.length + 1));

    before(async () => {
      server = await startWorkflowCoordinator();
      h = await openXaHarness(name, `wfxa_account_${uniqueSuffix()}`, true);
      const port = await freePort();
      resumeUrl = `http://127.0.0.1:${port}/api/workflow/resume`;
      http = new DtxClient(server.url, { workflowResumeUrl: resumeUrl });
      registerXaTransfer(http, h, undefined, steps);
      resumeApp = Fastify();
      await resumeApp.register(workflowFastify(http.workflow), { prefix: '/api' });
      await resumeApp.listen({ host: '127.0.0.1', port });
      grpcHostAddress = `127.0.0.1:${await freePort()}`;
      grpc = new DtxGrpcClient(server.grpcAddress, { workflowResumeUrl: grpcHostAddress });
      registerXaTransfer(grpc, h, undefined, steps);
      grpcHost = new Server();
      grpcHost.addService(workflowServiceDefinition(), workflowGrpcService(grpc.workflow));
      await new Promise<void>((resolve, reject) =>
        grpcHost.bindAsync(grpcHostAddress, ServerCredentials.createInsecure(), (err) =>
          err ? reject(err) : resolve(),
        ),
      );
    });
    after(async () => {
      // Nothing of this run may be left prepared, whatever failed.
      try {
        const left = await h?.prepared(prefix);
        for (const xid of left ?? []) {
          const outcome = await h.dialect.rollback(h.db, xid).catch((e: unknown) => String(e));
          console.error(`left prepared: ${xid} (rollback: ${outcome})`);
        }
        assert.deepEqual(left, [], 'prepared XA transactions left behind');
      } finally {
        await new Promise<void>((resolve) => (grpcHost ? grpcHost.tryShutdown(() => resolve()) : resolve()));
        await resumeApp?.close();
        await grpc?.close();
        await http?.close();
        await h?.close();
        await server?.stop();
      }
    });

    /** Fresh accounts `<gid>-a` (100) and `<gid>-b` (100), and the input moving `amount` from a to b. */
    const transfer = async (gid: string, amount: number, refuse = false): Promise<XaTransferInput> => {
      await h.setBalance(`${gid}-a`, 100);
      await h.setBalance(`${gid}-b`, 100);
      return { out: `${gid}-a`, in: `${gid}-b`, amount, ...(refuse ? { refuse } : {}) };
    };
    const balances = async (gid: string) => [await h.balance(`${gid}-a`), await h.balance(`${gid}-b`)];
    const records = async (gid: string) =>
      ((await http.query(gid)).branches ?? []).map((b) => `${b.branch_id}/${b.op}=${b.status}`);
    const status = async (gid: string) => (await http.query(gid)).transaction?.status;
    const barriers = async (gid: string) => [await h.barrierReason(gid, '01'), await h.barrierReason(gid, '02')];

    for (const transport of ['http', 'grpc'] as const) {
      const client = () => (transport === 'http' ? http : grpc);

      describe(`over ${transport === 'http' ? 'HTTP' : 'gRPC'}`, () => {
        test('commit: both XA steps prepare, then commit newest first after the function succeeds', async () => {
          const gid = nextGid();
          const input = await transfer(gid, 30);
          const res = await client().workflow.execute<XaTransferResult>('xaTransfer', gid, input);
          assert.deepEqual(res, { debited: { account: input.out, amount: 30 }, credited: `${input.in}+30` });
          assert.deepEqual(await records(gid), COMMITTED);
          assert.equal(await status(gid), 'succeed');
          assert.deepEqual(await balances(gid), [70, 130]);
          assert.deepEqual(await barriers(gid), ['action', 'action']);
          assert.deepEqual(await h.prepared(gid), []);
          // a decided workflow runs nothing again and answers its recorded result (DTM's gRPC API does not return it)
          const again = await client().workflow.execute('xaTransfer', gid, input);
          assert.deepEqual(again, transport === 'grpc' && server.kind === 'dtm' ? undefined : res);
          assert.deepEqual(stepsOf(gid), ['debit 01', 'credit 02', 'check 03']);
        });

        test('rollback: a later step fails, both prepared XA branches roll back newest first', async () => {
          const gid = nextGid();
          const input = await transfer(gid, 30, true);
          const err = await client()
            .workflow.execute('xaTransfer', gid, input)
            .catch((e: unknown) => e);
          assert.ok(err instanceof WorkflowFailedError, String(err));
          assert.equal(err.rollbackReason, REFUSED);
          assert.deepEqual(await records(gid), ROLLED_BACK);
          assert.equal(await status(gid), 'failed');
          assert.deepEqual(await balances(gid), [100, 100], 'the prepared updates never became visible');
          assert.deepEqual(await barriers(gid), ['rollback', 'rollback']);
          assert.deepEqual(await h.prepared(gid), []);
        });

        test('an XA step whose function fails is recorded as failed, nothing is prepared', async () => {
          const gid = nextGid();
          const input = await transfer(gid, 500);
          const err = await client()
            .workflow.execute('xaTransfer', gid, input)
            .catch((e: unknown) => e);
          assert.ok(err instanceof WorkflowFailedError, String(err));
          assert.equal(err.rollbackReason, 'insufficient balance');
          // no business record: the step failed before its prepare; its XA rollback is recorded (as DTM's client does)
          assert.deepEqual(await records(gid), ['01/action=failed', '01/rollback=succeed']);
          assert.deepEqual(stepsOf(gid), ['debit 01']);
          assert.deepEqual(await balances(gid), [100, 100]);
          assert.deepEqual(await barriers(gid), ['rollback', undefined]);
        });

        const crash = async (point: XaCrashPoint, input: XaTransferInput, gid: string) => {
          let output = '';
          const child: ChildProcess = spawn(process.execPath, [HOST], {
            env: {
              ...process.env,
              XA_DB: name,
              XA_TABLE: h.table,
              WF_PROTOCOL: transport,
              WF_DTM: transport === 'http' ? server.url : server.grpcAddress,
              WF_RESUME: transport === 'http' ? resumeUrl : grpcHostAddress,
              WF_GID: gid,
              WF_INPUT: JSON.stringify(input),
              WF_CRASH: point,
            },
            stdio: ['ignore', 'pipe', 'pipe'],
          });
          child.stdout?.on('data', (b: Buffer) => (output += b.toString()));
          child.stderr?.on('data', (b: Buffer) => (output += b.toString()));
          const signal = await new Promise<NodeJS.Signals | null>((resolve) =>
            child.once('exit', (_code, sig) => resolve(sig)),
          );
          assert.equal(signal, 'SIGKILL', `the host process did not crash at ${point}: ${output}`);
          // the coordinator resumes the workflow through this process's resume endpoint
          return waitFor(
            async () => {
              await server.kick();
              const s = await status(gid);
              return s === 'succeed' || s === 'failed' ? s : undefined;
            },
            { timeoutMs: 30_000, intervalMs: 100, what: `workflow ${gid} resumed after the crash at ${point}` },
          );
        };

        test('host killed right after the prepare of an XA step: the resume records it from the database and commits', async () => {
          const gid = nextGid();
          const input = await transfer(gid, 25);
          assert.equal(await crash('after-prepare-02', input, gid), 'succeed');
          assert.deepEqual(await records(gid), COMMITTED);
          assert.deepEqual(stepsOf(gid), ['check 03'], 'the prepared XA steps are not run again');
          assert.deepEqual(await balances(gid), [75, 125]);
          assert.deepEqual(await barriers(gid), ['action', 'action']);
          assert.deepEqual(await h.prepared(gid), []);
        });

        test('host killed before the prepare of an XA step: the resume records it failed and rolls back', async () => {
          const gid = nextGid();
          const input = await transfer(gid, 25);
          assert.equal(await crash('before-prepare-02', input, gid), 'failed');
          const recs = await records(gid);
          assert.deepEqual(recs, [
            '01/business=succeed',
            '01/action=succeed',
            '02/business=succeed',
            '02/action=failed',
            '02/rollback=succeed',
            '01/rollback=succeed',
          ]);
          assert.match((await http.query(gid)).transaction?.rollback_reason ?? '', /did not prepare/);
          assert.deepEqual(stepsOf(gid), [], 'nothing runs again');
          assert.deepEqual(await balances(gid), [100, 100]);
          assert.deepEqual(await barriers(gid), ['rollback', 'rollback']);
          assert.deepEqual(await h.prepared(gid), []);
        });

        test('host killed between the commits: the resume commits the branch still prepared', async () => {
          const gid = nextGid();
          const input = await transfer(gid, 40);
          assert.equal(await crash('commit-01', input, gid), 'succeed');
          assert.deepEqual(await records(gid), COMMITTED);
          assert.deepEqual(stepsOf(gid), [], 'every step is replayed from its record');
          assert.deepEqual(await balances(gid), [60, 140]);
          assert.deepEqual(await barriers(gid), ['action', 'action']);
          assert.deepEqual(await h.prepared(gid), []);
        });
      });
    }

    test('a second execution meets the first inside its XA step: told ongoing, it later adopts the outcome', async () => {
      const gid = nextGid();
      const input = await transfer(gid, 10);
      const other = new DtxClient(server.url);
      let release!: () => void;
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      const ran: string[] = [];
      const gated = (client: DtxClient, wait: boolean) =>
        client.workflow.register('xaGated', async (wf, i: XaTransferInput) =>
          wf.xa(
            h.dialect,
            h.db,
            async (conn, ctx) => {
              ran.push(`${wait ? 'first' : 'second'} ${ctx.branchId}`);
              if (wait) await gate;
              await h.debit(conn, i.out, i.amount);
              return 'debited';
            },
            { lockTimeoutMs: 300 },
          ),
        );
      gated(http, true);
      gated(other, false);
      try {
        const first = http.workflow.execute('xaGated', gid, input);
        await waitFor(() => (ran.includes('first 01') ? true : undefined), { what: 'the first execution in its step' });
        // MariaDB refuses the second XA START of the xid; PostgreSQL's barrier insert waits 300 ms for the lock
        await assert.rejects(other.workflow.execute('xaGated', gid, input), WorkflowOngoingError);
        release();
        assert.equal(await first, 'debited');
        assert.equal(await other.workflow.execute('xaGated', gid, input), 'debited');
        assert.deepEqual(ran, ['first 01'], "the second execution never ran the step's function");
        assert.deepEqual(await records(gid), ['01/business=succeed', '01/action=succeed', '01/commit=succeed']);
        assert.deepEqual(await balances(gid), [90, 100]);
        assert.deepEqual(await h.prepared(gid), []);
      } finally {
        release();
        await other.close();
      }
    });

    test('wf.xa checks its arguments', async () => {
      const gid = nextGid();
      http.workflow.register(`bad-${gid}`, async (wf) => wf.xa({} as never, h.db, () => 1));
      await assert.rejects(http.workflow.execute(`bad-${gid}`, gid, null), (e: unknown) => {
        assert.ok(e instanceof DtxError);
        assert.match(e.message, /XA dialect/);
        return true;
      });
    });
  });
}
