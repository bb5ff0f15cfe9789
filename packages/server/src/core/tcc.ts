import type { TransPass } from './pass.js';
import { runPhase2, twoPhaseAbort } from './phase2.js';
import { noFinalFailure, type TransMode } from './trans-mode.js';

/**
 * One tcc pass (spec §6.5): confirm when submitted, cancel when aborting (or timed out while
 * prepared), walking the registered branches from the last to the first.
 */
export function processTcc(p: TransPass): Promise<void> {
  return runPhase2(p, (branches, op) => branches.filter((b) => b.op === op && b.status === 'prepared').reverse());
}

/**
 * TCC (spec §6.5): prepared, its branches registered (try done by the client) with a confirm and a cancel URL;
 * confirmed on submit, cancelled on abort or timeout. No FAILURE of a confirm or cancel is final.
 */
export const tccMode: TransMode = {
  type: 'tcc',
  start: 'prepare',
  compensatingSteps: false,
  topicSteps: false,
  phase2: { commit: { op: 'confirm', url: 'confirm' }, rollback: { op: 'cancel', url: 'cancel' } },
  alwaysPost: false,
  holdsResults: false,
  defaultTimeout: true,
  failureIsFinal: noFinalFailure,
  abortMove: twoPhaseAbort,
  process: processTcc,
};
