import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { Clock } from '../core/clock.js';
import { errorMessage } from '../core/errors.js';
import type { BranchProtocol, BranchResult, MetricsPort } from '../core/metrics-port.js';
import type { Store, StoreObserver, UnfinishedCount } from '../store/store.js';
import type { Logger } from './logger.js';

/** Most label tuples of one metric; past it, new tuples are counted under `_other` (bounded cardinality). */
export const MAX_CHILDREN = 1000;
/** The label value every label of a tuple past {@link MAX_CHILDREN} gets. */
export const OVERFLOW = '_other';
/** The `api` label of a request that matched no route. */
export const UNKNOWN_ROUTE = 'unknown';

const BRANCH_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const STORE_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512];

/** The label children of one metric, resolved once per tuple (nested maps: no key string per observation). */
class Children<C> {
  private readonly root = new Map<string, unknown>();
  private size = 0;

  constructor(
    private readonly arity: number,
    private readonly make: (values: string[]) => C,
  ) {}

  get(...values: string[]): C {
    let m = this.root;
    for (let i = 0; i < this.arity - 1; i++) {
      let next = m.get(values[i]!) as Map<string, unknown> | undefined;
      if (next === undefined) {
        if (this.size >= MAX_CHILDREN) return this.overflow();
        next = new Map();
        m.set(values[i]!, next);
      }
      m = next;
    }
    const last = values[this.arity - 1]!;
    let c = m.get(last) as C | undefined;
    if (c === undefined) {
      if (this.size >= MAX_CHILDREN) return this.overflow();
      c = this.make(values);
      m.set(last, c);
      this.size++;
    }
    return c;
  }

  private overflowChild: C | undefined;
  private overflow(): C {
    this.overflowChild ??= this.make(new Array<string>(this.arity).fill(OVERFLOW));
    return this.overflowChild;
  }
}

type Inc = { inc(n?: number): void };
type Obs = { observe(v: number): void };

/** What one API route records: DTM's request counter (ok, fail) and duration histogram. */
interface RouteChildren {
  ok: Inc;
  fail: Inc;
  duration: Obs;
}

export interface MetricsOptions {
  clock: Clock;
  log: Logger;
  /** Seconds the store's unfinished counts are cached (Metrics.UnfinishedRefreshInterval). */
  refreshSeconds: number;
  /** `gin_version` / `grpc_version` of dtm_server_info. */
  serverInfo: { gin_version: string; grpc_version: string };
}

/**
 * dtx's Prometheus metrics, on a registry of their own (several servers can run in one process): DTM's
 * (spec §11.1, with bounded `api` values), dtx's `dtx_*` and the standard process metrics.
 */
export class DtxMetrics implements MetricsPort, StoreObserver {
  readonly registry = new Registry();
  private store: Store | undefined;
  private stuckProvider: (() => Promise<{ reason: string; count: number }[]>) | undefined;
  private cached: UnfinishedCount[] = [];
  private cachedAt = Number.NEGATIVE_INFINITY;
  private refreshing: Promise<void> | undefined;

  private readonly serverProcess: Counter<'type' | 'api' | 'status'>;
  private readonly serverDuration: Histogram<'type' | 'api'>;
  private readonly routes: Children<RouteChildren>;
  private readonly transProcess: Children<Inc>;
  private readonly handled: Children<Obs>;
  private readonly branchProcess: Children<Inc>;
  private readonly branchDuration: Children<Obs>;
  private readonly branchFailures: Children<Inc>;
  private readonly retries: Children<Inc>;
  private readonly finishedTotal: Children<Inc>;
  private readonly storeWrite: Children<Obs>;
  private readonly batchSize: Histogram;
  private readonly alerts: Children<Inc>;
  private readonly auth: Children<Inc>;

  constructor(private readonly o: MetricsOptions) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    new Gauge({
      name: 'dtm_server_info',
      help: 'The server is up (1), with the versions of its HTTP and gRPC libraries',
      labelNames: ['gin_version', 'grpc_version'],
      registers,
    }).set(o.serverInfo, 1);
    this.serverProcess = new Counter({
      name: 'dtm_server_process_total',
      help: 'API requests by transport (http, grpc), route name and status (ok, fail)',
      labelNames: ['type', 'api', 'status'],
      registers,
    });
    this.serverDuration = new Histogram({
      name: 'dtm_server_response_duration',
      help: 'Seconds to answer an API request, by transport and route name',
      labelNames: ['type', 'api'],
      registers,
    });
    this.routes = new Children(2, ([type, api]) => ({
      ok: this.serverProcess.labels(type!, api!, 'ok'),
      fail: this.serverProcess.labels(type!, api!, 'fail'),
      duration: this.serverDuration.labels(type!, api!),
    }));
    const transProcess = new Counter({
      name: 'dtm_transaction_process_total',
      help: 'Process calls of the API (submit, abort) by trans_type and status (ok, fail); async ones count ok',
      labelNames: ['model', 'status'],
      registers,
    });
    this.transProcess = new Children(2, ([m, s]) => transProcess.labels(m!, s!));
    const handled = new Histogram({
      name: 'dtm_transaction_handled_duration',
      help: "Seconds from a transaction's creation to the end of each processing pass, by trans_type",
      labelNames: ['model'],
      registers,
    });
    this.handled = new Children(1, ([m]) => handled.labels(m!));
    const branchProcess = new Counter({
      name: 'dtm_branch_process_total',
      help: 'Branch calls by trans_type, branch_id, op and status (ok = the branch succeeded)',
      labelNames: ['model', 'branchid', 'branchtype', 'status'],
      registers,
    });
    this.branchProcess = new Children(4, ([m, b, t, s]) => branchProcess.labels(m!, b!, t!, s!));
    const branchDuration = new Histogram({
      name: 'dtx_branch_call_duration_seconds',
      help: 'Seconds of one branch call, by trans_type, op and protocol (http, grpc, json-rpc)',
      labelNames: ['trans_type', 'op', 'protocol'],
      buckets: BRANCH_BUCKETS,
      registers,
    });
    this.branchDuration = new Children(3, ([t, op, p]) => branchDuration.labels(t!, op!, p!));
    const branchFailures = new Counter({
      name: 'dtx_branch_failures_total',
      help: 'Branch calls that did not succeed, by trans_type, op and reason (error, timeout, failure, ongoing)',
      labelNames: ['trans_type', 'op', 'reason'],
      registers,
    });
    this.branchFailures = new Children(3, ([t, op, r]) => branchFailures.labels(t!, op!, r!));
    const retries = new Counter({
      name: 'dtx_retries_total',
      help: 'Passes the cron started over unfinished transactions (retries), by trans_type',
      labelNames: ['trans_type'],
      registers,
    });
    this.retries = new Children(1, ([t]) => retries.labels(t!));
    const finished = new Counter({
      name: 'dtx_transactions_finished_total',
      help: 'Transactions that reached a final status, by trans_type and outcome (succeed, failed)',
      labelNames: ['trans_type', 'outcome'],
      registers,
    });
    this.finishedTotal = new Children(2, ([t, out]) => finished.labels(t!, out!));
    const storeWrite = new Histogram({
      name: 'dtx_store_write_duration_seconds',
      help: 'Seconds of one store write until it is durable, by store operation',
      labelNames: ['op'],
      buckets: STORE_BUCKETS,
      registers,
    });
    this.storeWrite = new Children(1, ([op]) => storeWrite.labels(op!));
    this.batchSize = new Histogram({
      name: 'dtx_store_batch_size',
      help: 'Writes per group commit (SQL, SQLite) or commands per pipelined flush (Redis)',
      buckets: BATCH_BUCKETS,
      registers,
    });
    const alerts = new Counter({
      name: 'dtx_alert_deliveries_total',
      help: 'Alert webhook deliveries by result (ok = HTTP 200, fail)',
      labelNames: ['result'],
      registers,
    });
    this.alerts = new Children(1, ([r]) => alerts.labels(r!));
    const auth = new Counter({
      name: 'dtx_auth_failures_total',
      help: 'Requests refused for a missing or wrong token, by transport (http, grpc, jsonrpc)',
      labelNames: ['transport'],
      registers,
    });
    this.auth = new Children(1, ([t]) => auth.labels(t!));
    const self = this;
    const unfinished = new Gauge({
      name: 'dtx_unfinished_transactions',
      help: 'Unfinished transactions by trans_type and status (read from the store, cached)',
      labelNames: ['trans_type', 'status'],
      registers,
      async collect() {
        const groups = await self.unfinished();
        this.reset();
        for (const g of groups) this.labels(g.transType, g.status).set(g.count);
      },
    });
    void unfinished;
    new Gauge({
      name: 'dtx_oldest_unfinished_age_seconds',
      help: 'Age of the oldest unfinished transaction (0 when there is none)',
      registers,
      async collect() {
        const groups = await self.unfinished();
        const oldest = Math.min(...groups.map((g) => g.oldestCreateTime));
        this.set(groups.length === 0 ? 0 : Math.max(0, (self.o.clock.now() - oldest) / 1000));
      },
    });
    new Gauge({
      name: 'dtx_cron_lag_seconds',
      help: 'How long the most overdue unfinished transaction has been due for the cron (0 when none is overdue)',
      registers,
      async collect() {
        const groups = await self.unfinished();
        const due = Math.min(...groups.map((g) => g.oldestNextCronTime));
        this.set(groups.length === 0 ? 0 : Math.max(0, (self.o.clock.now() - due) / 1000));
      },
    });
    new Gauge({
      name: 'dtx_stuck_transactions',
      help: 'Stuck transactions by reason (attempts, age)',
      labelNames: ['reason'],
      registers,
      async collect() {
        const provider = self.stuckProvider;
        if (!provider) return;
        try {
          const counts = await provider();
          this.reset();
          for (const c of counts) this.labels(c.reason).set(c.count);
        } catch (err) {
          self.o.log.warn('metrics: cannot count stuck transactions', { error: errorMessage(err) });
        }
      },
    });
  }

  /** The store the unfinished gauges read (set once it is open). */
  setStore(store: Store): void {
    this.store = store;
  }

  /** Feeds dtx_stuck_transactions{reason} (the service's `stuckCounts`). */
  setStuckProvider(p: () => Promise<{ reason: string; count: number }[]>): void {
    this.stuckProvider = p;
  }

  /** The store's unfinished counts, read at most once per refresh interval; the last good ones on an error. */
  private async unfinished(): Promise<UnfinishedCount[]> {
    const store = this.store;
    if (!store) return [];
    if (this.o.clock.now() - this.cachedAt < this.o.refreshSeconds * 1000) return this.cached;
    this.refreshing ??= store
      .countUnfinished()
      .then(
        (rows) => {
          this.cached = rows;
          this.cachedAt = this.o.clock.now();
        },
        (err: unknown) => {
          this.o.log.warn('metrics: cannot count unfinished transactions', { error: errorMessage(err) });
        },
      )
      .finally(() => {
        this.refreshing = undefined;
      });
    await this.refreshing;
    return this.cached;
  }

  /** The Prometheus text exposition. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The recorder of one API route: resolve once (at route registration) and call per request. */
  route(type: 'http' | 'grpc', api: string): (ok: boolean, seconds: number) => void {
    const c = this.routes.get(type, api);
    return (ok, seconds) => {
      (ok ? c.ok : c.fail).inc();
      c.duration.observe(seconds);
    };
  }

  // ------------------------------------------------------------------ MetricsPort

  branchCall(
    transType: string,
    branchId: string,
    op: string,
    protocol: BranchProtocol,
    seconds: number,
    outcome: BranchResult,
  ): void {
    const ok = outcome === 'SUCCESS';
    this.branchProcess.get(transType, branchId, op, ok ? 'ok' : 'fail').inc();
    this.branchDuration.get(transType, op, protocol).observe(seconds);
    if (!ok) this.branchFailures.get(transType, op, REASON[outcome]).inc();
  }

  passHandled(transType: string, ageSeconds: number): void {
    this.handled.get(transType).observe(ageSeconds);
  }

  transProcessed(transType: string, ok: boolean): void {
    this.transProcess.get(transType, ok ? 'ok' : 'fail').inc();
  }

  finished(transType: string, outcome: 'succeed' | 'failed'): void {
    this.finishedTotal.get(transType, outcome).inc();
  }

  retry(transType: string): void {
    this.retries.get(transType).inc();
  }

  // ------------------------------------------------------------------ hooks of other parts

  /** The histogram child of one store operation (see {@link measuredStore}). */
  storeWriteChild(op: string): { observe(seconds: number): void } {
    return this.storeWrite.get(op);
  }

  /** StoreObserver: one group commit carried `size` writes. */
  batch(size: number): void {
    this.batchSize.observe(size);
  }

  alertDelivered(ok: boolean): void {
    this.alerts.get(ok ? 'ok' : 'fail').inc();
  }

  /** The `onAuthFailure` hook of the auth layer. */
  authFailure(transport: 'http' | 'grpc' | 'jsonrpc'): void {
    this.auth.get(transport).inc();
  }
}

const REASON: Record<Exclude<BranchResult, 'SUCCESS'>, string> = {
  ERROR: 'error',
  TIMEOUT: 'timeout',
  FAILURE: 'failure',
  ONGOING: 'ongoing',
};

/** DTM's `api` label, bounded: the last segment of the route's pattern (not of the URL), lower-cased. */
export function apiLabelOf(routeUrl: string | undefined): string {
  if (!routeUrl) return UNKNOWN_ROUTE;
  const segs = routeUrl.split('/').filter((s) => s !== '' && !s.startsWith(':') && s !== '*');
  return segs.length === 0 ? UNKNOWN_ROUTE : segs[segs.length - 1]!.toLowerCase();
}

/** The store methods passed through untimed. */
const READS = [
  'ping',
  'close',
  'findTrans',
  'scanTrans',
  'countUnfinished',
  'findBranches',
  'scanKV',
  'findKV',
] as const;

/** The store writes timed by {@link measuredStore} (their names are the `op` label). */
const WRITES = [
  'saveNew',
  'insertBranches',
  'updateBranches',
  'changeStatus',
  'touchCronTime',
  'lockDue',
  'resetCronTime',
  'resetTransCronTime',
  'deleteFinished',
  'createKV',
  'updateKV',
  'deleteKV',
] as const;

/** Every Store method is in READS or WRITES (a compile error names one that is not). */
const everyMethodCovered: [Exclude<keyof Store, (typeof READS)[number] | (typeof WRITES)[number]>] extends [never]
  ? true
  : never = true;
void everyMethodCovered;

/**
 * The store with each write timed into dtx_store_write_duration_seconds{op}: one performance.now() pair per write,
 * the label child resolved once per operation here.
 */
export function measuredStore(store: Store, m: DtxMetrics): Store {
  const out: Record<string, unknown> = {};
  for (const name of READS) out[name] = (store[name] as (...a: unknown[]) => unknown).bind(store);
  for (const op of WRITES) {
    const write = (store[op] as (...a: unknown[]) => Promise<unknown>).bind(store);
    const child = m.storeWriteChild(op);
    out[op] = async (...args: unknown[]) => {
      const started = performance.now();
      try {
        return await write(...args);
      } finally {
        child.observe((performance.now() - started) / 1000);
      }
    };
  }
  return out as unknown as Store;
}
