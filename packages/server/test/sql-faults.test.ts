/**
 * Faults of the SQL stores (issue 3 item 6), on real servers:
 *
 * - PostgreSQL stopped and started with pg_ctl (as the postgres user, like scripts/services.sh does) while dtx
 *   runs: at start-up dtx waits with a clear log line; mid-run requests fail with 5xx, /api/ping says 503,
 *   nothing acknowledged is lost, and processing resumes when the server is back.
 *   These tests run their OWN PostgreSQL cluster (initdb in a temp dir, a free port), with the same binaries
 *   and the same pg_ctl as the shared server: stopping the shared one would break every other test (and
 *   every other developer) using it at the same time. Skipped when not root or PostgreSQL 15 is missing.
 * - MySQL / MariaDB and PostgreSQL connections killed by the server (KILL / pg_terminate_backend): the pools
 *   replace them and the store keeps working.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { DEFAULT_CONFIG } from '../src/config.js';
import { StoreUnavailableError } from '../src/core/errors.js';
import { MysqlStore } from '../src/store/mysql/mysql-store.js';
import { PostgresStore } from '../src/store/postgres/postgres-store.js';
import { dropSqlStoreData } from '../src/store/sql/drop-store-data.js';
import { type SqlStoreOptions, sqlOptionsFromUrl } from '../src/store/sql/sql-options.js';
import { makeBranch, makeTrans } from './store-conformance.js';
import { Busi } from './support/busi.js';
import { CLI, freePort, startTestDtx, type TestDtx } from './support/dtx.js';
import { call } from './support/http.js';
import { waitFor } from './support/poll.js';
import { gidFor, sagaBody } from './support/trans.js';

const run = promisify(execFile);
const PG_BIN = process.env.DTX_PG_BIN ?? '/usr/lib/postgresql/15/bin';

/** A PostgreSQL cluster of this test file only, run as the postgres OS user (like scripts/services.sh). */
class PrivatePostgres {
  readonly dir = mkdtempSync(join(tmpdir(), 'dtx-pgfault-'));
  readonly data = join(this.dir, 'data');
  readonly logFile = join(this.dir, 'postgres.log');
  port = 0;

  private asPostgres(cmd: string, args: string[], timeoutMs = 60_000) {
    return run('setpriv', ['--reuid=postgres', '--regid=postgres', '--init-groups', '--', cmd, ...args], {
      timeout: timeoutMs,
      cwd: '/',
    });
  }

  async init(): Promise<void> {
    const { stdout } = await run('id', ['-u', 'postgres']);
    const { stdout: gid } = await run('id', ['-g', 'postgres']);
    chownSync(this.dir, Number(stdout.trim()), Number(gid.trim()));
    await this.asPostgres(`${PG_BIN}/initdb`, ['-D', this.data, '-U', 'postgres', '-E', 'UTF8', '--auth=trust']);
    this.port = await freePort();
    // durable settings, as the shared server; the socket in our dir
    writeFileSync(
      join(this.data, 'postgresql.auto.conf'),
      `listen_addresses = '127.0.0.1'\nport = ${this.port}\nunix_socket_directories = '${this.dir}'\nfsync = on\nsynchronous_commit = on\n`,
    );
    chownSync(join(this.data, 'postgresql.auto.conf'), Number(stdout.trim()), Number(gid.trim()));
  }

  start(): Promise<unknown> {
    return this.asPostgres(`${PG_BIN}/pg_ctl`, ['-D', this.data, '-l', this.logFile, '-w', '-t', '60', 'start']);
  }

  /** `immediate` is a crash: no checkpoint, recovery from the WAL at the next start. */
  stop(mode: 'fast' | 'immediate' = 'fast'): Promise<unknown> {
    return this.asPostgres(`${PG_BIN}/pg_ctl`, ['-D', this.data, '-m', mode, '-w', '-t', '60', 'stop']);
  }

  async destroy(): Promise<void> {
    await this.stop('immediate').catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }

  options(schema: string): SqlStoreOptions {
    return { host: '127.0.0.1', port: this.port, user: 'postgres', password: '', database: 'postgres', schema };
  }
}

const canRunPostgres = process.getuid?.() === 0 && existsSync(`${PG_BIN}/initdb`) && existsSync(`${PG_BIN}/pg_ctl`);

describe(
  'PostgreSQL stopped and started under dtx',
  { skip: canRunPostgres ? false : 'needs root and PostgreSQL 15 binaries' },
  () => {
    const server = new PrivatePostgres();
    before(async () => {
      await server.init();
    });
    after(async () => {
      await server.destroy();
    });

    it(
      'down at start-up: `dtx serve` logs that it waits, and serves once PostgreSQL is up',
      { timeout: 120_000 },
      async () => {
        const port = await freePort();
        let proc: ChildProcess | undefined;
        let output = '';
        try {
          proc = spawn(process.execPath, [CLI, 'serve'], {
            env: {
              ...process.env,
              HTTP_PORT: String(port),
              HTTP_HOST: '127.0.0.1',
              GRPC_PORT: '0',
              STORE_DRIVER: 'postgres',
              STORE_HOST: '127.0.0.1',
              STORE_PORT: String(server.port),
              STORE_USER: 'postgres',
              STORE_PASSWORD: '',
              STORE_DB: 'postgres',
              STORE_SCHEMA: 'startup',
            },
            stdio: ['ignore', 'pipe', 'pipe'],
          });
          proc.stdout!.on('data', (d: Buffer) => (output += d.toString()));
          proc.stderr!.on('data', (d: Buffer) => (output += d.toString()));
          await waitFor(
            'the log line about the unreachable store',
            () => {
              if (proc?.exitCode !== null) throw new Error(`dtx exited: ${output}`);
              return /store is not reachable; retrying in 3 s/.test(output) && /ECONNREFUSED/.test(output);
            },
            30_000,
          );
          const waiting = await call('GET', `http://127.0.0.1:${port}/api/ping`);
          assert.equal(waiting.status, 503, waiting.text);
          assert.equal((waiting.json as { msg: string }).msg, 'store unavailable');
          assert.equal((await call('POST', `http://127.0.0.1:${port}/api/dtmsvr/submit`, { gid: 'x' })).status, 503);
          await server.start();
          await waitFor(
            'dtx answering /api/ping once PostgreSQL is up',
            async () => {
              if (proc?.exitCode !== null) throw new Error(`dtx exited: ${output}`);
              return (await call('GET', `http://127.0.0.1:${port}/api/ping`)).status === 200;
            },
            60_000,
          );
          assert.match(output, /store schema migrated/);
        } finally {
          if (proc && proc.exitCode === null && proc.signalCode === null) {
            const exited = new Promise((r) => proc!.once('exit', r));
            proc.kill('SIGKILL');
            await exited;
          }
        }
      },
    );

    describe('lost mid-run', () => {
      let dtx: TestDtx;
      let busi: Busi;
      before(async () => {
        await server.start().catch(() => undefined); // started by the previous test, or not
        busi = await new Busi().start();
        const o = server.options('midrun');
        dtx = await startTestDtx({
          Store: {
            ...DEFAULT_CONFIG.Store,
            Driver: 'postgres',
            Host: o.host,
            Port: o.port,
            User: o.user,
            Password: o.password,
            Db: o.database,
            Schema: o.schema!,
          },
        });
      });
      after(async () => {
        // whatever happened, leave the server running for the next test and stop ours
        await server.start().catch(() => undefined);
        await dtx?.stop();
        await busi?.stop();
      });

      it(
        'requests fail with 5xx while it is down, nothing acknowledged is lost, and the cron finishes the work after',
        { timeout: 120_000 },
        async () => {
          const ok = gidFor('pgfault-ok');
          let r = await call('POST', `${dtx.api}/submit`, { ...sagaBody(busi, ok), wait_result: true });
          assert.equal(r.status, 200, r.text);

          // the store goes away while a saga waits for its second branch
          const cut = gidFor('pgfault-cut');
          busi.onCall = async (c) => {
            if (c.query.gid === cut && c.name === 'TransIn') await server.stop('fast');
          };
          r = await call('POST', `${dtx.api}/submit`, { ...sagaBody(busi, cut), wait_result: true });
          assert.ok(r.status >= 500, `the branch result could not be recorded: ${r.status} ${r.text}`);
          assert.doesNotMatch(r.text, /SUCCESS/);
          busi.onCall = undefined;

          const ping = await call('GET', `${dtx.base}/api/ping`);
          assert.equal(ping.status, 503, ping.text);
          const never = gidFor('pgfault-never');
          r = await call('POST', `${dtx.api}/submit`, { ...sagaBody(busi, never), wait_result: true });
          assert.equal(r.status, 503, `submit while down: the store is unavailable, not a server bug: ${r.text}`);
          r = await call('GET', `${dtx.api}/query?gid=${ok}`);
          assert.equal(r.status, 503, `query while down: ${r.text}`);

          await server.start();
          await waitFor(
            '/api/ping after the restart',
            async () => (await call('GET', `${dtx.base}/api/ping`)).status === 200,
            30_000,
          );

          assert.equal(await dtx.status(ok), 'succeed', 'the saga acknowledged before the outage is intact');
          assert.equal(await dtx.status(never), '', 'the submit that failed stored nothing');
          // the interrupted saga was stored (its submit had saved it); the cron drives it to its end
          assert.equal(await dtx.status(cut), 'submitted');
          await dtx.cronFor(cut);
          assert.equal(await dtx.status(cut), 'succeed');
          assert.deepEqual(await dtx.branchStatuses(cut), ['prepared', 'succeed', 'prepared', 'succeed']);
          // and new work goes through
          const later = gidFor('pgfault-later');
          r = await call('POST', `${dtx.api}/submit`, { ...sagaBody(busi, later), wait_result: true });
          assert.equal(r.status, 200, r.text);
        },
      );
    });

    it(
      'a crash during a stream of writes: every acknowledged write survives; the same store recovers',
      { timeout: 120_000 },
      async () => {
        await server.start().catch(() => undefined);
        const store = await PostgresStore.open(server.options('crash'));
        try {
          const acked: string[] = [];
          const failures: unknown[] = [];
          let stop = false;
          let n = 0;
          const worker = async () => {
            while (!stop) {
              const gid = `crash-${n++}`;
              try {
                await store.saveNew(makeTrans(gid), [makeBranch(gid, '01', 'action')]);
                acked.push(gid);
              } catch (err) {
                failures.push(err);
                if (failures.length > 50) return;
                await new Promise((r) => setTimeout(r, 10));
              }
            }
          };
          const workers = Array.from({ length: 20 }, worker);
          await waitFor('some writes acknowledged', () => acked.length >= 200, 30_000);
          await server.stop('immediate'); // a crash: no shutdown checkpoint
          await waitFor('writes failing', () => failures.length >= 20, 30_000);
          stop = true;
          await Promise.all(workers);
          for (const err of failures) {
            assert.ok(
              err instanceof StoreUnavailableError,
              `a connection failure is StoreUnavailableError: ${String(err)}`,
            );
          }
          await assert.rejects(store.ping(), StoreUnavailableError);

          await server.start();
          await waitFor(
            'the same store answering again',
            async () => {
              await store.ping();
              return true;
            },
            30_000,
          );
          for (const gid of acked) {
            assert.equal((await store.findTrans(gid))?.gid, gid, `acknowledged ${gid} survived the crash`);
          }
          await store.saveNew(makeTrans('after-crash'), []);
          assert.equal((await store.findTrans('after-crash'))?.gid, 'after-crash');
        } finally {
          await store.close();
        }
      },
    );
  },
);

describe('connections killed by the database server', () => {
  it('PostgreSQL: pg_terminate_backend on every connection of the store; it keeps working', async () => {
    const base = sqlOptionsFromUrl(process.env.DTX_PG_URL ?? 'postgres://dtx:dtx@127.0.0.1:5432/dtx_test');
    const schema = `dtx_pgkill_${process.pid}_${Date.now().toString(36)}`;
    // a name of its own: only this store's connections are killed, not those of tests running alongside
    const applicationName = `dtx-kill-${process.pid}`;
    const store = await PostgresStore.open({ ...base, schema, retryIntervalMs: 0, applicationName });
    const admin = new pg.Client({ ...base });
    await admin.connect();
    try {
      await Promise.all(Array.from({ length: 5 }, (_, i) => store.saveNew(makeTrans(`k-${i}`), [])));
      await store.findTrans('k-0');
      const killed = await admin.query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE application_name = $1 AND pid <> pg_backend_pid()`,
        [applicationName],
      );
      assert.ok((killed.rowCount ?? 0) > 0, 'connections were killed');
      // an operation may fail once (reported, never a false success); then the pool has fresh connections
      await waitFor('the store working again', async () => {
        await store.saveNew(makeTrans(`after-kill-${Date.now()}`), []);
        return true;
      });
      assert.equal((await store.findTrans('k-4'))?.gid, 'k-4');
    } finally {
      await store.close();
      await admin.end();
      await dropSqlStoreData('postgres', { ...base, schema });
    }
  });

  it('MySQL: KILL on every connection of the store; it keeps working', async () => {
    const server = sqlOptionsFromUrl(process.env.DTX_MYSQL_URL ?? 'mysql://dtx:dtx@127.0.0.1:3306/dtx_test');
    const database = `dtx_mykill_${process.pid}_${Date.now().toString(36)}`;
    const store = await MysqlStore.open({ ...server, database, retryIntervalMs: 0 });
    const admin = await mysql.createConnection({
      host: server.host,
      port: server.port,
      user: server.user,
      password: server.password,
    });
    try {
      await Promise.all(Array.from({ length: 5 }, (_, i) => store.saveNew(makeTrans(`k-${i}`), [])));
      await store.findTrans('k-0');
      const [conns] = (await admin.query('SELECT id FROM information_schema.processlist WHERE db = ?', [database])) as [
        { id: number }[],
        unknown,
      ];
      assert.ok(conns.length > 0, 'the store has connections');
      for (const c of conns) await admin.query('KILL ?', [c.id]);
      await waitFor('the store working again', async () => {
        await store.saveNew(makeTrans(`after-kill-${Date.now()}`), []);
        return true;
      });
      assert.equal((await store.findTrans('k-4'))?.gid, 'k-4');
      await store.updateBranches('k-4', 'submitted', []);
    } finally {
      await store.close();
      await admin.end();
      await dropSqlStoreData('mysql', { ...server, database });
    }
  });
});
