/**
 * The ioredis client of the Redis store: one Redis, or a Redis Cluster when Store.Host lists several
 * `host:port` nodes (spec §8.6), with bounded waits so that a lost Redis turns requests into errors instead of
 * holding them.
 *
 * @module
 */
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { Logger } from '../../observe/logger.js';

export type RedisClient = Redis | Cluster;

export interface RedisConnectOptions {
  /** `host`, or `h1:p1,h2:p2,...` for a cluster (then `port` is the default port of nodes given without one). */
  host: string;
  port: number;
  /** ACL user (Redis 6+); empty for the default user. */
  username?: string | undefined;
  password?: string | undefined;
  /**
   * A command that gets no reply within this many ms is rejected, whether it was sent or is waiting for a
   * connection. Default 5000. This is the longest an API request waits on a Redis that is gone.
   */
  commandTimeoutMs?: number | undefined;
  /** Where connection problems are logged (once per outage, not once per retry). */
  log?: Logger | undefined;
}

const DEFAULT_COMMAND_TIMEOUT_MS = 5000;

/** Reconnect quickly at first, then every 2 s at most, for ever. */
const retryStrategy = (times: number): number => Math.min(100 * times, 2000);

/** Parse `h1:p1,h2:p2` into cluster nodes. */
export function clusterNodes(host: string, defaultPort: number): { host: string; port: number }[] {
  return host
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((s) => {
      const colon = s.lastIndexOf(':');
      if (colon < 0) return { host: s, port: defaultPort };
      const port = Number(s.slice(colon + 1));
      if (!Number.isInteger(port) || port <= 0 || port > 65535) {
        throw new Error(`Store.Host: bad port in cluster node '${s}'`);
      }
      return { host: s.slice(0, colon), port };
    });
}

/**
 * Create the client. It connects in the background and reconnects for ever; commands wait for a connection at
 * most until two reconnection attempts failed (`maxRetriesPerRequest: 1`) and never longer than
 * `commandTimeoutMs`. Commands whose reply was lost with the connection are not resent: their caller gets an
 * error and decides (the store's operations are compare-and-set, so a retry is safe).
 */
export function createRedisClient(o: RedisConnectOptions): RedisClient {
  const common: RedisOptions = {
    ...(o.username ? { username: o.username } : {}),
    ...(o.password ? { password: o.password } : {}),
    connectionName: 'dtx',
    commandTimeout: o.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: true,
    autoResendUnfulfilledCommands: false,
    connectTimeout: 5000,
    retryStrategy,
  };
  const client: RedisClient = o.host.includes(',')
    ? new Cluster(clusterNodes(o.host, o.port), {
        redisOptions: common,
        enableOfflineQueue: true,
        // commands to one node issued in one tick share one write. On a single Redis the store corks the socket
        // for a whole event-loop turn instead (RedisStore.hold), which coalesces more and costs less
        enableAutoPipelining: true,
        clusterRetryStrategy: retryStrategy,
      })
    : new Redis({ ...common, host: o.host, port: o.port });
  watchConnection(client, o);
  return client;
}

/** Log the first error of an outage and the recovery; ioredis would otherwise print every retry's error. */
function watchConnection(client: RedisClient, o: RedisConnectOptions): void {
  const where = o.host.includes(',') ? `cluster ${o.host}` : `${o.host}:${o.port}`;
  let down = false;
  client.on('error', (err: Error) => {
    if (down) return;
    down = true;
    o.log?.error('redis store: connection lost or refused; reconnecting', { redis: where, error: err.message });
  });
  client.on('ready', () => {
    if (!down) return;
    down = false;
    o.log?.info('redis store: connected again', { redis: where });
  });
}
