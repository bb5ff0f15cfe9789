/**
 * The SDK's entry point: a connection to one dtx (or DTM) coordinator over HTTP, and the factory of the
 * transaction builders.
 */
import { classifyHttpReply, Protocol, type QueryReply, type TransRequest, TransType } from '@dtx/protocol';
import { Agent, Pool } from 'undici';
import { coordinatorReplyError } from './coordinator-reply.js';
import type {
  CallOptions,
  CoordinatorTransport,
  SdkBranchCall,
  SdkBranchReply,
  TransportClient,
} from './coordinator-transport.js';
import { BranchError, CoordinatorError, DtxError, type FailureError } from './errors.js';
import { generateGid } from './gid.js';
import { type HttpReply, httpCall, urlWithQuery } from './http-call.js';
import { Msg, type MsgOptions } from './msg.js';
import { httpErrorTransience, type RetryOptions, type RetryPolicy, retryPolicy, withRetry } from './retry.js';
import { Saga, type SagaOptions } from './saga.js';
import { refusedSubmitStatus, settleRefusedSubmit } from './submit-outcome.js';
import { runTccGlobalTransaction, type Tcc, type TccOptions } from './tcc.js';
import { buildTransRequest, payloadText } from './trans-request.js';
import { httpWorkflowWire } from './workflow/wire.js';
import { WorkflowRegistry } from './workflow/workflow.js';
import { runXaGlobalTransaction, type Xa, type XaOptions } from './xa/global.js';

/** Options of a {@link DtxClient}. */
export interface DtxClientOptions {
  /**
   * Milliseconds each HTTP call (to the coordinator, or to a branch called by the SDK itself: a TCC try, a msg
   * back-check) may take before it is abandoned. Keep it above the coordinator's processing time when you use
   * `waitResult`. Default: `10_000`.
   */
  requestTimeoutMs?: number;
  /** Keep-alive connections opened at most to the coordinator, and to each branch origin. Default: `64`. */
  maxConnections?: number;
  /** Headers added to every call to the coordinator, e.g. for an authenticating proxy. Default: none. */
  headers?: Record<string, string>;
  /**
   * The coordinator's API token (dtx `Auth.Token`), sent as `Authorization: Bearer <token>` on every call to the
   * coordinator — never to branches. Default: none, no `Authorization` header (unless `headers` has one).
   */
  token?: string;
  /**
   * Retries of coordinator calls after a transient failure (connection refused, HTTP 502 / 503 / 504, a timeout):
   * `newGid`, `query`, `prepare` and `submit` are idempotent per gid and retried after any of them; `abort` and
   * `registerBranch` only when the request provably did not arrive (refused, 502, 503). `false` turns it off.
   * Default: `{ retries: 3, minDelayMs: 100, maxDelayMs: 2_000 }` (doubling waits, ±25 % jitter).
   */
  retry?: RetryOptions | false;
  /**
   * Workflow mode: the URL of this host's workflow resume endpoint (`workflowFastify` / `workflowExpress`), sent
   * with each workflow so the coordinator can resume it after this process crashed, e.g.
   * `http://10.0.0.5:8081/api/workflow/resume`. Default: none (an unfinished workflow then waits for an
   * `execute` with the same gid).
   */
  workflowResumeUrl?: string;
}

/** A low-level call to a branch service, as {@link DtxClient.requestBranch} makes it. */
export interface BranchRequest {
  /** `POST` when there is a body. */
  method: 'GET' | 'POST';
  /** The branch URL; its own query parameters are kept. */
  url: string;
  /** Query parameters to add (`gid`, `trans_type`, `branch_id`, `op`, …). */
  query: Record<string, string>;
  /** The JSON text to send. Default: no body. */
  body?: string;
  /** Extra headers, e.g. the transaction's branch headers. Default: none. */
  headers?: Record<string, string>;
}

/**
 * A client of one coordinator, e.g. `new DtxClient('http://127.0.0.1:36789/api/dtmsvr')`. It holds a
 * keep-alive connection pool: create one per process and share it; call {@link close} at shutdown.
 *
 * Transactions: {@link saga}, {@link msg}, {@link tccGlobalTransaction}. Low-level calls, one per coordinator
 * route: {@link newGid}, {@link query}, {@link prepare}, {@link submit}, {@link abort}, {@link registerBranch}.
 *
 * Every coordinator call rejects with a `FailureError` when the coordinator answers FAILURE (HTTP 409), an
 * `OngoingError` for ONGOING (425), and a `CoordinatorError` for any other answer or a network error. A submit
 * reports the transaction's real outcome: see {@link submit}.
 */
export class DtxClient implements TransportClient<unknown, HttpReply> {
  /** The coordinator's API base URL, without a trailing slash. Branches receive it as the `dtm` parameter. */
  readonly url: string;
  /**
   * What the transaction builders use: payloads are JSON values sent as JSON text, transactions go to the HTTP
   * routes, the SDK's own branch calls (TCC try, msg back-check) are HTTP requests.
   */
  readonly transport: CoordinatorTransport<unknown, HttpReply>;
  /** Workflow mode: `workflow.register(name, fn)`, `workflow.execute(name, gid, input)`. */
  readonly workflow: WorkflowRegistry;
  readonly #pool: Pool;
  readonly #branches: Agent;
  readonly #timeoutMs: number;
  readonly #headers: Record<string, string>;
  readonly #retry: RetryPolicy;

  /**
   * @param url the coordinator's API base, e.g. `http://127.0.0.1:36789/api/dtmsvr`
   * @param options see {@link DtxClientOptions}
   */
  constructor(url: string, options: DtxClientOptions = {}) {
    let base: URL;
    try {
      base = new URL(url);
    } catch (cause) {
      throw new DtxError(`invalid coordinator URL '${url}': expected e.g. http://127.0.0.1:36789/api/dtmsvr`, {
        cause,
      });
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:') {
      throw new DtxError(`invalid coordinator URL '${url}': only http: and https: are supported`);
    }
    base.pathname = base.pathname.replace(/\/+$/, '');
    base.search = '';
    base.hash = '';
    this.url = base.href.replace(/\/+$/, '');
    this.#timeoutMs = options.requestTimeoutMs ?? 10_000;
    this.#headers = { ...options.headers };
    if (options.token !== undefined) {
      if (options.token === '' || /[\r\n]/.test(options.token)) {
        throw new DtxError('option token must be a non-empty string without line breaks');
      }
      this.#headers.authorization = `Bearer ${options.token}`;
    }
    this.#retry = retryPolicy(options.retry);
    const connections = options.maxConnections ?? 64;
    this.#pool = new Pool(base.origin, { connections });
    this.#branches = new Agent({ connections });
    this.transport = httpTransport(this);
    const transport = this.transport;
    this.workflow = new WorkflowRegistry(
      {
        protocol: Protocol.Http,
        wire: httpWorkflowWire(this),
        httpBranch: (call, opts) => transport.callBranch(call, opts),
      },
      options.workflowResumeUrl,
    );
  }

  /**
   * A saga builder. Add steps with `add`, then `submit`.
   * @param gid the global id; default: a new one from {@link generateGid}
   * @param options see {@link SagaOptions}; default: none set
   */
  saga(gid?: string, options?: SagaOptions): Saga<unknown> {
    return new Saga(this, gid ?? generateGid(), options);
  }

  /**
   * A two-phase message builder. Add steps with `add`, then `prepare` + `submit`, or `doAndSubmit`.
   * @param gid the global id; default: a new one from {@link generateGid}
   * @param options see {@link MsgOptions}; default: none set
   */
  msg(gid?: string, options?: MsgOptions): Msg<unknown> {
    return new Msg(this, gid ?? generateGid(), options);
  }

  /**
   * Runs a TCC global transaction: prepares it, runs `fn` — which calls the try of each branch with
   * `tcc.callBranch` — then submits it (the coordinator confirms every branch). If `fn` throws, or a try fails,
   * it aborts with the error's message as rollback_reason (the coordinator cancels every registered branch) and
   * rethrows the error. An error of the abort itself is not reported: the coordinator cancels the transaction
   * anyway when it times out. The submit's outcome is {@link submit}'s: with `waitResult`, an `OngoingError`
   * means the confirms are still being retried (they will run: do not start the business again), a
   * `FailureError` that the transaction timed out and is being cancelled.
   * @param gid the global id, e.g. from {@link generateGid} or {@link newGid}
   * @param fn the global transaction's body; its result is returned
   * @param options see {@link TccOptions}; default: none set
   */
  tccGlobalTransaction<T>(gid: string, fn: (tcc: Tcc) => Promise<T>, options?: TccOptions): Promise<T> {
    return runTccGlobalTransaction(this, gid, fn, options);
  }

  // --- XA ---
  /**
   * Runs an XA global transaction: prepares it, runs `fn` — which calls each branch's action with
   * `xa.callBranch(url, body)`; each branch runs `xaLocalTransaction` — then submits it (the coordinator commits
   * every branch, first to last). If `fn` throws, or a branch fails, it aborts with the error's message as
   * rollback_reason (the coordinator rolls back every registered branch) and rethrows the error. The submit's
   * outcome is {@link submit}'s.
   * @param gid the global id, e.g. from {@link generateGid} or {@link newGid}
   * @param fn the global transaction's body; its result is returned
   * @param options see {@link XaOptions}; default: none set
   */
  xa<T>(gid: string, fn: (xa: Xa) => Promise<T>, options?: XaOptions): Promise<T> {
    return runXaGlobalTransaction(this, gid, fn, options);
  }
  // --- end XA ---

  /** Asks the coordinator for a new gid (`GET /newGid`). {@link generateGid} makes one without a round trip. */
  async newGid(call: CallOptions = {}): Promise<string> {
    const reply = await this.#json<{ gid?: unknown }>('GET', 'newGid', undefined, undefined, false, call);
    if (typeof reply.gid !== 'string' || reply.gid === '') {
      throw new CoordinatorError('newGid: the coordinator replied without a gid', 200);
    }
    return reply.gid;
  }

  /**
   * The stored state of a transaction and its branches (`GET /query`). An unknown gid gives
   * `{ transaction: null, branches: [] }`.
   */
  async query(gid: string, call: CallOptions = {}): Promise<QueryReply> {
    return this.#json<QueryReply>('GET', 'query', { gid }, undefined, true, call);
  }

  /** Low-level `POST /prepare`: creates a prepared msg / tcc / xa transaction. Idempotent while prepared. */
  async prepare(request: TransRequest, call: CallOptions = {}): Promise<void> {
    await this.#call('POST', 'prepare', undefined, request, false, call);
  }

  /**
   * Low-level `POST /submit`. Resolves when the transaction succeeded (with `wait_result`) or was accepted
   * (without). Rejects with a `FailureError` when it was, or is being, rolled back (the message is the rollback
   * reason); an `OngoingError` when it is still running — the coordinator retries it, do not submit it again with
   * a new gid; a `CoordinatorError` when the coordinator was not reached or failed — retry with the same gid.
   *
   * A repeated submit of a transaction that already ended gets FAILURE `current status '<status>', cannot
   * sumbmit.` from the coordinator; the SDK then queries the transaction and reports its real outcome instead:
   * resolves for `succeed`, `FailureError` with the stored reason for `failed` / `aborting`.
   */
  async submit(request: TransRequest, call: CallOptions = {}): Promise<void> {
    try {
      await this.#call('POST', 'submit', undefined, request, false, call);
    } catch (err) {
      const status = refusedSubmitStatus(err);
      if (status === undefined) throw err;
      await settleRefusedSubmit(request.gid, status, err as FailureError, async () => {
        const t = (await this.query(request.gid, call)).transaction;
        return t === null || t === undefined
          ? undefined
          : { status: t.status, ...(t.rollback_reason === undefined ? {} : { rollbackReason: t.rollback_reason }) };
      });
    }
  }

  /** Low-level `POST /abort`: rolls back a prepared msg, or a prepared tcc / xa (with `rollback_reason`). */
  async abort(request: TransRequest, call: CallOptions = {}): Promise<void> {
    await this.#call('POST', 'abort', undefined, request, false, call);
  }

  /**
   * Low-level `POST /registerBranch`: records a tcc / xa / workflow branch of a prepared transaction. All
   * values are strings (spec §2.5). A transaction that is no longer prepared gives a `FailureError`.
   */
  async registerBranch(body: Record<string, string>, call: CallOptions = {}): Promise<void> {
    await this.#call('POST', 'registerBranch', undefined, body, false, call);
  }

  /**
   * Low-level `POST /prepareWorkflow` (spec §2.8): creates a prepared workflow, or returns the stored one with its
   * recorded progress. `client.workflow.execute` calls it.
   */
  async prepareWorkflow(request: TransRequest, call: CallOptions = {}): Promise<unknown> {
    return this.#json<unknown>('POST', 'prepareWorkflow', undefined, request, true, call);
  }

  /**
   * Low-level: calls a branch service over this client's keep-alive connections and returns the raw reply,
   * whatever its status. Rejects with a `BranchError` only when there is no reply (network error, timeout).
   */
  async requestBranch(request: BranchRequest, call: CallOptions = {}): Promise<HttpReply> {
    const url = urlWithQuery(request.url, request.query);
    try {
      return await httpCall(this.#branches, {
        method: request.method,
        url,
        ...(request.body === undefined ? {} : { body: request.body }),
        ...(request.headers === undefined ? {} : { headers: request.headers }),
        timeoutMs: this.#timeoutMs,
        ...(call.signal === undefined ? {} : { signal: call.signal }),
      });
    } catch (cause) {
      if (call.signal?.aborted) throw call.signal.reason;
      throw new BranchError(`${request.method} ${url.href} failed: ${errorText(cause)}`, url.href, undefined, {
        cause,
      });
    }
  }

  /** Closes the connection pools. Calls in flight are completed first. */
  async close(): Promise<void> {
    await Promise.all([this.#pool.close(), this.#branches.close()]);
  }

  async #json<T>(
    method: 'GET' | 'POST',
    route: string,
    query?: Record<string, string>,
    body?: unknown,
    readsState = false,
    call: CallOptions = {},
  ): Promise<T> {
    const text = await this.#call(method, route, query, body, readsState, call);
    try {
      return JSON.parse(text) as T;
    } catch (cause) {
      throw new CoordinatorError(`${route}: the coordinator replied with a body that is not JSON: ${text}`, 200, {
        cause,
      });
    }
  }

  #call(
    method: 'GET' | 'POST',
    route: string,
    query: Record<string, string> | undefined,
    body: unknown,
    readsState: boolean,
    call: CallOptions,
  ): Promise<string> {
    const url = urlWithQuery(`${this.url}/${route}`, query ?? {});
    const text = body === undefined ? undefined : JSON.stringify(body);
    const signal = call.signal;
    if (signal?.aborted) return Promise.reject(signal.reason);
    const once = async (): Promise<string> => {
      let reply: HttpReply;
      try {
        reply = await httpCall(this.#pool, {
          method,
          url,
          ...(text === undefined ? {} : { body: text }),
          headers: this.#headers,
          timeoutMs: this.#timeoutMs,
          ...(signal === undefined ? {} : { signal }),
        });
      } catch (cause) {
        if (signal?.aborted) throw signal.reason;
        const transience = httpErrorTransience(cause);
        throw new CoordinatorError(
          `${route}: cannot reach the coordinator at ${this.url}: ${errorText(cause)}`,
          undefined,
          {
            cause,
            ...(transience === undefined ? {} : { transience }),
          },
        );
      }
      const err = coordinatorReplyError(route, reply, readsState);
      if (err !== undefined) throw err;
      return reply.text;
    };
    if (this.#retry.retries === 0) return once();
    return withRetry(this.#retry, IDEMPOTENT_ROUTES.has(route), signal, once);
  }
}

/** Routes the coordinator treats idempotently for one gid: retried even when the request may have arrived. */
const IDEMPOTENT_ROUTES = new Set(['newGid', 'query', 'prepare', 'submit', 'prepareWorkflow']);

/** The HTTP {@link CoordinatorTransport} of `client`. */
function httpTransport(client: DtxClient): CoordinatorTransport<unknown, HttpReply> {
  return {
    protocol: Protocol.Http,
    address: client.url,
    encodePayload: (payload) => JSON.stringify(payload) ?? 'null',
    prepare: (parts, call) => client.prepare(buildTransRequest(parts), call),
    submit: (parts, call) => client.submit(buildTransRequest(parts), call),
    abort: (parts, call) => client.abort(buildTransRequest(parts), call),
    async query(gid, call) {
      const t = (await client.query(gid, call)).transaction;
      if (t === null || t === undefined) return undefined;
      return { status: t.status, ...(t.rollback_reason === undefined ? {} : { rollbackReason: t.rollback_reason }) };
    },
    registerTccBranch: (b, call) =>
      client.registerBranch(
        {
          gid: b.gid,
          branch_id: b.branchId,
          trans_type: TransType.Tcc,
          data: payloadText(b.payload),
          confirm: b.confirm,
          cancel: b.cancel,
        },
        call,
      ),
    // --- XA ---
    registerXaBranch: (b, call) =>
      client.registerBranch({ gid: b.gid, branch_id: b.branchId, trans_type: TransType.Xa, url: b.url }, call),
    // --- end XA ---
    async callBranch(call: SdkBranchCall, options?: CallOptions): Promise<SdkBranchReply<HttpReply>> {
      const info = { gid: call.gid, trans_type: call.transType, branch_id: call.branchId, op: call.op };
      const query: Record<string, string> = call.withCoordinator
        ? { dtm: client.url, gid: call.gid, branch_id: call.branchId, trans_type: call.transType, op: call.op }
        : info;
      if (call.phase2Url !== undefined) query.phase2_url = call.phase2Url; // XA
      const reply = await client.requestBranch(
        {
          method: call.payload === undefined ? 'GET' : 'POST',
          url: call.url,
          query,
          ...(call.payload === undefined ? {} : { body: payloadText(call.payload) }),
          ...(call.headers === undefined ? {} : { headers: call.headers }),
        },
        options,
      );
      return {
        result: classifyHttpReply(reply.status, reply.text),
        message: reply.text,
        status: `HTTP ${reply.status}`,
        httpStatus: reply.status,
        reply,
      };
    },
  };
}

function errorText(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' && !err.message.includes(code) ? `${err.message} (${code})` : err.message;
  }
  return String(err);
}
