import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { TlsConfig } from './api/tls-files.js';
import { PolicyEntryError, UrlPolicy } from './branch/url-policy.js';
import type { CoreConfig } from './core/core-config.js';
import { isLogLevel, type LogLevel } from './observe/logger.js';
import type { StoreConfig } from './store/store-config.js';
import { ConfigError } from './util/config-error.js';

export type { TlsConfig } from './api/tls-files.js';
export type { StoreConfig } from './store/store-config.js';
export { ConfigError } from './util/config-error.js';

/**
 * dtx's configuration: DTM's keys (spec §10) with DTM's defaults and env names, plus dtx's own.
 * Loading order: defaults, then environment variables, then the YAML file (YAML wins).
 */
export interface DtxConfig {
  /** The store section: see {@link StoreConfig}. */
  Store: StoreConfig;
  MicroService: { Driver: string; Target: string; EndPoint: string };
  TransCronInterval: number;
  TimeoutToFail: number;
  RetryInterval: number;
  /** dtx: upper bound (s) of the backed-off retry interval. */
  MaxRetryInterval: number;
  RequestTimeout: number;
  HttpPort: number;
  GrpcPort: number;
  JsonRpcPort: number;
  UpdateBranchSync: number;
  UpdateBranchAsyncGoroutineNum: number;
  LogLevel: string;
  Log: {
    Outputs: string;
    RotationEnable: number;
    RotationConfigJSON: string;
    /** dtx: one info line per API request (HTTP, gRPC, JSON-RPC): method, route, status, duration, gid. */
    AccessLog: boolean;
  };
  TimeZoneOffset: string;
  ConfigUpdateInterval: number;
  AlertRetryLimit: number;
  AlertWebHook: string;
  AdminBasePath: string;
  GrpcServiceConfig: string;
  /** dtx: address the HTTP server listens on. */
  HttpHost: string;
  /** dtx: largest accepted request body, in bytes. */
  HttpBodyLimit: number;
  /** dtx: seconds to receive a whole HTTP request, headers and body; a slower client gets 408 and is cut. */
  HttpRequestTimeout: number;
  /** dtx: seconds to receive an HTTP request's headers; at most HttpRequestTimeout. */
  HttpHeadersTimeout: number;
  /** dtx: seconds an idle keep-alive HTTP connection is kept open. */
  HttpKeepAliveTimeout: number;
  /** dtx: limits on what one transaction may carry; over a limit the request is refused naming it. */
  Limits: {
    /** Steps (and payloads) of one saga or msg. */
    MaxSteps: number;
    /** Entries of branch_headers. */
    MaxBranchHeaders: number;
    /** Bytes (UTF-8) of all branch_headers names and values together. */
    MaxBranchHeadersBytes: number;
    /** Branch calls of one transaction in flight at once. */
    MaxConcurrentCallsPerTrans: number;
    /** Branch calls of this process in flight at once; more wait for a free slot. */
    MaxConcurrentCalls: number;
    /** Background passes (submits without wait_result) running at once; more are left to the cron. */
    MaxBackgroundPasses: number;
  };
  /** dtx: due transactions leased by one cron step. */
  CronBatchSize: number;
  /** dtx: enable test-only endpoints (`/api/dtx-test/*`). Never in production. */
  DtxTestMode: boolean;
  /**
   * dtx: OpenTelemetry spans. Off by default; the W3C trace context of a request is forwarded to the branches
   * either way.
   */
  Tracing: {
    /** `none` (default), `otlp` (OTLP over HTTP, JSON, to Endpoint) or `console` (stdout). */
    Exporter: string;
    /** The OTLP/HTTP traces URL. */
    Endpoint: string;
    /** The resource's `service.name`. */
    ServiceName: string;
    /** Share of new traces recorded (0 to 1); a request with a trace context follows its sampled flag. */
    SampleRatio: number;
  };
  /** dtx: when a transaction counts as stuck (listed by /api/dtmsvr/stuck, alerted once). */
  Stuck: {
    /** Failed attempts in a row; 0 (the default) takes AlertRetryLimit. */
    FailedAttempts: number;
    /** Seconds an unfinished transaction may live before it is stuck; 0 disables. */
    UnfinishedAfter: number;
  };
  /**
   * dtx: tokens (issue 11). None configured: every API is open, as DTM. Lists are comma-separated (a YAML list
   * also works); several tokens per role allow rotation.
   */
  Auth: {
    /** Client-role tokens: newGid, prepare, submit, abort, registerBranch, query of a gid, prepareWorkflow. */
    Token: string;
    /** Admin-role tokens: every call (the client ones included), the admin UI's API, metrics. */
    AdminToken: string;
    /** Tokens for GET /api/metrics only (an admin token works too). */
    MetricsToken: string;
    /** GET /api/metrics without any token, for a Prometheus that sends none. */
    MetricsOpen: boolean;
    /** Failed attempts from one address within FailureWindow before the address is refused for BlockSeconds. */
    MaxFailures: number;
    FailureWindow: number;
    BlockSeconds: number;
    /** Addresses whose failures are tracked at once; the oldest is forgotten beyond it. */
    MaxTrackedAddresses: number;
  };
  /** dtx: HTTPS on HttpPort (PEM files); ClientCaFile requires and verifies client certificates (mTLS). */
  HttpTls: TlsConfig;
  /** dtx: gRPC over TLS; when CertFile is empty, the HttpTls files are used (one shared key). */
  GrpcTls: TlsConfig;
  /** dtx: Prometheus metrics on `GET /api/metrics`. */
  Metrics: {
    /** Serve `/api/metrics` and record the metrics; false answers 404 and records nothing. */
    Enabled: boolean;
    /** Seconds the unfinished-transaction gauges (read from the store) are cached between scrapes. */
    UnfinishedRefreshInterval: number;
  };
  /** dtx: deletion of old finished transactions (SQL and SQLite stores; Redis expires keys itself). */
  Retention: {
    /** Seconds a finished transaction is kept; 0 (the default) keeps them forever, as DTM's SQL stores do. */
    FinishedAge: number;
    /** Seconds between clean-up rounds. */
    Interval: number;
    /** Transactions deleted per batch. */
    BatchSize: number;
  };
  /**
   * dtx: which URLs branches (and subscribers and the alert webhook) may name; comma-separated in env, a list or
   * comma-separated text in YAML. Entries: schemes (`https://`), hosts (`api.internal`, `*.corp.example`), IP
   * addresses and CIDR ranges, or a scheme and a host (`https://*.corp.example`). See the README.
   */
  BranchUrl: {
    /** When set, only URLs matching it are called. Empty (the default): every URL not denied. */
    Allow: string;
    /** Refused URLs, in addition to the built-in cloud-metadata and link-local list. */
    Deny: string;
  };
  /** dtx: TLS of outbound https calls (branches, JSON-RPC branches, the alert webhook). */
  BranchTls: {
    /** A PEM file of CA certificates trusted besides Node's bundled roots (private CAs). */
    CaFile: string;
  };
  /** dtx: what is kept from display. */
  Redact: {
    /** Header names (comma-separated) masked like Authorization, Cookie and Proxy-Authorization. */
    Headers: string;
    /** Keep no branch reply body (rollback reason, errors, logs): only the HTTP status or gRPC code. */
    BranchReplies: boolean;
  };
}

export const DEFAULT_CONFIG: DtxConfig = {
  Store: {
    Driver: 'sqlite',
    Host: '',
    Port: 0,
    User: '',
    Password: '',
    Db: 'dtm',
    Schema: 'public',
    MaxOpenConns: 500,
    MaxIdleConns: 500,
    ConnMaxLifeTime: 5,
    DataExpire: 604800,
    FinishedDataExpire: 86400,
    RedisPrefix: '{a}',
    SqlitePath: './data/dtx.sqlite',
  },
  MicroService: { Driver: 'default', Target: '', EndPoint: '' },
  TransCronInterval: 3,
  TimeoutToFail: 35,
  RetryInterval: 10,
  MaxRetryInterval: 3600,
  RequestTimeout: 3,
  HttpPort: 36789,
  GrpcPort: 36790,
  JsonRpcPort: 36791,
  UpdateBranchSync: 1,
  UpdateBranchAsyncGoroutineNum: 1,
  LogLevel: 'info',
  Log: { Outputs: 'stderr', RotationEnable: 0, RotationConfigJSON: '{}', AccessLog: true },
  TimeZoneOffset: '',
  ConfigUpdateInterval: 3,
  AlertRetryLimit: 3,
  AlertWebHook: '',
  AdminBasePath: '',
  GrpcServiceConfig: '{"loadBalancingConfig": [{"round_robin":{}}]}',
  HttpHost: '0.0.0.0',
  HttpBodyLimit: 8 * 1024 * 1024,
  HttpRequestTimeout: 60,
  HttpHeadersTimeout: 20,
  HttpKeepAliveTimeout: 72,
  Limits: {
    MaxSteps: 1000,
    MaxBranchHeaders: 32,
    MaxBranchHeadersBytes: 8192,
    MaxConcurrentCallsPerTrans: 64,
    MaxConcurrentCalls: 1024,
    MaxBackgroundPasses: 1024,
  },
  CronBatchSize: 16,
  DtxTestMode: false,
  Tracing: { Exporter: 'none', Endpoint: 'http://127.0.0.1:4318/v1/traces', ServiceName: 'dtx', SampleRatio: 1 },
  Metrics: { Enabled: true, UnfinishedRefreshInterval: 5 },
  Retention: { FinishedAge: 0, Interval: 60, BatchSize: 500 },
  Stuck: { FailedAttempts: 0, UnfinishedAfter: 3600 },
  BranchUrl: { Allow: '', Deny: '' },
  BranchTls: { CaFile: '' },
  Redact: { Headers: '', BranchReplies: false },
  Auth: {
    Token: '',
    AdminToken: '',
    MetricsToken: '',
    MetricsOpen: false,
    MaxFailures: 10,
    FailureWindow: 60,
    BlockSeconds: 60,
    MaxTrackedAddresses: 10_000,
  },
  HttpTls: { CertFile: '', KeyFile: '', ClientCaFile: '' },
  GrpcTls: { CertFile: '', KeyFile: '', ClientCaFile: '' },
};

/** Keys that take a comma-separated list, also given as a YAML list. */
const LIST_KEYS: ReadonlySet<string> = new Set([
  'Auth.Token',
  'Auth.AdminToken',
  'Auth.MetricsToken',
  'BranchUrl.Allow',
  'BranchUrl.Deny',
  'Redact.Headers',
]);

/** The values of `Tracing.Exporter`. */
export const TRACING_EXPORTERS = ['none', 'otlp', 'console'] as const;

/** Number keys that take a fraction; every other number key takes an integer. */
const FRACTION_KEYS: ReadonlySet<string> = new Set(['Tracing.SampleRatio']);

/** DTM's env name rule: `MicroService.EndPoint` → `MICRO_SERVICE_END_POINT`. */
export function envName(path: string): string {
  return path
    .split('.')
    .map((seg) => seg.replace(/([a-z0-9])([A-Z])/g, '$1_$2').replace(/([A-Z]+)([A-Z][a-z])/g, '$1_$2'))
    .join('_')
    .toUpperCase();
}

type Leaf = { path: string; get: () => unknown; set: (v: unknown) => void };

function leaves(obj: Record<string, unknown>, prefix = ''): Leaf[] {
  const out: Leaf[] = [];
  for (const key of Object.keys(obj)) {
    const path = prefix ? `${prefix}.${key}` : key;
    const v = obj[key];
    if (v && typeof v === 'object') out.push(...leaves(v as Record<string, unknown>, path));
    else
      out.push({
        path,
        get: () => obj[key],
        set: (nv) => {
          obj[key] = nv;
        },
      });
  }
  return out;
}

function coerce(path: string, current: unknown, raw: unknown, source: string): unknown {
  if (typeof current === 'number') {
    const n = typeof raw === 'number' ? raw : typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : Number.NaN;
    if (FRACTION_KEYS.has(path)) {
      if (!Number.isFinite(n))
        throw new ConfigError(`${path} (${source}): expected a number, got ${JSON.stringify(raw)}`);
      return n;
    }
    if (!Number.isFinite(n) || !Number.isInteger(n)) {
      throw new ConfigError(`${path} (${source}): expected an integer, got ${JSON.stringify(raw)}`);
    }
    return n;
  }
  if (typeof current === 'boolean') {
    if (typeof raw === 'boolean') return raw;
    if (raw === 1 || raw === '1' || raw === 'true') return true;
    if (raw === 0 || raw === '0' || raw === 'false' || raw === '') return false;
    throw new ConfigError(`${path} (${source}): expected true or false, got ${JSON.stringify(raw)}`);
  }
  if (LIST_KEYS.has(path) && Array.isArray(raw)) {
    for (const item of raw) {
      if (typeof item !== 'string' && typeof item !== 'number') {
        throw new ConfigError(`${path} (${source}): expected a list of strings, got ${JSON.stringify(item)} in it`);
      }
    }
    return raw.map(String).join(',');
  }
  if (raw !== null && typeof raw === 'object') {
    return JSON.stringify(raw); // e.g. GrpcServiceConfig given as YAML mapping
  }
  return String(raw ?? '');
}

/** Find a key case-insensitively, as DTM's YAML loader does. */
function pick(obj: Record<string, unknown>, key: string): unknown {
  const want = key.toLowerCase();
  for (const k of Object.keys(obj)) if (k.toLowerCase() === want) return obj[k];
  return undefined;
}

/**
 * Keys of DTM's configuration that dtx does not use: accepted (and reported), so that a DTM file loads unchanged.
 * `HttpMicroService` with whatever it holds.
 */
const DTM_IGNORED_KEYS = [
  'GrpcBalancer',
  'HttpMicroService',
  'DisableLocalhost',
  'Store.TransGlobalTable',
  'Store.TransBranchOpTable',
];

/** Levenshtein distance, case-insensitive. */
function distance(a: string, b: string): number {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  let prev = Array.from({ length: y.length + 1 }, (_, i) => i);
  for (let i = 1; i <= x.length; i++) {
    const cur = [i];
    for (let j = 1; j <= y.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (x[i - 1] === y[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[y.length]!;
}

/** The keys of the file that dtx does not know: DTM's ignored keys go to `ignored`, any other fails start-up. */
function unknownKeys(
  yaml: Record<string, unknown>,
  shape: Record<string, unknown>,
  file: string,
  prefix = '',
  ignored: string[] = [],
): string[] {
  const known = new Map(Object.keys(shape).map((k) => [k.toLowerCase(), k]));
  for (const [k, v] of Object.entries(yaml)) {
    const name = known.get(k.toLowerCase());
    const path = prefix ? `${prefix}.${k}` : k;
    if (!name) {
      if (DTM_IGNORED_KEYS.some((d) => d.toLowerCase() === path.toLowerCase())) {
        ignored.push(path);
        continue;
      }
      const candidates = [
        ...Object.keys(shape),
        ...DTM_IGNORED_KEYS.filter(
          (d) => d.startsWith(prefix ? `${prefix}.` : '') && !d.slice(prefix ? prefix.length + 1 : 0).includes('.'),
        ).map((d) => d.slice(prefix ? prefix.length + 1 : 0)),
      ];
      const best = candidates.reduce((a, b) => (distance(k, b) < distance(k, a) ? b : a));
      throw new ConfigError(
        `${path} (${file}): unknown key; did you mean ${prefix ? `${prefix}.` : ''}${best}? (keys are those of DTM's configuration plus dtx's own, see the README)`,
      );
    }
    const sub = shape[name];
    if (sub && typeof sub === 'object' && v && typeof v === 'object') {
      unknownKeys(v as Record<string, unknown>, sub as Record<string, unknown>, file, path, ignored);
    }
  }
  return ignored;
}

export interface LoadedConfig {
  config: DtxConfig;
  /** Keys of DTM's configuration in the file that dtx does not use (any other unknown key is a ConfigError). */
  ignoredKeys: string[];
}

/** Load: defaults ← env ← YAML file; then validate. Throws ConfigError naming the key. */
export function loadConfig(file?: string, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const config = structuredClone(DEFAULT_CONFIG);
  const all = leaves(config as unknown as Record<string, unknown>);
  for (const leaf of all) {
    const raw = env[envName(leaf.path)];
    if (raw !== undefined && raw !== '') leaf.set(coerce(leaf.path, leaf.get(), raw, `env ${envName(leaf.path)}`));
  }
  let ignoredKeys: string[] = [];
  if (file) {
    let doc: unknown;
    try {
      doc = parseYaml(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new ConfigError(`config file ${file}: ${(err as Error).message}`);
    }
    if (doc !== null && doc !== undefined) {
      if (typeof doc !== 'object' || Array.isArray(doc))
        throw new ConfigError(`config file ${file}: expected a mapping`);
      const y = doc as Record<string, unknown>;
      for (const leaf of all) {
        let node: unknown = y;
        const segs = leaf.path.split('.');
        segs.forEach((seg, i) => {
          if (node === undefined || node === null) return;
          if (typeof node !== 'object' || Array.isArray(node)) {
            throw new ConfigError(
              `${segs.slice(0, i).join('.')} (${file}): expected a mapping, got ${JSON.stringify(node)}`,
            );
          }
          node = pick(node as Record<string, unknown>, seg);
        });
        if (node !== undefined && node !== null) leaf.set(coerce(leaf.path, leaf.get(), node, file));
      }
      ignoredKeys = unknownKeys(y, DEFAULT_CONFIG as unknown as Record<string, unknown>, file);
    }
  }
  if (!config.GrpcServiceConfig) config.GrpcServiceConfig = DEFAULT_CONFIG.GrpcServiceConfig;
  validate(config);
  return { config, ignoredKeys };
}

const DRIVERS = ['sqlite', 'boltdb', 'mysql', 'postgres', 'redis'];

export function validate(c: DtxConfig): void {
  if (c.RetryInterval < 10) throw new ConfigError('RetryInterval should not be less than 10');
  if (c.MaxRetryInterval < c.RetryInterval) {
    throw new ConfigError(
      `MaxRetryInterval: must not be less than RetryInterval (${c.RetryInterval}), got ${c.MaxRetryInterval}`,
    );
  }
  if (c.TimeoutToFail < c.RetryInterval) throw new ConfigError('TimeoutToFail should not be less than RetryInterval');
  if (!DRIVERS.includes(c.Store.Driver)) {
    throw new ConfigError(`Store.Driver: unknown driver '${c.Store.Driver}' (one of ${DRIVERS.join(', ')})`);
  }
  if (c.Store.Driver === 'mysql' || c.Store.Driver === 'postgres') {
    if (!c.Store.Host) throw new ConfigError('Store.Host: Db host not valid ');
    if (c.Store.Port === 0) throw new ConfigError('Store.Port: Db port not valid ');
    if (!c.Store.User) throw new ConfigError('Store.User: Db user not valid ');
    if (c.Store.Driver === 'postgres' && !c.Store.Schema)
      throw new ConfigError('Store.Schema: Postgres schema not valid');
  }
  if (c.Store.Driver === 'redis') {
    if (!c.Store.Host) throw new ConfigError('Store.Host: Redis host not valid');
    if (c.Store.Port === 0) throw new ConfigError('Store.Port: Redis port not valid');
  }
  if ((c.Store.Driver === 'sqlite' || c.Store.Driver === 'boltdb') && !c.Store.SqlitePath) {
    throw new ConfigError('Store.SqlitePath: must not be empty');
  }
  const port = (key: string, v: number) => {
    if (v < 0 || v > 65535) throw new ConfigError(`${key}: ${v} is not a TCP port`);
  };
  port('HttpPort', c.HttpPort);
  port('GrpcPort', c.GrpcPort);
  const adminBase = c.AdminBasePath.replace(/\/+$/, '');
  if (c.AdminBasePath !== '' && !/^(\/[A-Za-z0-9._~-]+)*$/.test(adminBase)) {
    throw new ConfigError(
      `AdminBasePath: expected '' or '/' (the root) or a path like '/dtx' of letters, digits and . _ ~ -, got '${c.AdminBasePath.slice(0, 100)}'`,
    );
  }
  if (adminBase === '/api' || adminBase.startsWith('/api/')) {
    throw new ConfigError(`AdminBasePath: must not be under /api (the API's routes), got '${c.AdminBasePath}'`);
  }
  const positive: [string, number][] = [
    ['TransCronInterval', c.TransCronInterval],
    ['RequestTimeout', c.RequestTimeout],
    ['ConfigUpdateInterval', c.ConfigUpdateInterval],
    ['AlertRetryLimit', c.AlertRetryLimit],
    ['CronBatchSize', c.CronBatchSize],
    ['Retention.Interval', c.Retention.Interval],
    ['Retention.BatchSize', c.Retention.BatchSize],
    ['Metrics.UnfinishedRefreshInterval', c.Metrics.UnfinishedRefreshInterval],
    ['HttpRequestTimeout', c.HttpRequestTimeout],
    ['HttpHeadersTimeout', c.HttpHeadersTimeout],
    ['HttpKeepAliveTimeout', c.HttpKeepAliveTimeout],
    ['Limits.MaxSteps', c.Limits.MaxSteps],
    ['Limits.MaxBranchHeaders', c.Limits.MaxBranchHeaders],
    ['Limits.MaxBranchHeadersBytes', c.Limits.MaxBranchHeadersBytes],
    ['Limits.MaxConcurrentCallsPerTrans', c.Limits.MaxConcurrentCallsPerTrans],
    ['Limits.MaxConcurrentCalls', c.Limits.MaxConcurrentCalls],
    ['Limits.MaxBackgroundPasses', c.Limits.MaxBackgroundPasses],
  ];
  for (const [k, v] of positive) if (v <= 0) throw new ConfigError(`${k}: must be greater than 0, got ${v}`);
  if (c.HttpHeadersTimeout > c.HttpRequestTimeout) {
    throw new ConfigError(
      `HttpHeadersTimeout: must not be greater than HttpRequestTimeout (${c.HttpRequestTimeout}), got ${c.HttpHeadersTimeout}`,
    );
  }
  if (c.Stuck.FailedAttempts < 0)
    throw new ConfigError(`Stuck.FailedAttempts: must not be negative, got ${c.Stuck.FailedAttempts}`);
  if (c.Stuck.UnfinishedAfter < 0)
    throw new ConfigError(`Stuck.UnfinishedAfter: must not be negative, got ${c.Stuck.UnfinishedAfter}`);
  if (c.Retention.FinishedAge < 0)
    throw new ConfigError(`Retention.FinishedAge: must not be negative, got ${c.Retention.FinishedAge}`);
  if (c.HttpBodyLimit < 4 * 1024 * 1024) {
    throw new ConfigError(`HttpBodyLimit: must be at least 4194304 (4 MiB), got ${c.HttpBodyLimit}`);
  }
  if (!isLogLevel(c.LogLevel))
    throw new ConfigError(`LogLevel: '${c.LogLevel}' is not one of debug, info, warn, error`);
  if (c.AlertWebHook && !/^https?:\/\//.test(c.AlertWebHook)) {
    throw new ConfigError(`AlertWebHook: '${c.AlertWebHook}' is not an http(s) URL`);
  }
  validateTracing(c.Tracing);
  const policy = urlPolicyOf(c);
  const refused = c.AlertWebHook ? policy.checkUrl(c.AlertWebHook) : undefined;
  if (refused !== undefined) throw new ConfigError(`AlertWebHook: ${refused}`);
  for (const name of c.Redact.Headers.split(',')) {
    if (name.trim() !== '' && !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name.trim())) {
      throw new ConfigError(`Redact.Headers: '${name.trim()}' is not a header name`);
    }
  }
  validateAuth(c.Auth);
  validateTls('HttpTls', c.HttpTls);
  validateTls('GrpcTls', c.GrpcTls);
  if (c.TimeZoneOffset && !/^[+-]?\d{1,2}$/.test(c.TimeZoneOffset)) {
    throw new ConfigError(`TimeZoneOffset: '${c.TimeZoneOffset}' is not an integer number of hours`);
  }
}

/** Shortest accepted token: shorter ones are open to guessing. */
export const MIN_TOKEN_LENGTH = 16;

function validateAuth(a: DtxConfig['Auth']): void {
  const seen = new Map<string, string>();
  for (const key of ['Token', 'AdminToken', 'MetricsToken'] as const) {
    for (const raw of a[key].split(',')) {
      const token = raw.trim();
      if (token === '') continue;
      if (token.length < MIN_TOKEN_LENGTH) {
        throw new ConfigError(
          `Auth.${key}: a token of ${token.length} characters is too easy to guess; use at least ${MIN_TOKEN_LENGTH} (e.g. openssl rand -hex 32)`,
        );
      }
      if (!/^[\x21-\x7e]+$/.test(token)) {
        throw new ConfigError(`Auth.${key}: a token must be printable ASCII without spaces (it is sent in a header)`);
      }
      const other = seen.get(token);
      if (other !== undefined && other !== key) {
        throw new ConfigError(`Auth.${key}: the same token is also in Auth.${other}; give each role its own tokens`);
      }
      seen.set(token, key);
    }
  }
  if ((a.MetricsToken !== '' || a.MetricsOpen) && a.Token === '' && a.AdminToken === '') {
    throw new ConfigError(
      `Auth.${a.MetricsOpen ? 'MetricsOpen' : 'MetricsToken'}: has no effect without Auth.Token or Auth.AdminToken (every API is open)`,
    );
  }
  if (a.MetricsOpen && a.MetricsToken !== '') {
    throw new ConfigError('Auth.MetricsToken: set either it or Auth.MetricsOpen, not both');
  }
  for (const key of ['MaxFailures', 'FailureWindow', 'BlockSeconds', 'MaxTrackedAddresses'] as const) {
    if (a[key] <= 0) throw new ConfigError(`Auth.${key}: must be greater than 0, got ${a[key]}`);
  }
}

function validateTls(name: string, t: TlsConfig): void {
  if (t.CertFile !== '' && t.KeyFile === '')
    throw new ConfigError(`${name}.KeyFile: must be set with ${name}.CertFile`);
  if (t.KeyFile !== '' && t.CertFile === '')
    throw new ConfigError(`${name}.CertFile: must be set with ${name}.KeyFile`);
  if (t.ClientCaFile !== '' && t.CertFile === '') {
    throw new ConfigError(`${name}.ClientCaFile: needs ${name}.CertFile and ${name}.KeyFile (mTLS is over TLS)`);
  }
}

function validateTracing(t: DtxConfig['Tracing']): void {
  if (!(TRACING_EXPORTERS as readonly string[]).includes(t.Exporter)) {
    throw new ConfigError(`Tracing.Exporter: '${t.Exporter}' is not one of ${TRACING_EXPORTERS.join(', ')}`);
  }
  if (t.Exporter === 'otlp') {
    let ok = false;
    try {
      const u = new URL(t.Endpoint);
      ok = u.protocol === 'http:' || u.protocol === 'https:';
    } catch {
      ok = false;
    }
    if (!ok) {
      throw new ConfigError(
        `Tracing.Endpoint: '${t.Endpoint}' is not an http(s) URL (e.g. http://127.0.0.1:4318/v1/traces)`,
      );
    }
  }
  if (t.ServiceName.trim() === '') throw new ConfigError('Tracing.ServiceName: must not be empty');
  if (!(t.SampleRatio >= 0 && t.SampleRatio <= 1)) {
    throw new ConfigError(`Tracing.SampleRatio: must be between 0 and 1, got ${t.SampleRatio}`);
  }
}

/** The compiled branch-URL policy of `BranchUrl.*`; a bad entry is a ConfigError naming it. */
export function urlPolicyOf(c: DtxConfig): UrlPolicy {
  try {
    return UrlPolicy.fromConfig(c.BranchUrl.Allow, c.BranchUrl.Deny);
  } catch (err) {
    if (err instanceof PolicyEntryError) throw new ConfigError(err.message);
    throw err;
  }
}

export function coreConfigOf(c: DtxConfig): CoreConfig {
  return {
    retryInterval: c.RetryInterval,
    timeoutToFail: c.TimeoutToFail,
    requestTimeout: c.RequestTimeout,
    transCronInterval: c.TransCronInterval,
    alertRetryLimit: c.AlertRetryLimit,
    alertWebHook: c.AlertWebHook,
    cronBatchSize: c.CronBatchSize,
    maxRetryInterval: c.MaxRetryInterval,
    maxCallsPerTrans: c.Limits.MaxConcurrentCallsPerTrans,
    maxCalls: c.Limits.MaxConcurrentCalls,
    maxBackgroundPasses: c.Limits.MaxBackgroundPasses,
    maxSteps: c.Limits.MaxSteps,
    stuckFailedAttempts: c.Stuck.FailedAttempts > 0 ? c.Stuck.FailedAttempts : c.AlertRetryLimit,
    stuckUnfinishedAfter: c.Stuck.UnfinishedAfter,
  };
}

export function logLevelOf(c: DtxConfig): LogLevel {
  return c.LogLevel as LogLevel;
}
