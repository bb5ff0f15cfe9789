import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AuthTransport } from '../../src/api/auth.js';
import type { BranchCaller } from '../../src/branch/caller.js';
import type { TargetResolver } from '../../src/branch/dispatch.js';
import type { LookupAll } from '../../src/branch/url-policy.js';
import { DEFAULT_CONFIG, type DtxConfig, envName } from '../../src/config.js';
import { type Logger, silentLogger } from '../../src/observe/logger.js';
import { type DtxServer, startServer } from '../../src/server.js';
import { openRedisStore } from '../../src/store/redis/redis-store.js';
import { dropSqlStoreData } from '../../src/store/sql/drop-store-data.js';
import { sqlOptionsFromConfig } from '../../src/store/sql/sql-options.js';
import type { Store } from '../../src/store/store.js';
import { call } from './http.js';
import { waitFor } from './poll.js';

let storeSeq = 0;

/**
 * The store the end-to-end tests run on: SQLite in a temp dir by default; `DTX_TEST_STORE=postgres |
 * mysql | redis` runs the same scenarios on the real servers of scripts/services.sh, each test server
 * in a schema / database / key prefix of its own.
 */
export function testStoreConfig(
  dir: string,
  kind = process.env.DTX_TEST_STORE ?? 'sqlite',
): Partial<DtxConfig['Store']> {
  const unique = `dtx_t${process.pid}_${++storeSeq}`;
  switch (kind) {
    case 'sqlite':
      return { Driver: 'sqlite', SqlitePath: join(dir, 'dtx.sqlite') };
    case 'postgres':
      return {
        Driver: 'postgres',
        Host: '127.0.0.1',
        Port: 5432,
        User: 'dtx',
        Password: 'dtx',
        Db: 'dtx_test',
        Schema: unique,
      };
    case 'mysql':
      return { Driver: 'mysql', Host: '127.0.0.1', Port: 3306, User: 'dtx', Password: 'dtx', Db: unique };
    case 'redis':
      return { Driver: 'redis', Host: '127.0.0.1', Port: 6379, RedisPrefix: unique };
    default:
      throw new Error(`DTX_TEST_STORE: unknown store '${kind}' (sqlite, postgres, mysql, redis)`);
  }
}

/** Remove what a test server's own store created (its schema, database or key prefix). */
export async function dropTestStore(config: DtxConfig): Promise<void> {
  const driver = config.Store.Driver;
  if (driver === 'postgres' || driver === 'mysql') await dropSqlStoreData(driver, sqlOptionsFromConfig(config.Store));
  if (driver === 'redis') await (await openRedisStore(config, { reset: true })).close();
}

/** The env vars (STORE_DRIVER, STORE_SCHEMA, ...) that give a `dtx serve` child process the store `store`. */
export function storeEnv(store: Partial<DtxConfig['Store']>): Record<string, string> {
  return Object.fromEntries(Object.entries(store).map(([k, v]) => [envName(`Store.${k}`), String(v)]));
}

type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };

export interface TestDtx {
  server: DtxServer;
  /** e.g. http://127.0.0.1:1234 */
  base: string;
  /** e.g. http://127.0.0.1:1234/api/dtmsvr */
  api: string;
  /** The gRPC API's address, e.g. 127.0.0.1:1235 (GrpcPort 0 picks a free port). */
  grpc: string;
  /** One cron step with the clock forwarded `nowForward` s and the window widened `cronForward` s. */
  cronOnce(nowForward?: number, cronForward?: number): Promise<string>;
  /** Cron steps until `gid` was processed once (other tests' leftovers may come first); fails if never. */
  cronFor(gid: string, nowForward?: number, cronForward?: number): Promise<void>;
  query(gid: string): Promise<{ transaction: any; branches: any[] }>;
  /** Global status, '' when unknown. */
  status(gid: string): Promise<string>;
  /** Branch statuses in row order. */
  branchStatuses(gid: string): Promise<string[]>;
  stop(): Promise<void>;
}

/**
 * An in-process dtx on a fresh SQLite file, HTTP and gRPC ports 0, test mode on, and the background cron idle
 * (TransCronInterval one hour): tests move time with cronOnce. `Store`, `Tracing` and `Limits` overrides are merged into
 * the defaults key by key. `o.storeKind` picks the store as DTX_TEST_STORE does (sqlite, postgres, mysql, redis);
 * `o.store` runs it on that store object instead (e.g. a MemoryStore); `o.caller` makes its branch calls.
 */
export async function startTestDtx(
  overrides: DeepPartial<DtxConfig> = {},
  o: {
    log?: Logger;
    resolver?: TargetResolver;
    store?: Store;
    storeKind?: string;
    caller?: BranchCaller;
    lookup?: LookupAll;
    onAuthFailure?: (transport: AuthTransport) => void;
  } = {},
): Promise<TestDtx> {
  const dir = mkdtempSync(join(tmpdir(), 'dtx-test-'));
  const config: DtxConfig = structuredClone(DEFAULT_CONFIG);
  const testDefaults = { HttpPort: 0, GrpcPort: 0, HttpHost: '127.0.0.1', DtxTestMode: true, TransCronInterval: 3600 };
  Object.assign(config, testDefaults, overrides, {
    Store: { ...config.Store, ...testStoreConfig(dir, o.storeKind), ...(overrides.Store ?? {}) },
    Tracing: { ...config.Tracing, ...(overrides.Tracing ?? {}) },
    Limits: { ...config.Limits, ...(overrides.Limits ?? {}) },
  });
  const server = await startServer({
    config,
    log: o.log ?? silentLogger,
    resolver: o.resolver,
    onAuthFailure: o.onAuthFailure,
    ...(o.store ? { store: o.store } : {}),
    ...(o.caller ? { caller: o.caller } : {}),
    ...(o.lookup ? { lookup: o.lookup } : {}),
  });
  const base = `http://127.0.0.1:${server.httpPort}`;
  const api = `${base}/api/dtmsvr`;
  const query = async (gid: string) => (await call('GET', `${api}/query?gid=${encodeURIComponent(gid)}`)).json;
  const dtx: TestDtx = {
    server,
    base,
    api,
    grpc: `127.0.0.1:${server.grpcPort}`,
    async cronOnce(nowForward = 0, cronForward = 180) {
      const r = await call('POST', `${base}/api/dtx-test/cronOnce`, {
        now_forward: nowForward,
        cron_forward: cronForward,
      });
      if (r.status !== 200) throw new Error(`cronOnce: ${r.status} ${r.text}`);
      return (r.json as { gid: string }).gid;
    },
    async cronFor(gid, nowForward = 0, cronForward = 180) {
      for (let i = 0; i < 50; i++) {
        const g = await dtx.cronOnce(nowForward, cronForward);
        if (g === gid) return;
        if (g === '') break;
      }
      throw new Error(`the cron did not pick ${gid}`);
    },
    query,
    async status(gid) {
      return (await query(gid)).transaction?.status ?? '';
    },
    async branchStatuses(gid) {
      return (await query(gid)).branches.map((b: { status: string }) => b.status);
    },
    async stop() {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
      await dropTestStore(config);
    },
  };
  return dtx;
}

export const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url));

/** A dtx server in a child process (for crash tests): real `dtx serve` from the built CLI. */
export class DtxProcess {
  proc: ChildProcess | undefined;
  output = '';
  constructor(
    readonly port: number,
    readonly env: Record<string, string>,
  ) {}

  get api(): string {
    return `http://127.0.0.1:${this.port}/api/dtmsvr`;
  }

  async start(): Promise<void> {
    this.output = '';
    this.proc = spawn(process.execPath, [CLI, 'serve'], {
      env: { ...process.env, HTTP_PORT: String(this.port), HTTP_HOST: '127.0.0.1', GRPC_PORT: '0', ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc.stdout!.on('data', (d: Buffer) => (this.output += d.toString()));
    this.proc.stderr!.on('data', (d: Buffer) => (this.output += d.toString()));
    await waitFor(`dtx on port ${this.port} (output: ${this.output})`, async () => {
      if (this.proc?.exitCode !== null) throw new Error(`dtx exited: ${this.output}`);
      return (await call('GET', `http://127.0.0.1:${this.port}/api/ping`)).status === 200;
    });
  }

  /** SIGKILL: no shutdown hooks, no flush. */
  async kill(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((resolve) => p.once('exit', resolve));
    p.kill('SIGKILL');
    await exited;
  }

  async stop(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((resolve) => p.once('exit', resolve));
    p.kill('SIGTERM');
    await exited;
  }
}

/** A TCP port that was free a moment ago (for child processes that must be told their port). */
export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}
