/**
 * kratos's etcd registry layout (contrib/registry/etcd): one key per instance, `<namespace>/<name>/<id>`, whose
 * value is the JSON of a `ServiceInstance`:
 * `{"id":…,"name":…,"version":…,"metadata":{…},"endpoints":["grpc://10.0.0.5:9000","http://10.0.0.5:8000"]}`.
 * The key is bound to a lease (TTL 15 s by default) kept alive by the instance.
 *
 * @module
 */

/** kratos's default registry namespace. */
export const KRATOS_NAMESPACE = '/microservices';

/** kratos's default registration TTL, in seconds. */
export const KRATOS_TTL_SECONDS = 15;

/** A kratos `ServiceInstance` as stored in etcd. */
export interface KratosServiceInstance {
  id: string;
  name: string;
  version: string;
  metadata: Record<string, string> | null;
  endpoints: string[];
}

function namespaceOf(namespace: string | undefined): string {
  return (namespace ?? KRATOS_NAMESPACE).replace(/\/+$/, '');
}

/** The prefix under which the instances of `name` live: `/microservices/<name>/`. */
export function kratosServicePrefix(namespace: string | undefined, name: string): string {
  return `${namespaceOf(namespace)}/${name}/`;
}

/** The key of one instance: `/microservices/<name>/<id>`. */
export function kratosInstanceKey(namespace: string | undefined, name: string, id: string): string {
  return `${kratosServicePrefix(namespace, name)}${id}`;
}

/**
 * The gRPC address (`host:port`) of a stored instance: its first `grpc://` endpoint. `undefined` when the value
 * is not an instance of `name` or has no gRPC endpoint (kratos's resolver skips such instances too).
 */
export function kratosInstanceAddress(value: string, name: string): string | undefined {
  let si: unknown;
  try {
    si = JSON.parse(value);
  } catch {
    return undefined;
  }
  if (si === null || typeof si !== 'object') return undefined;
  const { name: siName, endpoints } = si as Partial<Record<keyof KratosServiceInstance, unknown>>;
  if (typeof siName === 'string' && siName !== '' && siName !== name) return undefined;
  if (!Array.isArray(endpoints)) return undefined;
  for (const e of endpoints) {
    if (typeof e !== 'string') continue;
    const m = /^grpc:\/\/([^/?#]+)/i.exec(e.trim());
    if (m?.[1] !== undefined) return m[1];
  }
  return undefined;
}
