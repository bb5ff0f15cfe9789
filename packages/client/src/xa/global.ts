/**
 * The global side of XA (spec §6.6, §12.5): the client prepares the global transaction, calls each branch's
 * action itself (each branch runs a local XA transaction, registers itself and prepares it), then submits — the
 * coordinator commits every branch, first to last — or aborts when anything failed — the coordinator rolls every
 * registered branch back.
 *
 * @module
 */
import { BranchOp, Result, TransType } from '@dtx/protocol';
import { BranchIdGenerator } from '../branch-id-generator.js';
import type { CallOptions, CoordinatorTransport, TransParts, TransportClient } from '../coordinator-transport.js';
import { BranchError, FailureError, OngoingError } from '../errors.js';
import type { HttpReply } from '../http-call.js';
import { type TransactionOptions, toWireOptions } from '../transaction-options.js';

/**
 * Options of an XA global transaction: the transaction's options, and `signal`, which abandons its coordinator
 * calls (prepare, submit; the abort after a failed body is still sent) and the branch calls.
 */
export type XaOptions = TransactionOptions & CallOptions;

/**
 * The handle an XA global transaction's body uses to call its branches. Get it from
 * `client.xa(gid, async (xa) => …)`.
 *
 * @typeParam Payload - what an action carries: any JSON value over HTTP, protobuf bytes over gRPC.
 * @typeParam Reply - what an action returns: the `HttpReply` over HTTP, the reply message's bytes over gRPC.
 */
export class Xa<Payload = unknown, Reply = HttpReply> {
  readonly #transport: CoordinatorTransport<Payload, Reply>;
  readonly #ids = new BranchIdGenerator('');
  readonly #headers: Record<string, string> | undefined;
  readonly #call: CallOptions;

  /** Prefer `client.xa()`. */
  constructor(
    client: TransportClient<Payload, Reply>,
    /** The global id. */
    readonly gid: string,
    /** Only `branchHeaders` (sent on every action call) and `signal` are used here. Default: none. */
    options: XaOptions = {},
  ) {
    this.#transport = client.transport;
    this.#headers = options.branchHeaders;
    this.#call = options.signal === undefined ? {} : { signal: options.signal };
  }

  /**
   * Calls the action of the next branch (ids `01`, `02`, …). Over HTTP: a POST of `body` (as JSON) to `url` with
   * `dtm`, `gid`, `branch_id`, `trans_type=xa`, `op=action` and `phase2_url=<url>` in the query string. Over gRPC:
   * a call of the `url` method (`host:port/pkg.Svc/Method`) with the payload bytes and the same as `dtm-*`
   * metadata. The branch handler (`xaLocalTransaction`) runs its local XA transaction, registers `url` as its
   * phase-2 URL and prepares; the coordinator later calls `url` with op `commit` or `rollback`.
   * @param url the branch: an HTTP URL, or a gRPC `host:port/pkg.Svc/Method`
   * @param body HTTP: any JSON value; gRPC: the request message's bytes
   * @returns the action's reply: the `HttpReply` (status 200) over HTTP, the reply message's bytes over gRPC
   * @throws FailureError when the branch answers FAILURE (HTTP 409, gRPC Aborted), OngoingError for ONGOING,
   *   BranchError for any other answer or no answer
   */
  async callBranch(url: string, body: Payload, call: CallOptions = this.#call): Promise<Reply> {
    const branchId = this.#ids.next();
    const out = await this.#transport.callBranch(
      {
        url,
        gid: this.gid,
        transType: TransType.Xa,
        branchId,
        op: BranchOp.Action,
        payload: this.#transport.encodePayload(body),
        withCoordinator: true,
        phase2Url: url,
        ...(this.#headers === undefined ? {} : { headers: this.#headers }),
      },
      call,
    );
    const text = out.message.trim() === '' ? `XA branch ${branchId} answered ${out.status}` : out.message;
    if (out.result === Result.Failure) throw new FailureError(text);
    if (out.result === Result.Ongoing) throw new OngoingError(text);
    if (out.result === 'ERROR') {
      throw new BranchError(
        `XA branch ${branchId} (${url}) answered ${out.status}: ${out.message}`,
        url,
        out.httpStatus,
      );
    }
    return out.reply;
  }
}

/**
 * The body of `client.xa()`, as DTM's `XaGlobalTransaction`: prepare, run `fn`, then submit; if `fn` throws, abort
 * with the error's message as rollback_reason and rethrow. An error of the abort itself is not reported: the
 * coordinator rolls the transaction back anyway when it times out.
 */
export async function runXaGlobalTransaction<T, P, R>(
  client: TransportClient<P, R>,
  gid: string,
  fn: (xa: Xa<P, R>) => Promise<T>,
  options: XaOptions = {},
): Promise<T> {
  const { transport } = client;
  const wire = toWireOptions(options);
  const request = (rollbackReason?: string): TransParts => ({
    gid,
    transType: TransType.Xa,
    options: wire,
    ...(rollbackReason === undefined ? {} : { rollbackReason }),
  });
  const call: CallOptions = options.signal === undefined ? {} : { signal: options.signal };
  await transport.prepare(request(), call);
  let result: T;
  try {
    result = await fn(new Xa(client, gid, options));
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    await transport.abort(request(reason === '' ? 'FAILURE' : reason)).catch(() => {});
    throw err;
  }
  await transport.submit(request(), call);
  return result;
}
