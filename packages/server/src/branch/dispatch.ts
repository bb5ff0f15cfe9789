import type { BranchCall, BranchCaller, BranchOutcome } from './caller.js';
import { GrpcBranchCaller } from './grpc-caller.js';
import { HttpBranchCaller } from './http-caller.js';
import { JsonRpcBranchCaller } from './json-rpc-caller.js';
import { DEFAULT_URL_POLICY, type LookupAll, type UrlPolicy } from './url-policy.js';

export { DISCOVERY_SCHEMES, type GrpcUrl, grpcUrlProblem, parseGrpcUrl } from './grpc-caller.js';

/** True when a URL is called over plain HTTP. */
export function isHttpUrl(url: string): boolean {
  return url.startsWith('http://') || url.startsWith('https://');
}

/**
 * Turns a discovery target into an address to dial. The gRPC caller asks it for every call whose
 * URL names a scheme target (`etcd://…`, `discov://…`, `discovery://…`); an implementation may answer
 * a different live instance each time (round robin).
 */
export interface TargetResolver {
  /**
   * A `host:port` for `target`, e.g. `etcd://127.0.0.1:2379/order.rpc` or `discovery:///order` (the
   * URL up to and including the service key). Rejects when the target cannot be resolved now; the
   * branch call is then a retryable error, retried by the cron with backoff.
   */
  resolve(target: string): Promise<string>;
}

/** The resolver used when no discovery is configured: every scheme target is a retryable error. */
export const noDiscovery: TargetResolver = {
  resolve(target: string): Promise<string> {
    return Promise.reject(
      new Error(
        `cannot resolve '${target}': no service discovery is configured (set MicroService.Driver to ` +
          'dtm-driver-gozero or dtm-driver-kratos, with MicroService.Target); the call will be retried',
      ),
    );
  },
};

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
    const protocol = c.trans.protocol || 'http';
    if (protocol === 'http' || isHttpUrl(c.url)) {
      if (protocol === 'json-rpc' && c.url.includes('method')) return this.jsonRpc.call(c);
      return this.http.call(c);
    }
    return this.grpc.call(c);
  }

  async close(): Promise<void> {
    await Promise.all([this.http.close(), this.jsonRpc.close(), this.grpc.close()]);
  }
}
