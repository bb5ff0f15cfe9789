import { randomBytes } from 'node:crypto';
import { errorMessage } from '../util/error-message.js';
import type { PassDeps } from './pass.js';
import type { Timer } from './ports.js';
import type { Processor } from './processor.js';

export interface CronStepOptions {
  /** Milliseconds the clock is moved forward for the pass's decisions (test mode). */
  forwardMs?: number;
  /** Milliseconds added to the lease window: pick trans due that much later (test mode). */
  windowMs?: number;
  /** How many trans to lease; default the configured batch size. */
  limit?: number;
}

/**
 * The cron (spec §7.3): lease due transactions in batches (next_cron_time is the lease: pushed to
 * now + RetryInterval), run one pass for each with the branches from the store, and sleep
 * TransCronInterval (less up to one second of jitter) when nothing is due.
 */
export class Cron {
  private stopped = true;
  private sleepTimer: Timer | undefined;
  private wakeSleep: (() => void) | undefined;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly deps: PassDeps,
    private readonly processor: Processor,
  ) {}

  /** One step: lease due trans and process them concurrently. Returns the gids processed. */
  async step(o: CronStepOptions = {}): Promise<string[]> {
    const { store, clock, conf } = this.deps;
    const now = clock.now();
    const owner = randomBytes(8).toString('hex');
    const leaseUntil = now + conf.retryInterval * 1000;
    const due = await store.lockDue(now + (o.windowMs ?? 0), leaseUntil, owner, o.limit ?? conf.cronBatchSize, now);
    await Promise.all(
      due.map(async (t) => {
        if (this.processor.isWaiting(t.gid)) return; // queued in this instance: it starts when a pass ends
        if (this.processor.isActive(t.gid)) {
          // a pass of this instance is on it already: its own lease stands, if longer than the cron's
          await this.processor
            .keepLease(t.gid, leaseUntil)
            .catch((err: unknown) => this.processor.logPassError(t, err));
          return;
        }
        t.nextCronTime = leaseUntil; // the lease, whatever the store's row read back says
        this.deps.metrics?.retry(t.transType);
        try {
          const branches = await store.findBranches(t.gid);
          await this.processor.runPass(t, branches, o.forwardMs ?? 0);
        } catch (err) {
          this.processor.logPassError(t, err);
        }
      }),
    );
    return due.map((t) => t.gid);
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      let found = 0;
      try {
        found = (await this.step()).length;
      } catch (err) {
        this.deps.log.warn('cron step failed', { error: errorMessage(err) });
      }
      if (found === 0 && !this.stopped) {
        const ms = Math.max(0, this.deps.conf.transCronInterval * 1000 - Math.random() * 1000);
        await new Promise<void>((resolve) => {
          this.wakeSleep = resolve;
          this.sleepTimer = this.deps.clock.setTimer(ms, resolve);
        });
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.sleepTimer?.cancel();
    this.wakeSleep?.();
    await this.loop;
  }
}
