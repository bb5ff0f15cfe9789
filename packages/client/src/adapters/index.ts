/**
 * Writing HTTP branch handlers: the framework-neutral outcome mapping and context, and thin adapters for Fastify
 * and Express (which only import the frameworks' types).
 *
 * @module
 */
export {
  type BranchContext,
  type BranchContextParts,
  type BranchHandler,
  type BranchHeaders,
  createBranchContext,
  describeBranch,
} from './branch-context.js';
export {
  type BranchReply,
  type BranchSettlement,
  branchOutcome,
  runBranch,
  SUCCESS_BODY,
  toSafeJson,
} from './branch-outcome.js';
export { type ExpressBranchOptions, type ExpressBranchRaw, expressBranch } from './express.js';
export { allowEmptyJsonBody, type FastifyBranchOptions, type FastifyBranchRaw, fastifyBranch } from './fastify.js';
export type { BranchLogger } from './logger.js';
export { queryPreparedHandler } from './query-prepared-handler.js';
