import { createServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createRequire } from 'node:module';
import { type AddressInfo, isIP } from 'node:net';
import { Authenticator, type AuthTransport, tokenList } from './api/auth.js';
import { startGrpcApi } from './api/grpc/grpc-api.js';
import { buildHttpApi } from './api/http/app.js';
import { loadListenerTls, type TlsMaterial, tlsMode } from './api/tls-files.js';
import type { BranchCaller } from './branch/caller.js';
import { DispatchingCaller, type TargetResolver } from './branch/dispatch.js';
import { outboundAgent, readCaFile } from './branch/outbound.js';
import type { LookupAll } from './branch/url-policy.js';
import { ConfigError, coreConfigOf, type DtxConfig, logLevelOf, urlPolicyOf } from './config.js';
import { type Clock, systemClock } from './core/clock.js';
import { Cron } from './core/cron.js';
import type { PassDeps } from './core/pass.js';
import { Processor } from './core/processor.js';
import { HeaderRedactor } from './core/redact.js';
import { Retention } from './core/retention.js';
import { TransService } from './core/service.js';
import { Topics } from './core/topics.js';
import { createDiscovery, type Discovery } from './discovery/discovery.js';
import { webhookAlerter } from './observe/alert.js';
import { createLogger, type Logger } from './observe/logger.js';
import { DtxMetrics } from './observe/metrics.js';
import type { DtxTracer } from './observe/tracer.js';
import type { TracingExporter } from './observe/tracing.js';
import { loadOptional } from './optional-package.js';
import { measuredStore } from './store/measured-store.js';
import { openStore } from './store/open-store.js';
import type { Store } from './store/store.js';
import { errorMessage } from './util/error-message.js';
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
  /** Resolves host names for branch calls and the alert webhook (tests). Default: the system resolver. */
  lookup?: LookupAll;
  /** Called on every refused call (wired to the metric dtx_auth_failures_total). */
  onAuthFailure?: (transport: AuthTransport) => void;
}

/** The config's token check. */
export function authenticatorOf(c: DtxConfig, onAuthFailure?: (transport: AuthTransport) => void): Authenticator {
  return new Authenticator({
    tokens: tokenList(c.Auth.Token),
    adminTokens: tokenList(c.Auth.AdminToken),
    metricsTokens: tokenList(c.Auth.MetricsToken),
    metricsOpen: c.Auth.MetricsOpen,
    maxFailures: c.Auth.MaxFailures,
    failureWindow: c.Auth.FailureWindow,
    blockSeconds: c.Auth.BlockSeconds,
    maxTracked: c.Auth.MaxTrackedAddresses,
    onAuthFailure,
  });
}

/** Whether `host` only accepts connections from this machine (127.0.0.0/8, ::1, localhost). */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h);
  return mapped !== null && mapped[1]!.startsWith('127.');
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
async function listenWhileStarting(
  host: string,
  port: number,
  tls: TlsMaterial | undefined,
): Promise<{ close(): Promise<void> }> {
  const handler = (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => {
    const ping = req.url === '/api/ping' || req.url?.startsWith('/api/ping?');
    res.writeHead(503, { 'content-type': 'application/json; charset=utf-8', 'retry-after': '3' });
    res.end(
      JSON.stringify(
        ping
          ? { msg: 'store unavailable', error: 'dtx is starting: the store is not reachable yet' }
          : { message: 'dtx is starting: the store is not reachable yet' },
      ),
    );
  };
  // the same scheme as the API: an HTTPS client of a starting dtx gets the 503, not a TLS error
  const server = tls
    ? createHttpsServer(
        {
          key: tls.key,
          cert: tls.cert,
          ...(tls.ca ? { ca: tls.ca, requestCert: true, rejectUnauthorized: true } : {}),
        },
        handler,
      )
    : createServer(handler);
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

const hostPort = (host: string, port: number): string => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);

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
    // bad TLS files and tokens stop the start before anything listens
    const tls = loadListenerTls(c);
    const metrics = c.Metrics.Enabled
      ? new DtxMetrics({
          clock,
          log,
          refreshSeconds: c.Metrics.UnfinishedRefreshInterval,
          serverInfo: { gin_version: `fastify/${fastifyVersion}`, grpc_version: `grpc-js/${grpcVersion}` },
        })
      : undefined;
    const onAuthFailure = o.onAuthFailure;
    const auth = authenticatorOf(
      c,
      metrics || onAuthFailure
        ? (transport) => {
            metrics?.authFailure(transport);
            onAuthFailure?.(transport);
          }
        : undefined,
    );
    // until the store answers, HttpPort says so: /api/ping and every other route answer 503
    const starting =
      o.store || c.HttpPort === 0 ? undefined : await listenWhileStarting(c.HttpHost, c.HttpPort, tls.http);
    if (starting) closers.push(() => starting.close());
    const store = o.store ?? (await openStore(c, { reset: o.resetStore === true, log, observer: metrics }));
    closers.push(() => store.close());
    metrics?.setStore(store);
    // the core and the API write through the timed store; DtxServer.store stays the backend itself
    const coreStore = metrics ? measuredStore(store, metrics) : store;
    await waitForStore(store, log);
    const discovery = o.discovery ?? createDiscovery(c, log);
    closers.push(() => discovery.close());
    const urlPolicy = urlPolicyOf(c);
    let ca: string | undefined;
    try {
      ca = readCaFile(c.BranchTls.CaFile);
    } catch (err) {
      throw new ConfigError(errorMessage(err));
    }
    const lookup = o.lookup === undefined ? {} : { lookup: o.lookup };
    const caller =
      o.caller ??
      new DispatchingCaller({
        grpcServiceConfig: c.GrpcServiceConfig,
        resolver: o.resolver ?? discovery.resolver,
        policy: urlPolicy,
        ca,
        hideReplies: c.Redact.BranchReplies,
        ...lookup,
      });
    closers.push(() => caller.close());
    const alertAgent = outboundAgent({ policy: urlPolicy, ca, ...lookup });
    closers.push(() => alertAgent.close());
    // spans only when an exporter is configured: with `none` the OpenTelemetry SDK is not even loaded
    let tracer: DtxTracer | undefined;
    if (c.Tracing.Exporter !== 'none') {
      const { startTracing } = await loadOptional(
        `Tracing.Exporter=${c.Tracing.Exporter}`,
        [
          '@opentelemetry/api',
          '@opentelemetry/core',
          '@opentelemetry/resources',
          '@opentelemetry/sdk-trace-base',
          '@opentelemetry/exporter-trace-otlp-http',
        ],
        () => import('./observe/tracing.js'),
      );
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
        alertAgent,
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
    metrics?.setStuckProvider(() => service.stuckCounts());
    const cron = new Cron(deps, processor);
    const limits = {
      maxSteps: c.Limits.MaxSteps,
      maxBranchHeaders: c.Limits.MaxBranchHeaders,
      maxBranchHeadersBytes: c.Limits.MaxBranchHeadersBytes,
      urlPolicy,
    };
    // gRPC (spec §4) is bound before HTTP listens, so a coordinator answering /api/ping serves gRPC too
    const grpcApi = await startGrpcApi({
      service,
      log,
      host: c.HttpHost,
      port: c.GrpcPort,
      maxMessageBytes: c.HttpBodyLimit,
      limits,
      auth,
      tls: tls.grpc,
      metrics,
      accessLog,
    });
    closers.push(() => grpcApi.close());
    const startedAt = new Date().toISOString();
    let httpPort = 0;
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
      redact: HeaderRedactor.fromConfig(c.Redact.Headers),
      requestTimeout: c.HttpRequestTimeout,
      headersTimeout: c.HttpHeadersTimeout,
      keepAliveTimeout: c.HttpKeepAliveTimeout,
      adminBasePath: c.AdminBasePath,
      info: () => ({
        store: c.Store.Driver,
        http_port: httpPort,
        grpc_port: grpcApi.port,
        started_at: startedAt,
      }),
      auth,
      tls: tls.http,
      metrics,
      accessLog,
    });
    await starting?.close();
    await app.listen({ port: c.HttpPort, host: c.HttpHost });
    closers.push(() => app.close());
    httpPort = (app.server.address() as AddressInfo).port;
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
    if (!auth.enabled && !isLoopbackHost(c.HttpHost)) {
      log.warn(
        `NO AUTHENTICATION: dtx listens on ${c.HttpHost} with no token, so anyone who can reach it can submit, read every payload and header (/all, /query) and stop transactions; set Auth.Token and Auth.AdminToken (AUTH_TOKEN, AUTH_ADMIN_TOKEN), or HttpHost 127.0.0.1 — see "Running in production" in the README`,
      );
    }
    log.info('dtx started', {
      version: VERSION,
      http: `${tls.http ? 'https' : 'http'}://${hostPort(c.HttpHost, httpPort)}`,
      grpc: hostPort(c.HttpHost, grpcApi.port),
      auth: auth.enabled ? 'on' : 'off',
      httpTls: tlsMode(tls.http),
      grpcTls: tlsMode(tls.grpc),
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
