/**
 * Parsing of the scheme targets that go-zero and kratos services are named by (spec §5.5):
 *
 * | target | layout | etcd | instances |
 * |---|---|---|---|
 * | `etcd://h1:2379,h2:2379/order.rpc` | go-zero | the hosts of the URL | values under `order.rpc/` |
 * | `discov://h1:2379/order.rpc` | go-zero | the same | the same |
 * | `discovery://h1:2379/order` | kratos | the hosts of the URL | JSON values under `/microservices/order/` |
 * | `discovery:///order` | kratos | the configured ones (see `DiscoveryOptions.kratosEtcdHosts`) | the same |
 * | `127.0.0.1:9000` | none | — | the address itself |
 *
 * go-zero's `?user=…&password=…` query (etcd authentication) is understood on go-zero targets.
 *
 * @module
 */
import { DiscoveryError } from './discovery-error.js';

/** etcd's client port, used when a host of a target has none. */
export const DEFAULT_ETCD_PORT = 2379;

/** etcd user and password, from go-zero's `?user=&password=` target query. */
export interface EtcdAuth {
  readonly user: string;
  readonly password: string;
}

/** A target in go-zero's etcd layout: every value under `<key>/` is one instance's `host:port`. */
export interface GoZeroTarget {
  readonly layout: 'gozero';
  /** `etcd` or `discov`: go-zero treats both alike. */
  readonly scheme: string;
  /** The etcd endpoints, `host:port` each. */
  readonly etcdHosts: readonly string[];
  /** The service key, e.g. `order.rpc`. */
  readonly key: string;
  readonly auth?: EtcdAuth;
}

/** A target in kratos's etcd registry layout: one JSON `ServiceInstance` per key under `/microservices/<name>/`. */
export interface KratosTarget {
  readonly layout: 'kratos';
  /** The etcd endpoints named by the target, or `undefined` for `discovery:///name` (use the configured ones). */
  readonly etcdHosts: readonly string[] | undefined;
  /** The service name, e.g. `order`. */
  readonly name: string;
}

/** A plain `host:port`: nothing to look up. */
export interface DirectTarget {
  readonly layout: 'direct';
  readonly address: string;
}

/** A parsed target. */
export type DiscoveryTarget = GoZeroTarget | KratosTarget | DirectTarget;

/** The schemes of go-zero's etcd resolver. */
export const GOZERO_SCHEMES: readonly string[] = ['etcd', 'discov'];
/** The scheme of kratos's discovery resolver. */
export const KRATOS_SCHEME = 'discovery';

const URL_SHAPE = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\/([^/?#]*)([^?#]*)(?:\?([^#]*))?(?:#.*)?$/;

/** The parts of `scheme://authority/path?query`, without decoding (hosts may be a comma list, which `URL` refuses). */
export interface TargetUrl {
  readonly scheme: string;
  readonly authority: string;
  /** The path without its leading `/`. */
  readonly path: string;
  readonly query: URLSearchParams;
}

/**
 * Splits a scheme target into its parts.
 * @throws {@link DiscoveryError} when `target` is not `scheme://authority/path`.
 */
export function splitTargetUrl(target: string): TargetUrl {
  const m = URL_SHAPE.exec(target.trim());
  if (m === null) {
    throw new DiscoveryError(
      `bad target '${redactTarget(target)}': expected scheme://host:port/name, e.g. etcd://127.0.0.1:2379/order.rpc`,
    );
  }
  return {
    scheme: (m[1] ?? '').toLowerCase(),
    authority: m[2] ?? '',
    path: (m[3] ?? '').replace(/^\/+/, '').replace(/\/+$/, ''),
    query: new URLSearchParams(m[4] ?? ''),
  };
}

/**
 * The etcd endpoints of a comma list such as `h1:2379,h2`: each `host:port`, with port 2379 where it is missing.
 * @throws {@link DiscoveryError} when the list is empty or a host is malformed.
 */
export function parseEtcdHosts(list: string, what: string): string[] {
  const hosts = list
    .split(',')
    .map((h) => h.trim())
    .filter((h) => h !== '');
  if (hosts.length === 0) throw new DiscoveryError(`${what}: no etcd host given`);
  return hosts.map((h) => {
    const bare = h.replace(/^https?:\/\//, '');
    const port = /^(?:\[[^\]]+\]|[^:]+):(\d+)$/.exec(bare);
    if (port !== null) return bare;
    if (/^(?:\[[^\]]+\]|[^:/\s]+)$/.test(bare)) return `${bare}:${DEFAULT_ETCD_PORT}`;
    throw new DiscoveryError(`${what}: bad etcd host '${h}', expected host:port`);
  });
}

function authOf(query: URLSearchParams): EtcdAuth | undefined {
  const user = query.get('user');
  if (user === null || user === '') return undefined;
  return { user, password: query.get('password') ?? '' };
}

/**
 * Parses a branch target (the part of a branch URL before the gRPC method).
 * @throws {@link DiscoveryError} for an unknown scheme or a target without a service name.
 */
export function parseTarget(target: string): DiscoveryTarget {
  try {
    return parseTargetUnsafe(target);
  } catch (err) {
    if (err instanceof DiscoveryError) throw new DiscoveryError(err.message.replaceAll(target, redactTarget(target)));
    throw err;
  }
}

function parseTargetUnsafe(target: string): DiscoveryTarget {
  if (!target.includes('://')) {
    if (target.trim() === '') throw new DiscoveryError('empty target');
    return { layout: 'direct', address: target.trim() };
  }
  const u = splitTargetUrl(target);
  if (GOZERO_SCHEMES.includes(u.scheme)) {
    if (u.path === '') throw new DiscoveryError(`bad target '${target}': no service key after the etcd hosts`);
    const auth = authOf(u.query);
    return {
      layout: 'gozero',
      scheme: u.scheme,
      etcdHosts: parseEtcdHosts(u.authority, `target '${target}'`),
      key: u.path,
      ...(auth === undefined ? {} : { auth }),
    };
  }
  if (u.scheme === KRATOS_SCHEME) {
    if (u.path === '')
      throw new DiscoveryError(`bad target '${target}': no service name, expected discovery:///<name>`);
    return {
      layout: 'kratos',
      etcdHosts: u.authority === '' ? undefined : parseEtcdHosts(u.authority, `target '${target}'`),
      name: u.path,
    };
  }
  throw new DiscoveryError(
    `unsupported target scheme '${u.scheme}' in '${target}': dtx resolves etcd://, discov:// (go-zero) and ` +
      'discovery:// (kratos on etcd) targets, and plain host:port',
  );
}

/** `target` as shown in messages and logs: the value of a `password` query parameter is masked. */
export function redactTarget(target: string): string {
  return target.replace(/([?&]password=)[^&#]*/gi, '$1***');
}

/** True when `value` looks like `host:port` (an IPv6 host in brackets). */
export function isHostPort(value: string): boolean {
  return /^(?:\[[0-9a-fA-F:.]+\]|[^\s:/[\]]+):\d{1,5}$/.test(value);
}
