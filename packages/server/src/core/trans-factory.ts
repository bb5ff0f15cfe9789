import type { TraceContext } from '../observe/trace-context.js';
import type { CoreConfig } from './core-config.js';
import { InputError } from './errors.js';
import { encodeOptions, type TransBranch, type TransGlobal, withTraceContext } from './model.js';
import { resetInterval } from './pass.js';
import type { TransInput } from './trans-input.js';

/** Subscriber URLs of a topic, from the topic cache. */
export type TopicLookup = (topic: string) => string[] | undefined;

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

const pad2 = (i: number) => String(i).padStart(2, '0');

function branch(gid: string, url: string, binData: Uint8Array, branchId: string, op: string, now: number): TransBranch {
  return { gid, url, binData, branchId, op, status: 'prepared', createTime: now, updateTime: now };
}

/**
 * The branches a saga or msg brings with it (spec §6.3). Saga: compensate then action per step, ids
 * 01, 02, …; msg: one action per URL, a topic expanded to its subscribers (01-01, 01-02, …).
 */
export function generateBranches(input: TransInput, now: number, topics: TopicLookup): TransBranch[] {
  const out: TransBranch[] = [];
  const { gid, steps, binPayloads } = input;
  if (input.transType === 'saga') {
    steps.forEach((step, i) => {
      const data = binPayloads[i]!;
      out.push(branch(gid, step.compensate ?? '', data, pad2(i + 1), 'compensate', now));
      out.push(branch(gid, step.action ?? '', data, pad2(i + 1), 'action', now));
    });
  } else if (input.transType === 'msg') {
    steps.forEach((step, i) => {
      const action = step.action ?? '';
      let urls = [action];
      if (action.startsWith('topic://')) {
        const topic = action.slice('topic://'.length);
        const subs = topics(topic);
        if (!subs || subs.length === 0) throw new InputError(`steps[${i}].action`, `topic not found: '${topic}'`);
        urls = subs;
      }
      const data = binPayloads[i]!;
      if (urls.length === 1) out.push(branch(gid, urls[0]!, data, pad2(i + 1), 'action', now));
      else {
        urls.forEach((u, j) => {
          out.push(branch(gid, u, data, `${pad2(i + 1)}-${pad2(j + 1)}`, 'action', now));
        });
      }
    });
  }
  return out;
}
