import { branchProtocolOf } from '@dtx/protocol';
import type { BranchCall, BranchCaller, BranchOutcome } from './caller.js';
import { GrpcBranchCaller } from './grpc-caller.js';
import { HttpBranchCaller } from './http-caller.js';
import { JsonRpcBranchCaller } from './json-rpc-caller.js';
import { noDiscovery, type TargetResolver } from './target-resolver.js';
import { DEFAULT_URL_POLICY, type LookupAll, type UrlPolicy } from './url-policy.js';

export { noDiscovery, type TargetResolver } from './target-resolver.js';

/** What the dispatcher is built from; every member has a default. */
export interface DispatchOptions {
  /** Plain HTTP branches. Default: an {@link HttpBranchCaller}. */
  http?: BranchCaller;
  /** JSON-RPC branches. Default: a {@link JsonRpcBranchCaller}. */
  jsonRpc?: BranchCaller;
  /** gRPC branches. Default: a {@link GrpcBranchCaller} with `resolver` and `grpcServiceConfig`. */
  grpc?: BranchCaller;
  /** Resolves discovery targets of gRPC URLs. Default: {@link noDiscovery}. */
  resolver?: TargetResolver;
  /** The channels' gRPC service config (config key GrpcServiceConfig). Default: round robin. */
  grpcServiceConfig?: string;
  /** The branch-URL policy (config `BranchUrl.*`), checked on every call. Default: the default deny list. */
  policy?: UrlPolicy;
  /** Resolves host names for the default callers (tests inject one). Default: the system resolver. */
  lookup?: LookupAll;
  /** PEM CA certificates trusted for https branches besides Node's roots (config `BranchTls.CaFile`). */
  ca?: string | undefined;
  /** Config `Redact.BranchReplies`: keep no reply body in outcome messages. */
  hideReplies?: boolean;
}

/**
 * Chooses the protocol of a branch call (spec §5.1): an empty URL succeeds at once without a call;
 * an http(s) URL, or any URL of an http transaction, goes over HTTP, as JSON-RPC when the transaction
 * is json-rpc and the URL names a `method`; every other URL is a gRPC branch.
 */
export class DispatchingCaller implements BranchCaller {
  private readonly http: BranchCaller;
  private readonly jsonRpc: BranchCaller;
  private readonly grpc: BranchCaller;

  private readonly policy: UrlPolicy;

  constructor(o: DispatchOptions = {}) {
    this.policy = o.policy ?? DEFAULT_URL_POLICY;
    const shared = {
      policy: this.policy,
      ...(o.lookup === undefined ? {} : { lookup: o.lookup }),
      hideReplies: o.hideReplies === true,
    };
    this.http = o.http ?? new HttpBranchCaller({ ...shared, ca: o.ca });
    this.jsonRpc = o.jsonRpc ?? new JsonRpcBranchCaller({ ...shared, ca: o.ca });
    this.grpc =
      o.grpc ??
      new GrpcBranchCaller({
        ...shared,
        resolver: o.resolver ?? noDiscovery,
        ...(o.grpcServiceConfig === undefined ? {} : { serviceConfig: o.grpcServiceConfig }),
      });
  }

  /**
   * A URL the branch-URL policy refuses (one stored before the policy changed) is not called: the outcome is a
   * retryable error naming the rule, so the transaction stays visible (logged, alerted, retried with backoff)
   * and continues once the policy allows the URL. The addresses a name resolves to are checked by each
   * protocol's caller when it connects.
   */
  call(c: BranchCall): Promise<BranchOutcome> {
    if (c.url === '') return Promise.resolve({ result: 'SUCCESS', message: '' });
    const refused = this.policy.checkUrl(c.url);
    if (refused !== undefined) {
      return Promise.resolve({ result: 'ERROR', message: `refused by the branch-URL policy: ${refused}` });
    }
    const protocol = branchProtocolOf(c.trans.protocol, c.url);
    if (protocol === 'http') return this.http.call(c);
    if (protocol === 'json-rpc') return this.jsonRpc.call(c);
    return this.grpc.call(c);
  }

  async close(): Promise<void> {
    await Promise.all([this.http.close(), this.jsonRpc.close(), this.grpc.close()]);
  }
}
