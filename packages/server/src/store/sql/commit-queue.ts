import type { StoreObserver } from '../store.js';

/** One queued write and the promise of its caller. */
export interface Pending<W> {
  readonly write: W;
  resolve(value: unknown): void;
  reject(err: unknown): void;
}

/**
 * Runs one batch: must settle every Pending of it, resolving only writes whose commit succeeded. A
 * rejection of the returned promise rejects the writes it left unsettled.
 */
export type BatchRunner<W> = (batch: Pending<W>[]) => Promise<void>;

export interface CommitQueueOptions<W> {
  /** Most writes in one database transaction. Default 256. */
  maxBatch?: number;
  /** Batches (hence connections) committing at once. Default 1: no two batches of one process can deadlock. */
  maxInFlight?: number;
  /** Size of a write, for `maxBatchWeight`; default 1 per write. */
  weight?: (w: W) => number;
  /** A batch stops growing once it reaches this weight (a heavier write still goes, alone). Default unlimited. */
  maxBatchWeight?: number;
  /** Told of every batch (metrics). */
  observer?: StoreObserver | undefined;
}

/**
 * Groups the writes of concurrent transactions into shared commits, for the PostgreSQL and MySQL stores: a
 * queue in front of a batch runner, with no SQL of its own (the SQLite store's SqliteGroupCommit runs its
 * batches itself, synchronously). Writes queued while a batch commits, or within one turn of the event loop,
 * go into the next batch; the backend's runner executes a batch in one BEGIN … COMMIT and settles each
 * write on its own. Idle, a write starts its batch on the next turn, so a lone caller waits no longer
 * than its own commit.
 */
export class CommitQueue<W> {
  private queue: Pending<W>[] = [];
  private inFlight = 0;
  private scheduled = false;
  private drained: (() => void)[] = [];
  private readonly maxBatch: number;
  private readonly maxInFlight: number;
  private readonly weight: (w: W) => number;
  private readonly maxWeight: number;
  private readonly observer: StoreObserver | undefined;

  constructor(
    private readonly run: BatchRunner<W>,
    o: CommitQueueOptions<W> = {},
  ) {
    this.maxBatch = o.maxBatch ?? 256;
    this.maxInFlight = o.maxInFlight ?? 1;
    this.weight = o.weight ?? (() => 1);
    this.maxWeight = o.maxBatchWeight ?? Number.POSITIVE_INFINITY;
    this.observer = o.observer;
  }

  /** Queue a write; settles once its batch committed (or failed). */
  submit<T>(write: W): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ write, resolve: resolve as (v: unknown) => void, reject });
      this.schedule();
    });
  }

  /** Writes queued or committing. */
  get pending(): number {
    return this.queue.length + this.inFlight;
  }

  /** Resolves once every write submitted so far has settled. */
  drain(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.drained.push(resolve));
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight >= this.maxInFlight || this.queue.length === 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  private take(): Pending<W>[] {
    let n = 0;
    let weight = 0;
    while (n < this.queue.length && n < this.maxBatch) {
      const w = this.weight(this.queue[n]!.write);
      if (n > 0 && weight + w > this.maxWeight) break;
      weight += w;
      n++;
    }
    return this.queue.splice(0, n);
  }

  private flush(): void {
    while (this.inFlight < this.maxInFlight && this.queue.length > 0) {
      const batch = this.take();
      this.observer?.batch(batch.length);
      this.inFlight++;
      this.run(batch)
        .catch((err: unknown) => {
          for (const p of batch) p.reject(err); // promises already settled ignore this
        })
        .finally(() => {
          this.inFlight--;
          if (this.pending === 0) for (const d of this.drained.splice(0)) d();
          this.schedule();
        });
    }
  }
}
