/**
 * The four services' protos (`examples/mall/proto`), loaded with proto-loader: field names as written (`Uid`,
 * `Pid`), int64 as JS numbers (ids and amounts stay far below 2^53), defaults filled in, as Go's generated structs.
 *
 * @module
 */
import type { ServiceDefinition } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';

const PROTO_DIR = new URL('../../../proto/', import.meta.url).pathname;

/** The four domains of the mall. */
export type Domain = 'user' | 'product' | 'order' | 'pay';

const SERVICE_NAMES: Record<Domain, string> = {
  user: 'user.User',
  product: 'product.Product',
  order: 'order.Order',
  pay: 'pay.Pay',
};

/** The grpc-js service definition of a domain (e.g. `user.User`), whose methods serialize their messages. */
export function serviceDefinition(domain: Domain): ServiceDefinition {
  const pkg = loadSync(`${PROTO_DIR}${domain}.proto`, {
    keepCase: true,
    longs: Number,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const def = pkg[SERVICE_NAMES[domain]];
  if (def === undefined || !('Create' in def || 'Login' in def)) {
    throw new Error(`proto ${domain}.proto has no service ${SERVICE_NAMES[domain]}`);
  }
  return def as unknown as ServiceDefinition;
}

/** The full method path of a domain's method, e.g. `/order.Order/Create`. */
export function methodPath(domain: Domain, method: string): string {
  return `/${SERVICE_NAMES[domain]}/${method}`;
}

/** The protobuf bytes of a request message of `domain`'s `method`, e.g. a saga step's payload. */
export function encodeRequest(def: ServiceDefinition, method: string, message: object): Buffer {
  const m = def[method];
  if (m === undefined) throw new Error(`no method ${method} in the service`);
  return m.requestSerialize(message);
}
