import type { Logger } from '../observe/logger.js';
import type { Store } from '../store/store.js';
import type { Clock } from './clock.js';
import { errorMessage, InputError } from './errors.js';
import type { KV, Subscriber } from './model.js';

export const TOPICS_CAT = 'topics';

function parseSubscribers(v: string): Subscriber[] {
  try {
    const arr = JSON.parse(v) as unknown;
    return Array.isArray(arr) ? (arr as Subscriber[]) : [];
  } catch {
    return [];
  }
}

/**
 * Topics for msg `topic://name` steps (spec §2.11). Subscriptions are KV rows; each instance keeps a
 * cache refreshed every ConfigUpdateInterval. Unlike DTM, a change made through this instance is
 * visible at once, and deleted topics leave the cache on the next refresh.
 */
export class Topics {
  private cache = new Map<string, { version: number; urls: string[] }>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  /** Subscriber URLs, or undefined for an unknown topic. */
  readonly lookup = (topic: string): string[] | undefined => this.cache.get(topic)?.urls;

  async refresh(): Promise<void> {
    const next = new Map<string, { version: number; urls: string[] }>();
    let position = '';
    do {
      const page = await this.store.scanKV(TOPICS_CAT, position, 1000);
      for (const kv of page.kv) this.remember(next, kv);
      position = page.nextPosition;
    } while (position);
    this.cache = next;
  }

  private remember(into: Map<string, { version: number; urls: string[] }>, kv: KV): void {
    into.set(kv.k, { version: kv.version, urls: parseSubscribers(kv.v).map((s) => s.url) });
  }

  start(intervalSeconds: number): void {
    this.timer = setInterval(() => {
      this.refresh().catch((err: unknown) => this.log.warn('topic refresh failed', { error: errorMessage(err) }));
    }, intervalSeconds * 1000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  async subscribe(topic: string, url: string, remark: string): Promise<void> {
    if (!topic) throw new InputError('topic', 'empty topic');
    if (!url) throw new InputError('url', 'empty url');
    const now = this.clock.now();
    const [kv] = await this.store.findKV(TOPICS_CAT, topic);
    if (!kv) {
      await this.store.createKV(TOPICS_CAT, topic, JSON.stringify([{ url, remark }]), now);
      this.cache.set(topic, { version: 1, urls: [url] });
      return;
    }
    const subs = parseSubscribers(kv.v);
    if (subs.some((s) => s.url === url)) throw new Error('this url exists');
    subs.push({ url, remark });
    await this.update(kv, subs, now);
  }

  async unsubscribe(topic: string, url: string): Promise<void> {
    if (!topic) throw new InputError('topic', 'empty topic');
    if (!url) throw new InputError('url', 'empty url');
    const [kv] = await this.store.findKV(TOPICS_CAT, topic);
    if (!kv) throw new Error('no such a topic');
    const subs = parseSubscribers(kv.v);
    if (subs.length === 0) throw new Error('this topic is empty');
    const rest = subs.filter((s) => s.url !== url);
    if (rest.length === subs.length) throw new Error('no such an url ');
    await this.update(kv, rest, this.clock.now());
  }

  async deleteTopic(topic: string): Promise<void> {
    await this.store.deleteKV(TOPICS_CAT, topic);
    this.cache.delete(topic);
  }

  private async update(kv: KV, subs: Subscriber[], now: number): Promise<void> {
    kv.v = JSON.stringify(subs);
    await this.store.updateKV(kv, now);
    this.cache.set(kv.k, { version: kv.version, urls: subs.map((s) => s.url) });
  }
}
