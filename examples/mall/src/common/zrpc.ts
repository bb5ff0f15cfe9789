/**
 * The rpc processes' gRPC conventions, those of go-zero's `zrpc` that the tutorial relies on:
 * - a server registers `<Etcd.Key>/<leaseId>` = `<ip>:<port>` in etcd under a 10-second lease kept alive, so the
 *   apis, other rpcs and the coordinator (`discov://<etcd>/<key>` branch URLs) find it; a wildcard ListenOn host
 *   is advertised as `POD_IP` or the machine's first non-internal IPv4, as go-zero does;
 * - a client watches `<Etcd.Key>/` and picks a live instance per call, round-robin, with a 2-second deadline;
 * - handlers answer business errors with code 100 and infrastructure errors with code 500, as the original;
 * - every call is counted and timed (server and client metrics) and traced, with W3C trace context in metadata.
 *
 * @module
 */
import { advertisedEndpoint, type EtcdClients, type EtcdTargetResolver, LeasedKey } from '@dtx/server/discovery';
import {
  Client,
  credentials,
  type handleUnaryCall,
  Metadata,
  Server,
  ServerCredentials,
  type ServerUnaryCall,
  type ServiceDefinition,
  type ServiceError,
  type sendUnaryData,
} from '@grpc/grpc-js';
import { context } from '@opentelemetry/api';
import type { RpcClientConf, RpcConf } from './config.js';
import type { Logger } from './logger.js';
import type { ServiceMetrics } from './metrics.js';
import { CODE_INTERNAL, isStatusError, RpcError } from './rpc-error.js';
import { endSpan, type ServiceTracing } from './tracing.js';

/** TTL of the etcd registration, as go-zero. */
export const REGISTRATION_TTL_SECONDS = 10;

/** What the services share: metrics, tracer, logger. */
export interface Observed {
  metrics: ServiceMetrics;
  tracing: ServiceTracing;
  log: Logger;
}

/**
 * An async handler as a grpc-js unary handler: its result is the reply; an error with a numeric `code` (an
 * {@link RpcError}, a status from another rpc) is answered with that code and details; anything else with code
 * 500, as the original's `status.Error(500, err.Error())`.
 */
// biome-ignore lint/suspicious/noExplicitAny: requests are proto-loader objects typed by each handler.
export function unary<Req = any, Res = unknown>(fn: (request: Req, call: ServerUnaryCall<Req, Res>) => Promise<Res>) {
  return ((call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => {
    fn(call.request, call).then(
      (reply) => callback(null, reply),
      (err: unknown) => {
        const e = isStatusError(err)
          ? err
          : new RpcError(CODE_INTERNAL, err instanceof Error ? err.message : String(err));
        callback(
          Object.assign(new Error(e.details ?? e.message), {
            code: e.code,
            details: e.details ?? e.message,
            metadata: new Metadata(),
          }),
        );
      },
    );
  }) as handleUnaryCall<Req, Res>;
}

/** Wraps a unary handler with the server metrics and a server span continuing the caller's trace. */
function instrumented(
  method: string,
  handler: handleUnaryCall<unknown, unknown>,
  o: Observed,
): handleUnaryCall<unknown, unknown> {
  return (call, callback) => {
    const started = performance.now();
    const { span, ctx } = o.tracing.serverSpan(method, call.metadata.getMap());
    context.with(ctx, () =>
      handler(call, (err, value, ...rest) => {
        const code = err === null || err === undefined ? 0 : ((err as { code?: number }).code ?? 2);
        o.metrics.observeRpcServer(method, code, performance.now() - started);
        span.setAttribute('rpc.grpc.status_code', code);
        endSpan(span, code === 0 ? undefined : (err?.details ?? 'error'));
        callback(err, value, ...rest);
      }),
    );
  };
}

/** A running rpc server. */
export interface RpcServer {
  /** The address registered in etcd, `ip:port`. */
  readonly address: string;
  readonly port: number;
  /** Revokes the registration, then stops the server (in-flight calls finish). */
  close(): Promise<void>;
}

/**
 * Serves `definition` with `handlers` on `conf.ListenOn` (port 0 picks a free one) and registers it in etcd.
 */
export async function startRpcServer(
  conf: RpcConf,
  definition: ServiceDefinition,
  handlers: Record<string, handleUnaryCall<never, unknown>>,
  etcd: EtcdClients,
  o: Observed,
): Promise<RpcServer> {
  const server = new Server();
  const impl: Record<string, handleUnaryCall<unknown, unknown>> = {};
  for (const [name, m] of Object.entries(definition)) {
    const h = handlers[name];
    if (h === undefined) throw new Error(`${conf.Name}: no handler for ${m.path}`);
    impl[name] = instrumented(m.path, h as handleUnaryCall<unknown, unknown>, o);
  }
  server.addService(definition, impl);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(conf.ListenOn, ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  const host = conf.ListenOn.replace(/:\d+$/, '');
  const address = advertisedEndpoint(`${host}:${port}`, port);
  const registration = new LeasedKey({
    client: await etcd.get(conf.Etcd.Hosts),
    keyOf: (leaseId) => `${conf.Etcd.Key}/${leaseId}`,
    value: address,
    ttlSeconds: REGISTRATION_TTL_SECONDS,
    log: o.log,
    what: `${conf.Name} (${address})`,
  });
  try {
    await registration.start();
  } catch (err) {
    server.forceShutdown();
    throw err;
  }
  o.log.info(
    `${conf.Name} serving gRPC on ${conf.ListenOn} (port ${port}), registered in etcd as ${conf.Etcd.Key}/…=${address}`,
  );
  return {
    address,
    port,
    async close() {
      await registration.stop();
      await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
    },
  };
}

/** The go-zero etcd target of an rpc client config, `discov://<hosts>/<key>`, which the coordinator resolves too. */
export function buildTarget(conf: RpcClientConf): string {
  return `discov://${conf.Etcd.Hosts.join(',')}/${conf.Etcd.Key}`;
}

/** A client of one rpc service found through etcd. */
export class RpcClient {
  readonly target: string;
  readonly #definition: ServiceDefinition;
  readonly #conf: RpcClientConf;
  readonly #resolver: EtcdTargetResolver;
  readonly #o: Observed;
  readonly #channels = new Map<string, Client>();

  constructor(conf: RpcClientConf, definition: ServiceDefinition, resolver: EtcdTargetResolver, o: Observed) {
    this.target = buildTarget(conf);
    this.#conf = conf;
    this.#definition = definition;
    this.#resolver = resolver;
    this.#o = o;
  }

  /** Calls `method` on a live instance; rejects with the grpc-js error (its `code` and `details` as sent). */
  async call<Res>(method: string, request: object): Promise<Res> {
    const m = this.#definition[method];
    if (m === undefined) throw new Error(`${this.target}: no method ${method}`);
    const started = performance.now();
    const { span, ctx, inject } = this.#o.tracing.clientSpan(m.path);
    const md = new Metadata();
    inject((k, v) => md.set(k, v));
    try {
      let address: string;
      try {
        address = await this.#resolver.resolve(this.target);
      } catch (err) {
        // No live instance (or etcd unreachable): what grpc-go's resolver reports as Unavailable.
        throw new RpcError(14, err instanceof Error ? err.message : String(err));
      }
      const client = this.#client(address);
      const reply = await context.with(
        ctx,
        () =>
          new Promise<Res>((resolve, reject) =>
            client.makeUnaryRequest(
              m.path,
              m.requestSerialize,
              m.responseDeserialize,
              request,
              md,
              { deadline: Date.now() + this.#conf.Timeout },
              (err: ServiceError | null, value?: unknown) => (err ? reject(err) : resolve(value as Res)),
            ),
          ),
      );
      this.#o.metrics.observeRpcClient(m.path, 0, performance.now() - started);
      endSpan(span);
      return reply;
    } catch (err) {
      const code = isStatusError(err) ? err.code : 14;
      this.#o.metrics.observeRpcClient(m.path, code, performance.now() - started);
      endSpan(span, err instanceof Error ? err.message : String(err));
      throw err;
    }
  }

  #client(address: string): Client {
    let c = this.#channels.get(address);
    if (c === undefined) {
      c = new Client(address, credentials.createInsecure());
      this.#channels.set(address, c);
    }
    return c;
  }

  /** Closes the channels. */
  close(): void {
    for (const c of this.#channels.values()) c.close();
    this.#channels.clear();
  }
}
