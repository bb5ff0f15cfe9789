/**
 * The SDK over gRPC: a client of the coordinator's `dtmgimp.Dtm` service (spec §4) with the same transaction
 * builders as the HTTP {@link DtxClient}. Switch transport by constructing this client instead of the other.
 *
 * @module
 */
import {
  classifyGrpcStatus,
  type DtmBranchRequest,
  DtmMetadata,
  type DtmProgressesReply,
  type DtmRequest,
  type DtmTransOptions,
  GrpcStatus,
  grpcCodeName,
  Protocol,
  TransType,
} from '@dtx/protocol';
import {
  type ChannelCredentials,
  type ChannelOptions,
  Client,
  credentials,
  type CallOptions as GrpcCallOptions,
  Metadata,
  type ServiceError,
} from '@grpc/grpc-js';
import type {
  CallOptions,
  CoordinatorTransport,
  SdkBranchCall,
  SdkBranchReply,
  TransParts,
  TransportClient,
  WirePayload,
} from '../coordinator-transport.js';
import { BranchError, CoordinatorError, DtxError, type FailureError } from '../errors.js';
import { generateGid } from '../gid.js';
import { Msg, type MsgOptions } from '../msg.js';
import { type RetryOptions, type RetryPolicy, retryPolicy, withRetry } from '../retry.js';
import { Saga, type SagaOptions } from '../saga.js';
import { refusedSubmitStatus, settleRefusedSubmit } from '../submit-outcome.js';
import { runTccGlobalTransaction, type Tcc, type TccOptions } from '../tcc.js';
import { injectTraceMetadata } from '../trace-propagation.js';
import { WorkflowRegistry } from '../workflow/workflow.js';
import { runXaGlobalTransaction, type Xa, type XaOptions } from '../xa/global.js';
import { type DtmService, loadDtmService } from './dtm-service.js';
import { coordinatorErrorOf, detailsOf } from './grpc-errors.js';
import { splitGrpcUrl } from './grpc-url.js';
import { grpcWorkflowHost, grpcWorkflowResumeTarget } from './grpc-workflow.js';

/** Options of a {@link DtxGrpcClient}. */
export interface DtxGrpcClientOptions {
  /**
   * Milliseconds each gRPC call (to the coordinator, or to a branch called by the SDK itself: a TCC try, a msg
   * back-check) may take before it is abandoned. Keep it above the coordinator's processing time when you use
   * `waitResult`. Default: `10_000`.
   */
  requestTimeoutMs?: number;
  /** Metadata added to every call to the coordinator, e.g. for an authenticating proxy. Default: none. */
  metadata?: Record<string, string>;
  /** Credentials of the channels (coordinator and branches). Default: plaintext, as DTM serves gRPC. */
  credentials?: ChannelCredentials;
  /** grpc-js channel options, e.g. `grpc.max_send_message_length`. Default: grpc-js's. */
  channelOptions?: ChannelOptions;
  /**
   * The coordinator's API token (dtx `Auth.Token`), sent as `authorization: Bearer <token>` metadata on every call
   * to the coordinator — never to branches. Default: none.
   */
  token?: string;
  /**
   * Retries of coordinator calls after a transient failure (UNAVAILABLE): `NewGid`, `Prepare` and `Submit` are
   * idempotent per gid and retried after any UNAVAILABLE; `Abort` and `RegisterBranch` only when no connection
   * was made (the request provably did not arrive). `false` turns it off.
   * Default: `{ retries: 3, minDelayMs: 100, maxDelayMs: 2_000 }` (doubling waits, ±25 % jitter).
   */
  retry?: RetryOptions | false;
  /**
   * Workflow mode: this host's gRPC address (`host:port`, where `workflowGrpcService` is served), or the full
   * `host:port/workflow.Workflow/Execute`, sent with each workflow so the coordinator can resume it after this
   * process crashed. Default: none (an unfinished workflow then waits for an `execute` with the same gid).
   */
  workflowResumeUrl?: string;
}

/** What a gRPC step, branch or try carries: the protobuf bytes of the request message. */
export type GrpcPayload = Uint8Array;

/** The bytes of a gRPC reply message; decode them with your generated code (e.g. `responseDeserialize`). */
export type GrpcReply = Buffer;

const raw = (b: Buffer): Buffer => b;
const EMPTY = Buffer.alloc(0);

/**
 * A client of one coordinator over gRPC, e.g. `new DtxGrpcClient('127.0.0.1:36790')`. It holds one channel to the
 * coordinator and one per branch target the SDK calls itself: create one per process and share it; call
 * {@link close} at shutdown.
 *
 * The builders are the HTTP client's — {@link saga}, {@link msg}, {@link tccGlobalTransaction} — with protobuf
 * bytes as payloads and gRPC branch URLs `host:port/package.Service/Method` (or discovery targets the coordinator
 * resolves, e.g. `discov://etcd:2379/order.rpc/order.Order/Create`, in saga and msg steps):
 *
 * ```ts
 * const dtx = new DtxGrpcClient('127.0.0.1:36790');
 * const req = busi.TransIn.requestSerialize({ Amount: 30 }); // proto-loader method definition
 * await dtx.saga()
 *   .add('127.0.0.1:58081/busi.Busi/TransOut', '127.0.0.1:58081/busi.Busi/TransOutRevert', req)
 *   .add('127.0.0.1:58081/busi.Busi/TransIn', '127.0.0.1:58081/busi.Busi/TransInRevert', req)
 *   .submit();
 * ```
 *
 * Every coordinator call rejects with a `FailureError` when the coordinator answers Aborted, an `OngoingError` for
 * FailedPrecondition, and a `CoordinatorError` for any other status (its `cause` is the grpc-js error). A submit
 * reports the transaction's real outcome: see {@link submit}.
 */
export class DtxGrpcClient implements TransportClient<GrpcPayload, GrpcReply> {
  /** The coordinator's address as given. Branches called by the SDK receive it as `dtm-dtm` metadata. */
  readonly address: string;
  /** What the transaction builders use. */
  readonly transport: CoordinatorTransport<GrpcPayload, GrpcReply>;
  /** Workflow mode: `workflow.register(name, fn)`, `workflow.execute(name, gid, input)`. */
  readonly workflow: WorkflowRegistry;
  readonly #dtm: Client;
  readonly #service: DtmService;
  readonly #branches = new Map<string, Client>();
  readonly #timeoutMs: number;
  readonly #metadata: Record<string, string>;
  readonly #credentials: ChannelCredentials;
  readonly #channelOptions: ChannelOptions;
  readonly #retry: RetryPolicy;
  #closed = false;

  /**
   * @param address the coordinator's gRPC address, `host:port` (e.g. `127.0.0.1:36790`), or any target grpc-js
   *   understands (`dns:///dtm.internal:36790`)
   * @param options see {@link DtxGrpcClientOptions}
   */
  constructor(address: string, options: DtxGrpcClientOptions = {}) {
    const a = address.trim();
    if (a === '' || /^https?:\/\//.test(a)) {
      throw new DtxError(
        `invalid coordinator gRPC address '${address}': expected host:port, e.g. 127.0.0.1:36790 ` +
          '(for the HTTP API use DtxClient)',
      );
    }
    if (/^(etcd|discov|discovery|consul|nacos):\/\//.test(a)) {
      throw new DtxError(
        `invalid coordinator gRPC address '${address}': the SDK does not resolve discovery targets; ` +
          'give the host:port of a dtx instance (or a DNS name that lists them)',
      );
    }
    this.address = a;
    this.#timeoutMs = options.requestTimeoutMs ?? 10_000;
    this.#metadata = { ...options.metadata };
    if (options.token !== undefined) {
      if (options.token === '' || /[\r\n]/.test(options.token)) {
        throw new DtxError('option token must be a non-empty string without line breaks');
      }
      this.#metadata.authorization = `Bearer ${options.token}`;
    }
    this.#retry = retryPolicy(options.retry);
    this.#credentials = options.credentials ?? credentials.createInsecure();
    this.#channelOptions = { ...options.channelOptions };
    this.#service = loadDtmService();
    this.#dtm = new Client(a, this.#credentials, this.#channelOptions);
    this.transport = grpcTransport(this);
    this.workflow = new WorkflowRegistry(
      grpcWorkflowHost(this, this.#timeoutMs),
      options.workflowResumeUrl === undefined ? undefined : grpcWorkflowResumeTarget(options.workflowResumeUrl),
    );
  }

  /**
   * A saga builder. Add steps with `add(action, compensate, bytes)`, then `submit`.
   * @param gid the global id; default: a new one from {@link generateGid}
   * @param options see {@link SagaOptions}; default: none set
   */
  saga(gid?: string, options?: SagaOptions): Saga<GrpcPayload> {
    return new Saga(this, gid ?? generateGid(), options);
  }

  /**
   * A two-phase message builder. Add steps with `add(action, bytes)`, then `prepare` + `submit`, or
   * `doAndSubmit`. The `concurrent` option is not available over gRPC (DTM's gRPC API has none).
   * @param gid the global id; default: a new one from {@link generateGid}
   * @param options see {@link MsgOptions}; default: none set
   */
  msg(gid?: string, options?: MsgOptions): Msg<GrpcPayload> {
    return new Msg(this, gid ?? generateGid(), options);
  }

  /**
   * Runs a TCC global transaction, as `DtxClient.tccGlobalTransaction` does: `Prepare`, then `fn` calls each
   * branch's try with `tcc.callBranch(bytes, tryUrl, confirmUrl, cancelUrl)` — `RegisterBranch` then the try
   * method with `dtm-*` metadata — then `Submit`; if `fn` throws, `Abort` with the error's message and rethrow.
   */
  tccGlobalTransaction<T>(
    gid: string,
    fn: (tcc: Tcc<GrpcPayload, GrpcReply>) => Promise<T>,
    options?: TccOptions,
  ): Promise<T> {
    return runTccGlobalTransaction(this, gid, fn, options);
  }

  // --- XA ---
  /**
   * Runs an XA global transaction, as `DtxClient.xa` does: `Prepare`, then `fn` calls each branch's action with
   * `xa.callBranch('host:port/pkg.Svc/Method', bytes)` — with `dtm-*` metadata and `dtm-phase2_url` — then
   * `Submit`; if `fn` throws, `Abort` with the error's message and rethrow.
   */
  xa<T>(gid: string, fn: (xa: Xa<GrpcPayload, GrpcReply>) => Promise<T>, options?: XaOptions): Promise<T> {
    return runXaGlobalTransaction(this, gid, fn, options);
  }
  // --- end XA ---

  /** Asks the coordinator for a new gid (`NewGid`). {@link generateGid} makes one without a round trip. */
  async newGid(call: CallOptions = {}): Promise<string> {
    const reply = await this.#unary('NewGid', this.#service.NewGid, {}, call);
    if (typeof reply.Gid !== 'string' || reply.Gid === '') {
      throw new CoordinatorError('NewGid: the coordinator replied without a gid');
    }
    return reply.Gid;
  }

  /** Low-level `Prepare`: creates a prepared msg / tcc / xa transaction. */
  async prepare(request: DtmRequest, call: CallOptions = {}): Promise<void> {
    await this.#unary('Prepare', this.#service.Prepare, request, call);
  }

  /**
   * Low-level `Submit`. Resolves when the transaction succeeded (with `WaitResult`) or was accepted (without).
   * Rejects with a `FailureError` when it was, or is being, rolled back; an `OngoingError` when it is still running
   * — the coordinator retries it, do not submit it again with a new gid; a `CoordinatorError` when the coordinator
   * was not reached or failed — retry with the same gid.
   *
   * A repeated submit of a transaction that already ended gets Aborted `current status '<status>', cannot
   * sumbmit.`; the SDK reports the status it names instead: resolves for `succeed`, `FailureError` for `failed` /
   * `aborting`. DTM's gRPC API has no query, so that `FailureError` does not carry the rollback reason (the HTTP
   * client's `query` reads it).
   */
  async submit(request: DtmRequest, call: CallOptions = {}): Promise<void> {
    try {
      await this.#unary('Submit', this.#service.Submit, request, call);
    } catch (err) {
      const status = refusedSubmitStatus(err);
      if (status === undefined) throw err;
      await settleRefusedSubmit(request.Gid, status, err as FailureError);
    }
  }

  /** Low-level `Abort`: rolls back a prepared msg, tcc or xa. */
  async abort(request: DtmRequest, call: CallOptions = {}): Promise<void> {
    await this.#unary('Abort', this.#service.Abort, request, call);
  }

  /** Low-level `RegisterBranch`: records a tcc / xa / workflow branch; `Data` holds the keys of spec §2.5. */
  async registerBranch(request: DtmBranchRequest, call: CallOptions = {}): Promise<void> {
    await this.#unary('RegisterBranch', this.#service.RegisterBranch, request, call);
  }

  /**
   * Low-level `PrepareWorkflow` (spec §2.8): creates a prepared workflow, or returns the stored one with its
   * recorded progress. `client.workflow.execute` calls it.
   */
  async prepareWorkflow(request: DtmRequest, call: CallOptions = {}): Promise<DtmProgressesReply> {
    return this.#unary('PrepareWorkflow', this.#service.PrepareWorkflow, request, call);
  }

  /**
   * Low-level: calls a gRPC branch method (`host:port/pkg.Svc/Method`) with raw request bytes and `metadata` (plus
   * the active trace context, injected with the application's propagator), over this client's channels, and
   * returns how it ended — whatever the status. Never rejects for a status; rejects
   * with a `DtxError` for a malformed URL.
   */
  async invokeBranch(
    url: string,
    payload: Uint8Array,
    metadata: Record<string, string>,
    call: CallOptions = {},
  ): Promise<{ code: number; details: string; reply: GrpcReply }> {
    const signal = call.signal;
    if (signal?.aborted) throw signal.reason;
    const { target, method } = splitGrpcUrl(url);
    const client = this.#branchClient(target);
    const md = new Metadata();
    for (const [k, v] of Object.entries(metadata)) md.set(k, v);
    injectTraceMetadata(md);
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        reject(signal?.reason);
        pending.cancel();
      };
      const pending = client.makeUnaryRequest(
        method,
        raw,
        raw,
        Buffer.from(payload),
        md,
        this.#callOptions(),
        (err: ServiceError | null, reply?: Buffer) => {
          signal?.removeEventListener('abort', onAbort);
          if (err) resolve({ code: err.code, details: detailsOf(err), reply: EMPTY });
          else resolve({ code: GrpcStatus.OK, details: '', reply: reply ?? EMPTY });
        },
      );
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Closes the channels. Calls in flight fail with Cancelled. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.workflow.close();
    this.#dtm.close();
    for (const c of this.#branches.values()) c.close();
    this.#branches.clear();
  }

  #branchClient(target: string): Client {
    if (this.#closed) throw new DtxError('the DtxGrpcClient is closed');
    let client = this.#branches.get(target);
    if (client === undefined) {
      client = new Client(target, this.#credentials, this.#channelOptions);
      this.#branches.set(target, client);
    }
    return client;
  }

  #callOptions(): GrpcCallOptions {
    return { deadline: Date.now() + this.#timeoutMs };
  }

  #unary<Req, Res>(
    route: string,
    def: { path: string; requestSerialize: (v: Req) => Buffer; responseDeserialize: (b: Buffer) => Res },
    request: Req,
    call: CallOptions,
  ): Promise<Res> {
    const signal = call.signal;
    if (signal?.aborted) return Promise.reject(signal.reason);
    const once = (): Promise<Res> => {
      if (this.#closed) return Promise.reject(new CoordinatorError(`${route}: the DtxGrpcClient is closed`));
      const md = new Metadata();
      for (const [k, v] of Object.entries(this.#metadata)) md.set(k, v);
      injectTraceMetadata(md);
      return new Promise((resolve, reject) => {
        const onAbort = () => {
          reject(signal?.reason);
          pending.cancel();
        };
        const pending = this.#dtm.makeUnaryRequest(
          def.path,
          def.requestSerialize,
          def.responseDeserialize,
          request,
          md,
          this.#callOptions(),
          (err: ServiceError | null, reply?: Res) => {
            signal?.removeEventListener('abort', onAbort);
            if (err) reject(coordinatorErrorOf(route, this.address, err));
            else resolve(reply as Res);
          },
        );
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    };
    if (this.#retry.retries === 0) return once();
    return withRetry(this.#retry, IDEMPOTENT_METHODS.has(route), signal, once);
  }
}

/** Methods the coordinator treats idempotently for one gid: retried even when the request may have arrived. */
const IDEMPOTENT_METHODS = new Set(['NewGid', 'Prepare', 'Submit', 'PrepareWorkflow']);

/** The gRPC {@link CoordinatorTransport} of `client`. */
function grpcTransport(client: DtxGrpcClient): CoordinatorTransport<GrpcPayload, GrpcReply> {
  return {
    protocol: Protocol.Grpc,
    address: client.address,
    encodePayload: encodeGrpcPayload,
    prepare: (parts, call) => client.prepare(toDtmRequest(parts), call),
    submit: (parts, call) => client.submit(toDtmRequest(parts), call),
    abort: (parts, call) => client.abort(toDtmRequest(parts), call),
    registerTccBranch: (b, call) =>
      client.registerBranch(
        {
          Gid: b.gid,
          TransType: TransType.Tcc,
          BranchID: b.branchId,
          Op: '',
          Data: { confirm: b.confirm, cancel: b.cancel },
          BusiPayload: bytesOf(b.payload),
        },
        call,
      ),
    // --- XA ---
    registerXaBranch: (b, call) =>
      client.registerBranch(
        { Gid: b.gid, TransType: TransType.Xa, BranchID: b.branchId, Op: '', Data: { url: b.url }, BusiPayload: EMPTY },
        call,
      ),
    // --- end XA ---
    async callBranch(call: SdkBranchCall, options?: CallOptions): Promise<SdkBranchReply<GrpcReply>> {
      let out: { code: number; details: string; reply: GrpcReply };
      try {
        out = await client.invokeBranch(
          call.url,
          bytesOf(call.payload ?? EMPTY),
          {
            ...call.headers,
            [DtmMetadata.Gid]: call.gid,
            [DtmMetadata.TransType]: call.transType,
            [DtmMetadata.BranchId]: call.branchId,
            [DtmMetadata.Op]: call.op,
            [DtmMetadata.Dtm]: client.address,
            ...(call.phase2Url === undefined ? {} : { [DtmMetadata.Phase2Url]: call.phase2Url }), // XA
          },
          options,
        );
      } catch (cause) {
        if (options?.signal?.aborted) throw options.signal.reason;
        throw new BranchError(
          `cannot call ${call.url}: ${cause instanceof Error ? cause.message : String(cause)}`,
          call.url,
          undefined,
          {
            cause,
          },
        );
      }
      return {
        result: classifyGrpcStatus(out.code, out.details),
        message: out.details,
        status: `gRPC ${grpcCodeName(out.code)}`,
        reply: out.reply,
      };
    },
  };
}

/**
 * A gRPC payload as it is sent: the bytes themselves (copied), or an empty message for `undefined`.
 * @throws DtxError for anything else: encode the message first.
 */
export function encodeGrpcPayload(payload: GrpcPayload | undefined): Uint8Array {
  if (payload === undefined) return EMPTY;
  if (payload instanceof Uint8Array) return Buffer.from(payload);
  throw new DtxError(
    'a gRPC payload is the protobuf bytes of the request message: encode it first, e.g. with ' +
      "proto-loader's `requestSerialize(message)` or your generated `Message.encode(message).finish()`",
  );
}

function bytesOf(p: WirePayload): Buffer {
  return typeof p === 'string' ? Buffer.from(p, 'utf8') : Buffer.from(p.buffer, p.byteOffset, p.byteLength);
}

/**
 * The `DtmRequest` of a transaction (spec §4.2): steps as JSON text (the text `null` when there are none, as Go's
 * dtmgrpc sends for tcc), payloads as `BinPayloads`, options as `TransOptions`.
 * @throws DtxError for a concurrent msg, which DTM's gRPC API cannot express.
 */
export function toDtmRequest(parts: TransParts): DtmRequest {
  if (parts.concurrent === true) {
    throw new DtxError(
      `msg ${parts.gid}: the concurrent option is not available over gRPC (DTM's gRPC API has none); ` +
        'use DtxClient (HTTP) or deliver the steps one after the other',
    );
  }
  const o = parts.options ?? {};
  const options: DtmTransOptions = {
    WaitResult: o.wait_result === true,
    TimeoutToFail: o.timeout_to_fail ?? 0,
    RetryInterval: o.retry_interval ?? 0,
    BranchHeaders: { ...o.branch_headers },
    RequestTimeout: o.request_timeout ?? 0,
    RetryLimit: o.retry_limit ?? 0,
  };
  return {
    Gid: parts.gid,
    TransType: parts.transType,
    TransOptions: options,
    CustomedData: parts.customData ?? '',
    BinPayloads: (parts.payloads ?? []).map(bytesOf),
    QueryPrepared: parts.queryPrepared ?? '',
    Steps: JSON.stringify(parts.steps !== undefined && parts.steps.length > 0 ? parts.steps : null),
    ReqExtra: {},
    RollbackReason: parts.rollbackReason ?? '',
  };
}
