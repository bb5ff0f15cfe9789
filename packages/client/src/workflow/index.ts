/**
 * Workflow mode: `client.workflow.register(name, fn)` and `client.workflow.execute(name, gid, input)`.
 *
 * @module
 */
export {
  bytesCodec,
  type CodecSpec,
  codecOf,
  jsonCodec,
  textCodec,
  type WorkflowCodec,
} from './codec.js';
export { WorkflowDecidedError, WorkflowFailedError, WorkflowOngoingError } from './errors.js';
export {
  type CallStepOptions,
  type Compensation,
  type CompensationOptions,
  type LocalStepOptions,
  type ResumeOutcome,
  type StepContext,
  type StepReply,
  Workflow,
  type WorkflowFunction,
  type WorkflowHost,
  type WorkflowRegisterOptions,
  WorkflowRegistry,
  type XaStepOptions,
} from './workflow.js';
