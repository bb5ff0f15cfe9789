import { collectDefaultMetrics, Registry } from 'prom-client';
import { errorMessage } from '../util/error-message.js';
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

/** A counter cell: one label tuple's value. */
interface CounterCell {
  /** `a="x",b="y"`, escaped, rendered once. */
  readonly labels: string;
  value: number;
}

/** A histogram cell: per-bucket (not cumulative) counts, sum and count. */
interface HistogramCell {
  readonly labels: string;
  readonly counts: Float64Array;
  sum: number;
  count: number;
}

type Inc = { inc(): void };
type Obs = { observe(v: number): void };

const escapeLabel = (v: string): string => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

function labelText(names: readonly string[], values: readonly string[]): string {
  return names.map((n, i) => `${n}="${escapeLabel(values[i] ?? '')}"`).join(',');
}

/**
 * A counter family. Its cells are plain numbers resolved once per label tuple, so recording is an increment
 * (prom-client's children hash their labels on every call, too much for the saga hot path).
 */
class CounterFamily {
  readonly cells: CounterCell[] = [];
  readonly children: Children<CounterCell & Inc>;

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
  ) {
    this.children = new Children(labelNames.length, (values) => {
      const cell = {
        labels: labelText(labelNames, values),
        value: 0,
        inc() {
          this.value++;
        },
      };
      this.cells.push(cell);
      return cell;
    });
  }

  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`);
    for (const c of this.cells) out.push(`${this.name}${c.labels ? `{${c.labels}}` : ''} ${c.value}`);
  }
}

/** A histogram family; cells as in {@link CounterFamily}. */
class HistogramFamily {
  readonly cells: HistogramCell[] = [];
  readonly children: Children<HistogramCell & Obs>;

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
    readonly buckets: readonly number[],
  ) {
    const bounds = buckets;
    this.children = new Children(Math.max(1, labelNames.length), (values) => {
      const cell = {
        labels: labelText(labelNames, values),
        counts: new Float64Array(bounds.length + 1),
        sum: 0,
        count: 0,
        observe(v: number) {
          let i = 0;
          while (i < bounds.length && v > bounds[i]!) i++;
          this.counts[i]!++;
          this.sum += v;
          this.count++;
        },
      };
      this.cells.push(cell);
      return cell;
    });
  }

  /** The only cell of a family without labels. */
  get single(): Obs {
    return this.children.get('');
  }

  render(out: string[]): void {
    const n = this.name;
    out.push(`# HELP ${n} ${this.help}`, `# TYPE ${n} histogram`);
    for (const c of this.cells) {
      const sep = c.labels ? `${c.labels},` : '';
      let cum = 0;
      for (let i = 0; i < this.buckets.length; i++) {
        cum += c.counts[i]!;
        out.push(`${n}_bucket{${sep}le="${this.buckets[i]}"} ${cum}`);
      }
      out.push(`${n}_bucket{${sep}le="+Inf"} ${c.count}`);
      const l = c.labels ? `{${c.labels}}` : '';
      out.push(`${n}_sum${l} ${c.sum}`, `${n}_count${l} ${c.count}`);
    }
  }
}

/** A gauge rendered from values computed at scrape time. */
function renderGauge(
  out: string[],
  name: string,
  help: string,
  labelNames: readonly string[],
  rows: readonly [readonly string[], number][],
): void {
  out.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`);
  for (const [values, v] of rows) {
    const l = labelNames.length === 0 ? '' : `{${labelText(labelNames, values)}}`;
    out.push(`${name}${l} ${v}`);
  }
}

/** Prometheus' default buckets (DTM's histograms use them). */
const DEFAULT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** One group of unfinished transactions, as the store counts them (the Store port's UnfinishedCount). */
export interface UnfinishedGroup {
  transType: string;
  status: string;
  count: number;
  /** Smallest create_time of the group (epoch ms). */
  oldestCreateTime: number;
  /** Smallest next_cron_time of the group (epoch ms). */
  oldestNextCronTime: number;
}

/** Where the unfinished gauges are read from: the store. */
export interface UnfinishedSource {
  countUnfinished(): Promise<UnfinishedGroup[]>;
}

/** What a branch call came to: the core's BranchResult (the result words, ERROR split into timeout or not). */
type BranchResult = 'SUCCESS' | 'FAILURE' | 'ONGOING' | 'ERROR' | 'TIMEOUT';

export interface MetricsOptions {
  /** Where the time is read (the core's Clock). */
  clock: { now(): number };
  log: Logger;
  /** Seconds the store's unfinished counts are cached (Metrics.UnfinishedRefreshInterval). */
  refreshSeconds: number;
  /** `gin_version` / `grpc_version` of dtm_server_info. */
  serverInfo: { gin_version: string; grpc_version: string };
}

/**
 * dtx's Prometheus metrics, on a registry of their own (several servers can run in one process): DTM's
 * (spec §11.1, with bounded `api` values), dtx's `dtx_*` and the standard process metrics. It is the core's
 * MetricsPort and the stores' StoreObserver (structurally: observe/ imports nothing of the server).
 */
export class DtxMetrics {
  /** The standard process metrics (prom-client's collectors on a registry of this server's own). */
  readonly registry = new Registry();
  private store: UnfinishedSource | undefined;
  private stuckProvider: (() => Promise<{ reason: string; count: number }[]>) | undefined;
  private cached: UnfinishedGroup[] = [];
  private cachedAt = Number.NEGATIVE_INFINITY;
  private refreshing: Promise<void> | undefined;

  private readonly serverProcess = new CounterFamily(
    'dtm_server_process_total',
    'API requests by transport (http, grpc), route name and status (ok, fail)',
    ['type', 'api', 'status'],
  );
  private readonly serverDuration = new HistogramFamily(
    'dtm_server_response_duration',
    'Seconds to answer an API request, by transport and route name',
    ['type', 'api'],
    DEFAULT_BUCKETS,
  );
  private readonly transProcess = new CounterFamily(
    'dtm_transaction_process_total',
    'Process calls of the API (submit, abort) by trans_type and status (ok, fail); async ones count ok',
    ['model', 'status'],
  );
  private readonly handled = new HistogramFamily(
    'dtm_transaction_handled_duration',
    "Seconds from a transaction's creation to the end of each processing pass, by trans_type",
    ['model'],
    DEFAULT_BUCKETS,
  );
  private readonly branchProcess = new CounterFamily(
    'dtm_branch_process_total',
    'Branch calls by trans_type, branch_id, op and status (ok = the branch succeeded)',
    ['model', 'branchid', 'branchtype', 'status'],
  );
  private readonly branchDuration = new HistogramFamily(
    'dtx_branch_call_duration_seconds',
    'Seconds of one branch call, by trans_type, op and protocol (http, grpc, json-rpc)',
    ['trans_type', 'op', 'protocol'],
    BRANCH_BUCKETS,
  );
  private readonly branchFailures = new CounterFamily(
    'dtx_branch_failures_total',
    'Branch calls that did not succeed, by trans_type, op and reason (error, timeout, failure, ongoing)',
    ['trans_type', 'op', 'reason'],
  );
  private readonly retries = new CounterFamily(
    'dtx_retries_total',
    'Passes the cron started over unfinished transactions (retries), by trans_type',
    ['trans_type'],
  );
  private readonly finishedTotal = new CounterFamily(
    'dtx_transactions_finished_total',
    'Transactions that reached a final status, by trans_type and outcome (succeed, failed)',
    ['trans_type', 'outcome'],
  );
  private readonly storeWrite = new HistogramFamily(
    'dtx_store_write_duration_seconds',
    'Seconds of one store write until it is durable, by store operation',
    ['op'],
    STORE_BUCKETS,
  );
  private readonly batchSize = new HistogramFamily(
    'dtx_store_batch_size',
    'Writes per group commit (SQL, SQLite) or commands per pipelined flush (Redis)',
    [],
    BATCH_BUCKETS,
  );
  private readonly batchCell = this.batchSize.single;
  private readonly alerts = new CounterFamily(
    'dtx_alert_deliveries_total',
    'Alert webhook deliveries by result (ok = HTTP 200, fail)',
    ['result'],
  );
  private readonly auth = new CounterFamily(
    'dtx_auth_failures_total',
    'Requests refused for a missing or wrong token, by transport (http, grpc, jsonrpc)',
    ['transport'],
  );
  private readonly info: string;

  constructor(private readonly o: MetricsOptions) {
    collectDefaultMetrics({ register: this.registry });
    const infoLabels = labelText(
      ['gin_version', 'grpc_version'],
      [o.serverInfo.gin_version, o.serverInfo.grpc_version],
    );
    this.info = [
      '# HELP dtm_server_info The server is up (1), with the versions of its HTTP and gRPC libraries',
      '# TYPE dtm_server_info gauge',
      `dtm_server_info{${infoLabels}} 1`,
    ].join('\n');
  }

  /** The Prometheus text exposition: dtm_*, dtx_*, then the process metrics. */
  async text(): Promise<string> {
    const [groups, stuck, process] = await Promise.all([this.unfinished(), this.stuck(), this.registry.metrics()]);
    const out: string[] = [this.info];
    for (const f of [
      this.serverProcess,
      this.serverDuration,
      this.transProcess,
      this.handled,
      this.branchProcess,
      this.branchDuration,
      this.branchFailures,
      this.retries,
      this.finishedTotal,
      this.storeWrite,
      this.batchSize,
      this.alerts,
      this.auth,
    ]) {
      f.render(out);
    }
    const now = this.o.clock.now();
    renderGauge(
      out,
      'dtx_unfinished_transactions',
      'Unfinished transactions by trans_type and status (read from the store, cached)',
      ['trans_type', 'status'],
      groups.map((g) => [[g.transType, g.status], g.count]),
    );
    const oldest = Math.min(...groups.map((g) => g.oldestCreateTime));
    const due = Math.min(...groups.map((g) => g.oldestNextCronTime));
    renderGauge(
      out,
      'dtx_oldest_unfinished_age_seconds',
      'Age of the oldest unfinished transaction (0 when none)',
      [],
      [[[], groups.length === 0 ? 0 : Math.max(0, (now - oldest) / 1000)]],
    );
    renderGauge(
      out,
      'dtx_cron_lag_seconds',
      'How long the most overdue unfinished transaction has been due for the cron (0 when none is overdue)',
      [],
      [[[], groups.length === 0 ? 0 : Math.max(0, (now - due) / 1000)]],
    );
    renderGauge(
      out,
      'dtx_stuck_transactions',
      'Stuck transactions by reason (attempts, age)',
      ['reason'],
      stuck.map((c) => [[c.reason], c.count]),
    );
    out.push(process);
    return out.join('\n');
  }

  readonly contentType = 'text/plain; version=0.0.4; charset=utf-8';

  private async stuck(): Promise<{ reason: string; count: number }[]> {
    const provider = this.stuckProvider;
    if (!provider) return [];
    try {
      return await provider();
    } catch (err) {
      this.o.log.warn('metrics: cannot count stuck transactions', { error: errorMessage(err) });
      return [];
    }
  }

  /** The store the unfinished gauges read (set once it is open). */
  setStore(store: UnfinishedSource): void {
    this.store = store;
  }

  /** Feeds dtx_stuck_transactions{reason} (the service's `stuckCounts`). */
  setStuckProvider(p: () => Promise<{ reason: string; count: number }[]>): void {
    this.stuckProvider = p;
  }

  /** The store's unfinished counts, read at most once per refresh interval; the last good ones on an error. */
  private async unfinished(): Promise<UnfinishedGroup[]> {
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

  /** The recorder of one API route: resolve once (at route registration) and call per request. */
  route(type: 'http' | 'grpc', api: string): (ok: boolean, seconds: number) => void {
    const okCell = this.serverProcess.children.get(type, api, 'ok');
    const failCell = this.serverProcess.children.get(type, api, 'fail');
    const duration = this.serverDuration.children.get(type, api);
    return (ok, seconds) => {
      (ok ? okCell : failCell).inc();
      duration.observe(seconds);
    };
  }

  // ------------------------------------------------------------------ MetricsPort

  branchCall(
    transType: string,
    branchId: string,
    op: string,
    protocol: string,
    seconds: number,
    outcome: BranchResult,
  ): void {
    const ok = outcome === 'SUCCESS';
    this.branchProcess.children.get(transType, branchId, op, ok ? 'ok' : 'fail').inc();
    this.branchDuration.children.get(transType, op, protocol).observe(seconds);
    if (!ok) this.branchFailures.children.get(transType, op, REASON[outcome]).inc();
  }

  passHandled(transType: string, ageSeconds: number): void {
    this.handled.children.get(transType).observe(ageSeconds);
  }

  transProcessed(transType: string, ok: boolean): void {
    this.transProcess.children.get(transType, ok ? 'ok' : 'fail').inc();
  }

  finished(transType: string, outcome: 'succeed' | 'failed'): void {
    this.finishedTotal.children.get(transType, outcome).inc();
  }

  retry(transType: string): void {
    this.retries.children.get(transType).inc();
  }

  // ------------------------------------------------------------------ hooks of other parts

  /** The histogram child of one store operation (see store/measured-store.ts). */
  storeWriteChild(op: string): { observe(seconds: number): void } {
    return this.storeWrite.children.get(op);
  }

  /** StoreObserver: one group commit carried `size` writes. */
  batch(size: number): void {
    this.batchCell.observe(size);
  }

  alertDelivered(ok: boolean): void {
    this.alerts.children.get(ok ? 'ok' : 'fail').inc();
  }

  /** The `onAuthFailure` hook of the auth layer. */
  authFailure(transport: 'http' | 'grpc' | 'jsonrpc'): void {
    this.auth.children.get(transport).inc();
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
