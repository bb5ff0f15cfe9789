/**
 * What every mall process holds once: its metrics, tracer and logger, one etcd client per cluster, and the etcd
 * resolver its rpc clients share; plus starting the api's HTTP listener or the rpc's gRPC server with them.
 *
 * @module
 */
import { EtcdClients, EtcdTargetResolver } from '@dtx/server/discovery';
import type { FastifyInstance } from 'fastify';
import type { ApiConf, RpcClientConf, ServiceConf } from './config.js';
import { type Logger, serviceLogger } from './logger.js';
import { ServiceMetrics } from './metrics.js';
import type { Domain } from './proto.js';
import { serviceDefinition } from './proto.js';
import { type ApiRoute, buildApi } from './rest.js';
import { ServiceTracing } from './tracing.js';
import { type Observed, RpcClient } from './zrpc.js';

/** Options of a {@link ServiceKit}. */
export interface KitOptions {
  /** Drop info lines (tests). Default false. */
  quiet?: boolean;
}

/** The shared parts of one service. Create with {@link ServiceKit.create}; {@link close} at shutdown. */
export class ServiceKit implements Observed {
  readonly metrics = new ServiceMetrics();
  readonly tracing: ServiceTracing;
  readonly log: Logger;
  readonly etcd = new EtcdClients();
  readonly resolver: EtcdTargetResolver;
  readonly #clients: RpcClient[] = [];
  readonly #closers: (() => Promise<void> | void)[] = [];

  private constructor(
    readonly conf: ServiceConf,
    options: KitOptions,
  ) {
    this.log = serviceLogger(conf.Name, options.quiet ?? false);
    this.tracing = new ServiceTracing(conf.Telemetry);
    this.resolver = new EtcdTargetResolver({ clients: this.etcd, log: this.log });
  }

  /** The kit of a service, with its metrics listener started when `Prometheus.Port` is set. */
  static async create(conf: ServiceConf, options: KitOptions = {}): Promise<ServiceKit> {
    const kit = new ServiceKit(conf, options);
    try {
      const port = await kit.metrics.serve(conf.Prometheus);
      if (port !== undefined) kit.log.info(`metrics on http://${conf.Prometheus.Host}:${port}${conf.Prometheus.Path}`);
    } catch (err) {
      await kit.close();
      throw err;
    }
    return kit;
  }

  /** A client of another domain's rpc, closed with the kit. */
  rpc(conf: RpcClientConf, domain: Domain): RpcClient {
    const c = new RpcClient(conf, serviceDefinition(domain), this.resolver, this);
    this.#clients.push(c);
    return c;
  }

  /** Runs `fn` at {@link close}, before the shared clients close (last registered, first run). */
  onClose(fn: () => Promise<void> | void): void {
    this.#closers.push(fn);
  }

  /** Builds and starts an api's HTTP server on `Host:Port` (0 picks a free port); returns the port. */
  async listen(conf: ApiConf, routes: ApiRoute[]): Promise<{ app: FastifyInstance; port: number }> {
    const app = buildApi(routes, { conf, metrics: this.metrics, tracing: this.tracing });
    await app.listen({ host: conf.Host, port: conf.Port });
    this.onClose(() => app.close());
    const address = app.server.address();
    const port = typeof address === 'object' && address !== null ? address.port : conf.Port;
    this.log.info(`${conf.Name} api listening on http://${conf.Host}:${port}`);
    return { app, port };
  }

  /** Stops what was started, in reverse order, then the shared clients, metrics and tracer. */
  async close(): Promise<void> {
    for (const fn of this.#closers.splice(0).reverse()) {
      await Promise.resolve(fn()).catch((err: unknown) => this.log.error('error while stopping', err));
    }
    for (const c of this.#clients.splice(0)) c.close();
    await this.resolver.close();
    await this.etcd.close();
    await this.metrics.close();
    await this.tracing.shutdown();
  }
}
