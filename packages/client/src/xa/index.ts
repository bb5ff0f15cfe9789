/**
 * XA: {@link runXaGlobalTransaction} under `client.xa()`, the branch helpers ({@link xaLocalTransaction},
 * {@link xaPhase2}, {@link runXaBranch}) and the dialects (`@dtx/client/xa/mysql`, `@dtx/client/xa/postgres`).
 *
 * @module
 */
export type { XaBranchRegistration } from '../coordinator-transport.js';
export {
  type RunXaBranchOptions,
  runXaBranch,
  XA_BARRIER_ID,
  type XaBranch,
  XaBranchInfoError,
  type XaBranchRef,
  type XaPhase2Options,
  xaBranchFromMetadata,
  xaBranchFromQuery,
  xaLocalTransaction,
  xaPhase2,
  xaXid,
} from './branch.js';
export {
  type XaDialect,
  type XaDialectName,
  type XaLocalTransaction,
  type XaPhase2Outcome,
  XaXidInUseError,
} from './dialect.js';
export { runXaGlobalTransaction, Xa, type XaOptions } from './global.js';
export { type MysqlXaOptions, mysqlXaDialect } from './mysql.js';
export { type PostgresXaOptions, pgLiteral, postgresXaDialect } from './postgres.js';
