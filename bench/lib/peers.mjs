// The peers `--peers` compares dtx with: DTM (Go, from the Go module proxy) and dtmrs (Rust, from crates.io).
// Builds them into a cache directory outside the repository, starts one at a time on loopback ports, and
// says how each one is configured (store, durability) for the results file.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { mysqlConn, pgConn } from './stores.mjs';

export const DTM_MODULE = 'github.com/dtm-labs/dtm';
export const DTM_VERSION = 'v1.19.0';
export const DTMRS_VERSION = '0.13.0';

export const CACHE_DIR = process.env.DTX_BENCH_PEERS_CACHE ?? join(homedir(), '.cache', 'dtx-bench');
const dtmBin = () => join(CACHE_DIR, 'dtm', 'dtm');
const dtmrsBin = () => join(CACHE_DIR, 'dtmrs', 'bin', 'dtmrs');

function onPath(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

function log(msg) {
  process.stderr.write(`${msg}\n`);
}

/**
 * Builds DTM once. `go install module@version` first; when the proxy refuses the version list it needs
 * for its deprecation check, builds the downloaded module in its own directory instead (same sources).
 * @returns {{ bin: string | null, note: string }}
 */
export function ensureDtm() {
  const bin = dtmBin();
  if (existsSync(bin)) return { bin, note: `cached ${bin}` };
  if (!onPath('go')) return { bin: null, note: 'go not on PATH: DTM not measured' };
  mkdirSync(join(CACHE_DIR, 'dtm'), { recursive: true });
  log(`building DTM ${DTM_VERSION} from the Go module proxy into ${bin} (a few minutes) ...`);
  const env = { ...process.env, GOBIN: join(CACHE_DIR, 'dtm') };
  const inst = spawnSync('go', ['install', `${DTM_MODULE}@${DTM_VERSION}`], {
    cwd: CACHE_DIR,
    env,
    stdio: ['ignore', 'inherit', 'pipe'],
    encoding: 'utf8',
  });
  if (inst.status === 0 && existsSync(bin)) return { bin, note: `built with go install into ${bin}` };
  log(
    `go install failed (${(inst.stderr ?? '').trim().split('\n').slice(-2).join(' / ')}); trying go mod download + go build`,
  );
  try {
    const info = JSON.parse(
      execFileSync('go', ['mod', 'download', '-json', `${DTM_MODULE}@${DTM_VERSION}`], {
        cwd: CACHE_DIR,
        encoding: 'utf8',
      }),
    );
    execFileSync('go', ['build', '-trimpath', '-o', bin, '.'], { cwd: info.Dir, stdio: 'inherit' });
    return { bin, note: `built with go build in ${info.Dir} into ${bin}` };
  } catch (e) {
    return { bin: null, note: `DTM build failed: ${e instanceof Error ? e.message : e}` };
  }
}

/**
 * Builds dtmrs once with cargo (compiles for many minutes on 2 cores).
 * @returns {{ bin: string | null, note: string }}
 */
export function ensureDtmrs() {
  const bin = dtmrsBin();
  if (existsSync(bin)) return { bin, note: `cached ${bin}` };
  if (!onPath('cargo')) return { bin: null, note: 'cargo not on PATH: dtmrs not measured' };
  log(
    `building dtmrs ${DTMRS_VERSION} with cargo into ${join(CACHE_DIR, 'dtmrs')} ` +
      '(compiles for 10+ minutes on 2 cores; skip it with --peer dtm) ...',
  );
  const r = spawnSync(
    'cargo',
    ['install', 'dtmrs', '--version', DTMRS_VERSION, '--features', 'server,redis', '--root', join(CACHE_DIR, 'dtmrs')],
    { stdio: 'inherit' },
  );
  if (r.status === 0 && existsSync(bin)) return { bin, note: `built with cargo install into ${bin}` };
  return { bin: null, note: `dtmrs build failed (cargo exit ${r.status}): dtmrs not measured` };
}

/**
 * Which store of each peer is measured against which dtx store. `null`: the peer is not run on it.
 * DTM: its Store.* YAML keys; SQLite has no DTM counterpart, so dtx's SQLite meets DTM's embedded BoltDB.
 * dtmrs: its DTMRS_DB URL (sqlite: file; no key prefix setting for Redis, so not run on the shared Redis).
 */
export const PEER_STORES = {
  dtm: { sqlite: 'boltdb', redis: 'redis', postgres: 'postgres', mysql: 'mysql' },
  dtmrs: { sqlite: 'sqlite', redis: 'redis', postgres: 'postgres', mysql: 'mysql' },
};

/** The Redis database dtmrs runs on (it has no key prefix): a number of its own, flushed before and after each run. */
export const DTMRS_REDIS_DB = 7;

/** DTM's own schema script for `driver` (sqls/dtmsvr.storage.<driver>.sql of the module DTM was built from). */
function dtmSchemaSql(driver) {
  const info = JSON.parse(
    execFileSync('go', ['mod', 'download', '-json', `${DTM_MODULE}@${DTM_VERSION}`], {
      cwd: CACHE_DIR,
      encoding: 'utf8',
    }),
  );
  return readFileSync(join(info.Dir, 'sqls', `dtmsvr.storage.${driver}.sql`), 'utf8');
}

/**
 * A fresh, empty database for one peer run on PostgreSQL or MySQL: `dtxbench_<peer>_<pid>_<t>` (DTM on MySQL: its
 * script creates and fills the database `dtm` itself), with DTM's tables from DTM's own script; dtmrs creates its
 * own tables at start. Returns the database name, what the server is told, and the cleanup that drops it.
 */
export async function preparePeerSqlStore(peer, driver) {
  const name = `dtxbench_${peer}_${process.pid}_${Date.now().toString(36)}`;
  if (driver === 'postgres') {
    const conn = pgConn();
    const { default: pg } = await import('pg');
    const admin = new pg.Client(conn);
    await admin.connect();
    await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
    if (peer === 'dtm') {
      const c = new pg.Client({ ...conn, database: name });
      await c.connect();
      await c.query(dtmSchemaSql('postgres'));
      await c.end();
    }
    const facts = `fsync ${(await admin.query('SHOW fsync')).rows[0].fsync}, synchronous_commit ${(await admin.query('SHOW synchronous_commit')).rows[0].synchronous_commit}`;
    return {
      db: name,
      conn,
      durability: `PostgreSQL ${facts}`,
      cleanup: async () => {
        await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
        await admin.end();
      },
    };
  }
  const conn = mysqlConn();
  const { default: mysql } = await import('mysql2/promise');
  const admin = await mysql.createConnection({ ...conn, multipleStatements: true });
  const db = peer === 'dtm' ? 'dtm' : name;
  if (peer === 'dtm') await admin.query(dtmSchemaSql('mysql'));
  else await admin.query(`CREATE DATABASE ${mysql.escapeId(db)}`);
  const [[v]] = await admin.query('SELECT @@innodb_flush_log_at_trx_commit AS flush, @@sync_binlog AS sync_binlog');
  return {
    db,
    conn,
    durability: `MariaDB innodb_flush_log_at_trx_commit ${v.flush}, sync_binlog ${v.sync_binlog}`,
    cleanup: async () => {
      await admin.query(`DROP DATABASE IF EXISTS ${mysql.escapeId(db)}`);
      await admin.end();
    },
  };
}

/**
 * DTM's config file for one run: loopback-only ports of the bench's choosing, warn-level logs, synchronous
 * branch writes (UpdateBranchSync: 1, so a branch result is stored before DTM moves on, like dtx), and the
 * store. DTM binds all interfaces on its ports; the bench only ever connects to 127.0.0.1.
 */
export function writeDtmConfig({ file, store, httpPort, grpcPort, jsonRpcPort, redisPrefix, sql, sync = true }) {
  const lines = [
    `HttpPort: ${httpPort}`,
    `GrpcPort: ${grpcPort}`,
    `JsonRpcPort: ${jsonRpcPort}`,
    `UpdateBranchSync: ${sync ? 1 : 0}`,
    "LogLevel: 'error'",
    'Store:',
  ];
  if (store === 'boltdb') lines.push("  Driver: 'boltdb'");
  else if (store === 'redis') {
    const url = new URL(process.env.DTX_REDIS_URL ?? 'redis://127.0.0.1:6379');
    lines.push(
      "  Driver: 'redis'",
      `  Host: '${url.hostname}'`,
      `  Port: ${Number(url.port || 6379)}`,
      "  User: ''",
      "  Password: ''",
      `  RedisPrefix: '${redisPrefix}'`,
      '  FinishedDataExpire: 600',
      '  DataExpire: 600',
    );
  } else if (store === 'postgres' || store === 'mysql') {
    lines.push(
      `  Driver: '${store}'`,
      `  Host: '${sql.conn.host}'`,
      `  Port: ${sql.conn.port}`,
      `  User: '${sql.conn.user}'`,
      `  Password: '${sql.conn.password}'`,
      `  Db: '${sql.db}'`,
      ...(store === 'postgres' ? ["  Schema: 'public'"] : []),
    );
  } else throw new Error(`DTM store ${store} not wired into the bench`);
  writeFileSync(file, `${lines.join('\n')}\n`);
  return lines.join('; ');
}

/** What the results file says about each side's durability. */
export const DURABILITY = {
  dtx: {
    sqlite: 'WAL, fdatasync of the WAL per group commit before any caller is told',
    redis: "the Redis server's appendonly/appendfsync",
  },
  dtm: {
    boltdb: 'BoltDB (bbolt) default: fsync per write transaction; UpdateBranchSync: 1',
    redis: "the Redis server's appendonly/appendfsync; UpdateBranchSync: 1",
    postgres: "the PostgreSQL server's settings; UpdateBranchSync: 1",
    mysql: "the MariaDB server's settings; UpdateBranchSync: 1",
  },
  dtmrs: {
    sqlite: 'WAL + synchronous=NORMAL (fixed by dtmrs: a power cut can lose the last commits)',
    redis: `the Redis server's appendonly/appendfsync (database ${DTMRS_REDIS_DB})`,
    postgres: "the PostgreSQL server's settings",
    mysql: "the MariaDB server's settings",
  },
};
