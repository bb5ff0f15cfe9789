import type { TransPass } from './pass.js';
import { runPhase2 } from './phase2.js';

/**
 * One xa pass (spec §6.6): commit when submitted, rollback when aborting (or timed out while
 * prepared), first to last; every branch of that op not yet succeed is called (always POST).
 */
export function processXa(p: TransPass): Promise<void> {
  return runPhase2(p, { commit: 'commit', rollback: 'rollback' }, (branches, op) =>
    branches.filter((b) => b.op === op && b.status !== 'succeed'),
  );
}
