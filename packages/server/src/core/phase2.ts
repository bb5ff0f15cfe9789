import type { TransBranch } from './model.js';
import { passErrorOf, type TransPass } from './pass.js';

/**
 * The second phase shared by tcc and xa: time out a prepared trans, then call every branch of the op
 * the status asks for; the first non-success ends the pass with that error.
 */
export async function runPhase2(
  p: TransPass,
  ops: { commit: string; rollback: string },
  pick: (branches: TransBranch[], op: string) => TransBranch[],
): Promise<void> {
  const t = p.trans;
  if (!p.needProcess()) return;
  if (t.status === 'prepared' && p.isTimeout()) {
    await p.changeStatus('aborting', { rollbackReason: p.timeoutReason() });
  }
  const committing = t.status === 'submitted';
  const op = committing ? ops.commit : ops.rollback;
  for (const b of pick(p.branches, op)) {
    const out = await p.execBranch(b);
    if (out.result !== 'SUCCESS') throw passErrorOf(out);
  }
  await p.changeStatus(committing ? 'succeed' : 'failed');
}
