/**
 * The msg back-check route, ready made.
 *
 * @module
 */
import type { BarrierDb } from '../barrier/barrier-db.js';
import type { BranchHandler } from './branch-context.js';

/**
 * A branch handler for the `query_prepared` URL of msgs sent with `DoAndSubmit`: runs
 * {@link BranchBarrier.queryPrepared} with the request's barrier. Answers 200 when the msg's local transaction
 * committed and 409 FAILURE when it did not (and now never will).
 *
 * @example
 * ```ts
 * app.get('/api/busi/QueryPrepared', fastifyBranch(queryPreparedHandler(db)));
 * ```
 */
export function queryPreparedHandler(db: BarrierDb<unknown>): BranchHandler {
  return async (ctx) => {
    await ctx.barrier.queryPrepared(db);
  };
}
