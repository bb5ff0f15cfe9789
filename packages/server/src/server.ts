import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { startGrpcApi } from './api/grpc/grpc-api.js';
import { buildHttpApi } from './api/http/app.js';
import type { BranchCaller } from './branch/caller.js';
import { DispatchingCaller, type TargetResolver } from './branch/dispatch.js';
import { coreConfigOf, type DtxConfig, logLevelOf } from './config.js';
import { type Clock, systemClock } from './core/clock.js';
import { Cron } from './core/cron.js';
import { errorMessage } from './core/errors.js';
import type { PassDeps } from './core/pass.js';
import { Processor } from './core/processor.js';
import { Retention } from './core/retention.js';
import { TransService } from './core/service.js';
import { Topics } from './core/topics.js';
import { createDiscovery, type Discovery } from './discovery/index.js';
import { webhookAlerter } from './observe/alert.js';
import { createLogger, type Logger } from './observe/logger.js';
import { DtxMetrics, measuredStore } from './observe/metrics.js';
import type { DtxTracer } from './observe/tracer.js';
import type { TracingExporter } from './observe/tracing.js';
import { openStore } from './store/open-store.js';
import type { Store } from './store/store.js';
import { VERSION } from './version.js';

/** The version of an installed package, for dtm_server_info; '' when it cannot be read. */
function versionOf(pkg: string): string {
  try {
    return (createRequire(import.meta.url)(`${pkg}/package.json`) as { version: string }).version;
  } catch {
    return '';
  }
}
const fastifyVersion = versionOf('fastify');
const grpcVersion = versionOf('@grpc/grpc-js');

export interface StartOptions {
  config: DtxConfig;
  log?: Logger;
  clock?: Clock;
  /** Use this store instead of the configured one (tests). */
  store?: Store;
  caller?: BranchCaller;
  /** Resolves `etcd://`, `discov://` and `discovery://` gRPC branch targets. Default: none (a retried error). */
  resolver?: TargetResolver;
  /** Use this discovery instead of the one built from MicroService.* (tests). */
  discovery?: Discovery;
  /** Drop and recreate the store's tables first (DTM's `-r`). */
  resetStore?: boolean;
}

export interface DtxServer {
  /** The HTTP port actually bound (useful with HttpPort 0). */
  httpPort: number;
  /** The gRPC port actually bound (useful with GrpcPort 0). */
  grpcPort: number;
  store: Store;
  service: TransService;
  cron: Cron;
  /** The metrics (undefined with `Metrics.Enabled: false`); `setStuckProvider` / `authFailure` are its hooks. */
  metrics: DtxMetrics | undefined;
  stop(): Promise<void>;
}

/**
 * A stand-in on HttpPort while the store is not reachable yet: /api/ping answers 503 "store unavailable", so a
 * load balancer or an operator sees why this instance is not serving. Closed just before the API listens.
 */
async function listenWhileStarting(host: string, port: number): Promise<{ close(): Promise<void> }> {
  const server = createServer((req, res) => {
    const ping = req.url === '/api/ping' || req.url?.startsWith('/api/ping?');
    res.writeHead(503, { 'content-type': 'application/json; charset=utf-8', 'retry-after': '3' });
    res.end(
      JSON.stringify(
        ping
          ? { msg: 'store unavailable', error: 'dtx is starting: the store is not reachable yet' }
          : { message: 'dtx is starting: the store is not reachable yet' },
      ),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  let closed: Promise<void> | undefined;
  return {
    close() {
      closed ??= new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
      return closed;
    },
  };
}

async function waitForStore(store: Store, log: Logger): Promise<void> {
  for (;;) {
    try {
      await store.ping();
      return;
    } catch (err) {
      log.error('store is not reachable; retrying in 3 s', { error: errorMessage(err) });
      await new Promise((r) => setTimeout(r, 3000));
    }
  }
}

/**
 * Start a dtx coordinator: store, cron, topic refresh, retention, the HTTP and gRPC APIs, discovery, and its own
 * tracing when `Tracing.Exporter` is set (flushed by `stop`).
 */
export async function startServer(o: StartOptions): Promise<DtxServer> {
  const c = o.config;
  const log = o.log ?? createLogger(logLevelOf(c));
  const clock = o.clock ?? systemClock;
  // what has been started, closed in reverse order on a failed start and on stop
  const closers: (() => Promise<void> | void)[] = [];
  const closeAll = async () => {
    for (const close of closers.reverse()) {
      try {
        await close();
      } catch (err) {
        log.warn('shutdown step failed', { error: errorMessage(err) });
      }
    }
  };
  try {
    // until the store answers, HttpPort says so: /api/ping and every other route answer 503
    const starting = o.store || c.HttpPort === 0 ? undefined : await listenWhileStarting(c.HttpHost, c.HttpPort);
    if (starting) closers.push(() => starting.close());
    const metrics = c.Metrics.Enabled
      ? new DtxMetrics({
          clock,
          log,
          refreshSeconds: c.Metrics.UnfinishedRefreshInterval,
          serverInfo: { gin_version: `fastify/${fastifyVersion}`, grpc_version: `grpc-js/${grpcVersion}` },
        })
      : undefined;
    const store = o.store ?? (await openStore(c, { reset: o.resetStore === true, log, observer: metrics }));
    closers.push(() => store.close());
    metrics?.setStore(store);
    // the core and the API write through the timed store; DtxServer.store stays the backend itself
    const coreStore = metrics ? measuredStore(store, metrics) : store;
    await waitForStore(store, log);
    const discovery = o.discovery ?? createDiscovery(c, log);
    closers.push(() => discovery.close());
    const caller =
      o.caller ??
      new DispatchingCaller({ grpcServiceConfig: c.GrpcServiceConfig, resolver: o.resolver ?? discovery.resolver });
    closers.push(() => caller.close());
    // spans only when an exporter is configured: with `none` the OpenTelemetry SDK is not even loaded
    let tracer: DtxTracer | undefined;
    if (c.Tracing.Exporter !== 'none') {
      const { startTracing } = await import('./observe/tracing.js');
      const tracing = startTracing({
        exporter: c.Tracing.Exporter as TracingExporter,
        endpoint: c.Tracing.Endpoint,
        serviceName: c.Tracing.ServiceName,
        sampleRatio: c.Tracing.SampleRatio,
        version: VERSION,
        log,
      });
      // closed after the passes drained (closers run in reverse), so their last spans are flushed
      closers.push(() => tracing.shutdown());
      tracer = tracing.tracer;
    }
    const conf = coreConfigOf(c);
    // the access log's lines are info: below that level the hook does not even build them
    const accessLog = c.Log.AccessLog && (logLevelOf(c) === 'info' || logLevelOf(c) === 'debug');
    const deps: PassDeps = {
      store: coreStore,
      caller,
      clock,
      conf,
      log,
      alert: webhookAlerter(
        c.AlertWebHook,
        c.RequestTimeout * 1000,
        log,
        metrics && ((ok) => metrics.alertDelivered(ok)),
      ),
      tracer,
      metrics,
    };
    const processor = new Processor(deps);
    closers.push(() => processor.drain());
    const topics = new Topics(coreStore, clock, log);
    await topics.refresh();
    topics.start(c.ConfigUpdateInterval);
    closers.push(() => topics.stop());
    const service = new TransService(deps, processor, topics);
    const cron = new Cron(deps, processor);
    const limits = {
      maxSteps: c.Limits.MaxSteps,
      maxBranchHeaders: c.Limits.MaxBranchHeaders,
      maxBranchHeadersBytes: c.Limits.MaxBranchHeadersBytes,
    };
    // gRPC (spec §4) is bound before HTTP listens, so a coordinator answering /api/ping serves gRPC too
    const grpcApi = await startGrpcApi({
      service,
      log,
      host: c.HttpHost,
      port: c.GrpcPort,
      maxMessageBytes: c.HttpBodyLimit,
      limits,
      metrics,
      accessLog,
    });
    closers.push(() => grpcApi.close());
    const app = buildHttpApi({
      service,
      store,
      cron,
      log,
      version: VERSION,
      bodyLimit: c.HttpBodyLimit,
      testMode: c.DtxTestMode,
      resetTimeout: 3 * c.TimeoutToFail,
      limits,
      requestTimeout: c.HttpRequestTimeout,
      headersTimeout: c.HttpHeadersTimeout,
      keepAliveTimeout: c.HttpKeepAliveTimeout,
      metrics,
      accessLog,
    });
    await starting?.close();
    await app.listen({ port: c.HttpPort, host: c.HttpHost });
    closers.push(() => app.close());
    const httpPort = (app.server.address() as AddressInfo).port;
    cron.start();
    closers.push(() => cron.stop());
    const retention = new Retention(coreStore, clock, log, {
      finishedAge: c.Retention.FinishedAge,
      interval: c.Retention.Interval,
      batchSize: c.Retention.BatchSize,
    });
    retention.start();
    closers.push(() => retention.stop());
    await discovery.register(grpcApi.port);
    closers.push(() => discovery.deregister());
    log.info('dtx started', {
      version: VERSION,
      http: `${c.HttpHost}:${httpPort}`,
      grpc: `${c.HttpHost}:${grpcApi.port}`,
      store: c.Store.Driver,
      tracing: c.Tracing.Exporter === 'none' ? undefined : c.Tracing.Exporter,
      ...(c.Store.Driver === 'sqlite' || c.Store.Driver === 'boltdb' ? { sqlite: c.Store.SqlitePath } : {}),
      testMode: c.DtxTestMode || undefined,
    });
    let stopping: Promise<void> | undefined;
    return {
      httpPort,
      grpcPort: grpcApi.port,
      store,
      service,
      cron,
      metrics,
      stop() {
        stopping ??= closeAll().then(() => log.info('dtx stopped'));
        return stopping;
      },
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}
