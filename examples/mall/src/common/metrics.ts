/**
 * The Prometheus metrics go-zero records (tutorial chapter 8), with the same names, labels and buckets, so the
 * tutorial's Grafana queries work unchanged. Each service has its own registry (several services may share a
 * process, as in the tests) and serves it at `Prometheus.Host:Port/Path`.
 *
 * @module
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, collectDefaultMetrics, Histogram, Registry } from 'prom-client';
import type { PrometheusConf } from './config.js';

const BUCKETS = [5, 10, 25, 50, 100, 250, 500, 1000];

/** The metrics of one service. */
export class ServiceMetrics {
  readonly registry = new Registry();
  readonly httpDuration = new Histogram({
    name: 'http_server_requests_duration_ms',
    help: 'http server requests duration(ms).',
    labelNames: ['path'],
    buckets: BUCKETS,
    registers: [this.registry],
  });
  readonly httpCode = new Counter({
    name: 'http_server_requests_code_total',
    help: 'http server requests error count.',
    labelNames: ['path', 'code'],
    registers: [this.registry],
  });
  readonly rpcServerDuration = new Histogram({
    name: 'rpc_server_requests_duration_ms',
    help: 'rpc server requests duration(ms).',
    labelNames: ['method'],
    buckets: BUCKETS,
    registers: [this.registry],
  });
  readonly rpcServerCode = new Counter({
    name: 'rpc_server_requests_code_total',
    help: 'rpc server requests code count.',
    labelNames: ['method', 'code'],
    registers: [this.registry],
  });
  readonly rpcClientDuration = new Histogram({
    name: 'rpc_client_requests_duration_ms',
    help: 'rpc client requests duration(ms).',
    labelNames: ['method'],
    buckets: BUCKETS,
    registers: [this.registry],
  });
  readonly rpcClientCode = new Counter({
    name: 'rpc_client_requests_code_total',
    help: 'rpc client requests code count.',
    labelNames: ['method', 'code'],
    registers: [this.registry],
  });
  #server: Server | undefined;

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  /** Records one HTTP request. */
  observeHttp(path: string, code: number, ms: number): void {
    this.httpDuration.observe({ path }, ms);
    this.httpCode.inc({ path, code: String(code) });
  }

  /** Records one rpc handled. `code` is the numeric gRPC code (100 and 500 included). */
  observeRpcServer(method: string, code: number, ms: number): void {
    this.rpcServerDuration.observe({ method }, ms);
    this.rpcServerCode.inc({ method, code: String(code) });
  }

  /** Records one rpc made. */
  observeRpcClient(method: string, code: number, ms: number): void {
    this.rpcClientDuration.observe({ method }, ms);
    this.rpcClientCode.inc({ method, code: String(code) });
  }

  /** Serves the registry at `conf.Path` on its own listener, unless `conf.Port` is 0. Returns the bound port. */
  async serve(conf: PrometheusConf): Promise<number | undefined> {
    if (conf.Port === 0) return undefined;
    const server = createServer((req, res) => {
      if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== conf.Path) {
        res.writeHead(404).end();
        return;
      }
      this.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(text),
        (err: unknown) => res.writeHead(500).end(String(err)),
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(conf.Port, conf.Host, () => resolve());
    });
    this.#server = server;
    return (server.address() as AddressInfo).port;
  }

  /** Stops serving. */
  async close(): Promise<void> {
    const s = this.#server;
    this.#server = undefined;
    if (s !== undefined) await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}
