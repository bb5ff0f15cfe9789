// Closed-loop load: `concurrency` workers each run one operation after another until the duration is
// over. An operation is an async function returning { ok: true } or { ok: false, error: string }.
import { setMaxListeners } from 'node:events';

/**
 * @typedef {(signal: AbortSignal) => Promise<{ ok: boolean, error?: string }>} Op
 * @typedef {{ ops: number, errors: number, elapsedS: number, tps: number, p50: number|null, p90: number|null,
 *   p99: number|null, max: number|null, mean: number|null, errorKinds: Record<string, number> }} PhaseStats
 */

/**
 * Runs `op` with `concurrency` closed-loop workers for `durationS` seconds, or until `maxOps` operations have
 * been started when that comes first. Operations still running at the end are awaited, and aborted `graceS`
 * seconds after the end. `stop` ends the phase early.
 * @param {{ op: Op, concurrency: number, durationS: number, maxOps?: number, graceS?: number, stop?: AbortSignal }} o
 * @returns {Promise<PhaseStats>}
 */
export async function runClosedLoop({ op, concurrency, durationS, maxOps = Infinity, graceS = 15, stop }) {
  const ac = new AbortController();
  setMaxListeners(0, ac.signal); // every in-flight request listens on it
  const onStop = () => ac.abort(stop?.reason);
  stop?.addEventListener('abort', onStop, { once: true });
  if (stop?.aborted) onStop();
  /** @type {number[]} latencies of OK operations, ms */
  const lat = [];
  let errors = 0;
  /** @type {Record<string, number>} */
  const errorKinds = {};
  const start = performance.now();
  const endAt = start + durationS * 1000;
  const abortTimer = setTimeout(() => ac.abort(new Error('phase grace period exceeded')), (durationS + graceS) * 1000);

  let started = 0;
  const worker = async () => {
    while (performance.now() < endAt && started < maxOps && !ac.signal.aborted) {
      started++;
      const t0 = performance.now();
      let r;
      try {
        r = await op(ac.signal);
      } catch (e) {
        r = { ok: false, error: errorText(e) };
      }
      if (r.ok) {
        lat.push(performance.now() - t0);
      } else {
        errors++;
        const k = (r.error ?? 'unknown').slice(0, 160);
        errorKinds[k] = (errorKinds[k] ?? 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  clearTimeout(abortTimer);
  stop?.removeEventListener('abort', onStop);
  const elapsedS = (performance.now() - start) / 1000;
  return { ...summarise(lat, elapsedS), errors, errorKinds };
}

/** Throughput and latency percentiles (nearest rank) of OK operations. */
export function summarise(lat, elapsedS) {
  const sorted = Float64Array.from(lat).sort();
  const n = sorted.length;
  const pct = (p) => (n ? round2(sorted[Math.min(n - 1, Math.ceil((p / 100) * n) - 1)]) : null);
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    ops: n,
    elapsedS: round2(elapsedS),
    tps: round2(n / elapsedS),
    p50: pct(50),
    p90: pct(90),
    p99: pct(99),
    max: n ? round2(sorted[n - 1]) : null,
    mean: n ? round2(sum / n) : null,
  };
}

export function errorText(e) {
  if (!(e instanceof Error)) return String(e);
  const code = /** @type {any} */ (e).code;
  return code ? `${code}: ${e.message}` : e.message;
}

export function round2(v) {
  return Math.round(v * 100) / 100;
}

/**
 * The warm-up each server start gets before its first measured level (`--warmup-ops`): this many sagas at
 * this concurrency. A JIT-compiled server (dtx) runs its first few thousand sagas 2–4× slower than later, as
 * V8 tiers its functions up; a level measured right after start-up at C=1 measures that, not the server.
 */
export const WARMUP_OPS = 3000;
export const WARMUP_CONCURRENCY = 50;
