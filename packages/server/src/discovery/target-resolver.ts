/**
 * The shape the gRPC branch caller uses to turn a scheme target into an address; defined once, by the caller
 * that uses it (branch/target-resolver.ts), and implemented here.
 *
 * @module
 */
export type { TargetResolver } from '../branch/target-resolver.js';
