import type { TransType } from '@dtx/protocol';
import { msgMode } from './msg.js';
import { sagaMode } from './saga.js';
import { tccMode } from './tcc.js';
import type { TransMode } from './trans-mode.js';
import { workflowMode } from './workflow.js';
import { xaMode } from './xa.js';

/**
 * The transaction modes, one object each (see {@link TransMode}), in the order error messages list them. A new
 * mode is its file, its line here, and its routes.
 */
export const MODES: Readonly<Record<TransType, TransMode>> = {
  saga: sagaMode,
  tcc: tccMode,
  msg: msgMode,
  xa: xaMode,
  workflow: workflowMode,
};

/** The trans_type values the server accepts. */
export const MODE_TYPES: readonly TransType[] = Object.values(MODES).map((m) => m.type);

/** The mode of a trans_type, or undefined for one the server does not know. */
export function modeOf(type: string): TransMode | undefined {
  return Object.hasOwn(MODES, type) ? MODES[type as TransType] : undefined;
}
