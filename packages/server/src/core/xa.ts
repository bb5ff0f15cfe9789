import type { TransPass } from './pass.js';
import { runPhase2, twoPhaseAbort } from './phase2.js';
import { noFinalFailure, type TransMode } from './trans-mode.js';

/**
 * One xa pass (spec §6.6): commit when submitted, rollback when aborting (or timed out while
 * prepared), first to last; every branch of that op not yet succeed is called (always POST).
 */
export function processXa(p: TransPass): Promise<void> {
  return runPhase2(p, (branches, op) => branches.filter((b) => b.op === op && b.status !== 'succeed'));
}

/**
 * XA (spec §6.6): prepared, its branches registered with one URL for both phases; committed on submit, rolled
 * back on abort or timeout. No FAILURE of a commit or rollback is final.
 */
export const xaMode: TransMode = {
  type: 'xa',
  start: 'prepare',
  compensatingSteps: false,
  topicSteps: false,
  phase2: { commit: { op: 'commit', url: 'url' }, rollback: { op: 'rollback', url: 'url' } },
  alwaysPost: true,
  holdsResults: false,
  defaultTimeout: true,
  failureIsFinal: noFinalFailure,
  abortMove: twoPhaseAbort,
  process: processXa,
};
