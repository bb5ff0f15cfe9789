/** The server settings the core reads (seconds unless named otherwise). */
export interface CoreConfig {
  /** Base retry interval and cron lease length. DTM default 10. */
  retryInterval: number;
  /** Default timeout of prepared tcc/xa/msg. DTM default 35. */
  timeoutToFail: number;
  /** Branch call timeout. DTM default 3. */
  requestTimeout: number;
  /** Idle sleep of the cron loop. DTM default 3. */
  transCronInterval: number;
  /** Backoff retries after which the alert webhook is called. DTM default 3. */
  alertRetryLimit: number;
  /** URL POSTed when a branch keeps failing; empty disables. */
  alertWebHook: string;
  /** How many due transactions one cron step leases. */
  cronBatchSize: number;
  /** Upper bound of the backed-off retry interval. dtx default 3600 (DTM has no cap). */
  maxRetryInterval: number;
  /** Branch calls of one transaction in flight at once (concurrent saga, concurrent msg). dtx default 64. */
  maxCallsPerTrans: number;
  /** Branch calls of this process in flight at once; further calls wait for a free slot. dtx default 1024. */
  maxCalls: number;
  /**
   * Passes started in the background by submits without wait_result, at once; past it a new transaction is left to
   * the cron (it is stored and due already). dtx default 1024.
   */
  maxBackgroundPasses: number;
  /** Steps of one saga or msg (Limits.MaxSteps); also the step records one workflow may hold. dtx default 1000. */
  maxSteps: number;
  /** Failed attempts in a row after which a transaction is stuck (alerted once); 0 disables. dtx default 3. */
  stuckFailedAttempts: number;
  /** Seconds after creation after which an unfinished transaction is stuck; 0 disables. dtx default 3600. */
  stuckUnfinishedAfter: number;
}

export const DEFAULT_CORE_CONFIG: CoreConfig = {
  retryInterval: 10,
  timeoutToFail: 35,
  requestTimeout: 3,
  transCronInterval: 3,
  alertRetryLimit: 3,
  alertWebHook: '',
  cronBatchSize: 16,
  maxRetryInterval: 3600,
  maxCallsPerTrans: 64,
  maxCalls: 1024,
  maxBackgroundPasses: 1024,
  maxSteps: 1000,
  stuckFailedAttempts: 3,
  stuckUnfinishedAfter: 3600,
};
