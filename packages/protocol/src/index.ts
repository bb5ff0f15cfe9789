/**
 * @dtx/protocol — the words of DTM's wire protocol, shared by the dtx server and SDK.
 * No I/O and no dependencies: only constants, types and pure helpers.
 */
export * from './branch-url.js';
export * from './enums.js';
export * from './grpc.js';
export * from './result.js';
export * from './trans.js';
