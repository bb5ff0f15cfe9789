// Measures how long a small durable write takes on the store's file system. A durable store pays at
// least this once per commit, so it bounds sagas/s at low concurrency and explains noisy runs.
import { closeSync, fsyncSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { round2 } from './load.mjs';

/** Writes and fsyncs 4 KiB `n` times in `dir`; returns p50 / p99 / max in ms. */
export function fsyncProbe(dir, n = 50) {
  const file = join(dir, 'fsync-probe.bin');
  const buf = Buffer.alloc(4096, 1);
  const fd = openSync(file, 'w');
  const lat = [];
  try {
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      writeSync(fd, buf, 0, buf.length, (i % 16) * 4096);
      fsyncSync(fd);
      lat.push(performance.now() - t0);
    }
  } finally {
    closeSync(fd);
    rmSync(file, { force: true });
  }
  lat.sort((a, b) => a - b);
  return {
    n,
    p50Ms: round2(lat[Math.floor(n / 2)]),
    p99Ms: round2(lat[Math.min(n - 1, Math.ceil(n * 0.99) - 1)]),
    maxMs: round2(lat[n - 1]),
  };
}
