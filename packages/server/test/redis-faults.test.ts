/**
 * The coordinator on Redis when Redis goes away (issue 3, item 6): Redis down at start-up is retried with a
 * clear log line; Redis lost mid-run makes requests fail with a 5xx — never a false success — keeps everything
 * that was acknowledged, and processing resumes when Redis is back.
 *
 * The test runs its own redis-server (the real binary that scripts/services.sh runs, with the same persistence
 * settings: appendonly yes, appendfsync everysec) on a free port and a temp dir, and stops it with SHUTDOWN (the
 * AOF is flushed, the data stays) and starts it again on the same dir, as services.sh would. It does not stop
 * the shared Redis on :6379: other test files (and other people's runs) use it at the same time.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_CONFIG, type DtxConfig } from '../src/config.js';
import type { Logger } from '../src/observe/logger.js';
import { type DtxServer, startServer } from '../src/server.js';
import { Busi } from './support/busi.js';
import { startTestDtx, type TestDtx } from './support/dtx.js';
import { call } from './support/http.js';
import { waitFor } from './support/poll.js';
import { gidFor, sagaBody } from './support/trans.js';

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

/** One raw RESP command; resolves with the first reply line, rejects when nothing listens. */
function redisLine(port: number, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: '127.0.0.1', port });
    let data = '';
    sock.setTimeout(2000, () => sock.destroy(new Error('timeout')));
    sock.on('connect', () => sock.write(`${command}\r\n`));
    sock.on('data', (d) => {
      data += d.toString();
      const nl = data.indexOf('\r\n');
      if (nl >= 0) {
        sock.end();
        resolve(data.slice(0, nl));
      }
    });
    sock.on('error', reject);
    sock.on('close', () => resolve(data));
  });
}

/** A redis-server child process with the persistence settings of scripts/services.sh. */
class RedisServer {
  private proc: ChildProcess | undefined;
  private exited: Promise<void> | undefined;
  log = '';
  constructor(
    readonly port: number,
    readonly dir: string,
  ) {
    writeFileSync(
      join(dir, 'redis.conf'),
      [
        'bind 127.0.0.1',
        `port ${port}`,
        'protected-mode yes',
        'daemonize no',
        `dir ${dir}`,
        'appendonly yes',
        'appendfsync everysec',
        '',
      ].join('\n'),
    );
  }

  get running(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Start it (a no-op while it runs) and wait until it answers PING. */
  async start(): Promise<void> {
    if (this.running) return;
    const proc = spawn('redis-server', [join(this.dir, 'redis.conf')], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    proc.stdout?.on('data', (d) => {
      this.log += d;
    });
    proc.stderr?.on('data', (d) => {
      this.log += d;
    });
    this.exited = new Promise((r) => proc.once('exit', () => r()));
    await waitFor(
      `redis-server on :${this.port} to answer (log: ${this.log.slice(-300)})`,
      async () => (await redisLine(this.port, 'PING').catch(() => '')) === '+PONG',
    );
  }

  /** SHUTDOWN: Redis flushes the AOF and exits; the data stays in the dir. */
  async shutdown(): Promise<void> {
    if (!this.running) return;
    await redisLine(this.port, 'SHUTDOWN').catch(() => '');
    await this.exited;
  }

  /** Kill whatever is left (after(): also when a test failed half-way). */
  async kill(): Promise<void> {
    if (this.running) {
      this.proc?.kill('SIGKILL');
      await this.exited;
    }
  }
}

function capturingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const add = (level: string) => (msg: string, fields?: Record<string, unknown>) => {
    lines.push(`${level} ${msg} ${JSON.stringify(fields ?? {})}`);
  };
  return { lines, debug: add('debug'), info: add('info'), warn: add('warn'), error: add('error') };
}

describe('the coordinator on Redis when Redis goes away', { timeout: 120_000 }, () => {
  let dir: string;
  let redis: RedisServer;
  const busi = new Busi();
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dtx-redis-faults-'));
    redis = new RedisServer(await freePort(), dir);
    await busi.start();
  });
  after(async () => {
    await redis.kill();
    await busi.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const storeConfig = (prefix: string) => ({
    Driver: 'redis',
    Host: '127.0.0.1',
    Port: redis.port,
    RedisPrefix: prefix,
  });

  it('Redis down at start-up: the server says so, retries, and starts once Redis answers', async () => {
    const config: DtxConfig = structuredClone(DEFAULT_CONFIG);
    Object.assign(config, {
      HttpPort: 0,
      GrpcPort: 0,
      HttpHost: '127.0.0.1',
      DtxTestMode: true,
      TransCronInterval: 3600,
    });
    Object.assign(config.Store, storeConfig('startup'));
    const log = capturingLogger();
    let server: DtxServer | undefined;
    const starting = startServer({ config, log }).then((s) => {
      server = s;
      return s;
    });
    try {
      const line = await waitFor('the retry log line', () =>
        log.lines.find((l) => l.includes('store is not reachable; retrying in 3 s')),
      );
      assert.match(line, new RegExp(`redis store \\(127\\.0\\.0\\.1:${redis.port}\\)`), line);
      assert.equal(server, undefined, 'not serving without its store');
      await redis.start();
      const s = await starting;
      const ping = await call('GET', `http://127.0.0.1:${s.httpPort}/api/ping`);
      assert.equal(ping.status, 200);
    } finally {
      await redis.start().catch(() => undefined); // let a failed start finish, then stop it
      await (await starting.catch(() => undefined))?.stop();
    }
  });

  it('Redis lost mid-run: 5xx and no false success; nothing acknowledged is lost; processing resumes', async () => {
    await redis.start().catch(() => undefined); // already up after the first test, unless it ran alone
    let started: TestDtx | undefined;
    try {
      const dtx = await startTestDtx({ Store: storeConfig(`midrun-${process.pid}`) });
      started = dtx;
      const api = dtx.api;
      const before = gidFor('before');
      assert.equal((await call('POST', `${api}/submit`, sagaBody(busi, before, { wait_result: true }))).status, 200);
      assert.equal(await dtx.status(before), 'succeed');

      // acknowledged, not finished: TransIn is ONGOING, so the saga stays submitted for the cron
      busi.setAlways('TransIn', 'ONGOING');
      const pending = gidFor('pending');
      assert.equal((await call('POST', `${api}/submit`, sagaBody(busi, pending))).status, 200);
      await waitFor('the pending saga to have run its first pass', () => busi.callsOf(pending).length === 2);
      assert.equal(await dtx.status(pending), 'submitted');

      // Redis goes away while a saga waits on its first branch: the branch result cannot be recorded
      const inFlight = gidFor('in-flight');
      busi.onCall = async (c) => {
        if (c.query.gid === inFlight && c.name === 'TransOut') await redis.shutdown();
      };
      const r = await call('POST', `${api}/submit`, sagaBody(busi, inFlight, { wait_result: true }));
      assert.ok(r.status >= 500, `in-flight saga: ${r.status} ${r.text}`);
      busi.onCall = undefined;

      // while Redis is down, every request that needs it fails with a 5xx
      const during = gidFor('during');
      const down = await call('POST', `${api}/submit`, sagaBody(busi, during, { wait_result: true }));
      assert.equal(down.status, 503, `submit while down: the store is unavailable, not a server bug: ${down.text}`);
      assert.match(down.text, /redis store/);
      assert.equal((await call('GET', `${api}/query?gid=${pending}`)).status, 503);
      assert.equal((await call('GET', `${dtx.base}/api/ping`)).status, 503);
      assert.equal(busi.callsOf(during).length, 0, 'no branch was called for a saga that was not stored');
      await assert.rejects(dtx.cronOnce(), /cronOnce: 5\d\d/);

      // Redis comes back on the same data
      await redis.start();
      await waitFor('ping to succeed again', async () => (await call('GET', `${dtx.base}/api/ping`)).status === 200);
      assert.equal(await dtx.status(before), 'succeed', 'finished before the outage: kept');
      assert.equal(await dtx.status(pending), 'submitted', 'acknowledged before the outage: kept');
      assert.equal(await dtx.status(during), '', 'refused while down: not stored');
      // the in-flight saga was stored before the outage (its client saw a 5xx): the cron finishes it too
      assert.equal(await dtx.status(inFlight), 'submitted');
      busi.setAlways('TransIn', undefined);
      await waitFor('the cron to finish both', async () => {
        await dtx.cronOnce(0, 60);
        return (await dtx.status(pending)) === 'succeed' && (await dtx.status(inFlight)) === 'succeed';
      });
      const after = gidFor('after');
      assert.equal((await call('POST', `${api}/submit`, sagaBody(busi, after, { wait_result: true }))).status, 200);
      assert.equal(await dtx.status(after), 'succeed');
    } finally {
      busi.reset();
      await redis.start().catch(() => undefined);
      await started?.stop();
    }
  });
});
