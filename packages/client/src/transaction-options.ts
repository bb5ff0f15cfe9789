/**
 * The per-transaction options every mode shares (spec §2.3). They travel with prepare and submit, are stored
 * by the coordinator, and keep applying on every later retry of the transaction.
 */
import type { TransOptions } from '@dtx/protocol';
import { DtxError } from './errors.js';

/** Options of one global transaction. Each one that is left out is not sent, and the coordinator's default applies. */
export interface TransactionOptions {
  /**
   * Make `submit` (and a TCC `abort`) wait until the coordinator has run one processing pass, and report its
   * outcome: a rolled-back transaction rejects with `FailureError`, a pass stopped by an ONGOING branch with
   * `OngoingError` (TCC) or `FailureError` (saga still running). Default: `false`, the coordinator replies at once.
   */
  waitResult?: boolean;
  /**
   * Seconds after creation before the coordinator gives up: a prepared msg is back-checked, a prepared TCC is
   * cancelled, a submitted saga is compensated. Default: the coordinator's `TimeoutToFail` (35 s) for msg and
   * TCC; a saga never times out.
   */
  timeoutToFail?: number;
  /** Seconds the coordinator waits for each branch call. Default: the coordinator's `RequestTimeout` (3 s). */
  requestTimeout?: number;
  /**
   * Base interval in seconds between the coordinator's retries; it doubles after each failed attempt.
   * Default: the coordinator's `RetryInterval` (10 s).
   */
  retryInterval?: number;
  /** HTTP headers the coordinator adds to every branch call, retries included. Default: none. */
  branchHeaders?: Record<string, string>;
}

/** The wire form of `options`, with only the keys that are set (zero, `false` and `{}` are not set). */
export function toWireOptions(options: TransactionOptions & { retryLimit?: number }): TransOptions {
  const wire: TransOptions = {};
  if (options.waitResult === true) wire.wait_result = true;
  const seconds = [
    ['timeoutToFail', 'timeout_to_fail'],
    ['requestTimeout', 'request_timeout'],
    ['retryInterval', 'retry_interval'],
  ] as const;
  for (const [name, key] of seconds) {
    const v = options[name];
    if (v === undefined || v === 0) continue;
    wire[key] = checkCount(name, v);
  }
  if (options.branchHeaders !== undefined && Object.keys(options.branchHeaders).length > 0) {
    wire.branch_headers = { ...options.branchHeaders };
  }
  if (options.retryLimit !== undefined && options.retryLimit !== 0) {
    wire.retry_limit = checkCount('retryLimit', options.retryLimit);
  }
  return wire;
}

/** The coordinator rejects anything but a whole, non-negative number for these options. */
export function checkCount(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new DtxError(`option ${name} must be a whole number >= 0, got ${value}`);
  }
  return value;
}
