/**
 * What the core tells the metrics (implemented in observe/metrics.ts; the core never imports observe/). Every
 * method is called on the hot path: implementations resolve their label children once per label tuple and must
 * not throw.
 */
export interface MetricsPort {
  /** One branch call ended after `seconds` (DTM's dtm_branch_process_total and dtx's branch metrics). */
  branchCall(
    transType: string,
    branchId: string,
    op: string,
    protocol: BranchProtocol,
    seconds: number,
    outcome: BranchResult,
  ): void;
  /** One processing pass of a transaction ended; `ageSeconds` = now − create_time (dtm_transaction_handled_duration). */
  passHandled(transType: string, ageSeconds: number): void;
  /** A Process call of the API (submit / abort / prepare timeout) ended, ok or with an error (DTM's metric). */
  transProcessed(transType: string, ok: boolean): void;
  /** A transaction reached a final status. */
  finished(transType: string, outcome: 'succeed' | 'failed'): void;
  /** The cron started a pass of a transaction it leased (a retry of unfinished work). */
  retry(transType: string): void;
}

/** How a branch was called. */
export type BranchProtocol = 'http' | 'grpc' | 'json-rpc';

/** What a branch call came to, for the metrics: the four outcomes, and ERROR split into timeout or not. */
export type BranchResult = 'SUCCESS' | 'FAILURE' | 'ONGOING' | 'ERROR' | 'TIMEOUT';

/** The protocol a branch URL of a transaction is called over (the rule of the dispatcher, spec §5.1). */
export function branchProtocolOf(transProtocol: string, url: string): BranchProtocol {
  const p = transProtocol || 'http';
  if (p === 'http' || url.startsWith('http://') || url.startsWith('https://')) {
    return p === 'json-rpc' && url.includes('method') ? 'json-rpc' : 'http';
  }
  return 'grpc';
}
