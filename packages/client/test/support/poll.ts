/**
 * Polling with a deadline: the way tests wait for the coordinator's background work. Never a fixed sleep;
 * the pause between two looks is short and does not decide the outcome.
 */
import { setTimeout as pause } from 'node:timers/promises';

/** Options of {@link waitFor}. */
export interface WaitForOptions {
  /** Milliseconds before giving up. Default: `10_000`. */
  timeoutMs?: number;
  /** Milliseconds between two looks. Default: `20`. */
  intervalMs?: number;
  /** What is awaited, for the error message. Default: `'condition'`. */
  what?: string;
}

/**
 * Calls `probe` until it returns something other than `undefined` and returns that; rejects with the last
 * seen value when the deadline passes.
 */
export async function waitFor<T>(probe: () => Promise<T | undefined> | T | undefined, options: WaitForOptions = {}) {
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${options.what ?? 'condition'}; last error: ${String(last)}`);
    }
    await pause(options.intervalMs ?? 20);
  }
}
