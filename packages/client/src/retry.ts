/**
 * Retries of coordinator calls that failed for a transient reason: the coordinator was not reached (connection
 * refused, a DNS failure), answered 502 / 503 / 504, or (gRPC) UNAVAILABLE. What may be retried depends on the
 * call: `newGid`, `query`, `prepare` and `submit` are idempotent for a given gid on the coordinator, so they are
 * retried after any transient error, even one where the request may have arrived (a timeout, a reset
 * connection). `abort` and `registerBranch` are retried only when the request provably did not arrive
 * (connection refused, 502, 503): a second abort of a transaction the first one already aborted answers FAILURE.
 *
 * @module
 */
import { CoordinatorError, DtxError, type Transience } from './errors.js';

export type { Transience };

/** How coordinator calls are retried after a transient error. Every field has a default. */
export interface RetryOptions {
  /** Retries after the first attempt; `0` turns retrying off. Default: `3`. */
  retries?: number;
  /** Milliseconds before the first retry; each later one waits twice as long (with ±25 % jitter). Default: `100`. */
  minDelayMs?: number;
  /** Upper bound of the wait between two attempts, in milliseconds. Default: `2_000`. */
  maxDelayMs?: number;
}

/** {@link RetryOptions} with every default applied. */
export interface RetryPolicy {
  retries: number;
  minDelayMs: number;
  maxDelayMs: number;
}

/** The policy of `options` (`false` for none), checked: a negative or fractional count is refused. */
export function retryPolicy(options: RetryOptions | false | undefined): RetryPolicy {
  if (options === false) return { retries: 0, minDelayMs: 0, maxDelayMs: 0 };
  const p = {
    retries: options?.retries ?? 3,
    minDelayMs: options?.minDelayMs ?? 100,
    maxDelayMs: options?.maxDelayMs ?? 2_000,
  };
  for (const [k, v] of Object.entries(p)) {
    if (!Number.isSafeInteger(v) || v < 0)
      throw new DtxError(`retry option ${k} must be a whole number >= 0, got ${v}`);
  }
  return p;
}

/**
 * Runs `attempt` until it succeeds, fails for good, or the policy is spent. The error's `CoordinatorError.transience`
 * decides; `idempotent` says whether an `unknown` failure may be retried. The wait between attempts ends early when
 * `signal` aborts, and the call then rejects with the signal's reason.
 */
export async function withRetry<T>(
  policy: RetryPolicy,
  idempotent: boolean,
  signal: AbortSignal | undefined,
  attempt: () => Promise<T>,
): Promise<T> {
  for (let n = 0; ; n++) {
    try {
      return await attempt();
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      const t = err instanceof CoordinatorError ? err.transience : undefined;
      const retryable = t === 'unsent' || (t === 'unknown' && idempotent);
      if (!retryable || n >= policy.retries) throw err;
      const base = Math.min(policy.maxDelayMs, policy.minDelayMs * 2 ** n);
      await sleep(base * (0.75 + Math.random() / 2), signal);
    }
  }
}

export function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Node's codes of a connection that was never made: the request did not leave. */
const UNSENT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
]);
/** Codes of a connection that broke or timed out: the request may have arrived. */
const UNKNOWN_CODES = new Set([
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

/** How transient a transport error of an HTTP call is (undici / Node error codes, also on `cause`). */
export function httpErrorTransience(err: unknown): Transience | undefined {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') {
      if (UNSENT_CODES.has(code)) return 'unsent';
      if (UNKNOWN_CODES.has(code)) return 'unknown';
    }
    if (e.name === 'TimeoutError') return 'unknown';
  }
  return undefined;
}

/** How transient an HTTP status of the coordinator is: 502 / 503 did not process the call, 504 may have. */
export function httpStatusTransience(status: number): Transience | undefined {
  if (status === 502 || status === 503) return 'unsent';
  if (status === 504) return 'unknown';
  return undefined;
}

/** Combines the per-call timeout with the caller's signal (either ends the call). */
export function callSignal(timeoutMs: number, signal: AbortSignal | undefined): AbortSignal {
  const timeout = AbortSignal.timeout(timeoutMs);
  return signal === undefined ? timeout : AbortSignal.any([timeout, signal]);
}
