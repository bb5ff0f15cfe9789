/**
 * The built CLI (`node packages/server/dist/src/cli.js`, spec §10.1 flags): version and help, config errors that
 * stop the start, `serve` from env vars and from a DTM-style YAML file, clean shutdown on SIGTERM, and `migrate`.
 * Children run in a temp directory, with the config env vars of the calling shell removed.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { DEFAULT_CONFIG, envName } from '../src/config.js';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { CLI, DtxProcess, freePort } from './support/dtx.js';
import { call } from './support/http.js';
import { waitFor } from './support/poll.js';

const PKG_VERSION = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

/** Env var names of every config key (HTTP_PORT, STORE_DRIVER, ...). */
function configEnvNames(obj: object, prefix = ''): string[] {
  return Object.entries(obj).flatMap(([k, v]) => {
    const path = prefix ? `${prefix}.${k}` : k;
    return v && typeof v === 'object' ? configEnvNames(v, path) : [envName(path)];
  });
}
const CONFIG_ENV = new Set(configEnvNames(DEFAULT_CONFIG));

/** The caller's environment without any dtx/DTM config variable, plus `extra`. */
function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !CONFIG_ENV.has(k)) env[k] = v;
  return { ...env, ...extra };
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A CLI child process whose output is collected. */
class Cli {
  readonly proc: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exited: Promise<Exit>;

  constructor(args: string[], env: Record<string, string>, cwd: string) {
    this.proc = spawn(process.execPath, [CLI, ...args], { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc.stdout!.on('data', (d: Buffer) => (this.stdout += d.toString()));
    this.proc.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((resolve, reject) => {
      this.proc.once('error', reject);
      this.proc.once('close', (code, signal) => resolve({ code, signal }));
    });
  }

  get output(): string {
    return this.stdout + this.stderr;
  }

  /** Kill it if it is still running (test clean-up). */
  async kill(): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.kill('SIGKILL');
      await this.exited.catch(() => undefined);
    }
  }
}

describe('dtx CLI', () => {
  let dir: string;
  const started: Cli[] = [];
  const dtxs: DtxProcess[] = [];
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'dtx-cli-'));
  });
  after(async () => {
    for (const c of started) await c.kill();
    for (const d of dtxs) await d.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Run the CLI to its exit. */
  async function run(args: string[], env: Record<string, string> = {}): Promise<Exit & { out: Cli }> {
    const c = new Cli(args, cleanEnv(env), dir);
    started.push(c);
    const exit = await c.exited;
    return { ...exit, out: c };
  }

  it('-v and --version print the package version and exit 0', { timeout: 30_000 }, async () => {
    for (const flag of ['-v', '--version']) {
      const r = await run([flag]);
      assert.equal(r.code, 0, r.out.output);
      assert.equal(r.out.stdout.trim(), `v${PKG_VERSION}`);
    }
  });

  it('-h prints the usage with serve and migrate and exits 0', { timeout: 30_000 }, async () => {
    const r = await run(['-h']);
    assert.equal(r.code, 0, r.out.output);
    assert.match(r.out.stdout, /dtx serve/);
    assert.match(r.out.stdout, /dtx migrate/);
    assert.match(r.out.stdout, /-c/);
  });

  it('an unknown command exits 2 and names it', { timeout: 30_000 }, async () => {
    const r = await run(['frobnicate']);
    assert.equal(r.code, 2, r.out.output);
    assert.match(r.out.stderr, /frobnicate/);
  });

  it(
    'serve -c with RetryInterval: 5 exits non-zero with a message naming RetryInterval',
    {
      timeout: 30_000,
    },
    async () => {
      const port = await freePort();
      const conf = join(dir, 'bad-retry.yml');
      writeFileSync(conf, `RetryInterval: 5\nHttpPort: ${port}\nStore:\n  SqlitePath: ${join(dir, 'bad.sqlite')}\n`);
      const r = await run(['serve', '-c', conf]);
      assert.notEqual(r.code, 0, r.out.output);
      assert.equal(r.signal, null);
      assert.match(r.out.stderr, /RetryInterval should not be less than 10/);
      assert.equal(existsSync(join(dir, 'bad.sqlite')), false, 'no store was opened');
    },
  );

  it(
    'serve -c with a misspelt key (Store.Drvier) exits non-zero naming it and the closest key',
    { timeout: 30_000 },
    async () => {
      const port = await freePort();
      const conf = join(dir, 'typo.yml');
      writeFileSync(conf, `Store:\n  Drvier: postgres\n  SqlitePath: ${join(dir, 'typo.sqlite')}\nHttpPort: ${port}\n`);
      const r = await run(['serve', '-c', conf]);
      assert.notEqual(r.code, 0, r.out.output);
      assert.equal(r.signal, null);
      assert.match(r.out.stderr, /Store\.Drvier \(.*\): unknown key; did you mean Store\.Driver\?/);
      assert.equal(existsSync(join(dir, 'typo.sqlite')), false, 'it did not start on SQLite');
    },
  );

  it('serve -c with a missing file exits non-zero naming the file', { timeout: 30_000 }, async () => {
    const missing = join(dir, 'no-such-conf.yml');
    const r = await run(['serve', '-c', missing]);
    assert.notEqual(r.code, 0, r.out.output);
    assert.ok(r.out.stderr.includes(missing), r.out.stderr);
  });

  it('a wrongly typed env var stops the start and names the key', { timeout: 30_000 }, async () => {
    const r = await run(['serve'], { HTTP_PORT: 'abc', STORE_SQLITE_PATH: join(dir, 'typed.sqlite') });
    assert.notEqual(r.code, 0, r.out.output);
    assert.match(r.out.stderr, /HttpPort/);
  });

  it('serve configured by env answers /api/ping and exits 0 on SIGTERM', { timeout: 30_000 }, async () => {
    const port = await freePort();
    const sqlite = join(dir, 'env', 'dtx.sqlite');
    const dtx = new DtxProcess(port, { STORE_DRIVER: 'sqlite', STORE_SQLITE_PATH: sqlite, RETRY_INTERVAL: '10' });
    dtxs.push(dtx);
    await dtx.start();
    const ping = await call('GET', `http://127.0.0.1:${port}/api/ping`);
    assert.equal(ping.status, 200);
    assert.deepEqual(ping.json, { msg: 'pong' });
    assert.ok(existsSync(sqlite), 'the SQLite file of STORE_SQLITE_PATH is used');
    await dtx.stop();
    assert.equal(dtx.proc?.signalCode, null, `not killed by the signal: ${dtx.output}`);
    assert.equal(dtx.proc?.exitCode, 0, dtx.output);
    await assert.rejects(call('GET', `http://127.0.0.1:${port}/api/ping`), 'the port is closed');
  });

  it('Store.Driver: boltdb in YAML starts on SQLite and warns about unused keys', { timeout: 30_000 }, async () => {
    const port = await freePort();
    const sqlite = join(dir, 'bolt', 'dtx.sqlite');
    const conf = join(dir, 'boltdb.yml');
    writeFileSync(
      conf,
      [
        'Store:',
        "  Driver: 'boltdb'",
        `  SqlitePath: '${sqlite}'`,
        `HttpPort: ${port}`,
        'GrpcPort: 0',
        "HttpHost: '127.0.0.1'",
        "GrpcBalancer: 'round_robin'",
        '',
      ].join('\n'),
    );
    const c = new Cli(['serve', '-c', conf], cleanEnv(), dir);
    started.push(c);
    await waitFor(`dtx serve -c boltdb.yml on port ${port}`, async () => {
      if (c.proc.exitCode !== null) throw new Error(`dtx exited ${c.proc.exitCode}: ${c.output}`);
      return (await call('GET', `http://127.0.0.1:${port}/api/ping`)).status === 200;
    });
    const sub = await call(
      'GET',
      `http://127.0.0.1:${port}/api/dtmsvr/subscribe?topic=cli-topic&url=${encodeURIComponent('http://busi/x')}&remark=r`,
    );
    assert.equal(sub.status, 200, sub.text);
    c.proc.kill('SIGTERM');
    const exit = await c.exited;
    assert.deepEqual(exit, { code: 0, signal: null }, c.output);
    assert.match(c.output, /GrpcBalancer/, 'the unused key is reported');

    const store = new SqliteStore({ path: sqlite });
    try {
      const [kv] = await store.findKV('topics', 'cli-topic');
      assert.ok(kv, 'the subscription is in the SQLite file named by the YAML');
      assert.deepEqual(JSON.parse(kv.v), [{ url: 'http://busi/x', remark: 'r' }]);
    } finally {
      await store.close();
    }
  });

  it('migrate creates the SQLite file with its tables and exits 0; -r empties it', { timeout: 30_000 }, async () => {
    const sqlite = join(dir, 'migrate', 'deep', 'dtx.sqlite');
    assert.equal(existsSync(sqlite), false);
    let r = await run(['migrate'], { STORE_SQLITE_PATH: sqlite });
    assert.equal(r.code, 0, r.out.output);
    assert.ok(existsSync(sqlite), 'the file was created');
    const db = new Database(sqlite, { readonly: true });
    try {
      const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[])
        .map((t) => t.name)
        .filter((n) => !n.startsWith('sqlite_'))
        .sort();
      assert.deepEqual(tables, ['kv', 'trans_branch_op', 'trans_global']);
      assert.ok((db.pragma('user_version', { simple: true }) as number) >= 1, 'schema version recorded');
    } finally {
      db.close();
    }

    const store = new SqliteStore({ path: sqlite });
    await store.createKV('topics', 'kept', '[]', 1);
    await store.close();
    r = await run(['migrate'], { STORE_SQLITE_PATH: sqlite });
    assert.equal(r.code, 0, r.out.output);
    let check = new SqliteStore({ path: sqlite });
    assert.equal((await check.findKV('topics', 'kept')).length, 1, 'migrate keeps the data');
    await check.close();

    r = await run(['migrate', '-r'], { STORE_SQLITE_PATH: sqlite });
    assert.equal(r.code, 0, r.out.output);
    check = new SqliteStore({ path: sqlite });
    assert.deepEqual(await check.findKV('topics', 'kept'), [], 'migrate -r drops the data');
    await check.close();
  });
  it(
    'serve logs an uncaught exception and an unhandled rejection with their stacks and keeps serving',
    { timeout: 30_000 },
    async () => {
      // a preloaded module throws outside any handler, and rejects a promise nobody awaits, on SIGUSR2
      const preload = join(dir, 'stray-errors.mjs');
      writeFileSync(
        preload,
        "process.on('SIGUSR2', () => { Promise.reject(new Error('stray rejection')); throw new Error('stray exception'); });\n",
      );
      const d = new DtxProcess(await freePort(), {
        ...cleanEnv(),
        STORE_SQLITE_PATH: join(dir, 'stray.sqlite'),
        NODE_OPTIONS: `--import=${pathToFileURL(preload).href}`,
      });
      dtxs.push(d);
      await d.start();
      d.proc!.kill('SIGUSR2');
      await waitFor(
        'both stray errors logged',
        async () => /stray exception/.test(d.output) && /stray rejection/.test(d.output),
      );
      assert.match(d.output, /uncaught exception; dtx keeps serving.*"stack":"Error: stray exception/);
      assert.match(d.output, /unhandled promise rejection; dtx keeps serving.*"stack":"Error: stray rejection/);
      assert.equal(d.proc!.exitCode, null, d.output);
      assert.equal((await call('GET', `http://127.0.0.1:${d.port}/api/ping`)).status, 200);
    },
  );
});
