/**
 * TCC (try / confirm / cancel): the client calls the try of each branch itself; the coordinator later calls
 * every confirm (after submit) or every cancel (after abort or a timeout), last branch first (spec §12.5).
 */
import { BranchOp, classifyHttpReply, Result, TransType } from '@dtx/protocol';
import { branchInfoFromQuery, type StringMap } from './barrier/index.js';
import { BranchIdGenerator } from './branch-id-generator.js';
import type { DtxClient } from './client.js';
import { BranchError, DtxError, FailureError, OngoingError } from './errors.js';
import type { HttpReply } from './http-call.js';
import { buildTransRequest } from './trans-request.js';
import { type TransactionOptions, toWireOptions } from './transaction-options.js';

/** Options of a TCC global transaction. */
export type TccOptions = TransactionOptions;

/**
 * The handle a TCC global transaction's body (or a branch handler running a nested TCC) uses to call branches.
 * Get it from `client.tccGlobalTransaction(gid, async (tcc) => …)` or {@link Tcc.fromQuery}.
 */
export class Tcc {
  readonly #client: DtxClient;
  readonly #ids: BranchIdGenerator;
  readonly #headers: Record<string, string> | undefined;

  /** Prefer `client.tccGlobalTransaction()` or {@link Tcc.fromQuery}. */
  constructor(
    client: DtxClient,
    /** The global id. */
    readonly gid: string,
    /** Branch id of the branch this TCC is nested in; default `''` (a global transaction). */
    parentBranchId = '',
    /** Only `branchHeaders` is used here: sent on every try. Default: none. */
    options: TccOptions = {},
  ) {
    this.#client = client;
    this.#ids = new BranchIdGenerator(parentBranchId);
    this.#headers = options.branchHeaders;
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
  static fromQuery(query: StringMap, client: DtxClient, options: TccOptions = {}): Tcc {
    const { gid, branch_id, trans_type } = branchInfoFromQuery(query);
    if (trans_type !== TransType.Tcc) {
      throw new DtxError(`cannot continue a TCC from a ${trans_type} branch call (gid ${gid})`);
    }
    const dtm = firstString(query.dtm);
    if (dtm !== undefined && dtm !== '' && dtm.replace(/\/+$/, '') !== client.url) {
      throw new DtxError(
        `the branch was called for coordinator ${dtm}, but the client talks to ${client.url}: ` +
          'pass a DtxClient of that coordinator',
      );
    }
    return new Tcc(client, gid, branch_id, options);
  }

  /**
   * Registers a branch with the coordinator, then calls its try: a POST of `body` (as JSON) to `tryUrl` with
   * `dtm`, `gid`, `branch_id`, `trans_type=tcc` and `op=try` in the query string.
   * @param body any JSON value; the coordinator sends the same text to `confirmUrl` / `cancelUrl`
   * @returns the try's reply (status 200)
   * @throws FailureError when the try answers FAILURE (409), OngoingError for ONGOING (425), BranchError for
   *   any other answer or no answer; whatever the registration throws (a `FailureError` when the transaction is
   *   no longer prepared, e.g. timed out)
   */
  async callBranch(body: unknown, tryUrl: string, confirmUrl: string, cancelUrl: string): Promise<HttpReply> {
    const branchId = this.#ids.next();
    const data = JSON.stringify(body) ?? 'null';
    await this.#client.registerBranch({
      gid: this.gid,
      branch_id: branchId,
      trans_type: TransType.Tcc,
      data,
      confirm: confirmUrl,
      cancel: cancelUrl,
    });
    const reply = await this.#client.requestBranch({
      method: 'POST',
      url: tryUrl,
      query: { dtm: this.#client.url, gid: this.gid, branch_id: branchId, trans_type: TransType.Tcc, op: BranchOp.Try },
      body: data,
      ...(this.#headers === undefined ? {} : { headers: this.#headers }),
    });
    const result = classifyHttpReply(reply.status, reply.text);
    const text = reply.text.trim() === '' ? `the try of branch ${branchId} answered HTTP ${reply.status}` : reply.text;
    if (result === Result.Failure) throw new FailureError(text);
    if (result === Result.Ongoing) throw new OngoingError(text);
    if (result === 'ERROR') {
      throw new BranchError(
        `the try of branch ${branchId} (${tryUrl}) answered HTTP ${reply.status}: ${reply.text}`,
        tryUrl,
        reply.status,
      );
    }
    return reply;
  }
}

/** The body of `client.tccGlobalTransaction()`. */
export async function runTccGlobalTransaction<T>(
  client: DtxClient,
  gid: string,
  fn: (tcc: Tcc) => Promise<T>,
  options: TccOptions = {},
): Promise<T> {
  const wire = toWireOptions(options);
  const request = (rollbackReason?: string) =>
    buildTransRequest({
      gid,
      transType: TransType.Tcc,
      options: wire,
      ...(rollbackReason === undefined ? {} : { rollbackReason }),
    });
  await client.prepare(request());
  let result: T;
  try {
    result = await fn(new Tcc(client, gid, '', options));
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    await client.abort(request(reason === '' ? 'FAILURE' : reason)).catch(() => {});
    throw err;
  }
  await client.submit(request());
  return result;
}

function firstString(v: unknown): string | undefined {
  const first = Array.isArray(v) ? v[0] : v;
  return typeof first === 'string' ? first : undefined;
}
