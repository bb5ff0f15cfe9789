/**
 * The services' yaml configs, with the keys of the tutorial's go-zero yaml files (`etc/*.yaml`), so a config of
 * the original reads the same here. Unknown keys are ignored, as go-zero does; a missing required key or a value
 * of the wrong type is refused with a message naming it.
 *
 * @module
 */
import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';

/** An etcd registration or lookup: `Key` is the service's name in etcd, e.g. `user.rpc`. */
export interface EtcdConf {
  Hosts: string[];
  Key: string;
}

/** How a service finds another's rpc (go-zero `zrpc.RpcClientConf`). */
export interface RpcClientConf {
  Etcd: EtcdConf;
  /** Milliseconds a call may take. Default 2000, as zrpc. */
  Timeout: number;
}

/** Where the service serves its Prometheus metrics (chapter 8). Off when `Port` is 0. */
export interface PrometheusConf {
  Host: string;
  Port: number;
  Path: string;
}

/**
 * Where the service exports its OpenTelemetry spans (chapter 9). Off when `Endpoint` is empty (the default), as in
 * go-zero; `Batcher` is `otlp` (OTLP over HTTP, e.g. `http://127.0.0.1:4318/v1/traces`, which Jaeger ≥ 1.35
 * accepts) or `console`.
 */
export interface TelemetryConf {
  Name: string;
  Endpoint: string;
  Sampler: number;
  Batcher: string;
}

/** Keys every service has. */
export interface ServiceConf {
  Name: string;
  Prometheus: PrometheusConf;
  Telemetry: TelemetryConf;
}

/** An api process (go-zero `rest.RestConf` plus the tutorial's keys). */
export interface ApiConf extends ServiceConf {
  Host: string;
  Port: number;
  /** Bytes a request body may have. Default 1 MiB, as go-zero. */
  MaxBytes: number;
  Auth: { AccessSecret: string; AccessExpire: number };
  UserRpc?: RpcClientConf;
  ProductRpc?: RpcClientConf;
  OrderRpc?: RpcClientConf;
  PayRpc?: RpcClientConf;
  /** The order api's coordinator: a go-zero etcd target such as `etcd://127.0.0.1:2379/dtmservice`, or `host:port`. */
  DtmServer: string;
}

/** An rpc process (go-zero `zrpc.RpcServerConf` plus the tutorial's keys). */
export interface RpcConf extends ServiceConf {
  ListenOn: string;
  Etcd: EtcdConf;
  Mysql: { DataSource: string };
  /** The user rpc's password salt. */
  Salt: string;
  UserRpc?: RpcClientConf;
  ProductRpc?: RpcClientConf;
  OrderRpc?: RpcClientConf;
  /**
   * Test switch of the product rpc (tutorial flow C): DecrStock fails with Aborted *after* its local transaction
   * committed, so the saga compensates a step that did happen. Also set by `MALL_FAIL_AFTER_DECR_STOCK=1`.
   */
  FailAfterDecrStock: boolean;
}

/** A config value of the wrong shape: the message names the key. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Raw = Record<string, unknown>;

function section(raw: Raw, key: string, where: string): Raw | undefined {
  const v = raw[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw new ConfigError(`${where}${key}: expected a mapping`);
  return v as Raw;
}

function str(raw: Raw, key: string, where: string, def?: string): string {
  const v = raw[key];
  if (v === undefined || v === null) {
    if (def === undefined) throw new ConfigError(`${where}${key}: required`);
    return def;
  }
  if (typeof v !== 'string') throw new ConfigError(`${where}${key}: expected a string, got ${JSON.stringify(v)}`);
  return v;
}

function num(raw: Raw, key: string, where: string, def?: number): number {
  const v = raw[key];
  if (v === undefined || v === null) {
    if (def === undefined) throw new ConfigError(`${where}${key}: required`);
    return def;
  }
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
    throw new ConfigError(`${where}${key}: expected a non-negative number, got ${JSON.stringify(v)}`);
  }
  return v;
}

function bool(raw: Raw, key: string, where: string, def: boolean): boolean {
  const v = raw[key];
  if (v === undefined || v === null) return def;
  if (typeof v !== 'boolean') throw new ConfigError(`${where}${key}: expected true or false, got ${JSON.stringify(v)}`);
  return v;
}

function etcdConf(raw: Raw | undefined, where: string): EtcdConf {
  if (raw === undefined) throw new ConfigError(`${where}: required`);
  const hosts = raw.Hosts;
  if (!Array.isArray(hosts) || hosts.length === 0 || !hosts.every((h) => typeof h === 'string' && h !== '')) {
    throw new ConfigError(`${where}.Hosts: expected a list of host:port, e.g. [127.0.0.1:2379]`);
  }
  return { Hosts: hosts as string[], Key: str(raw, 'Key', `${where}.`) };
}

function rpcClientConf(raw: Raw, key: string): RpcClientConf | undefined {
  const s = section(raw, key, '');
  if (s === undefined) return undefined;
  return { Etcd: etcdConf(section(s, 'Etcd', `${key}.`), `${key}.Etcd`), Timeout: num(s, 'Timeout', `${key}.`, 2000) };
}

function serviceConf(raw: Raw, defaultTraceName: string): ServiceConf {
  const name = str(raw, 'Name', '');
  const p = section(raw, 'Prometheus', '') ?? {};
  const t = section(raw, 'Telemetry', '') ?? {};
  return {
    Name: name,
    Prometheus: {
      Host: str(p, 'Host', 'Prometheus.', '127.0.0.1'),
      Port: num(p, 'Port', 'Prometheus.', 0),
      Path: str(p, 'Path', 'Prometheus.', '/metrics'),
    },
    Telemetry: {
      Name: str(t, 'Name', 'Telemetry.', defaultTraceName),
      Endpoint: str(t, 'Endpoint', 'Telemetry.', ''),
      Sampler: num(t, 'Sampler', 'Telemetry.', 1),
      Batcher: str(t, 'Batcher', 'Telemetry.', 'otlp'),
    },
  };
}

/** Reads an api config from a parsed yaml document. */
export function apiConf(raw: Raw): ApiConf {
  const service = serviceConf(raw, String(raw.Name ?? 'api'));
  const Host = str(raw, 'Host', '', '0.0.0.0');
  const Port = num(raw, 'Port', '');
  const MaxBytes = num(raw, 'MaxBytes', '', 1 << 20);
  // Required, as in the tutorial's config structs (go-zero refuses a config without it): an api without a secret
  // would sign and accept tokens anyone can forge.
  const auth = section(raw, 'Auth', '');
  if (auth === undefined) throw new ConfigError('Auth: required (AccessSecret and AccessExpire of the JWT)');
  const conf: ApiConf = {
    ...service,
    Host,
    Port,
    MaxBytes,
    Auth: { AccessSecret: str(auth, 'AccessSecret', 'Auth.'), AccessExpire: num(auth, 'AccessExpire', 'Auth.') },
    DtmServer: str(raw, 'DtmServer', '', 'etcd://127.0.0.1:2379/dtmservice'),
  };
  if (conf.Auth.AccessSecret === '') throw new ConfigError('Auth.AccessSecret: must not be empty');
  for (const key of ['UserRpc', 'ProductRpc', 'OrderRpc', 'PayRpc'] as const) {
    const c = rpcClientConf(raw, key);
    if (c !== undefined) conf[key] = c;
  }
  return conf;
}

/** Reads an rpc config from a parsed yaml document. */
export function rpcConf(raw: Raw): RpcConf {
  const mysql = section(raw, 'Mysql', '');
  const conf: RpcConf = {
    ...serviceConf(raw, String(raw.Name ?? 'rpc')),
    ListenOn: str(raw, 'ListenOn', ''),
    Etcd: etcdConf(section(raw, 'Etcd', ''), 'Etcd'),
    Mysql: { DataSource: mysql === undefined ? '' : str(mysql, 'DataSource', 'Mysql.') },
    Salt: str(raw, 'Salt', '', ''),
    FailAfterDecrStock: bool(raw, 'FailAfterDecrStock', '', false) || process.env.MALL_FAIL_AFTER_DECR_STOCK === '1',
  };
  if (conf.Mysql.DataSource === '') throw new ConfigError('Mysql.DataSource: required');
  for (const key of ['UserRpc', 'ProductRpc', 'OrderRpc'] as const) {
    const c = rpcClientConf(raw, key);
    if (c !== undefined) conf[key] = c;
  }
  return conf;
}

/** Reads a yaml file as a mapping. */
export async function readYaml(path: string): Promise<Raw> {
  const doc: unknown = parse(await readFile(path, 'utf8'));
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new ConfigError(`${path}: expected a yaml mapping of config keys`);
  }
  return doc as Raw;
}

/** The rpc client config `key` of `conf`, or a {@link ConfigError} saying the service needs it. */
export function needRpc<K extends 'UserRpc' | 'ProductRpc' | 'OrderRpc' | 'PayRpc'>(
  conf: { Name: string } & { [k in K]?: RpcClientConf },
  key: K,
): RpcClientConf {
  const c = conf[key];
  if (c === undefined) throw new ConfigError(`${key}: required by ${conf.Name} (Etcd.Hosts and Etcd.Key of that rpc)`);
  return c;
}
