import type { TransPass } from './pass.js';
import { runPhase2 } from './phase2.js';

/**
 * One tcc pass (spec §6.5): confirm when submitted, cancel when aborting (or timed out while
 * prepared), walking the registered branches from the last to the first.
 */
export function processTcc(p: TransPass): Promise<void> {
  return runPhase2(p, { commit: 'confirm', rollback: 'cancel' }, (branches, op) =>
    branches.filter((b) => b.op === op && b.status === 'prepared').reverse(),
  );
}
