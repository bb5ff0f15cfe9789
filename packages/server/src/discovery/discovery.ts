/**
 * The server's discovery: registration of its own gRPC endpoint in etcd, and resolution of the go-zero and kratos
 * targets of gRPC branches. One factory, {@link createDiscovery}, for `server.ts` to wire.
 *
 * @module
 */
import type { Logger } from '../observe/logger.js';
import { messageOf } from './discovery-error.js';
import { EtcdClients } from './etcd-clients.js';
import { EtcdTargetResolver } from './etcd-resolver.js';
import { LeasedKey } from './leased-key.js';
import { KRATOS_DRIVER, type MicroServiceConfig, planRegistration, type RegistrationPlan } from './registration.js';
import { KRATOS_SCHEME, parseEtcdHosts, splitTargetUrl } from './target.js';
import type { TargetResolver } from './target-resolver.js';

/** The configuration keys discovery reads (a subset of `DtxConfig`). */
export interface DiscoveryConfig {
  MicroService: MicroServiceConfig;
  GrpcPort: number;
}

/** Options of {@link createDiscovery} beyond DTM's configuration keys. */
export interface DiscoveryOptions {
  /**
   * The etcd endpoints (`host:port` each) that kratos targets without a host, `discovery:///<name>`, are looked
   * up in — kratos configures its registry's etcd in code, not in the target. Default: the hosts of
   * `MicroService.Target` when `MicroService.Driver` is `dtm-driver-kratos` (e.g. `etcd://10.0.0.9:2379/dtmservice`
   * → `10.0.0.9:2379`); otherwise none, and such targets are refused with a message saying how to configure them.
   * `discovery://host:2379/<name>` names its etcd itself and always works.
   */
  kratosEtcdHosts?: readonly string[];
  /** kratos's registry namespace. Default: `/microservices`. */
  kratosNamespace?: string;
  /** TTL in seconds of the registration's lease. Default: 10 (go-zero), 15 (kratos). */
  leaseTtlSeconds?: number;
  /** Milliseconds an etcd call, and the first lookup of a target, may take. Default: `3_000`. */
  etcdTimeoutMs?: number;
}

/**
 * The resolver of a {@link Discovery} (an {@link EtcdTargetResolver}), typed without the optional package etcd3 so
 * that the declarations of `@dtx/server`'s main entry compile where etcd3 is not installed.
 */
export interface DiscoveryResolver extends TargetResolver {
  /** The addresses currently known for `target` (reading them from etcd first if needed), in round-robin order. */
  instances(target: string): Promise<string[]>;
  /** Stops every watch. */
  close(): Promise<void>;
}

/** What {@link createDiscovery} returns. */
export interface Discovery {
  /** Resolves `etcd://`, `discov://` and `discovery://` branch targets (and plain `host:port`) to a `host:port`. */
  readonly resolver: DiscoveryResolver;
  /** The registration planned from `MicroService` and `GrpcPort`, or `undefined` when there is none. */
  readonly plan: RegistrationPlan | undefined;
  /**
   * Registers the gRPC endpoint (once the gRPC server listens). Does nothing without a registration; a second call
   * does nothing either.
   * @param boundGrpcPort the port the gRPC API actually bound, advertised when `MicroService.EndPoint` is empty
   *   (instead of `GrpcPort`, which may be 0). Default: `GrpcPort`.
   * @throws DiscoveryError when etcd cannot be reached or refuses; the server should not start half-registered
   *   (DTM exits in that case too).
   */
  register(boundGrpcPort?: number): Promise<void>;
  /**
   * Removes the registration (revokes its lease) and keeps resolving: call it first when stopping, so that clients
   * stop choosing this instance while calls in flight finish. Errors are logged, not thrown.
   */
  deregister(): Promise<void>;
  /** Removes the registration if still there, stops every watch and closes the etcd clients. */
  close(): Promise<void>;
}

/**
 * Builds the discovery of a server from DTM's `MicroService` keys. Nothing connects to etcd before
 * {@link Discovery.register} or the first resolve of an etcd target.
 * @throws DiscoveryError when `MicroService` asks for a registration that cannot be made (an unsupported Target
 *   scheme, a malformed Target or EndPoint).
 */
export function createDiscovery(config: DiscoveryConfig, log: Logger, options: DiscoveryOptions = {}): Discovery {
  const timeoutMs = options.etcdTimeoutMs ?? 3_000;
  const clients = new EtcdClients({ callTimeoutMs: timeoutMs, dialTimeoutMs: timeoutMs });
  const kratosEtcdHosts = options.kratosEtcdHosts ?? kratosHostsOf(config.MicroService);
  const planFor = (grpcPort: number) =>
    planRegistration(config.MicroService, {
      grpcPort,
      ...(options.leaseTtlSeconds === undefined ? {} : { ttlSeconds: options.leaseTtlSeconds }),
      ...(kratosEtcdHosts === undefined ? {} : { kratosEtcdHosts }),
      ...(options.kratosNamespace === undefined ? {} : { kratosNamespace: options.kratosNamespace }),
    });
  const plan = planFor(config.GrpcPort);
  if (config.MicroService.Target !== '' && plan === undefined) {
    log.info('discovery: MicroService.Target is set but the driver does not register in etcd; not registering', {
      driver: config.MicroService.Driver,
      target: config.MicroService.Target,
    });
  }
  const resolver = new EtcdTargetResolver({
    clients,
    log,
    lookupTimeoutMs: timeoutMs,
    ...(kratosEtcdHosts === undefined ? {} : { kratosEtcdHosts }),
    ...(options.kratosNamespace === undefined ? {} : { kratosNamespace: options.kratosNamespace }),
  });
  let registration: LeasedKey | undefined;
  let registering: Promise<void> | undefined;
  let closing: Promise<void> | undefined;
  const deregister = async () => {
    await registering?.catch(() => {});
    await registration?.stop().catch((err: unknown) => {
      log.warn('discovery: deregistration failed', { error: messageOf(err) });
    });
  };
  return {
    resolver,
    plan,
    register(boundGrpcPort?: number) {
      if (plan === undefined) return Promise.resolve();
      if (closing !== undefined) return Promise.reject(new Error('discovery is closed'));
      registering ??= (async () => {
        const p = boundGrpcPort === undefined ? plan : (planFor(boundGrpcPort) ?? plan);
        const key = new LeasedKey({
          client: await clients.get(p.etcdHosts, p.auth),
          keyOf: p.keyOf,
          value: p.value,
          ttlSeconds: p.ttlSeconds,
          log,
          what: p.what,
        });
        registration = key;
        await key.start();
      })().catch((err: unknown) => {
        registration = undefined;
        registering = undefined;
        throw err;
      });
      return registering;
    },
    deregister,
    close() {
      closing ??= (async () => {
        await deregister();
        await resolver.close();
        clients.close();
      })();
      return closing;
    },
  };
}

function kratosHostsOf(ms: MicroServiceConfig): string[] | undefined {
  if (ms.Driver !== KRATOS_DRIVER || ms.Target.trim() === '') return undefined;
  try {
    const u = splitTargetUrl(ms.Target);
    if ((u.scheme !== 'etcd' && u.scheme !== KRATOS_SCHEME) || u.authority === '') return undefined;
    return parseEtcdHosts(u.authority, 'MicroService.Target');
  } catch {
    return undefined;
  }
}
