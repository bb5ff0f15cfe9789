/**
 * Resolution of go-zero and kratos targets through etcd: the {@link TargetResolver} the gRPC branch caller uses.
 *
 * @module
 */
import type { Logger } from '../observe/logger.js';
import { DiscoveryError, messageOf } from './discovery-error.js';
import type { EtcdClients } from './etcd-clients.js';
import { kratosInstanceAddress, kratosServicePrefix } from './kratos.js';
import {
  type EtcdAuth,
  type GoZeroTarget,
  isHostPort,
  type KratosTarget,
  parseTarget,
  redactTarget,
} from './target.js';
import type { TargetResolver } from './target-resolver.js';
import { WatchedPrefix } from './watched-prefix.js';

/** Options of {@link EtcdTargetResolver}. */
export interface EtcdTargetResolverOptions {
  clients: EtcdClients;
  log: Logger;
  /**
   * The etcd endpoints (`host:port` each) of kratos targets that name none, `discovery:///<name>`: kratos
   * configures its registry's etcd in code, not in the target. Default: none, and such targets are refused with a
   * message saying how to configure them.
   */
  kratosEtcdHosts?: readonly string[];
  /** The key namespace of kratos's etcd registry. Default: `/microservices`, kratos's own default. */
  kratosNamespace?: string;
  /** Milliseconds the first lookup of a target may take (read plus start of the watch). Default: `3_000`. */
  lookupTimeoutMs?: number;
}

/** One watched service, shared by every resolve of its target. */
interface Entry {
  /** Resolves when the instances have been read and the watch started. */
  ready: Promise<WatchedPrefix>;
}

/**
 * Resolves `etcd://`, `discov://` (go-zero) and `discovery://` (kratos) targets to one live instance's `host:port`,
 * round-robin over the live instances; plain `host:port` targets are returned as they are.
 *
 * The first resolve of a target reads its instances from etcd and starts a watch on them; later resolves answer
 * from memory, and the watch adds new instances and drops those whose key went away (a revoked or expired lease).
 * A target with no live instance, a malformed target or an unreachable etcd rejects with a {@link DiscoveryError};
 * the failed lookup is not cached, so the next resolve tries again.
 */
export class EtcdTargetResolver implements TargetResolver {
  readonly #o: EtcdTargetResolverOptions;
  readonly #entries = new Map<string, Entry>();
  #closed = false;

  constructor(options: EtcdTargetResolverOptions) {
    this.#o = options;
  }

  async resolve(target: string): Promise<string> {
    if (this.#closed) throw new DiscoveryError(`cannot resolve '${redactTarget(target)}': discovery is closed`);
    const parsed = parseTarget(target);
    if (parsed.layout === 'direct') {
      if (!isHostPort(parsed.address)) throw new DiscoveryError(`bad target '${target}': expected host:port`);
      return parsed.address;
    }
    const lookup = this.#lookupOf(target, parsed);
    const set = await this.#entryFor(lookup).ready;
    const address = set.next();
    if (address === undefined) {
      throw new DiscoveryError(
        `no live instance of ${lookup.what}: no key under '${lookup.prefix}' in etcd ${lookup.hosts.join(',')}; ` +
          'is the service running and registered there?',
      );
    }
    return address;
  }

  /** The addresses currently known for `target` (reading them from etcd first if needed), in round-robin order. */
  async instances(target: string): Promise<string[]> {
    const parsed = parseTarget(target);
    if (parsed.layout === 'direct') return [parsed.address];
    return (await this.#entryFor(this.#lookupOf(target, parsed)).ready).addresses();
  }

  /** Stops every watch. Resolves in flight may still complete; later ones reject. */
  async close(): Promise<void> {
    this.#closed = true;
    const entries = [...this.#entries.values()];
    this.#entries.clear();
    await Promise.all(entries.map(async (e) => (await e.ready.catch(() => undefined))?.close()));
  }

  #lookupOf(target: string, t: GoZeroTarget | KratosTarget): Lookup {
    if (t.layout === 'gozero') {
      const prefix = `${t.key}/`;
      return {
        id: `gozero|${[...t.etcdHosts].sort().join(',')}|${t.auth?.user ?? ''}|${prefix}`,
        what: `'${t.key}' (${redactTarget(target)})`,
        hosts: t.etcdHosts,
        ...(t.auth === undefined ? {} : { auth: t.auth }),
        prefix,
        decode: (_key, value) => (isHostPort(value.trim()) ? value.trim() : undefined),
      };
    }
    const hosts = t.etcdHosts ?? this.#o.kratosEtcdHosts;
    if (hosts === undefined || hosts.length === 0) {
      throw new DiscoveryError(
        `cannot resolve '${redactTarget(target)}': the target names no etcd, and none is configured for kratos targets. ` +
          `Name it in the target (discovery://127.0.0.1:2379/${t.name}), or set MicroService.Driver ` +
          'dtm-driver-kratos with MicroService.Target etcd://<etcd host:port>/<name>',
      );
    }
    const prefix = kratosServicePrefix(this.#o.kratosNamespace, t.name);
    const name = t.name;
    return {
      id: `kratos|${[...hosts].sort().join(',')}||${prefix}`,
      what: `'${t.name}' (${redactTarget(target)})`,
      hosts,
      prefix,
      decode: (_key, value) => kratosInstanceAddress(value, name),
    };
  }

  #entryFor(lookup: Lookup): Entry {
    let entry = this.#entries.get(lookup.id);
    if (entry === undefined) {
      entry = this.#open(lookup);
      this.#entries.set(lookup.id, entry);
    }
    return entry;
  }

  #open(lookup: Lookup): Entry {
    const entry: Entry = {
      ready: Promise.resolve().then(async () =>
        WatchedPrefix.open({
          client: await this.#o.clients.get(lookup.hosts, lookup.auth),
          prefix: lookup.prefix,
          decode: lookup.decode,
          log: this.#o.log,
          what: lookup.what,
          timeoutMs: this.#o.lookupTimeoutMs ?? 3_000,
          onBroken: () => {
            if (this.#entries.get(lookup.id) === entry) this.#entries.delete(lookup.id);
          },
        }),
      ),
    };
    entry.ready.catch((err: unknown) => {
      if (this.#entries.get(lookup.id) === entry) this.#entries.delete(lookup.id);
      this.#o.log.warn('discovery: lookup failed; the next call tries again', {
        service: lookup.what,
        error: messageOf(err),
      });
    });
    return entry;
  }
}

/** How one target is looked up in etcd. */
interface Lookup {
  /** Identifies the watched prefix: targets with the same one share it. */
  id: string;
  what: string;
  hosts: readonly string[];
  auth?: EtcdAuth;
  prefix: string;
  decode: (key: string, value: string) => string | undefined;
}
