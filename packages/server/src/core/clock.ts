import type { Clock, Timer } from './ports.js';

export type { Clock, Timer } from './ports.js';

/** A Node timer as a {@link Timer}. */
function nodeTimer(t: NodeJS.Timeout, clear: (t: NodeJS.Timeout) => void): Timer {
  const timer: Timer = {
    cancel: () => clear(t),
    unref() {
      t.unref();
      return timer;
    },
  };
  return timer;
}

/** The wall clock and Node's timers. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer: (ms, fn) => nodeTimer(setTimeout(fn, ms), clearTimeout),
  setRepeating: (ms, fn) => nodeTimer(setInterval(fn, ms), clearInterval),
};

interface FakeTimer {
  at: number;
  /** Repeat interval (ms); 0 for a one-shot timer. */
  every: number;
  fn: () => void;
  seq: number;
}

/**
 * A clock that is moved by hand, for unit tests: time stands still until {@link advance}, which fires every timer
 * that falls due on the way, in time order (a repeating timer as often as it falls due).
 */
export class FakeClock implements Clock {
  private readonly timers = new Set<FakeTimer>();
  private seq = 0;

  constructor(private t = Date.UTC(2026, 0, 1)) {}

  now(): number {
    return this.t;
  }

  setTimer(ms: number, fn: () => void): Timer {
    return this.add(ms, 0, fn);
  }

  setRepeating(ms: number, fn: () => void): Timer {
    return this.add(ms, Math.max(1, ms), fn);
  }

  /** Timers pending now. */
  get pendingTimers(): number {
    return this.timers.size;
  }

  /** Moves the time forward by `ms`, firing the timers due meanwhile. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let next: FakeTimer | undefined;
      for (const x of this.timers) {
        if (x.at <= end && (next === undefined || x.at < next.at || (x.at === next.at && x.seq < next.seq))) next = x;
      }
      if (next === undefined) break;
      if (next.at > this.t) this.t = next.at;
      if (next.every > 0) next.at += next.every;
      else this.timers.delete(next);
      next.fn();
    }
    this.t = end;
  }

  private add(ms: number, every: number, fn: () => void): Timer {
    const x: FakeTimer = { at: this.t + Math.max(0, ms), every, fn, seq: this.seq++ };
    this.timers.add(x);
    const timer: Timer = {
      cancel: () => {
        this.timers.delete(x);
      },
      unref: () => timer,
    };
    return timer;
  }
}
