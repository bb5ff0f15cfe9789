/**
 * The live instances of one service: the keys under an etcd prefix, read once and then kept current by a watch
 * that starts right after the read's revision, so no change falls in between. Picks instances round-robin.
 *
 * @module
 */
import type { Etcd3, IKeyValue, Watcher } from 'etcd3';
import type { Logger } from '../observe/logger.js';
import { DiscoveryError, messageOf } from './discovery-error.js';

/** Turns one etcd value into the instance's address, or `undefined` when the value is not an instance. */
export type InstanceDecoder = (key: string, value: string) => string | undefined;

/** Options of {@link WatchedPrefix.open}. */
export interface WatchedPrefixOptions {
  client: Etcd3;
  /** The key prefix, e.g. `order.rpc/`. */
  prefix: string;
  decode: InstanceDecoder;
  log: Logger;
  /** Names the service and its etcd in messages, e.g. `etcd://127.0.0.1:2379/order.rpc`. */
  what: string;
  /** Milliseconds the first read and the start of the watch may take together. */
  timeoutMs: number;
  /** Called once when the watch is cancelled by etcd and will not recover (e.g. compaction); the owner drops it. */
  onBroken: () => void;
}

/** The instances under one prefix, kept current. Create it with {@link WatchedPrefix.open}. */
export class WatchedPrefix {
  /** Key → address, in the order the keys appeared. */
  readonly #instances = new Map<string, string>();
  /** The distinct addresses, in order; rebuilt on every change. */
  #addresses: string[] = [];
  #cursor = 0;
  #watcher: Watcher | undefined;
  #closed = false;
  readonly #o: WatchedPrefixOptions;

  private constructor(o: WatchedPrefixOptions) {
    this.#o = o;
  }

  /**
   * Reads the instances and starts watching them.
   * @throws {@link DiscoveryError} when etcd cannot be read within `timeoutMs`.
   */
  static async open(o: WatchedPrefixOptions): Promise<WatchedPrefix> {
    const set = new WatchedPrefix(o);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new DiscoveryError(`${o.what}: etcd did not answer within ${o.timeoutMs} ms`)),
        o.timeoutMs,
      );
    });
    try {
      await Promise.race([set.#start(), timeout]);
    } catch (err) {
      await set.close();
      throw err instanceof DiscoveryError
        ? err
        : new DiscoveryError(`${o.what}: cannot read the instances from etcd: ${messageOf(err)}`, { cause: err });
    } finally {
      clearTimeout(timer);
    }
    return set;
  }

  async #start(): Promise<void> {
    const { client, prefix } = this.#o;
    const res = await client.getAll().prefix(prefix).exec();
    for (const kv of res.kvs) this.#put(kv, false);
    this.#rebuild();
    if (this.#closed) return; // timed out meanwhile: start no watch
    const from = (BigInt(res.header.revision) + 1n).toString();
    const watcher = client.watch().prefix(prefix).startRevision(from).watcher();
    this.#watcher = watcher;
    watcher.on('put', (kv) => {
      this.#put(kv, true);
      this.#rebuild();
    });
    watcher.on('delete', (kv) => {
      const key = kv.key.toString();
      if (this.#instances.delete(key)) {
        this.#o.log.info('discovery: instance removed', { service: this.#o.what, key });
        this.#rebuild();
      }
    });
    watcher.on('disconnected', (err) => {
      if (!this.#closed) {
        this.#o.log.warn('discovery: etcd watch disconnected, reconnecting; the known instances stay in use', {
          service: this.#o.what,
          error: messageOf(err),
        });
      }
    });
    watcher.on('error', (err) => {
      if (this.#closed) return;
      this.#o.log.warn('discovery: etcd cancelled the watch; the instances will be read again on the next call', {
        service: this.#o.what,
        error: messageOf(err),
      });
      this.#o.onBroken();
      void this.close();
    });
    if (this.#closed) return;
    await new Promise<void>((resolve, reject) => {
      watcher.once('connected', () => resolve());
      watcher.once('error', reject);
      watcher.once('end', () => reject(new Error('the watch ended before it started')));
    });
  }

  #put(kv: IKeyValue, log: boolean): void {
    const key = kv.key.toString();
    const value = kv.value.toString();
    const address = this.#o.decode(key, value);
    if (address === undefined) {
      this.#o.log.warn('discovery: ignoring an etcd value that is not an instance', {
        service: this.#o.what,
        key,
        value: value.slice(0, 200),
      });
      this.#instances.delete(key);
      return;
    }
    const known = this.#instances.get(key);
    this.#instances.set(key, address);
    if (log && known !== address)
      this.#o.log.info('discovery: instance added', { service: this.#o.what, key, address });
  }

  #rebuild(): void {
    this.#addresses = [...new Set(this.#instances.values())];
  }

  /** The distinct live addresses, in the order they appeared. */
  addresses(): string[] {
    return [...this.#addresses];
  }

  /** The next address in round-robin order, or `undefined` when there is no live instance. */
  next(): string | undefined {
    const n = this.#addresses.length;
    if (n === 0) return undefined;
    const address = this.#addresses[this.#cursor % n];
    this.#cursor = (this.#cursor + 1) % n;
    return address;
  }

  /** Stops the watch. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const watcher = this.#watcher;
    this.#watcher = undefined;
    if (watcher !== undefined) {
      watcher.removeAllListeners('put');
      watcher.removeAllListeners('delete');
      watcher.on('error', () => {});
      await watcher.cancel().catch(() => {});
    }
  }
}
