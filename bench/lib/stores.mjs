// Store back-ends the bench can run the coordinator against.
//
// Each entry prepares a fresh, empty store for one run and says which environment variables make
// `dtx serve` use it. Adding postgres / mysql / redis later means adding one entry here: create a
// throwaway database (or key prefix) in `prepare`, return its STORE_* env, drop it in `cleanup`.
import { join } from 'node:path';

/**
 * @typedef {object} PreparedStore
 * @property {Record<string, string>} env   environment for the coordinator process
 * @property {Record<string, unknown>} facts what the results file records about the store
 * @property {() => Promise<void>} cleanup   removes what `prepare` created (temp dir removal is done by the caller)
 */

/** The PostgreSQL server and database of DTX_PG_URL (default: the test database of scripts/services.sh). */
export function pgConn() {
  const url = new URL(process.env.DTX_PG_URL ?? 'postgres://dtx:dtx@127.0.0.1:5432/dtx_test');
  return {
    host: url.hostname,
    port: Number(url.port || 5432),
    user: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
    database: decodeURIComponent(url.pathname.slice(1)) || 'dtx_test',
  };
}

/** The MySQL / MariaDB server of DTX_MYSQL_URL (the database part is not used: each run makes its own). */
export function mysqlConn() {
  const url = new URL(process.env.DTX_MYSQL_URL ?? 'mysql://dtx:dtx@127.0.0.1:3306/dtx_test');
  return {
    host: url.hostname,
    port: Number(url.port || 3306),
    user: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
  };
}

/** @type {Record<string, { describe: string, prepare: (ctx: { tmpDir: string }) => Promise<PreparedStore> }>} */
export const stores = {
  sqlite: {
    describe: 'embedded SQLite file, server defaults (WAL, fdatasync of it before each write is acknowledged)',
    async prepare({ tmpDir }) {
      const path = join(tmpDir, 'dtx-bench.sqlite');
      return {
        env: { STORE_DRIVER: 'sqlite', STORE_SQLITE_PATH: path },
        facts: {
          driver: 'sqlite',
          path,
          durability: 'server default (WAL, synchronous=NORMAL + an fdatasync of the WAL before each acknowledgement)',
        },
        async cleanup() {},
      };
    },
  },
  redis: {
    describe: 'Redis at DTX_REDIS_URL (default redis://127.0.0.1:6379), a key prefix of its own per run',
    async prepare() {
      const url = new URL(process.env.DTX_REDIS_URL ?? 'redis://127.0.0.1:6379');
      const host = url.hostname;
      const port = Number(url.port || 6379);
      // with a hash tag, like the default {a}: every key in one slot (one Redis). DTX_BENCH_REDIS_LAYOUT=cluster
      // takes a prefix without one, the layout for Redis Cluster (indexes in a slot of their own)
      const name = `dtxbench-${process.pid}-${Date.now().toString(36)}`;
      const prefix = process.env.DTX_BENCH_REDIS_LAYOUT === 'cluster' ? name : `{${name}}`;
      const { Redis } = await import('ioredis');
      const redis = new Redis({ host, port, lazyConnect: true, maxRetriesPerRequest: 1 });
      await redis.connect();
      const conf = async (k) => (await redis.config('GET', k))[1];
      const facts = {
        driver: 'redis',
        url: `redis://${host}:${port}`,
        prefix,
        layout: prefix.startsWith('{') ? 'one slot' : 'cluster',
        durability: `appendonly ${await conf('appendonly')}, appendfsync ${await conf('appendfsync')}`,
      };
      return {
        env: { STORE_DRIVER: 'redis', STORE_HOST: host, STORE_PORT: String(port), STORE_REDIS_PREFIX: prefix },
        facts,
        async cleanup() {
          // every key of the run (the prefix has no glob characters); UNLINK frees memory in the background
          let cursor = '0';
          do {
            const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
            cursor = next;
            if (keys.length > 0) await redis.unlink(...keys);
          } while (cursor !== '0');
          redis.disconnect();
        },
      };
    },
  },
  postgres: {
    describe:
      'PostgreSQL at DTX_PG_URL (default postgres://dtx:dtx@127.0.0.1:5432/dtx_test), a schema of its own per run',
    async prepare() {
      const conn = pgConn();
      const schema = `dtxbench_${process.pid}_${Date.now().toString(36)}`;
      const { default: pg } = await import('pg');
      const admin = new pg.Client(conn);
      await admin.connect();
      const show = async (k) => (await admin.query(`SHOW ${k}`)).rows[0][k];
      const facts = {
        driver: 'postgres',
        url: `postgres://${conn.host}:${conn.port}/${conn.database}`,
        schema,
        version: await show('server_version'),
        durability: `fsync ${await show('fsync')}, synchronous_commit ${await show('synchronous_commit')}`,
      };
      return {
        env: {
          STORE_DRIVER: 'postgres',
          STORE_HOST: conn.host,
          STORE_PORT: String(conn.port),
          STORE_USER: conn.user,
          STORE_PASSWORD: conn.password,
          STORE_DB: conn.database,
          STORE_SCHEMA: schema, // the coordinator creates and migrates it at start-up
        },
        facts,
        async cleanup() {
          await admin.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
          await admin.end();
        },
      };
    },
  },
  mysql: {
    describe:
      'MySQL / MariaDB at DTX_MYSQL_URL (default mysql://dtx:dtx@127.0.0.1:3306), a database of its own per run',
    async prepare() {
      const conn = mysqlConn();
      const database = `dtxbench_${process.pid}_${Date.now().toString(36)}`;
      const { default: mysql } = await import('mysql2/promise');
      const admin = await mysql.createConnection(conn);
      const [[v]] = await admin.query(
        'SELECT VERSION() AS version, @@innodb_flush_log_at_trx_commit AS flush, @@sync_binlog AS sync_binlog, @@log_bin AS log_bin',
      );
      const facts = {
        driver: 'mysql',
        url: `mysql://${conn.host}:${conn.port}/${database}`,
        version: v.version,
        durability: `innodb_flush_log_at_trx_commit ${v.flush}, log_bin ${v.log_bin}, sync_binlog ${v.sync_binlog}`,
      };
      return {
        env: {
          STORE_DRIVER: 'mysql',
          STORE_HOST: conn.host,
          STORE_PORT: String(conn.port),
          STORE_USER: conn.user,
          STORE_PASSWORD: conn.password,
          STORE_DB: database, // the coordinator creates and migrates it at start-up
        },
        facts,
        async cleanup() {
          await admin.query(`DROP DATABASE IF EXISTS ${mysql.escapeId(database)}`);
          await admin.end();
        },
      };
    },
  },
};

export function storeNames() {
  return Object.keys(stores);
}
