/**
 * The sub-transaction barrier: {@link BranchBarrier}, the dialect adapters and the DDL helper.
 *
 * @module
 */
export type { BarrierDb, BarrierDialect, BarrierKey, BarrierRow, BarrierTransaction } from './barrier-db.js';
export {
  type BarrierBusiness,
  type BarrierOutcome,
  BranchBarrier,
  formatBarrierId,
  originOpOf,
} from './branch-barrier.js';
export {
  BRANCH_INFO_FIELDS,
  BranchInfoError,
  type BranchInfoField,
  branchInfoFromMetadata,
  branchInfoFromQuery,
  type StringMap,
  validateBranchInfo,
} from './branch-info.js';
export { type BarrierCleanupOptions, deleteOldBarrierRows } from './cleanup.js';
export {
  barrierDdl,
  DEFAULT_BARRIER_TABLE,
  DEFAULT_SQLITE_BARRIER_TABLE,
  defaultBarrierTable,
  ensureBarrierTable,
} from './ddl.js';
export { BARRIER_SQL_FILES, BarrierTableMissingError, isMissingTableError } from './missing-table-error.js';
export {
  type MysqlBarrierOptions,
  type MysqlConnectionLike,
  type MysqlPoolLike,
  type MysqlResultLike,
  mysqlBarrierDb,
} from './mysql.js';
export {
  type PgClientLike,
  type PgPoolLike,
  type PgResultLike,
  type PostgresBarrierOptions,
  postgresBarrierDb,
} from './postgres.js';
export {
  type RedisBarrierOptions,
  type RedisEvalLike,
  redisCheckAdjustAmount,
  redisQueryPrepared,
} from './redis.js';
export {
  type SqliteBarrierOptions,
  type SqliteDatabaseLike,
  type SqliteStatementLike,
  sqliteBarrierDb,
} from './sqlite.js';
export { parseTableName, type TableName } from './table-name.js';
