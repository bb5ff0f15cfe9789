import type { GlobalStatus } from '@dtx/protocol';
import type { TransBranch } from './model.js';
import { passErrorOf, type TransPass } from './pass.js';
import type { AbortMove } from './trans-mode.js';

/**
 * The second phase shared by tcc and xa: time out a prepared trans, then call every branch of the op
 * the status asks for (the mode's {@link TransMode.phase2} ops); the first non-success ends the pass with that error.
 */
export async function runPhase2(
  p: TransPass,
  pick: (branches: TransBranch[], op: string) => TransBranch[],
): Promise<void> {
  const t = p.trans;
  const ops = p.mode.phase2;
  if (ops === undefined) throw new Error(`trans type ${t.transType} has no second phase`);
  if (!p.needProcess()) return;
  if (t.status === 'prepared' && p.isTimeout()) {
    await p.changeStatus('aborting', { rollbackReason: p.timeoutReason() });
  }
  const committing = t.status === 'submitted';
  const op = committing ? ops.commit.op : ops.rollback.op;
  for (const b of pick(p.branches, op)) {
    const out = await p.execBranch(b);
    if (out.result !== 'SUCCESS') throw passErrorOf(out);
  }
  await p.changeStatus(committing ? 'succeed' : 'failed');
}

/** The abort rule of tcc and xa (spec §2.7): a prepared one (or one rolling back already) is rolled back. */
export function twoPhaseAbort(status: GlobalStatus): AbortMove {
  return status === 'prepared' || status === 'aborting' ? 'rollback' : 'refuse';
}
