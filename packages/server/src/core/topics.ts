import { errorMessage } from '../util/error-message.js';
import { InputError, NotFoundError, UniqueConflictError } from './errors.js';
import type { KV, Subscriber } from './model.js';
import type { Clock, Logger, Store, Timer } from './ports.js';
import { checkStoredText } from './stored-text.js';

export const TOPICS_CAT = 'topics';

/** A topic name is a KV key: varchar(128) in the SQL stores. */
export const MAX_TOPIC = 128;
/** A subscriber URL, as long as a branch URL may be. */
export const MAX_TOPIC_URL = 8192;
/** A subscriber's remark. */
export const MAX_REMARK = 1024;

/** Empty, too wide or unstorable topic / url / remark: an InputError naming the field. */
function checkSubscription(topic: string, url: string, remark = ''): void {
  if (!topic) throw new InputError('topic', 'empty topic');
  if (!url) throw new InputError('url', 'empty url');
  checkStoredText(topic, 'topic', MAX_TOPIC);
  checkStoredText(url, 'url', MAX_TOPIC_URL);
  checkStoredText(remark, 'remark', MAX_REMARK);
}

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
  private timer: Timer | undefined;

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
    this.timer = this.clock.setRepeating(intervalSeconds * 1000, () => {
      this.refresh().catch((err: unknown) => this.log.warn('topic refresh failed', { error: errorMessage(err) }));
    });
    this.timer.unref();
  }

  stop(): void {
    this.timer?.cancel();
  }

  async subscribe(topic: string, url: string, remark: string): Promise<void> {
    checkSubscription(topic, url, remark);
    const now = this.clock.now();
    const [kv] = await this.store.findKV(TOPICS_CAT, topic);
    if (!kv) {
      await this.store.createKV(TOPICS_CAT, topic, JSON.stringify([{ url, remark }]), now);
      this.cache.set(topic, { version: 1, urls: [url] });
      return;
    }
    const subs = parseSubscribers(kv.v);
    if (subs.some((s) => s.url === url)) throw new UniqueConflictError('this url exists');
    subs.push({ url, remark });
    await this.update(kv, subs, now);
  }

  async unsubscribe(topic: string, url: string): Promise<void> {
    checkSubscription(topic, url);
    const [kv] = await this.store.findKV(TOPICS_CAT, topic);
    if (!kv) throw new NotFoundError('no such a topic');
    const subs = parseSubscribers(kv.v);
    if (subs.length === 0) throw new NotFoundError('this topic is empty');
    const rest = subs.filter((s) => s.url !== url);
    if (rest.length === subs.length) throw new NotFoundError('no such an url ');
    await this.update(kv, rest, this.clock.now());
  }

  async deleteTopic(topic: string): Promise<void> {
    checkStoredText(topic, 'topic', MAX_TOPIC);
    await this.store.deleteKV(TOPICS_CAT, topic);
    this.cache.delete(topic);
  }

  private async update(kv: KV, subs: Subscriber[], now: number): Promise<void> {
    kv.v = JSON.stringify(subs);
    await this.store.updateKV(kv, now);
    this.cache.set(kv.k, { version: kv.version, urls: subs.map((s) => s.url) });
  }
}
