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
}

export const DEFAULT_CORE_CONFIG: CoreConfig = {
  retryInterval: 10,
  timeoutToFail: 35,
  requestTimeout: 3,
  transCronInterval: 3,
  alertRetryLimit: 3,
  alertWebHook: '',
  cronBatchSize: 16,
};
