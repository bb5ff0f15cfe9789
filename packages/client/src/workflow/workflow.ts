/**
 * Workflow mode (spec §6.8): a workflow is a function run by the SDK, not by the coordinator. Every step it
 * takes — an HTTP branch call, a gRPC branch call, a local step — is recorded with the coordinator as soon as
 * it succeeds or fails, keyed `<branch_id>-<op>`. When the function runs again for the same gid (another
 * `execute`, a fresh process, the coordinator's resume call after a crash), recorded steps are not run again:
 * their recorded outcome is returned. When the function ends, the steps' compensations run (`onCommit` after a
 * success, `onRollback` after a failure, last step first), each recorded too, and the outcome is submitted.
 *
 * @module
 */
import { Result, TransType } from '@dtx/protocol';
import { BranchIdGenerator } from '../branch-id-generator.js';
import type {
  CallOptions,
  SdkBranchCall,
  SdkBranchReply,
  WorkflowProgress,
  WorkflowState,
  WorkflowTransport,
} from '../coordinator-transport.js';
import { BranchError, DtxError, FailureError, isFailure, isOngoing, OngoingError } from '../errors.js';
import { runXaBranch, XA_BARRIER_ID, type XaPhase2Options, xaPhase2, xaXid } from '../xa/branch.js';
import { type XaDialect, XaXidInUseError } from '../xa/dialect.js';
import { type CodecSpec, codecOf, jsonCodec, textOf, bytesOf as utf8Bytes, type WorkflowCodec } from './codec.js';
import { WorkflowDecidedError, WorkflowFailedError, WorkflowOngoingError } from './errors.js';

/** Ops of workflow progress records. */
const Op = { Action: 'action', Commit: 'commit', Rollback: 'rollback', Business: 'business' } as const;
const Succeed = 'succeed';
const Failed = 'failed';

/** Where a step or compensation runs: the workflow's gid and the step's branch id. */
export interface StepContext {
  readonly gid: string;
  readonly branchId: string;
}

/**
 * A compensation: a function, or a branch URL called like the step itself (HTTP: a POST of the step's body with
 * `op=rollback` / `op=commit`; gRPC: the method with the step's bytes) that must answer success.
 */
export type Compensation = string | ((ctx: StepContext) => unknown);

/** Compensations of a step. Registered before the step runs, so a step that fails is compensated too. */
export interface CompensationOptions {
  /** Runs when the workflow fails (in reverse order of the steps). */
  onRollback?: Compensation;
  /** Runs when the workflow succeeds (in reverse order of the steps). */
  onCommit?: Compensation;
}

/** Options of `wf.call`. */
export interface CallStepOptions extends CompensationOptions {
  /** Extra headers of the call. Default: none. */
  headers?: Record<string, string>;
}

/** Options of `wf.step`. */
export interface LocalStepOptions<T> extends CompensationOptions {
  /** How the step's result is recorded. Default: `json`. */
  codec?: CodecSpec<T>;
}

/** Options of `wf.xa`. */
export interface XaStepOptions<T> extends XaPhase2Options {
  /** How the step's result is recorded. Default: `json`. */
  codec?: CodecSpec<T>;
}

/** The reply of an HTTP step, live or replayed from the record. */
export interface StepReply {
  /** The reply body as recorded. */
  readonly bytes: Uint8Array;
  /** The body as UTF-8 text. */
  readonly text: string;
  /** The body parsed as JSON (`undefined` for an empty body). */
  json<T = unknown>(): T;
}

/** What the engine needs from the client that runs the workflow. */
export interface WorkflowHost {
  readonly protocol: string;
  readonly wire: WorkflowTransport;
  /** An HTTP branch call (spec §5.2 query parameters added), whatever the client's protocol. */
  httpBranch(call: SdkBranchCall, options?: CallOptions): Promise<SdkBranchReply<unknown>>;
  /** A gRPC branch call; only a gRPC client has it. */
  grpcBranch?(call: SdkBranchCall, options?: CallOptions): Promise<SdkBranchReply<Uint8Array>>;
  /** Releases what the host holds of its own. */
  close?(): Promise<void>;
}

interface Phase2Item {
  branchId: string;
  op: 'commit' | 'rollback';
  run: (ctx: StepContext) => Promise<void>;
}

function replyOf(bytes: Uint8Array): StepReply {
  return {
    bytes,
    text: textOf(bytes),
    json<T>() {
      return jsonCodec.decode(bytes) as T;
    },
  };
}

/**
 * The handle a workflow function takes its steps with. Its methods must be called in the same order on every run
 * of the function for one gid (see the README's determinism rules): a step is identified by its position.
 */
export class Workflow {
  readonly #host: WorkflowHost;
  readonly #ids = new BranchIdGenerator('');
  #progress = new Map<string, WorkflowProgress>();
  readonly #phase2: { commit: Phase2Item[]; rollback: Phase2Item[] } = { commit: [], rollback: [] };
  readonly #call: CallOptions;
  readonly #refresh: () => Promise<WorkflowState>;

  /** @internal — made by `client.workflow.execute`. */
  constructor(
    host: WorkflowHost,
    /** The workflow's gid. */
    readonly gid: string,
    /** The workflow's name. */
    readonly name: string,
    progresses: WorkflowProgress[],
    refresh: () => Promise<WorkflowState>,
    call: CallOptions,
  ) {
    this.#host = host;
    this.#setProgress(progresses);
    this.#refresh = refresh;
    this.#call = call;
  }

  #setProgress(progresses: WorkflowProgress[]): void {
    this.#progress = new Map(progresses.map((p) => [`${p.branchId}-${p.op}`, p]));
  }

  /**
   * An HTTP branch call: a POST of `body` as JSON (a GET when `body` is `undefined`) with `gid`, `trans_type=workflow`,
   * `branch_id`, `op=action` and `dtm` in the query string. 200 → recorded as succeeded, its reply returned;
   * 409 → recorded as failed, rejects with a `FailureError` (the reply body); 425 → `OngoingError`, anything else
   * → `BranchError` (neither recorded: the workflow stays unfinished and the step runs again on resume).
   */
  async call(url: string, body?: unknown, options: CallStepOptions = {}): Promise<StepReply> {
    const payload = body === undefined ? undefined : (JSON.stringify(body) ?? 'null');
    const branchId = this.#ids.next();
    this.#addPhase2(branchId, options, (op) => this.#compensationCall('http', payload, op, options.headers));
    const bytes = await this.#recorded(branchId, Op.Action, async () =>
      this.#branchOutcome(
        await this.#host.httpBranch(this.#branchCall(url, branchId, Op.Action, payload, options.headers), this.#call),
        url,
        branchId,
        (reply) => utf8Bytes((reply as { text: string }).text),
      ),
    );
    return replyOf(bytes);
  }

  /**
   * A gRPC branch call (only with `DtxGrpcClient`): `url` is `host:port/pkg.Svc/Method`, `request` the request
   * message's bytes; returns the reply message's bytes. OK → recorded; Aborted → recorded as failed,
   * `FailureError`; FailedPrecondition → `OngoingError`; anything else → `BranchError` (not recorded).
   */
  async grpc(url: string, request: Uint8Array, options: CompensationOptions = {}): Promise<Uint8Array> {
    const grpcBranch = this.#host.grpcBranch;
    if (grpcBranch === undefined) {
      throw new DtxError('wf.grpc needs a gRPC client: run the workflow with DtxGrpcClient (@dtx/client/grpc)');
    }
    const branchId = this.#ids.next();
    this.#addPhase2(branchId, options, (op) => this.#compensationCall('grpc', request, op));
    return this.#recorded(branchId, Op.Action, async () =>
      this.#branchOutcome(
        await grpcBranch(this.#branchCall(url, branchId, Op.Action, request), this.#call),
        url,
        branchId,
        (reply) => reply,
      ),
    );
  }

  /**
   * A local step: runs `fn` once per workflow — its result is recorded (with `options.codec`, default JSON) and
   * returned from the record on every later run. `fn` throwing a `FailureError` is recorded as a failed step (it
   * rethrows the same on replay); any other error is not recorded (the step runs again on resume).
   */
  async step<T>(fn: (ctx: StepContext) => T | Promise<T>, options: LocalStepOptions<T> = {}): Promise<T> {
    const codec: WorkflowCodec<T> = codecOf(options.codec);
    if (typeof options.onRollback === 'string' || typeof options.onCommit === 'string') {
      throw new DtxError('the compensations of a local step (wf.step) are functions, not URLs');
    }
    const branchId = this.#ids.next();
    this.#addPhase2(branchId, options, () => {
      throw new DtxError('a local step has no URL compensation');
    });
    const bytes = await this.#recorded(branchId, Op.Action, async () => {
      try {
        return { status: Succeed, data: codec.encode(await fn({ gid: this.gid, branchId })) };
      } catch (err) {
        if (isFailure(err)) return { status: Failed, data: utf8Bytes(messageOf(err)) };
        throw err;
      }
    });
    return codec.decode(bytes);
  }

  /**
   * An XA step (DTM's `DoXa`): runs `fn` on a connection of `db` inside a local XA transaction with xid
   * `<gid>-<branch_id>` and prepares it; the workflow then commits it when it succeeds and rolls it back when it
   * fails (with the other compensations, last step first). Recorded as DTM's Go client records it: op `business`
   * from inside the XA transaction just before the prepare (the SDK puts the step's encoded result in it), op
   * `action` once prepared (the result), then op `commit` or `rollback`. The barrier row of spec §9.6 is written
   * inside the transaction (trans_type `workflow`), so a phase 2 is idempotent and a late local transaction
   * after a rollback is refused.
   *
   * On replay the step does not run again: a recorded `action` is returned (or its failure rethrown). When only
   * `business` is recorded (the host stopped between the two records), the database decides: a transaction still
   * prepared under the xid means the work is done — the action is recorded from `business` and the workflow goes
   * on (DTM's client gives up and rolls back here); otherwise the local transaction never prepared and the step
   * is recorded as failed, so the workflow rolls back.
   *
   * `fn` throwing a `FailureError` is recorded as a failed step (nothing is prepared); any other error rolls the
   * local transaction back and is not recorded (the step runs again on resume). MySQL / MariaDB: `fn` may run
   * plain DML only, and the connection is closed after the prepare (a prepared XA transaction stays bound to its
   * session otherwise).
   *
   * ```ts
   * await wf.xa(mysqlXaDialect(), pool, async (conn) => {
   *   await conn.execute('UPDATE account SET balance = balance - ? WHERE id = ?', [30, 'alice']);
   * });
   * ```
   */
  async xa<Db, Conn, T = void>(
    dialect: XaDialect<Db, Conn>,
    db: Db,
    fn: (conn: Conn, ctx: StepContext) => T | Promise<T>,
    options: XaStepOptions<T> = {},
  ): Promise<T> {
    const codec: WorkflowCodec<T> = codecOf(options.codec);
    if (typeof dialect?.start !== 'function' || typeof dialect.commit !== 'function') {
      throw new DtxError('wf.xa: dialect must be an XA dialect (mysqlXaDialect() or postgresXaDialect())');
    }
    if (typeof fn !== 'function') throw new DtxError('wf.xa: fn must be a function');
    const branchId = this.#ids.next();
    const ref = { gid: this.gid, branchId, transType: TransType.Workflow };
    const phase2 = { lockTimeoutMs: options.lockTimeoutMs, preparedWaitMs: options.preparedWaitMs };
    for (const op of [Op.Rollback, Op.Commit] as const) {
      this.#phase2[op].push({
        branchId,
        op,
        run: () => xaPhase2(dialect, db, ref, op, phase2),
      });
    }
    const bytes = await this.#recorded(branchId, Op.Action, async () => {
      const business = this.#progress.get(`${branchId}-${Op.Business}`);
      if (business !== undefined) return this.#xaAfterStop(dialect, db, branchId, business);
      try {
        const data = await runXaBranch(
          dialect,
          db,
          ref,
          async (conn) => codec.encode(await fn(conn, { gid: this.gid, branchId })),
          {
            ...(options.lockTimeoutMs === undefined ? {} : { lockTimeoutMs: options.lockTimeoutMs }),
            beforePrepare: async (encoded) => {
              const p = await this.#record({ branchId, op: Op.Business, status: Succeed, data: encoded });
              if (p.status !== Succeed || !sameBytes(p.data, encoded)) {
                throw new DtxError(`XA step ${branchId} was recorded by another execution of workflow ${this.gid}`);
              }
            },
          },
        );
        return { status: Succeed, data };
      } catch (err) {
        if (err instanceof WorkflowDecidedError) throw err;
        if (isFailure(err) && !this.#progress.has(`${branchId}-${Op.Business}`)) {
          return { status: Failed, data: utf8Bytes(messageOf(err)) };
        }
        // Another execution holds or decided this step: take its record when there is one.
        const recorded = await this.#reread(branchId, Op.Action);
        if (recorded !== undefined) return recorded;
        if (err instanceof XaXidInUseError) throw new OngoingError(messageOf(err));
        throw err;
      }
    });
    return codec.decode(bytes);
  }

  /**
   * An XA step whose `business` is recorded but not its `action`: an earlier run stopped between the prepare (or
   * just before it) and the record of the action.
   */
  async #xaAfterStop<Db, Conn>(
    dialect: XaDialect<Db, Conn>,
    db: Db,
    branchId: string,
    business: WorkflowProgress,
  ): Promise<{ status: string; data: Uint8Array }> {
    const xid = xaXid(this.gid, branchId);
    if ((await dialect.recover(db)).includes(xid)) return { status: Succeed, data: business.data };
    const reason = await dialect.barrierReason(db, {
      gid: this.gid,
      branch_id: branchId,
      op: Op.Action,
      barrier_id: XA_BARRIER_ID,
    });
    // Committed already: only a phase 2 of another execution that went on from this step does that.
    if (reason === Op.Action) return { status: Succeed, data: business.data };
    return {
      status: Failed,
      data: utf8Bytes(
        `XA step ${branchId} of workflow ${this.gid}: its local transaction ${xid} did not prepare (the workflow ` +
          'stopped before); the workflow rolls back',
      ),
    };
  }

  /** The record of `<branchId>-<op>` as the coordinator has it now, or `undefined`. */
  async #reread(branchId: string, op: string): Promise<{ status: string; data: Uint8Array } | undefined> {
    let state: WorkflowState;
    try {
      state = await this.#refresh();
    } catch {
      return undefined;
    }
    this.#setProgress(state.progresses);
    const p = this.#progress.get(`${branchId}-${op}`);
    if (p !== undefined) return { status: p.status, data: p.data };
    if (state.status === Succeed || state.status === Failed) throw new WorkflowDecidedError(this.gid, state.status);
    return undefined;
  }

  #branchCall(
    url: string,
    branchId: string,
    op: string,
    payload: string | Uint8Array | undefined,
    headers?: Record<string, string>,
  ): SdkBranchCall {
    return {
      url,
      gid: this.gid,
      transType: TransType.Workflow,
      branchId,
      op,
      ...(payload === undefined ? {} : { payload }),
      ...(headers === undefined ? {} : { headers }),
      withCoordinator: true,
    };
  }

  #branchOutcome<R>(
    out: SdkBranchReply<R>,
    url: string,
    branchId: string,
    bytesOfReply: (reply: R) => Uint8Array,
  ): { status: string; data: Uint8Array } {
    if (out.result === Result.Success) return { status: Succeed, data: bytesOfReply(out.reply) };
    const text = out.message.trim() === '' ? `step ${branchId} (${url}) answered ${out.status}` : out.message;
    if (out.result === Result.Failure) return { status: Failed, data: utf8Bytes(text) };
    if (out.result === Result.Ongoing) throw new OngoingError(text);
    throw new BranchError(`step ${branchId} (${url}) answered ${out.status}: ${out.message}`, url, out.httpStatus);
  }

  #addPhase2(
    branchId: string,
    options: CompensationOptions,
    byUrl: (op: 'commit' | 'rollback') => (url: string, ctx: StepContext) => Promise<void>,
  ): void {
    for (const [op, c] of [
      [Op.Rollback, options.onRollback],
      [Op.Commit, options.onCommit],
    ] as const) {
      if (c === undefined) continue;
      const run =
        typeof c === 'string'
          ? (ctx: StepContext) => byUrl(op)(c, ctx)
          : async (ctx: StepContext) => {
              await c(ctx);
            };
      this.#phase2[op].push({ branchId, op, run });
    }
  }

  #compensationCall(
    kind: 'http' | 'grpc',
    payload: string | Uint8Array | undefined,
    op: 'commit' | 'rollback',
    headers?: Record<string, string>,
  ): (url: string, ctx: StepContext) => Promise<void> {
    return async (url, { branchId }) => {
      const call = this.#branchCall(url, branchId, op, payload, headers);
      const out =
        kind === 'http'
          ? await this.#host.httpBranch(call, this.#call)
          : await (this.#host.grpcBranch as NonNullable<WorkflowHost['grpcBranch']>)(call, this.#call);
      if (out.result !== Result.Success) {
        throw new BranchError(
          `the ${op} of step ${branchId} (${url}) answered ${out.status}: ${out.message}`,
          url,
          out.httpStatus,
        );
      }
    };
  }

  /**
   * The recorded outcome of `<branchId>-<op>`, or runs `fn` and records its outcome. A failed outcome rejects with
   * a `FailureError` carrying the recorded text.
   */
  async #recorded(
    branchId: string,
    op: string,
    fn: () => Promise<{ status: string; data: Uint8Array }>,
  ): Promise<Uint8Array> {
    let p = this.#progress.get(`${branchId}-${op}`);
    if (p === undefined) {
      const out = await fn();
      p = await this.#record({ branchId, op, status: out.status, data: out.data });
    }
    if (p.status === Failed) throw new FailureError(textOf(p.data));
    return p.data;
  }

  /**
   * Records a step outcome. When the coordinator refuses it (another execution recorded the same step first, or
   * decided the workflow), re-reads the progress and returns what is recorded, or unwinds with
   * {@link WorkflowDecidedError}.
   */
  async #record(p: WorkflowProgress): Promise<WorkflowProgress> {
    try {
      await this.#host.wire.registerWorkflowBranch({ gid: this.gid, ...p }, this.#call);
      this.#progress.set(`${p.branchId}-${p.op}`, p);
      return p;
    } catch (err) {
      if (isTransient(err)) throw err;
      let state: WorkflowState;
      try {
        state = await this.#refresh();
      } catch {
        throw err;
      }
      this.#setProgress(state.progresses);
      const recorded = this.#progress.get(`${p.branchId}-${p.op}`);
      if (recorded !== undefined) return recorded;
      if (state.status === Succeed || state.status === Failed) throw new WorkflowDecidedError(this.gid, state.status);
      throw err;
    }
  }

  /** @internal — runs the compensations of the outcome, last step first, each once per workflow. */
  async runPhase2(op: 'commit' | 'rollback'): Promise<void> {
    const items = this.#phase2[op];
    for (let i = items.length - 1; i >= 0; i--) {
      const item = items[i] as Phase2Item;
      if (this.#progress.get(`${item.branchId}-${op}`)?.status === Succeed) continue;
      await item.run({ gid: this.gid, branchId: item.branchId });
      await this.#record({ branchId: item.branchId, op, status: Succeed, data: new Uint8Array(0) });
    }
  }
}

/** A registered workflow function. */
export type WorkflowFunction<In, Out> = (wf: Workflow, input: In) => Promise<Out>;

/** Options of `client.workflow.register`. */
export interface WorkflowRegisterOptions<In, Out> {
  /** How the input is encoded (recorded by the coordinator, sent back on resume). Default: `json`. */
  input?: CodecSpec<In>;
  /** How the result is encoded (recorded on submit). Default: `json`. */
  output?: CodecSpec<Out>;
  /**
   * Seconds between two attempts of the coordinator to resume the workflow when it is left unfinished
   * (`retry_interval`). Default: the coordinator's `RetryInterval`.
   */
  retryInterval?: number;
}

interface Registered {
  fn: WorkflowFunction<unknown, unknown>;
  retryInterval: number | undefined;
  input: WorkflowCodec<unknown>;
  output: WorkflowCodec<unknown>;
}

/** How a resumed workflow ended, as a resume endpoint answers the coordinator. */
export type ResumeOutcome = 'SUCCESS' | 'FAILURE' | 'ONGOING' | 'ERROR';

/**
 * The workflows of one client: `client.workflow`. Register each workflow function once per process (on every
 * host that may execute or resume it), then execute by gid.
 */
export class WorkflowRegistry {
  readonly #host: WorkflowHost;
  readonly #resumeUrl: string | undefined;
  readonly #workflows = new Map<string, Registered>();
  /** Executions in flight in this process, by gid: a second execute of the same gid joins the first. */
  readonly #running = new Map<string, Promise<Uint8Array>>();

  /** @internal — made by the clients. */
  constructor(host: WorkflowHost, resumeUrl: string | undefined) {
    this.#host = host;
    this.#resumeUrl = resumeUrl;
  }

  /**
   * Registers `fn` under `name`. The name is recorded with each workflow and names it in the resume call.
   * @throws DtxError when `name` is empty or already registered
   */
  register<In = unknown, Out = unknown>(
    name: string,
    fn: WorkflowFunction<In, Out>,
    options: WorkflowRegisterOptions<In, Out> = {},
  ): void {
    if (typeof name !== 'string' || name === '') throw new DtxError('a workflow name must be a non-empty string');
    if (this.#workflows.has(name)) throw new DtxError(`workflow '${name}' is already registered`);
    const ri = options.retryInterval;
    if (ri !== undefined && (!Number.isInteger(ri) || ri <= 0)) {
      throw new DtxError(`workflow '${name}': retryInterval must be a positive whole number of seconds`);
    }
    if (typeof fn !== 'function') throw new DtxError(`workflow '${name}': fn must be a function`);
    this.#workflows.set(name, {
      fn: fn as WorkflowFunction<unknown, unknown>,
      retryInterval: options.retryInterval,
      input: codecOf(options.input) as WorkflowCodec<unknown>,
      output: codecOf(options.output) as WorkflowCodec<unknown>,
    });
  }

  /** @internal — the client's `close` calls it. */
  async close(): Promise<void> {
    await this.#host.close?.();
  }

  /** True when `name` is registered. */
  has(name: string): boolean {
    return this.#workflows.has(name);
  }

  /**
   * Runs workflow `name` for `gid` with `input`, or continues it when the gid exists (recorded steps are replayed,
   * not run again), and returns its result.
   * @throws WorkflowFailedError when it failed (now, or before), with the rollback reason; WorkflowOngoingError
   *   when a step answered ONGOING (the coordinator resumes it later); any other error of a step or the function
   *   as it is (nothing submitted: the coordinator resumes the workflow later); DtxError for an unknown name
   */
  async execute<Out = unknown, In = unknown>(
    name: string,
    gid: string,
    input: In,
    call: CallOptions = {},
  ): Promise<Out> {
    const w = this.#get(name);
    if (typeof gid !== 'string' || gid === '') throw new DtxError('execute: gid must be a non-empty string');
    const bytes = await this.#run(w, name, gid, w.input.encode(input), call);
    return w.output.decode(bytes) as Out;
  }

  /**
   * Continues workflow `name` of `gid` from its recorded input bytes: what the resume endpoints do when the
   * coordinator calls them. Never rejects: it answers how the workflow ended.
   */
  async resume(
    name: string,
    gid: string,
    input: Uint8Array,
    call: CallOptions = {},
  ): Promise<{ outcome: ResumeOutcome; message: string }> {
    try {
      await this.#run(this.#get(name), name, gid, input, call);
      return { outcome: 'SUCCESS', message: '' };
    } catch (err) {
      const message = messageOf(err);
      if (isFailure(err)) return { outcome: 'FAILURE', message };
      if (isOngoing(err)) return { outcome: 'ONGOING', message };
      return { outcome: 'ERROR', message };
    }
  }

  #get(name: string): Registered {
    const w = this.#workflows.get(name);
    if (w === undefined) throw new DtxError(`no workflow named '${name}' is registered on this client`);
    return w;
  }

  #run(w: Registered, name: string, gid: string, input: Uint8Array, call: CallOptions): Promise<Uint8Array> {
    const running = this.#running.get(gid);
    if (running !== undefined) return running;
    const p = this.#runOnce(w, name, gid, input, call).finally(() => {
      this.#running.delete(gid);
    });
    this.#running.set(gid, p);
    return p;
  }

  async #runOnce(w: Registered, name: string, gid: string, input: Uint8Array, call: CallOptions): Promise<Uint8Array> {
    const prepare = () =>
      this.#host.wire.prepareWorkflow(
        {
          gid,
          name,
          input,
          ...(this.#resumeUrl === undefined ? {} : { resumeUrl: this.#resumeUrl }),
          ...(w.retryInterval === undefined ? {} : { retryInterval: w.retryInterval }),
        },
        call,
      );
    const state = await prepare();
    const decided = decidedOutcome(gid, state);
    if (decided !== undefined) return decided;
    const wf = new Workflow(this.#host, gid, name, state.progresses, prepare, call);
    let result: Uint8Array;
    let failure: string | undefined;
    try {
      try {
        result = w.output.encode(await w.fn(wf, w.input.decode(input)));
      } catch (err) {
        if (err instanceof WorkflowDecidedError || !isFailure(err)) throw err;
        failure = messageOf(err);
        result = new Uint8Array(0);
      }
      await wf.runPhase2(failure === undefined ? 'commit' : 'rollback');
    } catch (err) {
      if (err instanceof WorkflowDecidedError) return settled(gid, await prepare());
      if (isOngoing(err) && !(err instanceof WorkflowOngoingError)) {
        throw new WorkflowOngoingError(gid, `workflow ${gid} is not finished: ${messageOf(err)}`);
      }
      throw err;
    }
    const submit = {
      gid,
      status: failure === undefined ? Succeed : Failed,
      rollbackReason: failure ?? '',
      result,
    } as const;
    try {
      await this.#host.wire.submitWorkflow(submit, call);
    } catch (err) {
      if (isTransient(err)) throw err;
      // refused: another execution submitted first; report what is recorded
      let after: WorkflowState;
      try {
        after = await prepare();
      } catch {
        throw err;
      }
      if (after.status !== Succeed && after.status !== Failed) throw err;
      return settled(gid, after, after.status === submit.status ? result : undefined);
    }
    if (failure !== undefined) throw new WorkflowFailedError(gid, failure);
    return result;
  }
}

/** The stored outcome of a decided workflow: its result, or a WorkflowFailedError; undefined while prepared. */
function decidedOutcome(gid: string, state: WorkflowState): Uint8Array | undefined {
  if (state.status === Succeed) return state.result;
  if (state.status === Failed) throw new WorkflowFailedError(gid, state.rollbackReason);
  return undefined;
}

function settled(gid: string, state: WorkflowState, ownResult?: Uint8Array): Uint8Array {
  if (state.status === Succeed && state.result.length === 0 && ownResult !== undefined) return ownResult;
  const out = decidedOutcome(gid, state);
  if (out === undefined) throw new WorkflowOngoingError(gid, `workflow ${gid} is ${state.status}`);
  return out;
}

function isTransient(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { transience?: unknown }).transience !== undefined;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
