/**
 * Writing HTTP branch handlers: the framework-neutral outcome mapping and context, (the Fastify and Express
 * adapters are the `@dtx/client/fastify` and `@dtx/client/express` entries).
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
export type { BranchLogger } from './logger.js';
export { queryPreparedHandler } from './query-prepared-handler.js';
export { resumeBodyBytes, type WorkflowResumeReply, workflowResumeReply } from './workflow-resume.js';
