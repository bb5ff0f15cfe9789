/**
 * A whole mall for one test file, on the real etcd and MariaDB of scripts/services.sh: a dtx coordinator started
 * in-process (registered in etcd, as `npm run mall` does), and the eight services started from the yaml files of
 * etc/ with free ports, a database of their own (`mall_t<pid>_<n>`) and etcd keys under a prefix of their own,
 * so test files can run side by side. `stop()` removes the database, the barrier rows of its sagas and the keys.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_CONFIG, type DtxConfig, type DtxServer, silentLogger, startServer } from '@dtx/server';
import type { Pool, RowDataPacket } from 'mysql2/promise';
import { readYaml } from '../../src/common/config.js';
import { mysqlPool } from '../../src/common/mysql-dsn.js';
import { migrate } from '../../src/migrate.js';
import { type RunningService, SERVICE_NAMES, type ServiceName, startService } from '../../src/services.js';

const ETC = new URL('../../../etc/', import.meta.url).pathname;
const ETCD = process.env.DTX_ETCD_ENDPOINT?.replace(/^https?:\/\//, '') ?? '127.0.0.1:2379';
const MYSQL = process.env.DTX_MYSQL_URL ?? 'mysql://dtx:dtx@127.0.0.1:3306/dtx_test';

let seq = 0;

/** A TCP port that was free a moment ago. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** An HTTP reply. */
export interface Reply {
  status: number;
  type: string;
  text: string;
  json: any;
}

/** POSTs `body` as JSON (or raw text with `rawBody`) and reads the reply. */
export async function post(url: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  return readReply(res);
}

/** A fetch response as a {@link Reply}: status, content type, text, and the JSON when the text is JSON. */
export async function readReply(res: Response): Promise<Reply> {
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, type: res.headers.get('content-type') ?? '', text, json };
}

/** Options of {@link startMall}. */
export interface MallOptions {
  /** Overrides merged into every service's config, e.g. `{ Telemetry: { Endpoint } }`. */
  services?: Record<string, unknown>;
  /** Overrides of the coordinator's config. */
  dtx?: Partial<DtxConfig>;
  /** Start a Prometheus listener per service on a free port. Default false. */
  metrics?: boolean;
}

/** A running mall. */
export interface Mall {
  dtx: DtxServer;
  /** The coordinator's HTTP base, e.g. `http://127.0.0.1:1234`. */
  dtxBase: string;
  services: Record<ServiceName, RunningService>;
  /** The business database, for assertions. */
  db: Pool;
  /** The database's name. */
  database: string;
  /** The services' `Mysql.DataSource` (a Go DSN of {@link database}), e.g. to start another instance of an rpc. */
  dsn: string;
  /** The etcd endpoint (`host:port`) the services register in. */
  etcd: string;
  /**
   * What this mall puts before every etcd `Key` of the configs (so `user.rpc` registers as `<prefix>user.rpc/<lease>`)
   * and before the coordinator's `dtmservice`.
   */
  prefix: string;
  /** The base URL of an api, e.g. `api('order')` → `http://127.0.0.1:<port>`. */
  api(domain: 'user' | 'product' | 'order' | 'pay'): string;
  /** The metrics URL of a service (with `metrics: true`). */
  metricsUrl(name: ServiceName): string;
  /** Registers a user and logs in: its id and a bearer header. */
  login(mobile?: string): Promise<{ uid: number; auth: Record<string, string> }>;
  /** The barrier rows of a saga, as `branch_id op reason`, sorted. */
  barrierRows(gid: string): Promise<string[]>;
  /**
   * Starts one more instance of a service with this mall's config of it merged with `overrides` (e.g. an api
   * whose `DtmServer` is elsewhere); the caller closes it.
   */
  another(name: ServiceName, overrides: Record<string, unknown>): Promise<RunningService>;
  /** The coordinator's view of a saga: its status and `branch_id op status` per branch. */
  query(gid: string): Promise<{ status: string; branches: string[] }>;
  stop(): Promise<void>;
}

const merge = (a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> => {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k];
    out[k] =
      v !== null && typeof v === 'object' && !Array.isArray(v) && prev !== null && typeof prev === 'object'
        ? merge(prev as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
};

/** Starts a coordinator and the eight services. */
export async function startMall(o: MallOptions = {}): Promise<Mall> {
  const n = ++seq;
  const database = `mall_t${process.pid}_${n}`;
  const prefix = `t${randomBytes(4).toString('hex')}.`;
  const u = new URL(MYSQL);
  const dsn = `${u.username}:${u.password}@tcp(${u.host})/${database}?charset=utf8mb4&parseTime=true`;
  await migrate(dsn);

  const dir = mkdtempSync(join(tmpdir(), 'mall-dtx-'));
  const grpcPort = await freePort();
  const config: DtxConfig = structuredClone(DEFAULT_CONFIG);
  Object.assign(config, {
    HttpPort: 0,
    GrpcPort: grpcPort,
    HttpHost: '127.0.0.1',
    MicroService: {
      Driver: 'dtm-driver-gozero',
      Target: `etcd://${ETCD}/${prefix}dtmservice`,
      EndPoint: `127.0.0.1:${grpcPort}`,
    },
    ...o.dtx,
  });
  config.Store = { ...config.Store, Driver: 'sqlite', SqlitePath: join(dir, 'dtx.sqlite') };
  const dtx = await startServer({ config, log: silentLogger });

  const services = {} as Record<ServiceName, RunningService>;
  const raws = {} as Record<ServiceName, Record<string, unknown>>;
  const metricsPorts = {} as Record<ServiceName, number>;
  const db = mysqlPool(dsn);
  const stopAll = async () => {
    for (const name of [...SERVICE_NAMES].reverse()) await services[name]?.close();
    await dtx.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const name of SERVICE_NAMES) {
      let raw = await readYaml(`${ETC}${name}.yaml`);
      raw = rekey(raw, prefix);
      if (name.endsWith('-rpc')) raw.ListenOn = '127.0.0.1:0';
      else Object.assign(raw, { Host: '127.0.0.1', Port: 0, DtmServer: `etcd://${ETCD}/${prefix}dtmservice` });
      if (raw.Mysql !== undefined) raw.Mysql = { DataSource: dsn };
      metricsPorts[name] = o.metrics ? await freePort() : 0;
      raw.Prometheus = { Host: '127.0.0.1', Port: metricsPorts[name], Path: '/metrics' };
      raw = merge(raw, o.services ?? {});
      raws[name] = raw;
      services[name] = await startService(name, raw, { quiet: true });
    }
  } catch (err) {
    await stopAll();
    await db.end();
    throw err;
  }
  const dtxBase = `http://127.0.0.1:${dtx.httpPort}`;
  const mall: Mall = {
    dtx,
    dtxBase,
    services,
    db,
    database,
    dsn,
    etcd: ETCD,
    prefix,
    api: (domain) => `http://127.0.0.1:${services[`${domain}-api`].port}`,
    metricsUrl: (name) => `http://127.0.0.1:${metricsPorts[name]}/metrics`,
    async login(mobile = `1${String(Date.now()).slice(-6)}${String(++seq).padStart(4, '0')}`) {
      const reg = await post(`${mall.api('user')}/api/user/register`, {
        name: 'tester',
        gender: 1,
        mobile,
        password: '123456',
      });
      if (reg.status !== 200) throw new Error(`register: ${reg.status} ${reg.text}`);
      const login = await post(`${mall.api('user')}/api/user/login`, { mobile, password: '123456' });
      if (login.status !== 200) throw new Error(`login: ${login.status} ${login.text}`);
      return { uid: reg.json.id, auth: { authorization: `Bearer ${login.json.accessToken}` } };
    },
    async barrierRows(gid) {
      const [rows] = await db.query<RowDataPacket[]>(
        'SELECT branch_id, op, reason FROM dtm_barrier.barrier WHERE gid = ? ORDER BY branch_id, op',
        [gid],
      );
      return rows.map((r) => `${r.branch_id} ${r.op} ${r.reason}`);
    },
    another: (name, overrides) =>
      startService(
        name,
        merge(
          merge(raws[name], {
            ...(name.endsWith('-rpc') ? { ListenOn: '127.0.0.1:0' } : { Port: 0 }),
            Prometheus: { Port: 0 },
          }),
          overrides,
        ),
        { quiet: true },
      ),
    async query(gid) {
      const res = await fetch(`${dtxBase}/api/dtmsvr/query?gid=${encodeURIComponent(gid)}`);
      const body = (await res.json()) as {
        transaction?: { status: string };
        branches: { branch_id: string; op: string; status: string }[];
      };
      return {
        status: body.transaction?.status ?? '',
        branches: body.branches.map((b) => `${b.branch_id} ${b.op} ${b.status}`).sort(),
      };
    },
    async stop() {
      await stopAll();
      const [gids] = await db.query<RowDataPacket[]>('SELECT gid FROM `order` WHERE gid IS NOT NULL');
      const list = gids.map((r) => r.gid as string);
      if (list.length > 0) await db.query('DELETE FROM dtm_barrier.barrier WHERE gid IN (?)', [list]);
      await db.query(`DROP DATABASE IF EXISTS \`${database}\``);
      await db.end();
    },
  };
  return mall;
}

/** Puts every etcd `Key` of a config under `prefix`, so this mall's services find only each other. */
function rekey(raw: Record<string, unknown>, prefix: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (k === 'Etcd' && v !== null && typeof v === 'object') {
      const e = v as { Hosts: string[]; Key: string };
      out[k] = { Hosts: [ETCD], Key: `${prefix}${e.Key}` };
    } else if (v !== null && typeof v === 'object' && !Array.isArray(v))
      out[k] = rekey(v as Record<string, unknown>, prefix);
    else out[k] = v;
  }
  return out;
}

/** Polls `fn` until it returns a value other than `undefined`, or fails after `ms`. */
export async function waitFor<T>(fn: () => Promise<T | undefined>, what: string, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
