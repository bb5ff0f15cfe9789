/**
 * The eight services by name (`user-api`, `user-rpc`, …), each started from its yaml config.
 *
 * @module
 */
import { type ApiConf, apiConf, type RpcConf, rpcConf } from './common/config.js';
import { type KitOptions, ServiceKit } from './common/service-kit.js';
import { startOrderApi } from './order/api.js';
import { startOrderRpc } from './order/rpc.js';
import { startPayApi } from './pay/api.js';
import { startPayRpc } from './pay/rpc.js';
import { startProductApi } from './product/api.js';
import { type ProductRpc, startProductRpc } from './product/rpc.js';
import { startUserApi } from './user/api.js';
import { startUserRpc } from './user/rpc.js';

/** The services, in start order: rpcs before the apis that call them. */
export const SERVICE_NAMES = [
  'user-rpc',
  'product-rpc',
  'order-rpc',
  'pay-rpc',
  'user-api',
  'product-api',
  'order-api',
  'pay-api',
] as const;

/** A service's name. */
export type ServiceName = (typeof SERVICE_NAMES)[number];

/** True for a known service name. */
export function isServiceName(s: string): s is ServiceName {
  return (SERVICE_NAMES as readonly string[]).includes(s);
}

/** A running service. */
export interface RunningService {
  name: ServiceName;
  kit: ServiceKit;
  /** The HTTP port of an api, the gRPC port of an rpc. */
  port: number;
  /** The product rpc's test switches. */
  productRpc?: ProductRpc;
  /** Stops it: deregisters from etcd, closes listeners and pools, flushes traces. */
  close(): Promise<void>;
}

const RPCS: Record<string, (c: RpcConf, k: ServiceKit) => Promise<{ port: number }>> = {
  'user-rpc': startUserRpc,
  'product-rpc': startProductRpc,
  'order-rpc': startOrderRpc,
  'pay-rpc': startPayRpc,
};
const APIS: Record<string, (c: ApiConf, k: ServiceKit) => Promise<{ port: number }>> = {
  'user-api': startUserApi,
  'product-api': startProductApi,
  'order-api': startOrderApi,
  'pay-api': startPayApi,
};

/** Starts service `name` with its config (a parsed yaml mapping). */
export async function startService(
  name: ServiceName,
  raw: Record<string, unknown>,
  options: KitOptions = {},
): Promise<RunningService> {
  const rpc = RPCS[name];
  const conf = rpc !== undefined ? rpcConf(raw) : apiConf(raw);
  const kit = await ServiceKit.create(conf, options);
  try {
    const started = rpc !== undefined ? await rpc(conf as RpcConf, kit) : await APIS[name]!(conf as ApiConf, kit);
    return {
      name,
      kit,
      port: started.port,
      ...(name === 'product-rpc' ? { productRpc: started as ProductRpc } : {}),
      close: () => kit.close(),
    };
  } catch (err) {
    await kit.close();
    throw err;
  }
}
