import type { Logger } from '../observe/logger.js';
import { loadOptional } from '../optional-package.js';
import { ConfigError } from '../util/config-error.js';
import { SqliteStore } from './sqlite/sqlite-store.js';
import type { Store, StoreObserver } from './store.js';
import type { StoreConfig } from './store-config.js';

export interface OpenStoreOptions {
  /** Drop and recreate the store's tables / keys first (DTM's `-r`; tests only). */
  reset?: boolean;
  log?: Logger;
  /** Told of the store's group commits (metrics). */
  observer?: StoreObserver | undefined;
}

/**
 * Open the store named by Store.Driver, with its schema migrated to the current version. One case per
 * backend; each backend lives in its own folder.
 */
export async function openStore(config: { Store: StoreConfig }, o: OpenStoreOptions = {}): Promise<Store> {
  const driver = config.Store.Driver;
  switch (driver) {
    case 'sqlite':
    case 'boltdb':
      return new SqliteStore({ path: config.Store.SqlitePath, reset: o.reset === true, observer: o.observer });
    case 'redis': {
      // loaded on demand: ioredis and the Lua scripts are only read when Redis is the store
      const { openRedisStore } = await loadOptional(
        'Store.Driver=redis',
        ['ioredis'],
        () => import('./redis/redis-store.js'),
      );
      return openRedisStore(config, { reset: o.reset === true, log: o.log, observer: o.observer });
    }
    case 'postgres': {
      // loaded on demand: pg is only read when PostgreSQL is the store
      const { PostgresStore } = await loadOptional(
        'Store.Driver=postgres',
        ['pg'],
        () => import('./postgres/postgres-store.js'),
      );
      const { sqlOptionsFromConfig } = await import('./sql/sql-options.js');
      return PostgresStore.open({
        ...sqlOptionsFromConfig(config.Store),
        reset: o.reset === true,
        log: o.log,
        observer: o.observer,
      });
    }
    case 'mysql': {
      // loaded on demand: mysql2 is only read when MySQL / MariaDB is the store
      const { MysqlStore } = await loadOptional(
        'Store.Driver=mysql',
        ['mysql2'],
        () => import('./mysql/mysql-store.js'),
      );
      const { sqlOptionsFromConfig } = await import('./sql/sql-options.js');
      return MysqlStore.open({
        ...sqlOptionsFromConfig(config.Store),
        reset: o.reset === true,
        log: o.log,
        observer: o.observer,
      });
    }
    default:
      throw new ConfigError(
        `Store.Driver: '${driver}' is not available in this dtx version yet; use sqlite (the default)`,
      );
  }
}
