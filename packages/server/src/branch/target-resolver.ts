/**
 * Turns a discovery target into an address to dial. The gRPC caller asks it for every call whose
 * URL names a scheme target (`etcd://…`, `discov://…`, `discovery://…`); an implementation may answer
 * a different live instance each time (round robin). discovery/ implements it.
 */
export interface TargetResolver {
  /**
   * A `host:port` for `target`, e.g. `etcd://127.0.0.1:2379/order.rpc` or `discovery:///order` (the
   * URL up to and including the service key). Rejects (never throws synchronously) when the target cannot be
   * resolved now; the branch call is then a retryable error, retried by the cron with backoff.
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
