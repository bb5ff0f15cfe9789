/**
 * One etcd client per etcd cluster (the same endpoint list and credentials), shared by every registration and
 * every watched target that names it.
 *
 * @module
 */
import type { Etcd3 } from 'etcd3';
import { loadOptional } from '../optional-package.js';
import type { EtcdAuth } from './target.js';

/** etcd3, imported on the first client: a server that never talks to etcd never loads it (nor needs it installed). */
let etcd3: Promise<typeof import('etcd3')> | undefined;
const loadEtcd3 = () => {
  etcd3 ??= loadOptional('etcd discovery', ['etcd3'], () => import('etcd3')).catch((err: unknown) => {
    etcd3 = undefined; // installed later (a test, a long-running host): the next use tries again
    throw err;
  });
  return etcd3;
};

/** Options of {@link EtcdClients}. */
export interface EtcdClientsOptions {
  /** Milliseconds a unary etcd call (a range read, a put, a lease grant) may take. Default: `3_000`. */
  callTimeoutMs?: number;
  /** Milliseconds to wait for a connection to etcd. Default: `3_000`. */
  dialTimeoutMs?: number;
}

/** A pool of etcd clients keyed by endpoint list and user. Nothing is connected before it is first used. */
export class EtcdClients {
  readonly #clients = new Map<string, Etcd3>();
  readonly #callTimeoutMs: number;
  readonly #dialTimeoutMs: number;
  #closed = false;

  constructor(options: EtcdClientsOptions = {}) {
    this.#callTimeoutMs = options.callTimeoutMs ?? 3_000;
    this.#dialTimeoutMs = options.dialTimeoutMs ?? 3_000;
  }

  /**
   * The client of the cluster at `hosts` (each `host:port`), created on first use.
   * @throws MissingPackageError when the optional package `etcd3` is not installed.
   */
  async get(hosts: readonly string[], auth?: EtcdAuth): Promise<Etcd3> {
    const { Etcd3 } = await loadEtcd3();
    if (this.#closed) throw new Error('the etcd clients are closed');
    const id = `${[...hosts].sort().join(',')}|${auth?.user ?? ''}`;
    let client = this.#clients.get(id);
    if (client === undefined) {
      const callTimeoutMs = this.#callTimeoutMs;
      client = new Etcd3({
        hosts: hosts.map((h) => `http://${h}`),
        dialTimeout: this.#dialTimeoutMs,
        defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + callTimeoutMs }),
        ...(auth === undefined ? {} : { auth: { username: auth.user, password: auth.password } }),
      });
      this.#clients.set(id, client);
    }
    return client;
  }

  /** Closes every client. Watches and leases of these clients stop. */
  close(): void {
    this.#closed = true;
    for (const client of this.#clients.values()) client.close();
    this.#clients.clear();
  }
}
