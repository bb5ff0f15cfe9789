import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server as GrpcServer, type handleUnaryCall, ServerCredentials, type ServiceError } from '@grpc/grpc-js';
import type { DtmGrpcClient } from './grpc-busi.js';
import { call } from './http.js';

/**
 * A workflow host for tests, speaking DTM's workflow client protocol (spec §6.8) by hand, over HTTP or gRPC: it
 * runs a two-step workflow `transfer` (steps 01 `debit` and 02 `credit`, each an `action`), records each step's
 * outcome with registerBranch, compensates the steps done (op `rollback`, in reverse) when one failed, submits the
 * outcome with req_extra, and serves the resume endpoint the coordinator calls for an unfinished workflow. What
 * it did is recorded: the steps it executed (not replayed), and every resume call received.
 */

/** How the next runs of a gid behave. */
export interface WorkflowPlan {
  /** This step answers failed (its outcome is recorded; the workflow rolls back). */
  failAt?: 'debit' | 'credit';
  /** The host "crashes" before this step: nothing more is recorded, nothing submitted. */
  crashBefore?: 'debit' | 'credit';
}

/** What a run came to. */
export type RunOutcome =
  | { status: 'succeed'; result: Buffer }
  | { status: 'failed'; reason: string }
  | { status: 'crashed' };

/** One resume call as the host received it. */
export interface ResumeCall {
  gid: string;
  transType: string;
  branchId: string;
  op: string;
  /** HTTP method (`POST`, `GET`); `grpc` for a gRPC call. */
  method: string;
  /** The workflow input as received (gRPC: WorkflowData.Data). */
  input: Buffer;
}

/** The three coordinator calls of a workflow client. */
interface Coordinator {
  prepare(gid: string, input: Buffer, extra: Record<string, unknown>): Promise<Progress>;
  register(gid: string, branchId: string, op: string, status: string, data: Buffer): Promise<void>;
  submit(gid: string, status: 'succeed' | 'failed', reason: string, result: Buffer): Promise<void>;
}

interface Progress {
  status: string;
  rollbackReason: string;
  result: Buffer;
  steps: Map<string, { status: string; data: Buffer }>;
}

class Crash extends Error {}

const STEPS = ['debit', 'credit'] as const;

/** The workflow function and its bookkeeping, whatever the transport. */
abstract class WorkflowHostBase {
  readonly plans = new Map<string, WorkflowPlan>();
  /** `<gid> <step>` for each step executed (a replayed step is not listed). */
  readonly executed: string[] = [];
  readonly resumes: ResumeCall[] = [];
  inFlight = 0;
  maxInFlight = 0;
  /** While set, a resume call waits for it before running the workflow. */
  hold: Promise<void> | undefined;
  /** Extra keys of the prepareWorkflow request (request_timeout, retry_interval, ...). */
  prepareExtra: Record<string, unknown> = {};
  protected abstract coordinator(): Coordinator;

  /** Run (or re-run) the workflow of gid with input, as DTM's Workflow.Execute does. */
  async run(gid: string, input: Buffer): Promise<RunOutcome> {
    const c = this.coordinator();
    const p = await c.prepare(gid, input, this.prepareExtra);
    if (p.status === 'succeed') return { status: 'succeed', result: p.result };
    if (p.status === 'failed') return { status: 'failed', reason: p.rollbackReason };
    const plan = this.plans.get(gid) ?? {};
    try {
      for (let i = 0; i < STEPS.length; i++) {
        const step = STEPS[i]!;
        const id = `0${i + 1}`;
        let rec = p.steps.get(`${id}-action`);
        if (!rec) {
          if (plan.crashBefore === step) throw new Crash();
          this.executed.push(`${gid} ${step}`);
          const failed = plan.failAt === step;
          rec = {
            status: failed ? 'failed' : 'succeed',
            data: Buffer.from(failed ? `${step} refused` : `${step} done`),
          };
          await c.register(gid, id, 'action', rec.status, rec.data);
        }
        if (rec.status === 'failed') {
          for (let j = i - 1; j >= 0; j--) {
            const rid = `0${j + 1}`;
            if (p.steps.has(`${rid}-rollback`)) continue;
            this.executed.push(`${gid} ${STEPS[j]} rollback`);
            await c.register(gid, rid, 'rollback', 'succeed', Buffer.alloc(0));
          }
          const reason = rec.data.toString();
          await c.submit(gid, 'failed', reason, Buffer.alloc(0));
          return { status: 'failed', reason };
        }
      }
    } catch (err) {
      if (err instanceof Crash) return { status: 'crashed' };
      throw err;
    }
    const result = Buffer.concat([Buffer.from('moved '), input]);
    await c.submit(gid, 'succeed', '', result);
    return { status: 'succeed', result };
  }

  /** A resume call: recorded, held while `hold` is set, then the workflow run. */
  protected async resume(r: ResumeCall): Promise<RunOutcome> {
    this.resumes.push(r);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      if (this.hold) await this.hold;
      return await this.run(r.gid, r.input);
    } finally {
      this.inFlight--;
    }
  }

  resumesOf(gid: string): ResumeCall[] {
    return this.resumes.filter((r) => r.gid === gid);
  }
}

/** The workflow host over HTTP: DTM's HTTP client calls, and a resume endpoint `/resume`. */
export class HttpWorkflowHost extends WorkflowHostBase {
  private server: Server | undefined;
  port = 0;
  /** The HTTP status a resume call answers when the run "crashed" (500: as a host whose process died). */
  crashStatus = 500;

  constructor(private readonly api: string) {
    super();
  }

  get resumeUrl(): string {
    return `http://127.0.0.1:${this.port}/resume`;
  }

  /** Listen on `port` (0: any; the same port again after a stop: the host came back). */
  async start(port = this.port): Promise<this> {
    const server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
    return this;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const u = new URL(req.url ?? '/', 'http://x');
    if (u.pathname !== '/resume') {
      res.writeHead(404).end();
      return;
    }
    const q = (k: string) => u.searchParams.get(k) ?? '';
    try {
      const out = await this.resume({
        gid: q('gid'),
        transType: q('trans_type'),
        branchId: q('branch_id'),
        op: q('op'),
        method: req.method ?? '',
        input: Buffer.concat(chunks),
      });
      const status = out.status === 'succeed' ? 200 : out.status === 'failed' ? 409 : this.crashStatus;
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ outcome: out.status }));
    } catch (err) {
      res.writeHead(500).end(String(err));
    }
  }

  protected coordinator(): Coordinator {
    const api = this.api;
    const resumeUrl = this.resumeUrl;
    const post = async (route: string, body: Record<string, unknown>) => {
      const r = await call('POST', `${api}/${route}`, body);
      if (r.status !== 200) throw new Error(`${route}: ${r.status} ${r.text}`);
      return r.json;
    };
    return {
      async prepare(gid, input, extra) {
        const r = await post('prepareWorkflow', {
          gid,
          trans_type: 'workflow',
          protocol: 'http',
          custom_data: JSON.stringify({ name: 'transfer', data: input.toString('base64') }),
          query_prepared: resumeUrl,
          ...extra,
        });
        const steps = new Map<string, { status: string; data: Buffer }>();
        for (const p of r.progresses as { branch_id: string; op: string; status: string; bin_data?: string }[]) {
          steps.set(`${p.branch_id}-${p.op}`, { status: p.status, data: Buffer.from(p.bin_data ?? '', 'base64') });
        }
        const t = r.transaction;
        return {
          status: t.status,
          rollbackReason: t.rollback_reason ?? '',
          result: Buffer.from(t.result ?? '', 'base64'),
          steps,
        };
      },
      async register(gid, branchId, op, status, data) {
        await post('registerBranch', {
          gid,
          trans_type: 'workflow',
          branch_id: branchId,
          op,
          status,
          data: data.toString(),
        });
      },
      async submit(gid, status, reason, result) {
        await post('submit', {
          gid,
          trans_type: 'workflow',
          req_extra: { status, rollback_reason: reason, result: result.toString('base64') },
        });
      },
    };
  }
}

/** Protobuf length-delimited field 1 (WorkflowData.Data) read by hand; empty bytes when absent. */
export function workflowDataOf(message: Buffer): Buffer {
  if (message.length === 0) return Buffer.alloc(0);
  if (message[0] !== 0x0a) throw new Error(`not a WorkflowData message: ${message.toString('hex')}`);
  let len = 0;
  let shift = 0;
  let i = 1;
  for (;;) {
    const b = message[i++]!;
    len += (b & 0x7f) * 2 ** shift;
    if (b < 0x80) break;
    shift += 7;
  }
  return message.subarray(i, i + len);
}

const raw = (b: Buffer): Buffer => b;

/** The workflow host over gRPC: dtmgimp.Dtm calls, and `workflow.Workflow/Execute` as its resume endpoint. */
export class GrpcWorkflowHost extends WorkflowHostBase {
  private server: GrpcServer | undefined;
  port = 0;
  /** The gRPC metadata of each Execute call. */
  readonly metadata: Record<string, string>[] = [];

  constructor(private readonly dtm: DtmGrpcClient) {
    super();
  }

  get resumeUrl(): string {
    return `127.0.0.1:${this.port}/workflow.Workflow/Execute`;
  }

  async start(port = this.port): Promise<this> {
    const server = new GrpcServer();
    const execute: handleUnaryCall<Buffer, Buffer> = (c, callback) => {
      const md = c.metadata.getMap() as Record<string, string>;
      this.metadata.push(md);
      this.resume({
        gid: md['dtm-gid'] ?? '',
        transType: md['dtm-trans_type'] ?? '',
        branchId: md['dtm-branch_id'] ?? '',
        op: md['dtm-op'] ?? '',
        method: 'grpc',
        input: workflowDataOf(c.request),
      }).then(
        (out) => {
          if (out.status === 'succeed') callback(null, Buffer.alloc(0));
          else if (out.status === 'failed') callback({ code: 10, details: out.reason } as ServiceError);
          else callback({ code: 14, details: 'crashed' } as ServiceError);
        },
        (err: unknown) => callback({ code: 2, details: String(err) } as ServiceError),
      );
    };
    server.addService(
      {
        Execute: {
          path: '/workflow.Workflow/Execute',
          requestStream: false,
          responseStream: false,
          requestSerialize: raw,
          requestDeserialize: raw,
          responseSerialize: raw,
          responseDeserialize: raw,
        },
      },
      { Execute: execute },
    );
    this.port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`127.0.0.1:${port}`, ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    this.server = server;
    return this;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    s?.forceShutdown();
  }

  protected coordinator(): Coordinator {
    const dtm = this.dtm;
    const resumeUrl = this.resumeUrl;
    return {
      async prepare(gid, input, extra) {
        const r = await dtm.call<{
          Transaction: { Status: string; RollbackReason: string; Result: string };
          Progresses: { BranchID: string; Op: string; Status: string; BinData: Buffer }[];
        }>('PrepareWorkflow', {
          Gid: gid,
          TransType: 'workflow',
          CustomedData: JSON.stringify({ name: 'transfer', data: input.toString('base64') }),
          QueryPrepared: resumeUrl,
          Steps: 'null',
          ...extra,
        });
        const steps = new Map<string, { status: string; data: Buffer }>();
        for (const p of r.Progresses)
          steps.set(`${p.BranchID}-${p.Op}`, { status: p.Status, data: Buffer.from(p.BinData) });
        return {
          status: r.Transaction.Status,
          rollbackReason: r.Transaction.RollbackReason,
          result: Buffer.from(r.Transaction.Result, 'base64'),
          steps,
        };
      },
      async register(gid, branchId, op, status, data) {
        await dtm.call('RegisterBranch', {
          Gid: gid,
          TransType: 'workflow',
          BranchID: branchId,
          Data: { op, status },
          BusiPayload: data,
        });
      },
      async submit(gid, status, reason, result) {
        await dtm.call('Submit', {
          Gid: gid,
          TransType: 'workflow',
          Steps: 'null',
          ReqExtra: { status, rollback_reason: reason, result: result.toString('base64') },
        });
      },
    };
  }
}
