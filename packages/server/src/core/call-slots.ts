/**
 * A counting semaphore for branch calls: at most `size` run at once, the others wait in arrival order. `acquire`
 * resolves at once (without allocating a promise chain beyond its own) while a slot is free, so the common case
 * costs a counter increment.
 */
export class CallSlots {
  private used = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(readonly size: number) {}

  /** Calls running now. */
  get inUse(): number {
    return this.used;
  }

  /** Calls waiting for a slot. */
  get queued(): number {
    return this.waiting.length;
  }

  /** Resolves when a slot is taken; pair every call with one {@link release}. */
  acquire(): Promise<void> | undefined {
    if (this.used < this.size) {
      this.used++;
      return undefined;
    }
    return new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  /** Gives a slot back, handing it straight to the longest waiter when there is one. */
  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.used--;
  }
}

/**
 * Runs `fn` over `items` with at most `limit` calls in flight, in order of the items; rejects with the first
 * error once every started call has settled (so that no call outlives the caller).
 */
export async function mapLimited<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  let failed: { err: unknown } | undefined;
  const worker = async () => {
    while (next < items.length && failed === undefined) {
      const i = next++;
      try {
        out[i] = await fn(items[i]!);
      } catch (err) {
        failed ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed) throw failed.err;
  return out;
}
