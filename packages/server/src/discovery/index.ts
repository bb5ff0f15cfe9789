/**
 * etcd discovery: registration of the server's gRPC endpoint the way go-zero's and kratos's DTM drivers do it, and
 * resolution of `etcd://`, `discov://` and `discovery://` branch targets. See {@link createDiscovery}.
 *
 * @module
 */
export {
  createDiscovery,
  type Discovery,
  type DiscoveryConfig,
  type DiscoveryOptions,
  type DiscoveryResolver,
} from './discovery.js';
export { DiscoveryError } from './discovery-error.js';
export { EtcdClients, type EtcdClientsOptions } from './etcd-clients.js';
export { EtcdTargetResolver, type EtcdTargetResolverOptions } from './etcd-resolver.js';
export {
  KRATOS_NAMESPACE,
  KRATOS_TTL_SECONDS,
  type KratosServiceInstance,
  kratosInstanceAddress,
  kratosInstanceKey,
  kratosServicePrefix,
} from './kratos.js';
export { LeasedKey, type LeasedKeyOptions } from './leased-key.js';
export {
  advertisedEndpoint,
  GOZERO_DRIVER,
  GOZERO_TTL_SECONDS,
  KRATOS_DRIVER,
  type MicroServiceConfig,
  planRegistration,
  type RegistrationPlan,
} from './registration.js';
export { type DiscoveryTarget, parseEtcdHosts, parseTarget, redactTarget, splitTargetUrl } from './target.js';
export type { TargetResolver } from './target-resolver.js';
