/** Transaction types (`trans_type`). */
export const TransType = {
  Saga: 'saga',
  Tcc: 'tcc',
  Msg: 'msg',
  Xa: 'xa',
  Workflow: 'workflow',
} as const;
export type TransType = (typeof TransType)[keyof typeof TransType];
export const TRANS_TYPES: readonly string[] = Object.values(TransType);

/** Global statuses (`trans_global.status`). There is no `aborted`. */
export const GlobalStatus = {
  Prepared: 'prepared',
  Submitted: 'submitted',
  Aborting: 'aborting',
  Succeed: 'succeed',
  Failed: 'failed',
} as const;
export type GlobalStatus = (typeof GlobalStatus)[keyof typeof GlobalStatus];
/** The statuses the cron and resetCronTime look at. */
export const UNFINISHED_STATUSES: readonly GlobalStatus[] = ['prepared', 'submitted', 'aborting'];

/** Branch statuses (`trans_branch_op.status`). */
export const BranchStatus = {
  Prepared: 'prepared',
  Succeed: 'succeed',
  Failed: 'failed',
} as const;
export type BranchStatus = (typeof BranchStatus)[keyof typeof BranchStatus];

/** Branch ops (`trans_branch_op.op`, and the `op` query parameter / `dtm-op` metadata). */
export const BranchOp = {
  Action: 'action',
  Compensate: 'compensate',
  Try: 'try',
  Confirm: 'confirm',
  Cancel: 'cancel',
  Commit: 'commit',
  Rollback: 'rollback',
  Business: 'business',
  Msg: 'msg',
} as const;
export type BranchOp = (typeof BranchOp)[keyof typeof BranchOp];

/** Branch id used by the msg back-check and the DoAndSubmit barrier. */
export const MSG_BRANCH_ID = '00';

/** Transport protocols a transaction may declare. */
export const Protocol = { Http: 'http', Grpc: 'grpc', JsonRpc: 'json-rpc' } as const;
export type Protocol = (typeof Protocol)[keyof typeof Protocol];
