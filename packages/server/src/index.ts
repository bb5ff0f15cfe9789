/** @dtx/server — the dtx coordinator. */
export {
  ConfigError,
  DEFAULT_CONFIG,
  type DtxConfig,
  envName,
  loadConfig,
  type StoreConfig,
  type TlsConfig,
} from './config.js';
export { type Clock, FakeClock, systemClock } from './core/clock.js';
export type { KV, TransBranch, TransGlobal } from './core/model.js';
export { createLogger, type Logger, silentLogger } from './observe/logger.js';
export { type DtxServer, type StartOptions, startServer } from './server.js';
export { MemoryStore } from './store/memory/memory-store.js';
export { openStore } from './store/open-store.js';
export { SqliteStore } from './store/sqlite/sqlite-store.js';
export type { ScanQuery, StatusChange, Store } from './store/store.js';
