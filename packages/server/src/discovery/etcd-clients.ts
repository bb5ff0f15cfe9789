/**
 * One etcd client per etcd cluster (the same endpoint list and credentials), shared by every registration and
 * every watched target that names it.
 *
 * @module
 */
import { Etcd3 } from 'etcd3';
import type { EtcdAuth } from './target.js';

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

  /** The client of the cluster at `hosts` (each `host:port`), created on first use. */
  get(hosts: readonly string[], auth?: EtcdAuth): Etcd3 {
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
