import { withResultSuffix } from '@dtx/protocol';
import { typeName } from '../util/type-name.js';
import { InputError } from './errors.js';
import type { TransBranch, TransGlobal } from './model.js';
import type { TransPass } from './pass.js';
import type { BranchOutcome } from './ports.js';
import { replyExcerpt } from './reply-excerpt.js';
import type { TransInput } from './trans-input.js';
import { neverAborts, newBranch, pad2, type TransMode } from './trans-mode.js';

interface SagaCustom {
  concurrent: boolean;
  /** step index → prerequisite step indexes */
  orders: Map<number, number[]>;
}

/** Read saga's custom_data: `{"orders":{"1":[0]},"concurrent":true}`. */
export function parseSagaCustom(text: string): SagaCustom {
  const out: SagaCustom = { concurrent: false, orders: new Map() };
  if (!text) return out;
  let cd: unknown;
  try {
    cd = JSON.parse(text);
  } catch {
    return out;
  }
  if (!cd || typeof cd !== 'object') return out;
  for (const [k, v] of Object.entries(cd as Record<string, unknown>)) {
    const key = k.toLowerCase();
    if (key === 'concurrent') out.concurrent = v === true;
    if (key === 'orders' && v && typeof v === 'object') {
      for (const [step, pres] of Object.entries(v as Record<string, unknown>)) {
        if (Array.isArray(pres)) out.orders.set(Number(step), pres.map(Number));
      }
    }
  }
  return out;
}

/**
 * dtx: when the compensation of saga step `i` may run (clock ms): the rollback start plus the step's
 * `compensate_delay`. A saga that began its rollback without a recorded start (none stored) waits no longer.
 */
export function compensateDue(t: TransGlobal, i: number): number {
  const d = t.opts.compensate_delays?.[i] ?? 0;
  if (d <= 0 || t.rollbackTime === undefined) return 0;
  return t.rollbackTime + d * 1000;
}

interface Done {
  index: number;
  out?: BranchOutcome;
  err?: unknown;
}

/**
 * One saga pass (spec §6.7). Branch rows come in pairs: index 2i is the compensation of step i,
 * 2i+1 its action. Phase A starts every runnable action (in order, or in parallel with orders when
 * concurrent) until all succeed, one fails, or the deadline passes; phase B compensates from the last
 * step back.
 */
export async function processSaga(p: TransPass): Promise<void> {
  const t = p.trans;
  const br = p.branches;
  const n = br.length;
  const { concurrent, orders } = parseSagaCustom(t.customData);
  const reverseOrders = new Map<number, number[]>();
  for (const [step, pres] of orders) {
    for (const pre of pres) reverseOrders.set(pre, [...(reverseOrders.get(pre) ?? []), step]);
  }
  const delays = t.opts.compensate_delays;
  // dtx: with step delays, the rollback start is written with the move to aborting (durable: a later pass waits the rest)
  const abort = (rollbackReason: string) =>
    p.changeStatus('aborting', delays ? { rollbackReason, rollbackTime: p.deps.clock.now() } : { rollbackReason });
  if (t.status === 'submitted' && p.isTimeout()) await abort(p.timeoutReason());

  // in-memory view: statuses may be assumed (a started action counts as done once we compensate)
  const st = br.map((b) => b.status);
  const started = new Array<boolean>(n).fill(false);
  const retries = new Map<number, number>();
  const retryLimit = t.opts.retry_limit ?? 0;
  const deadline = p.deadline;
  const maxInFlight = p.deps.conf.maxCallsPerTrans;

  const done: Done[] = [];
  let wake: (() => void) | undefined;
  const inflight = new Set<number>();
  const start = (c: number) => {
    started[c] = true;
    inflight.add(c);
    p.execBranch(br[c]!).then(
      (out) => {
        done.push({ index: c, out });
        wake?.();
      },
      (err: unknown) => {
        done.push({ index: c, err });
        wake?.();
      },
    );
  };
  const next = async (): Promise<Done | undefined> => {
    if (done.length === 0) {
      const wait = Math.min(3000, deadline - p.deps.clock.now());
      if (wait <= 0) return undefined;
      await new Promise<void>((resolve) => {
        const timer = p.deps.clock.setTimer(wait, resolve);
        wake = () => {
          timer.cancel();
          resolve();
        };
      });
      wake = undefined;
    }
    const d = done.shift();
    if (d) inflight.delete(d.index);
    return d;
  };

  const actionRunnable = (c: number): boolean => {
    if (started[c] || st[c] !== 'prepared') return false;
    if (!concurrent && c >= 2 && st[c - 2] !== 'succeed') return false;
    for (const pre of orders.get((c - 1) / 2) ?? []) if (st[2 * pre + 1] !== 'succeed') return false;
    return true;
  };
  const rollbacked = (i: number): boolean => st[i] === 'succeed' || st[i + 1] === 'prepared';
  const compRunnable = (c: number): boolean => {
    // never compensate a step while its action's call is still in flight
    if (started[c] || st[c] !== 'prepared' || rollbacked(c) || inflight.has(c + 1)) return false;
    if (delays && p.now() < compensateDue(t, c / 2)) return false;
    if (!concurrent && c < n - 2 && !rollbacked(c + 2)) return false;
    for (const s of reverseOrders.get(c / 2) ?? []) if (!rollbacked(2 * s)) return false;
    return true;
  };

  // Phase A: forward
  let failReason: string | undefined;
  while (p.deps.clock.now() < deadline && t.status === 'submitted' && !p.isTimeout() && failReason === undefined) {
    for (let c = 1; c < n && inflight.size < maxInFlight; c += 2) if (actionRunnable(c)) start(c);
    if (inflight.size === 0) break;
    const d = await next();
    if (!d) continue;
    if (d.err) throw d.err;
    const out = d.out!;
    const c = d.index;
    if (out.result === 'SUCCESS') st[c] = 'succeed';
    else if (out.result === 'FAILURE') {
      st[c] = 'failed';
      failReason = `url:${br[c]!.url} return failed: ${withResultSuffix(replyExcerpt(out.message), 'FAILURE')}`;
    } else if (retryLimit > 0) {
      const count = retries.get(c) ?? 0;
      if (count < retryLimit) {
        retries.set(c, count + 1);
        started[c] = false;
      } else {
        await abort(`RetryCount is greater than RetryLimit, RetryLimit: ${retryLimit}`);
      }
    }
  }

  if (t.status === 'submitted') {
    const anyFailed = st.some((s, i) => i % 2 === 1 && s === 'failed');
    if (!anyFailed && st.every((s, i) => i % 2 === 0 || s === 'succeed')) {
      await p.changeStatus('succeed');
      return;
    }
    if (anyFailed) {
      await abort(failReason ?? 'fail message lost');
    } else if (p.isTimeout()) {
      await abort(p.timeoutReason());
    }
  }
  if (t.status !== 'aborting') return;

  // Phase B: compensate. An action that may have run (started, or runnable now) is assumed done.
  for (let c = 1; c < n; c += 2) if (actionRunnable(c)) started[c] = true;
  for (let c = 1; c < n; c += 2) if (started[c] && st[c] === 'prepared') st[c] = 'succeed';
  let toStart = 0;
  for (let c = 0; c < n; c += 2) if (st[c] !== 'succeed' && st[c + 1] !== 'prepared') toStart++;
  let succeeded = 0;
  while (p.deps.clock.now() < deadline && t.status === 'aborting') {
    for (let c = n - 2; c >= 0 && inflight.size < maxInFlight; c -= 2) if (compRunnable(c)) start(c);
    if (inflight.size === 0) break;
    const d = await next();
    if (!d) continue;
    if (d.index % 2 === 1) continue; // a late result of an action from phase A: already assumed done
    if (d.err) throw d.err;
    if (d.out!.result === 'SUCCESS') {
      st[d.index] = 'succeed';
      succeeded++;
    }
  }
  if (succeeded === toStart) {
    await p.changeStatus('failed');
    return;
  }
  if (delays && t.status === 'aborting') {
    // a compensation waits for its delay: come back when the first pending one is due (the steps behind it wait too)
    const now = p.now();
    let due = Number.POSITIVE_INFINITY;
    for (let c = 0; c < n; c += 2) {
      const at = !rollbacked(c) && st[c] === 'prepared' ? compensateDue(t, c / 2) : 0;
      if (at > now && at < due) due = at;
    }
    if (Number.isFinite(due)) {
      await p.touch('keep', due - now);
      return;
    }
  }
  p.deps.log.debug('saga compensation incomplete', { gid: t.gid, trans_type: t.transType, succeeded, toStart });
}

/**
 * A saga's `orders` in custom_data (`{"orders":{"1":[0]}}`: step 1 runs after step 0, spec §6.7): every key and
 * value a step index in [0, steps), no step after itself, no cycle. A saga with any of these would be accepted
 * and never finish, its steps waiting for each other.
 */
export function checkSagaOrders(cd: unknown, steps: number): void {
  if (!cd || typeof cd !== 'object' || Array.isArray(cd)) return;
  const field = 'custom_data.orders';
  for (const [key, orders] of Object.entries(cd)) {
    if (key.toLowerCase() !== 'orders' || orders === null) continue;
    if (typeof orders !== 'object' || Array.isArray(orders)) {
      throw new InputError(field, `expected an object of step index → array of step indexes, got ${typeName(orders)}`);
    }
    const index = (v: string | unknown, what: string): number => {
      const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n >= steps) {
        throw new InputError(field, `${what}: expected a step index from 0 to ${steps - 1}, got ${JSON.stringify(v)}`);
      }
      return n;
    };
    const after = new Map<number, number[]>();
    for (const [k, pres] of Object.entries(orders as Record<string, unknown>)) {
      const step = index(k, `key ${JSON.stringify(k)}`);
      if (!Array.isArray(pres))
        throw new InputError(field, `${k}: expected an array of step indexes, got ${typeName(pres)}`);
      const list = pres.map((p) => index(p, k));
      if (list.includes(step)) throw new InputError(field, `${k}: step ${step} cannot run after itself`);
      after.set(step, list);
    }
    // a cycle: iterative depth-first search (no recursion depth to overflow); 1 = on the path, 2 = done
    const state = new Map<number, 1 | 2>();
    for (const start of after.keys()) {
      if (state.has(start)) continue;
      const path: { n: number; i: number }[] = [{ n: start, i: 0 }];
      state.set(start, 1);
      while (path.length > 0) {
        const top = path[path.length - 1]!;
        const pres = after.get(top.n) ?? [];
        if (top.i >= pres.length) {
          state.set(top.n, 2);
          path.pop();
          continue;
        }
        const pre = pres[top.i++]!;
        const st = state.get(pre);
        if (st === 1) {
          const cycle = [...path.slice(path.findIndex((f) => f.n === pre)).map((f) => f.n), pre];
          throw new InputError(field, `the steps wait for each other in a cycle: ${cycle.join(' → ')}`);
        }
        if (st === undefined) {
          state.set(pre, 1);
          path.push({ n: pre, i: 0 });
        }
      }
    }
  }
}

/** A saga's branches (spec §6.3): per step its compensation, then its action, ids 01, 02, … */
function sagaBranches(input: TransInput, now: number): TransBranch[] {
  const out: TransBranch[] = [];
  const { gid, steps, binPayloads } = input;
  steps.forEach((step, i) => {
    const data = binPayloads[i]!;
    out.push(newBranch(gid, step.compensate ?? '', data, pad2(i + 1), 'compensate', now));
    out.push(newBranch(gid, step.action ?? '', data, pad2(i + 1), 'action', now));
  });
  return out;
}

/**
 * SAGA (spec §6.7): submitted directly with its steps, each an action and its compensation; a FAILURE of an action
 * rolls the saga back, compensating from the last step that may have run. Never prepared, never aborted from
 * outside, and timed out only when it sets timeout_to_fail.
 */
export const sagaMode: TransMode = {
  type: 'saga',
  start: 'submit',
  stepBranches: sagaBranches,
  compensatingSteps: true,
  topicSteps: false,
  alwaysPost: false,
  holdsResults: true,
  defaultTimeout: false,
  failureIsFinal: (op) => op === 'action',
  abortMove: neverAborts,
  checkCustomData: (cd, _text, steps) => checkSagaOrders(cd, steps),
  process: processSaga,
};
