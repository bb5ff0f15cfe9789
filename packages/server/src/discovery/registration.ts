/**
 * Where and how dtx registers its own gRPC endpoint, from DTM's `MicroService` keys (spec §10), the way the DTM
 * drivers of go-zero and kratos do it:
 *
 * | Driver | Target | key | value | TTL |
 * |---|---|---|---|---|
 * | `dtm-driver-gozero` | `etcd://h:2379/dtmservice` or `discov://…` | `dtmservice/<leaseId>` | `host:port` | 10 s |
 * | `dtm-driver-kratos` | `etcd://h:2379/dtmservice` or `discovery://h:2379/dtmservice` | `/microservices/dtmservice/<uuid>` | kratos `ServiceInstance` JSON, endpoint `grpc://host:port` | 15 s |
 *
 * Any other driver, or an empty Target, registers nothing (DTM's default driver does nothing either).
 *
 * @module
 */
import { randomUUID } from 'node:crypto';
import { networkInterfaces } from 'node:os';
import { VERSION } from '../version.js';
import { DiscoveryError } from './discovery-error.js';
import { KRATOS_TTL_SECONDS, type KratosServiceInstance, kratosInstanceKey } from './kratos.js';
import {
  type EtcdAuth,
  GOZERO_SCHEMES,
  isHostPort,
  KRATOS_SCHEME,
  parseEtcdHosts,
  redactTarget,
  splitTargetUrl,
} from './target.js';

/** DTM's driver names. */
export const GOZERO_DRIVER = 'dtm-driver-gozero';
export const KRATOS_DRIVER = 'dtm-driver-kratos';

/** go-zero's registration TTL (discov.TimeToLive), in seconds. */
export const GOZERO_TTL_SECONDS = 10;

/** DTM's `MicroService` configuration block. */
export interface MicroServiceConfig {
  Driver: string;
  Target: string;
  EndPoint: string;
}

/** What to write in etcd. */
export interface RegistrationPlan {
  layout: 'gozero' | 'kratos';
  etcdHosts: string[];
  auth?: EtcdAuth;
  /** The key for a given lease id (go-zero puts the lease id in the key; kratos does not). */
  keyOf: (leaseId: string) => string;
  value: string;
  ttlSeconds: number;
  /** The advertised `host:port`. */
  endpoint: string;
  /** The configured Target, for messages. */
  what: string;
}

/** Options of {@link planRegistration}. */
export interface PlanOptions {
  /** The gRPC port, used when EndPoint is empty. */
  grpcPort: number;
  /** Lease TTL in seconds. Default: go-zero's 10, kratos's 15. */
  ttlSeconds?: number;
  /** etcd of `discovery:///name` targets (kratos). */
  kratosEtcdHosts?: readonly string[];
  /** kratos registry namespace. Default `/microservices`. */
  kratosNamespace?: string;
  /** The kratos instance id. Default: a random UUID (kratos's default app id). */
  instanceId?: string;
}

/**
 * The registration the configuration asks for, or `undefined` for none (default driver, empty Target).
 * @throws {@link DiscoveryError} for a Target this driver cannot register with (e.g. `consul://`), or a malformed
 *   Target or EndPoint.
 */
export function planRegistration(ms: MicroServiceConfig, o: PlanOptions): RegistrationPlan | undefined {
  const target = ms.Target.trim();
  if (target === '' || (ms.Driver !== GOZERO_DRIVER && ms.Driver !== KRATOS_DRIVER)) return undefined;
  const u = splitTargetUrl(target);
  const what = `MicroService.Target '${redactTarget(target)}'`;
  const endpoint = advertisedEndpoint(ms.EndPoint, o.grpcPort);
  if (u.path === '') throw new DiscoveryError(`${what}: no service name after the etcd hosts`);
  // grpc-go sends the service key as the call's :authority, and Node's HTTP/2 resets a stream whose
  // :authority holds a `/`: every call to this coordinator would fail with PROTOCOL_ERROR, unlogged
  if (u.path.includes('/')) {
    throw new DiscoveryError(
      `${what}: the service name '${u.path}' contains '/', which gRPC clients send as the :authority of every call ` +
        'and a Node.js gRPC server cannot accept; use a name without /, e.g. dtmservice',
    );
  }
  if (ms.Driver === GOZERO_DRIVER) {
    if (!GOZERO_SCHEMES.includes(u.scheme)) {
      throw new DiscoveryError(
        `${what}: dtx registers with ${GOZERO_DRIVER} in etcd only (etcd:// or discov://), not '${u.scheme}://'`,
      );
    }
    const user = u.query.get('user');
    const auth = user ? { user, password: u.query.get('password') ?? '' } : undefined;
    return {
      layout: 'gozero',
      etcdHosts: parseEtcdHosts(u.authority, what),
      ...(auth === undefined ? {} : { auth }),
      keyOf: (leaseId) => `${u.path}/${leaseId}`,
      value: endpoint,
      ttlSeconds: o.ttlSeconds ?? GOZERO_TTL_SECONDS,
      endpoint,
      what,
    };
  }
  if (u.scheme !== 'etcd' && u.scheme !== KRATOS_SCHEME) {
    throw new DiscoveryError(
      `${what}: dtx registers with ${KRATOS_DRIVER} in etcd only (etcd:// or discovery://), not '${u.scheme}://'`,
    );
  }
  let etcdHosts: string[];
  if (u.authority !== '') etcdHosts = parseEtcdHosts(u.authority, what);
  else if (o.kratosEtcdHosts !== undefined && o.kratosEtcdHosts.length > 0) etcdHosts = [...o.kratosEtcdHosts];
  else throw new DiscoveryError(`${what}: name the etcd, e.g. etcd://127.0.0.1:2379/${u.path}`);
  const id = o.instanceId ?? randomUUID();
  const instance: KratosServiceInstance = {
    id,
    name: u.path,
    version: VERSION,
    metadata: {},
    endpoints: [`grpc://${endpoint}`],
  };
  return {
    layout: 'kratos',
    etcdHosts,
    keyOf: () => kratosInstanceKey(o.kratosNamespace, u.path, id),
    value: JSON.stringify(instance),
    ttlSeconds: o.ttlSeconds ?? KRATOS_TTL_SECONDS,
    endpoint,
    what,
  };
}

/**
 * The `host:port` to advertise: EndPoint as configured (`host:port`, or `grpc://host:port`); with an empty or wildcard host (`0.0.0.0`, `::`, or no
 * EndPoint at all, which then uses the gRPC port) the `POD_IP` environment variable or this machine's first
 * non-internal IPv4 address, as go-zero does for its ListenOn.
 * @throws {@link DiscoveryError} when EndPoint is not `host:port`.
 */
export function advertisedEndpoint(endPoint: string, grpcPort: number): string {
  // `grpc://host:port` is the form dtm-driver-kratos needs; the address is the same (kratos's own endpoint is
  // built from it with its scheme again)
  const e = endPoint
    .trim()
    .replace(/^grpc:\/\//i, '')
    .replace(/\/$/, '');
  const m = /^(.*):(\d{1,5})$/.exec(e);
  if (e !== '' && m === null) {
    throw new DiscoveryError(`MicroService.EndPoint '${endPoint}': expected host:port, e.g. 10.0.0.5:${grpcPort}`);
  }
  const host = m?.[1] ?? '';
  const port = m?.[2] ?? String(grpcPort);
  const wildcard = host === '' || host === '0.0.0.0' || host === '[::]' || host === '::';
  const address = `${wildcard ? internalIp() : host}:${port}`;
  if (!isHostPort(address)) {
    throw new DiscoveryError(`MicroService.EndPoint '${endPoint}': expected host:port, e.g. 10.0.0.5:${grpcPort}`);
  }
  return address;
}

function internalIp(): string {
  const pod = process.env.POD_IP;
  if (pod !== undefined && pod !== '') return pod;
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}
