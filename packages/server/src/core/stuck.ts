import { UNFINISHED_STATUSES } from '@dtx/protocol';
import type { CoreConfig } from './core-config.js';
import type { TransGlobal } from './model.js';
import type { StuckRule } from './ports.js';

/** Why a transaction is stuck: failed attempts in a row, or unfinished for too long. */
export type StuckReason = 'attempts' | 'age';

/** The stuck rule of the config at `now`. */
export function stuckRuleOf(conf: CoreConfig, now: number): StuckRule {
  return {
    failedAttempts: conf.stuckFailedAttempts,
    createdBefore: conf.stuckUnfinishedAfter > 0 ? now - conf.stuckUnfinishedAfter * 1000 : 0,
  };
}

/** The reason `t` is stuck under `rule`, or undefined (finished transactions are never stuck). */
export function stuckReasonOf(t: TransGlobal, rule: StuckRule): StuckReason | undefined {
  if (!UNFINISHED_STATUSES.includes(t.status)) return undefined;
  if (rule.failedAttempts > 0 && (t.failedAttempts ?? 0) >= rule.failedAttempts) return 'attempts';
  if (rule.createdBefore > 0 && t.createTime < rule.createdBefore) return 'age';
  return undefined;
}
