import type { Logger } from '../../observe/logger.js';
import { errorMessage } from '../../util/error-message.js';
import type { StoreObserver } from '../store.js';
import type { StoreConfig } from '../store-config.js';
import { isConnectionError } from './errors.js';

/** Where a SQL store lives and how it connects: DTM's Store.* keys (spec §10.2). */
export interface SqlStoreOptions {
  host: string;
  port: number;
  user: string;
  password: string;
  /** Store.Db: the database (created when missing). */
  database: string;
  /** Store.Schema (PostgreSQL only): the schema that holds the tables (created when missing). */
  schema?: string | undefined;
  /** Store.MaxOpenConns: most connections of the pool. Default 500, DTM's. */
  maxOpenConns?: number | undefined;
  /** Store.MaxIdleConns: most idle connections kept (MySQL; PostgreSQL closes idle ones after 10 s). */
  maxIdleConns?: number | undefined;
  /** Store.ConnMaxLifeTime in minutes: connections older than this are replaced (PostgreSQL). Default 5. */
  connMaxLifeTimeMin?: number | undefined;
  /** Drop and recreate the tables first (DTM's `-r`; deletes all data). Default false. */
  reset?: boolean | undefined;
  log?: Logger | undefined;
  /** Told of every group commit (metrics). */
  observer?: StoreObserver | undefined;
  /**
   * While the server cannot be reached at open, retry every this many ms, logging each attempt. Default
   * 3000 (the server's ping interval). 0 fails at once instead.
   */
  retryIntervalMs?: number | undefined;
  /** PostgreSQL application_name of the connections (shown in pg_stat_activity). Default `dtx`. */
  applicationName?: string | undefined;
  /** Writes of one batch (one database transaction). Default 256. */
  maxBatch?: number | undefined;
  /**
   * Batches committing at once, each on its own connection. Default 2: one is sent while the other waits
   * for its commit to be flushed.
   */
  maxInFlight?: number | undefined;
}

/** The SQL store options named by a dtx config's Store section. */
export function sqlOptionsFromConfig(s: StoreConfig): SqlStoreOptions {
  return {
    host: s.Host,
    port: s.Port,
    user: s.User,
    password: s.Password,
    database: s.Db,
    schema: s.Schema,
    maxOpenConns: s.MaxOpenConns,
    maxIdleConns: s.MaxIdleConns,
    connMaxLifeTimeMin: s.ConnMaxLifeTime,
  };
}

/**
 * Run `attempt` until it succeeds or fails with something other than a connection error. While the
 * database is unreachable (not started yet, restarting), log one clear line per attempt and wait.
 */
export async function untilReachable<T>(
  what: string,
  attempt: () => Promise<T>,
  o: { log?: Logger | undefined; retryIntervalMs?: number | undefined },
): Promise<T> {
  const interval = o.retryIntervalMs ?? 3000;
  for (let n = 1; ; n++) {
    try {
      return await attempt();
    } catch (err) {
      if (interval <= 0 || !isConnectionError(err)) throw err;
      o.log?.error(`store is not reachable; retrying in ${interval / 1000} s`, {
        store: what,
        attempt: n,
        error: errorMessage(err) || String((err as { code?: string }).code),
      });
      await new Promise((r) => setTimeout(r, interval));
    }
  }
}

/** `postgres://user:pass@host:5432/db?schema=s` or `mysql://user:pass@host:3306/db` → connection options. */
export function sqlOptionsFromUrl(url: string): SqlStoreOptions {
  const u = new URL(url);
  const mysql = u.protocol.startsWith('mysql');
  return {
    host: u.hostname,
    port: Number(u.port || (mysql ? 3306 : 5432)),
    user: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
    database: decodeURIComponent(u.pathname.replace(/^\//, '')) || 'dtm',
    schema: u.searchParams.get('schema') ?? undefined,
  };
}
