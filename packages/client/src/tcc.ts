/**
 * TCC (try / confirm / cancel): the client calls the try of each branch itself; the coordinator later calls
 * every confirm (after submit) or every cancel (after abort or a timeout), last branch first (spec §12.5).
 */
import { type BranchInfo, BranchOp, Result, TransType } from '@dtx/protocol';
import { branchInfoFromMetadata, branchInfoFromQuery, type StringMap } from './barrier/index.js';
import { BranchIdGenerator } from './branch-id-generator.js';
import type { CallOptions, CoordinatorTransport, TransParts, TransportClient } from './coordinator-transport.js';
import { BranchError, DtxError, FailureError, OngoingError } from './errors.js';
import type { HttpReply } from './http-call.js';
import { type TransactionOptions, toWireOptions } from './transaction-options.js';

/**
 * Options of a TCC global transaction: the transaction's options, and `signal`, which abandons its coordinator
 * calls (prepare, registerBranch, submit; the abort after a failed body is still sent) and the tries it calls.
 */
export type TccOptions = TransactionOptions & CallOptions;

/**
 * The handle a TCC global transaction's body (or a branch handler running a nested TCC) uses to call branches.
 * Get it from `client.tccGlobalTransaction(gid, async (tcc) => …)`, {@link Tcc.fromQuery} or
 * {@link Tcc.fromMetadata}.
 *
 * @typeParam Payload - what a try carries: any JSON value over HTTP, protobuf bytes over gRPC.
 * @typeParam Reply - what a try returns: the `HttpReply` over HTTP, the reply message's bytes over gRPC.
 */
export class Tcc<Payload = unknown, Reply = HttpReply> {
  readonly #transport: CoordinatorTransport<Payload, Reply>;
  readonly #ids: BranchIdGenerator;
  readonly #headers: Record<string, string> | undefined;
  readonly #call: CallOptions;

  /** Prefer `client.tccGlobalTransaction()`, {@link Tcc.fromQuery} or {@link Tcc.fromMetadata}. */
  constructor(
    client: TransportClient<Payload, Reply>,
    /** The global id. */
    readonly gid: string,
    /** Branch id of the branch this TCC is nested in; default `''` (a global transaction). */
    parentBranchId = '',
    /** Only `branchHeaders` (sent on every try) and `signal` are used here. Default: none. */
    options: TccOptions = {},
  ) {
    this.#transport = client.transport;
    this.#ids = new BranchIdGenerator(parentBranchId);
    this.#headers = options.branchHeaders;
    this.#call = options.signal === undefined ? {} : { signal: options.signal };
  }

  /**
   * The TCC a branch handler continues when it runs sub-branches of its own (a nested TCC): the gid comes from
   * the query string, and the sub-branches get ids `<branch_id>01`, `<branch_id>02`, ….
   * @param query the parsed query string of the incoming try call (`gid`, `trans_type=tcc`, `branch_id`, `op`,
   *   `dtm`), e.g. Fastify's `request.query`
   * @param client a client of the coordinator named by the `dtm` parameter
   * @param options `branchHeaders` are sent on the sub-branches' tries; default: none
   * @throws BranchInfoError naming a missing parameter; DtxError when `trans_type` is not `tcc` or `dtm` names
   *   another coordinator
   */
  static fromQuery<P, R>(query: StringMap, client: TransportClient<P, R>, options: TccOptions = {}): Tcc<P, R> {
    return Tcc.#continue(branchInfoFromQuery(query), firstString(query.dtm), client, options);
  }

  /**
   * The TCC a gRPC branch handler continues when it runs sub-branches of its own (a nested TCC): like
   * {@link fromQuery}, from the incoming call's `dtm-*` metadata (`dtm-gid`, `dtm-trans_type=tcc`,
   * `dtm-branch_id`, `dtm-op`, `dtm-dtm`).
   * @param metadata the incoming metadata as a map, e.g. `call.metadata.getMap()` in grpc-js
   * @param client a client of the coordinator named by `dtm-dtm`
   * @throws BranchInfoError naming a missing key; DtxError when `dtm-trans_type` is not `tcc` or `dtm-dtm` names
   *   another coordinator
   */
  static fromMetadata<P, R>(metadata: StringMap, client: TransportClient<P, R>, options: TccOptions = {}): Tcc<P, R> {
    const lower: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(metadata)) lower[k.toLowerCase()] = v;
    return Tcc.#continue(branchInfoFromMetadata(lower), firstString(lower['dtm-dtm']), client, options);
  }

  static #continue<P, R>(
    info: BranchInfo,
    dtm: string | undefined,
    client: TransportClient<P, R>,
    options: TccOptions,
  ): Tcc<P, R> {
    const { gid, branch_id, trans_type } = info;
    if (trans_type !== TransType.Tcc) {
      throw new DtxError(`cannot continue a TCC from a ${trans_type} branch call (gid ${gid})`);
    }
    const own = client.transport.address;
    if (dtm !== undefined && dtm !== '' && dtm.replace(/\/+$/, '') !== own) {
      throw new DtxError(
        `the branch was called for coordinator ${dtm}, but the client talks to ${own}: ` +
          'pass a client of that coordinator',
      );
    }
    return new Tcc(client, gid, branch_id, options);
  }

  /**
   * Registers a branch with the coordinator, then calls its try. Over HTTP: a POST of `body` (as JSON) to `tryUrl`
   * with `dtm`, `gid`, `branch_id`, `trans_type=tcc` and `op=try` in the query string. Over gRPC: a call of the
   * `tryUrl` method (`host:port/pkg.Svc/Method`) with the payload bytes and the same as `dtm-*` metadata.
   * @param body HTTP: any JSON value; gRPC: the request message's bytes. The coordinator sends the same to
   *   `confirmUrl` / `cancelUrl`
   * @returns the try's reply: the `HttpReply` (status 200) over HTTP, the reply message's bytes over gRPC
   * @throws FailureError when the try answers FAILURE (HTTP 409, gRPC Aborted), OngoingError for ONGOING (425,
   *   FailedPrecondition), BranchError for any other answer or no answer; whatever the registration throws (a
   *   `FailureError` when the transaction is no longer prepared, e.g. timed out)
   * @param call `signal`: abandons the registration and the try; default: the TCC's `signal`, if any
   */
  async callBranch(
    body: Payload,
    tryUrl: string,
    confirmUrl: string,
    cancelUrl: string,
    call: CallOptions = this.#call,
  ): Promise<Reply> {
    const branchId = this.#ids.next();
    const payload = this.#transport.encodePayload(body);
    await this.#transport.registerTccBranch(
      {
        gid: this.gid,
        branchId,
        payload,
        confirm: confirmUrl,
        cancel: cancelUrl,
      },
      call,
    );
    const out = await this.#transport.callBranch(
      {
        url: tryUrl,
        gid: this.gid,
        transType: TransType.Tcc,
        branchId,
        op: BranchOp.Try,
        payload,
        withCoordinator: true,
        ...(this.#headers === undefined ? {} : { headers: this.#headers }),
      },
      call,
    );
    const text = out.message.trim() === '' ? `the try of branch ${branchId} answered ${out.status}` : out.message;
    if (out.result === Result.Failure) throw new FailureError(text);
    if (out.result === Result.Ongoing) throw new OngoingError(text);
    if (out.result === 'ERROR') {
      throw new BranchError(
        `the try of branch ${branchId} (${tryUrl}) answered ${out.status}: ${out.message}`,
        tryUrl,
        out.httpStatus,
      );
    }
    return out.reply;
  }
}

/** The body of `client.tccGlobalTransaction()`. */
export async function runTccGlobalTransaction<T, P, R>(
  client: TransportClient<P, R>,
  gid: string,
  fn: (tcc: Tcc<P, R>) => Promise<T>,
  options: TccOptions = {},
): Promise<T> {
  const { transport } = client;
  const wire = toWireOptions(options);
  const request = (rollbackReason?: string): TransParts => ({
    gid,
    transType: TransType.Tcc,
    options: wire,
    ...(rollbackReason === undefined ? {} : { rollbackReason }),
  });
  const call: CallOptions = options.signal === undefined ? {} : { signal: options.signal };
  await transport.prepare(request(), call);
  let result: T;
  try {
    result = await fn(new Tcc(client, gid, '', options));
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    await transport.abort(request(reason === '' ? 'FAILURE' : reason)).catch(() => {});
    throw err;
  }
  await transport.submit(request(), call);
  return result;
}

function firstString(v: unknown): string | undefined {
  const first = Array.isArray(v) ? v[0] : v;
  return typeof first === 'string' ? first : undefined;
}
