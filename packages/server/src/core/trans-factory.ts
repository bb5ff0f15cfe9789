import type { CoreConfig } from './core-config.js';
import { encodeOptions, type TransBranch, type TransGlobal, withTraceContext } from './model.js';
import { modeOf } from './modes.js';
import { resetInterval } from './pass.js';
import type { TraceContext } from './ports.js';
import type { TransInput } from './trans-input.js';
import type { TopicLookup } from './trans-mode.js';

export type { TopicLookup } from './trans-mode.js';

/**
 * A new global transaction from a request (spec §2.4, §7.1). `trace` is the trace context its branches will
 * continue (stored with its options): the request's, or the span dtx made for the request.
 */
export function newTrans(
  input: TransInput,
  status: TransGlobal['status'],
  now: number,
  conf: CoreConfig,
  trace: TraceContext | undefined = input.trace,
): TransGlobal {
  const opts = withTraceContext(input.opts, trace);
  const t: TransGlobal = {
    gid: input.gid,
    transType: input.transType,
    status,
    queryPrepared: input.queryPrepared,
    protocol: input.protocol || 'http',
    createTime: now,
    updateTime: now,
    options: encodeOptions(opts),
    customData: input.customData,
    nextCronInterval: 0,
    nextCronTime: 0,
    owner: '',
    extData: '',
    result: '',
    rollbackReason: input.rollbackReason,
    opts,
  };
  t.nextCronInterval = resetInterval(t, conf);
  t.nextCronTime = now + t.nextCronInterval * 1000;
  return t;
}

/**
 * The branches a prepare or submit brings with it (spec §6.3): those its mode makes of the steps (saga, msg), none
 * for the others.
 */
export function generateBranches(input: TransInput, now: number, topics: TopicLookup): TransBranch[] {
  return modeOf(input.transType)?.stepBranches?.(input, now, topics) ?? [];
}
