import type { BranchCall, BranchCaller, BranchOutcome } from './caller.js';
import { GrpcBranchCaller } from './grpc-caller.js';
import { HttpBranchCaller } from './http-caller.js';
import { JsonRpcBranchCaller } from './json-rpc-caller.js';

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

  constructor(o: DispatchOptions = {}) {
    this.http = o.http ?? new HttpBranchCaller();
    this.jsonRpc = o.jsonRpc ?? new JsonRpcBranchCaller();
    this.grpc =
      o.grpc ??
      new GrpcBranchCaller({
        resolver: o.resolver ?? noDiscovery,
        ...(o.grpcServiceConfig === undefined ? {} : { serviceConfig: o.grpcServiceConfig }),
      });
  }

  call(c: BranchCall): Promise<BranchOutcome> {
    if (c.url === '') return Promise.resolve({ result: 'SUCCESS', message: '' });
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
