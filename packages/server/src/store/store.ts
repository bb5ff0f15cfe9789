/**
 * The Store port: defined by the core (core/ports.ts), implemented by each backend folder here.
 *
 * @module
 */
export type {
  FailedAttempt,
  ScanQuery,
  StatusChange,
  Store,
  StoreObserver,
  StuckRule,
  UnfinishedCount,
} from '../core/ports.js';
