/**
 * A key kept in etcd for as long as this process lives: written with a lease that is kept alive, written again
 * under a new lease if the lease is lost (etcd restarted, a long network split), and revoked on {@link stop}. If
 * the process dies, the lease expires after its TTL and etcd deletes the key: watchers drop the instance.
 *
 * @module
 */
import type { Etcd3, Lease } from 'etcd3';
import type { Logger } from '../observe/logger.js';
import { DiscoveryError, messageOf } from './discovery-error.js';

/** Options of a {@link LeasedKey}. */
export interface LeasedKeyOptions {
  client: Etcd3;
  /** The key to write under the lease whose id (decimal) is given, e.g. go-zero's `<key>/<leaseId>`. */
  keyOf: (leaseId: string) => string;
  value: string;
  /** Seconds the key survives this process. */
  ttlSeconds: number;
  log: Logger;
  /** Names the registration in messages, e.g. `etcd://127.0.0.1:2379/dtmservice`. */
  what: string;
  /** Milliseconds between attempts to write the key again after the lease was lost; doubles up to 30 s. Default 1 s. */
  retryMs?: number;
}

/** One registration. {@link start} it once, {@link stop} it once. */
export class LeasedKey {
  readonly #o: LeasedKeyOptions;
  #lease: Lease | undefined;
  #key: string | undefined;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(options: LeasedKeyOptions) {
    this.#o = options;
  }

  /** The key as currently written; `undefined` before {@link start} or while it is being written again. */
  get key(): string | undefined {
    return this.#key;
  }

  /**
   * Grants the lease and writes the key.
   * @throws {@link DiscoveryError} when etcd refuses or cannot be reached.
   */
  async start(): Promise<string> {
    try {
      return await this.#write();
    } catch (err) {
      throw new DiscoveryError(`cannot register ${this.#o.what} in etcd: ${messageOf(err)}`, { cause: err });
    }
  }

  async #write(): Promise<string> {
    const lease = this.#o.client.lease(this.#o.ttlSeconds, { autoKeepAlive: true });
    this.#lease = lease;
    lease.on('lost', (err) => this.#onLost(lease, err));
    try {
      const id = await lease.grant();
      const key = this.#o.keyOf(id);
      await lease.put(key).value(this.#o.value).exec();
      if (this.#stopped || this.#lease !== lease) {
        await lease.revoke().catch(() => {});
        throw new Error('the registration was stopped while it was being written');
      }
      this.#key = key;
      this.#o.log.info('discovery: registered in etcd', { target: this.#o.what, key, value: this.#o.value });
      return key;
    } catch (err) {
      if (this.#lease === lease) this.#lease = undefined;
      lease.removeAllListeners('lost');
      // Frees the lease if it was granted (its key, if written, goes with it); stops its keep-alive either way.
      void lease.revoke().catch(() => {});
      throw err;
    }
  }

  #onLost(lease: Lease, err: unknown): void {
    if (this.#stopped || this.#lease !== lease) return;
    this.#lease = undefined;
    this.#key = undefined;
    this.#o.log.warn('discovery: the etcd lease of the registration was lost; registering again', {
      target: this.#o.what,
      error: messageOf(err),
    });
    this.#retry(this.#o.retryMs ?? 1_000);
  }

  #retry(delayMs: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#write().catch((err: unknown) => {
        const next = Math.min(delayMs * 2, 30_000);
        this.#o.log.error('discovery: cannot register in etcd; retrying', {
          target: this.#o.what,
          error: messageOf(err),
          retryInMs: next,
        });
        this.#retry(next);
      });
    }, delayMs);
    this.#timer.unref();
  }

  /** Stops the keep-alive and revokes the lease, which deletes the key. Errors are logged, not thrown. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearTimeout(this.#timer);
    const lease = this.#lease;
    this.#lease = undefined;
    const key = this.#key;
    this.#key = undefined;
    if (lease === undefined) return;
    try {
      await lease.revoke();
      this.#o.log.info('discovery: deregistered from etcd', { target: this.#o.what, key });
    } catch (err) {
      this.#o.log.warn('discovery: cannot revoke the etcd lease; the key expires with its TTL', {
        target: this.#o.what,
        key,
        ttlSeconds: this.#o.ttlSeconds,
        error: messageOf(err),
      });
      lease.release();
    }
  }
}
