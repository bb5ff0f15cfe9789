import type { BranchCall } from '../../src/branch/caller.js';
import type { TransGlobal } from '../../src/core/model.js';

/** A saga over HTTP as a branch caller sees it: its gid and options, nothing stored. */
export function callerTrans(gid: string, opts: Record<string, unknown> = {}): TransGlobal {
  return { gid, transType: 'saga', opts, extData: '', protocol: 'http' } as unknown as TransGlobal;
}

/** The action of branch 01 of `gid`, posting `payload` (default `{"a":1}`) to `url`. */
export function branchCallOf(gid: string, url: string, o: { payload?: string; timeoutMs?: number } = {}): BranchCall {
  return {
    trans: callerTrans(gid),
    url,
    branchId: '01',
    op: 'action',
    payload: Buffer.from(o.payload ?? '{"a":1}'),
    timeoutMs: o.timeoutMs ?? 3000,
  };
}
