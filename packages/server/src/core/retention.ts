import { errorMessage } from '../util/error-message.js';
import type { Clock, Logger, Store, Timer } from './ports.js';

export interface RetentionOptions {
  /** Seconds a finished transaction is kept after its last update; 0 keeps everything. */
  finishedAge: number;
  /** Seconds between clean-up rounds. */
  interval: number;
  /** Transactions deleted per store call: the bound on how long one call holds the store. */
  batchSize: number;
}

/**
 * Deletes finished transactions older than `finishedAge`, in bounded batches with a turn of the event
 * loop between them, so live traffic interleaves with the clean-up. Every instance may run it: deleting
 * is idempotent.
 */
export class Retention {
  private timer: Timer | undefined;
  private running: Promise<number> | undefined;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly o: RetentionOptions,
  ) {}

  /** One round: delete everything due, batch by batch. Returns how many were deleted. */
  async runOnce(): Promise<number> {
    if (this.o.finishedAge <= 0) return 0;
    const before = this.clock.now() - this.o.finishedAge * 1000;
    let total = 0;
    for (;;) {
      const n = await this.store.deleteFinished(before, this.o.batchSize);
      total += n;
      if (n < this.o.batchSize) break;
      await new Promise((r) => setImmediate(r));
    }
    if (total > 0) this.log.info('retention deleted finished transactions', { count: total });
    return total;
  }

  start(): void {
    if (this.o.finishedAge <= 0) return;
    this.timer = this.clock.setRepeating(this.o.interval * 1000, () => {
      if (this.running) return;
      this.running = this.runOnce()
        .catch((err: unknown) => {
          this.log.warn('retention round failed; next round retries', { error: errorMessage(err) });
          return 0;
        })
        .finally(() => {
          this.running = undefined;
        });
    });
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.timer?.cancel();
    await this.running;
  }
}
