import { MSG_BRANCH_ID } from '@dtx/protocol';
import { formatTime } from '../util/format-time.js';
import { mapLimited } from './call-slots.js';
import { InputError } from './errors.js';
import type { TransBranch } from './model.js';
import { passErrorOf, type TransPass } from './pass.js';
import type { TransInput } from './trans-input.js';
import { newBranch, noFinalFailure, pad2, type TopicLookup, type TransMode } from './trans-mode.js';

/** The msg delay in seconds from custom_data `{"delay":N}` (key matched case-insensitively). */
export function msgDelay(customData: string): number {
  if (!customData) return 0;
  try {
    const cd = JSON.parse(customData) as Record<string, unknown>;
    for (const [k, v] of Object.entries(cd ?? {})) if (k.toLowerCase() === 'delay' && typeof v === 'number') return v;
  } catch {
    // not JSON: no delay
  }
  return 0;
}

const EMPTY = new Uint8Array(0);

/**
 * One msg pass (spec §6.4): a prepared msg past its timeout is back-checked through query_prepared;
 * a submitted one waits out its delay, then delivers every prepared action, in order or all at once.
 * A msg never rolls back: a branch FAILURE is retried like any error.
 */
export async function processMsg(p: TransPass): Promise<void> {
  const t = p.trans;
  if (p.needProcess() && t.status !== 'submitted') {
    const out = await p.callUrl(t.queryPrepared, MSG_BRANCH_ID, 'msg', EMPTY);
    if (out.result === 'SUCCESS') await p.changeStatus('submitted');
    else if (out.result === 'FAILURE') await p.changeStatus('failed');
    else {
      // ONGOING (not decided yet) or an error: asked again later, backed off like any retry
      p.lastError = out.message || out.result;
      await p.backoffAndAlert(t.queryPrepared, p.lastError);
      p.deps.log.warn('msg back-check did not decide, will ask again', {
        gid: t.gid,
        trans_type: t.transType,
        op: 'msg',
        url: t.queryPrepared,
        attempt: t.failedAttempts,
        error: t.lastError,
        next_retry_at: formatTime(t.nextCronTime),
      });
    }
  }
  if (!p.needProcess() || t.status === 'prepared') return;

  const delay = msgDelay(t.customData);
  if (delay > 0 && p.now() - t.createTime < delay * 1000) {
    await p.touch('keep', delay * 1000);
    return;
  }

  const todo = p.branches.filter((b) => b.op === 'action' && b.status === 'prepared');
  if (t.opts.concurrent) {
    const outs = await mapLimited(todo, p.deps.conf.maxCallsPerTrans, (b) => p.execBranch(b));
    const bad = outs.find((o) => o.result !== 'SUCCESS');
    if (bad?.result === 'ONGOING') return;
    if (bad) throw passErrorOf(bad);
  } else {
    for (const b of todo) {
      const out = await p.execBranch(b);
      if (out.result === 'ONGOING') return;
      if (out.result !== 'SUCCESS') throw passErrorOf(out);
    }
  }
  await p.changeStatus('succeed');
}

/** A msg's branches (spec §6.3): one action per step; a topic step, one per subscriber (01-01, 01-02, …). */
function msgBranches(input: TransInput, now: number, topics: TopicLookup): TransBranch[] {
  const out: TransBranch[] = [];
  const { gid, steps, binPayloads } = input;
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
    if (urls.length === 1) out.push(newBranch(gid, urls[0]!, data, pad2(i + 1), 'action', now));
    else {
      urls.forEach((u, j) => {
        out.push(newBranch(gid, u, data, `${pad2(i + 1)}-${pad2(j + 1)}`, 'action', now));
      });
    }
  });
  return out;
}

/**
 * Two-phase MSG (spec §6.4): prepared, then submitted (or submitted at once); a prepared msg past its timeout is
 * back-checked. Its actions are delivered until each succeeds: no FAILURE is final, a msg never rolls back. Abort
 * fails a prepared msg at once.
 */
export const msgMode: TransMode = {
  type: 'msg',
  start: 'prepare',
  stepBranches: msgBranches,
  compensatingSteps: false,
  topicSteps: true,
  alwaysPost: false,
  holdsResults: true,
  defaultTimeout: true,
  failureIsFinal: noFinalFailure,
  abortMove: (status) => (status === 'prepared' ? 'fail' : 'refuse'),
  process: processMsg,
};
