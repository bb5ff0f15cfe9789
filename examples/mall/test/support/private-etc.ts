/**
 * A private copy of etc/ for running the whole mall as processes (`main.js up --etc <dir>`) next to anything else
 * on this machine: free ports, etcd keys under a prefix of its own, its own business database and a SQLite store
 * for dtx in `dir`. Everything else is the shipped yaml.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { freePort } from './mall.js';

const ETC = new URL('../../../etc/', import.meta.url).pathname;

/** What {@link writePrivateEtc} chose. */
export interface PrivateEtc {
  dir: string;
  /** The business database's Go DSN. */
  dsn: string;
  database: string;
  /** dtx's HTTP base URL. */
  dtxBase: string;
  /** Each api's base URL by domain. */
  apis: Record<string, string>;
}

/** Writes dtx.yaml and the eight service configs into `dir`. */
export async function writePrivateEtc(dir: string, database: string): Promise<PrivateEtc> {
  const prefix = `p${randomBytes(4).toString('hex')}.`;
  const dsn = `dtx:dtx@tcp(127.0.0.1:3306)/${database}?charset=utf8mb4&parseTime=true`;
  const rekey = (node: unknown): unknown => {
    if (Array.isArray(node) || node === null || typeof node !== 'object') return node;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(node))
      out[k] = k === 'Key' && typeof v === 'string' ? `${prefix}${v}` : rekey(v);
    return out;
  };
  // freePort() closes its probe, so two calls can give the same port (up's run saw product-api's metrics port be
  // user-rpc's gRPC port): hand each port out once
  const taken = new Set<number>();
  const distinctPort = async (): Promise<number> => {
    for (let i = 0; i < 100; i++) {
      const p = await freePort();
      if (!taken.has(p)) {
        taken.add(p);
        return p;
      }
    }
    throw new Error('no distinct free port in 100 tries');
  };
  const apis: Record<string, string> = {};
  for (const file of readdirSync(ETC).filter((f) => f.endsWith('.yaml') && f !== 'dtx.yaml')) {
    const conf = rekey(parse(readFileSync(join(ETC, file), 'utf8'))) as Record<string, unknown>;
    if ('ListenOn' in conf) conf.ListenOn = `127.0.0.1:${await distinctPort()}`;
    else {
      const port = await distinctPort();
      Object.assign(conf, { Host: '127.0.0.1', Port: port, DtmServer: `etcd://127.0.0.1:2379/${prefix}dtmservice` });
      apis[file.replace('-api.yaml', '')] = `http://127.0.0.1:${port}`;
    }
    if ('Mysql' in conf) conf.Mysql = { DataSource: dsn };
    conf.Prometheus = { Host: '127.0.0.1', Port: await distinctPort(), Path: '/metrics' };
    writeFileSync(join(dir, file), stringify(conf));
  }
  const dtx = parse(readFileSync(join(ETC, 'dtx.yaml'), 'utf8')) as Record<string, unknown>;
  const grpc = await distinctPort();
  const http = await distinctPort();
  Object.assign(dtx, {
    HttpPort: http,
    GrpcPort: grpc,
    JsonRpcPort: await distinctPort(),
    MicroService: {
      Driver: 'dtm-driver-gozero',
      Target: `etcd://127.0.0.1:2379/${prefix}dtmservice`,
      EndPoint: `127.0.0.1:${grpc}`,
    },
    Store: { Driver: 'sqlite', SqlitePath: join(dir, 'dtx.sqlite') },
  });
  writeFileSync(join(dir, 'dtx.yaml'), stringify(dtx));
  return { dir, dsn, database, dtxBase: `http://127.0.0.1:${http}`, apis };
}
