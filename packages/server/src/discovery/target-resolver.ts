/**
 * The shape the gRPC branch caller uses to turn a scheme target into an address. Identical to the
 * `TargetResolver` of `branch/dispatch.ts`; kept here until the two are unified.
 *
 * @module
 */

/** Turns a branch target such as `etcd://127.0.0.1:2379/order.rpc` or `discovery:///order` into a `host:port`. */
export interface TargetResolver {
  /**
   * The address to dial for `target`: one live instance, a different one on each call when there are several.
   * Rejects (never throws synchronously, never crashes the process) when the target cannot be resolved now; the
   * caller retries later.
   */
  resolve(target: string): Promise<string>;
}
