import type { BranchOp, TransType } from '@dtx/protocol';
import type { StoredOptions } from './model.js';
import type { TraceContext } from './ports.js';

/** A prepare / submit / abort request after validation at the edge (spec §2.3). */
export interface TransInput {
  gid: string;
  transType: TransType;
  steps: Record<string, string>[];
  /** payloads[i] as bytes, then the bytes of each non-empty legacy steps[i].data. */
  binPayloads: Uint8Array[];
  customData: string;
  queryPrepared: string;
  protocol: string;
  rollbackReason: string;
  reqExtra: Record<string, string>;
  /** Only the options the request carried (and dtx's saga step delays). */
  opts: StoredOptions;
  /** The request's W3C trace context (`traceparent` header or metadata), when it carried a valid one. */
  trace?: TraceContext;
}

/** A registerBranch request after validation (spec §2.5). */
export interface BranchInput {
  gid: string;
  transType: TransType;
  branchId: string;
  data: Uint8Array;
  confirm: string;
  cancel: string;
  url: string;
  /** workflow: the op the step is recorded under (action, commit, rollback, business). */
  op?: BranchOp;
  /** workflow: the step's outcome (succeed or failed). */
  status?: string;
  /** The request's W3C trace context, when it carried a valid one. */
  trace?: TraceContext;
}
