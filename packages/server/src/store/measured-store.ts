import type { DtxMetrics } from '../observe/metrics.js';
import type { Store } from './store.js';

/** The store methods passed through untimed. */
const READS = [
  'ping',
  'close',
  'findTrans',
  'scanTrans',
  'countUnfinished',
  'findStuck',
  'countStuck',
  'findBranches',
  'scanKV',
  'findKV',
] as const;

/** The store writes timed by {@link measuredStore} (their names are the `op` label). */
const WRITES = [
  'saveNew',
  'insertBranches',
  'updateBranches',
  'changeStatus',
  'touchCronTime',
  'recordFailedAttempt',
  'claimStuckAlert',
  'lockDue',
  'resetCronTime',
  'resetTransCronTime',
  'deleteFinished',
  'createKV',
  'updateKV',
  'deleteKV',
] as const;

/** Every Store method is in READS or WRITES (a compile error names one that is not). */
const everyMethodCovered: [Exclude<keyof Store, (typeof READS)[number] | (typeof WRITES)[number]>] extends [never]
  ? true
  : never = true;
void everyMethodCovered;

/**
 * The store with each write timed into dtx_store_write_duration_seconds{op}: one performance.now() pair per write,
 * the label child resolved once per operation here.
 */
export function measuredStore(store: Store, m: DtxMetrics): Store {
  const out: Record<string, unknown> = {};
  for (const name of READS) out[name] = (store[name] as (...a: unknown[]) => unknown).bind(store);
  for (const op of WRITES) {
    const write = (store[op] as (...a: unknown[]) => Promise<unknown>).bind(store);
    const child = m.storeWriteChild(op);
    // the caller awaits the backend's own promise: no extra async frame on the write path
    out[op] = (...args: unknown[]) => {
      const started = performance.now();
      const p = write(...args);
      const done = () => child.observe((performance.now() - started) / 1000);
      p.then(done, done);
      return p;
    };
  }
  return out as unknown as Store;
}
