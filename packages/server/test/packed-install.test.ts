/**
 * @dtx/server as a user installs it: `npm pack` of @dtx/protocol and @dtx/server, installed into a fresh project
 * outside the workspace from the tarballs alone, without any of the optional peer dependencies (store drivers,
 * etcd, OpenTelemetry) — see support/packed.ts. The installed `dtx` command then serves on SQLite and runs a saga
 * against a branch service on loopback, which shows that the embedded store loads none of the optional packages;
 * and a configuration that needs one stops with a message naming the package to install.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_CONFIG, envName } from '../src/config.js';
import { OPTIONAL_PACKAGES } from '../src/optional-package.js';
import { Busi } from './support/busi.js';
import { freePort } from './support/dtx.js';
import { call } from './support/http.js';
import { installPacked, npm, packedFiles, packWorkspace, ROOT, run } from './support/packed.js';
import { waitFor } from './support/poll.js';

/** Env var names of every config key, removed from the children's environment. */
function configEnvNames(obj: object, prefix = ''): string[] {
  return Object.entries(obj).flatMap(([k, v]) => {
    const path = prefix ? `${prefix}.${k}` : k;
    return v && typeof v === 'object' ? configEnvNames(v, path) : [envName(path)];
  });
}
const CONFIG_ENV = new Set(configEnvNames(DEFAULT_CONFIG));
function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!CONFIG_ENV.has(k) && !/^npm_/i.test(k)) env[k] = v;
  return { ...env, ...extra };
}

describe('@dtx/server installed from its packed tarball, without optional peer dependencies', () => {
  let dir: string;
  let project: string;
  let bin: string;
  const children: ChildProcess[] = [];
  const busi = new Busi();

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dtx-packed-server-'));
    project = join(dir, 'app');
    const tarballs = await packWorkspace(['packages/protocol', 'packages/admin', 'packages/server'], join(dir, 'tgz'));
    await installPacked(project, tarballs, ['@dtx/server']);
    bin = join(project, 'node_modules', '.bin', 'dtx');
    await busi.start();
  });
  after(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await busi.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('ships the compiled sources, the bin, the Lua scripts, README and LICENSE, and no tests or maps', async () => {
    const files = await packedFiles('packages/server');
    for (const f of ['LICENSE', 'README.md', 'package.json', 'bin/dtx.js', 'dist/src/cli.js', 'dist/src/index.d.ts']) {
      assert.ok(files.includes(f), `${f} is packed`);
    }
    assert.ok(files.includes('src/store/redis/lua/save-new.1.lua'));
    assert.ok(files.includes('src/store/redis/lua/include/unpacked.lua'), 'the Lua fragments are packed');
    assert.ok(
      files.some((f) => f.startsWith('templates/')),
      'the dtx init template is packed',
    );
    // the starter's own test (templates/starter/test) is part of what dtx init writes
    const unwanted = files.filter(
      (f) => !f.startsWith('templates/') && /(^|\/)test\/|\.test\.|\.map$|\.tsbuildinfo$|^src\/.*\.ts$/.test(f),
    );
    assert.deepEqual(unwanted, []);
  });

  it('installs none of the optional peer dependencies', () => {
    const installed = (name: string) => existsSync(join(project, 'node_modules', ...name.split('/')));
    assert.ok(installed('better-sqlite3'), 'the embedded store is a dependency');
    // prom-client (the process metrics) depends on the OpenTelemetry API package itself — the API alone, no SDK
    const pulledIn = new Set(['@opentelemetry/api']);
    assert.deepEqual(
      Object.keys(OPTIONAL_PACKAGES).filter((p) => !pulledIn.has(p) && installed(p)),
      [],
    );
    assert.ok(readdirSync(join(project, 'node_modules')).length > 0);
  });

  it(
    'its types compile strict with skipLibCheck false, without the optional packages',
    { timeout: 60_000 },
    async () => {
      writeFileSync(
        join(project, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: {
            module: 'nodenext',
            moduleResolution: 'nodenext',
            strict: true,
            skipLibCheck: false,
            noEmit: true,
            types: ['node'],
          },
          files: ['main.ts'],
        }),
      );
      writeFileSync(
        join(project, 'main.ts'),
        "import { loadConfig, startServer, type DtxServer } from '@dtx/server';\n" +
          'const { config } = loadConfig();\n' +
          'const server: DtxServer = await startServer({ config });\n' +
          'await server.stop();\n',
      );
      // the workspace's compiler, on the project's own node_modules
      const r = await run(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', project], {
        cwd: project,
        timeoutMs: 60_000,
      });
      assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    },
  );

  it('`dtx -h` lists the commands', async () => {
    const r = await npm(['exec', '--offline', '--no', '--', 'dtx', '-h'], project, 60_000);
    assert.equal(r.code, 0, r.stderr);
    for (const cmd of ['dtx serve', 'dtx migrate', 'dtx init']) assert.match(r.stdout, new RegExp(cmd));
  });

  it('`dtx serve` on SQLite answers /api/ping and runs a saga to success', { timeout: 60_000 }, async () => {
    const port = await freePort();
    const child = spawn(bin, ['serve'], {
      cwd: project,
      env: childEnv({
        HTTP_HOST: '127.0.0.1',
        HTTP_PORT: String(port),
        GRPC_PORT: '0',
        STORE_SQLITE_PATH: join(dir, 'dtx.sqlite'),
      }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let output = '';
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const api = `http://127.0.0.1:${port}/api`;
    await waitFor(
      'the installed dtx to answer /api/ping',
      async () => {
        if (child.exitCode !== null) throw new Error(`dtx exited ${child.exitCode}: ${output}`);
        return (await call('GET', `${api}/ping`)).status === 200;
      },
      30_000,
    );
    // the admin UI comes with the package (@dtx/admin, a dependency)
    const page = await call('GET', `http://127.0.0.1:${port}/`);
    assert.equal(page.status, 200, page.text);
    assert.match(page.text, /<html/i);
    const gid = `packed-${process.pid}`;
    const r = await call('POST', `${api}/dtmsvr/submit`, {
      gid,
      trans_type: 'saga',
      wait_result: true,
      steps: [{ action: `${busi.url}/TransOut`, compensate: `${busi.url}/TransOutRevert` }],
      payloads: ['{"amount":30}'],
    });
    assert.equal(r.status, 200, r.text);
    const q = await call<{ transaction: { status: string } }>('GET', `${api}/dtmsvr/query?gid=${gid}`);
    assert.equal(q.json.transaction.status, 'succeed');
    assert.deepEqual(
      busi.calls.map((c) => c.name),
      ['TransOut'],
    );
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('close', resolve));
    assert.equal(child.exitCode, 0, output);
  });

  it('Store.Driver: postgres stops the start naming the package to install', { timeout: 30_000 }, async () => {
    const r = await run(bin, ['serve'], {
      cwd: project,
      env: childEnv({
        HTTP_HOST: '127.0.0.1',
        HTTP_PORT: String(await freePort()),
        GRPC_PORT: '0',
        STORE_DRIVER: 'postgres',
        STORE_HOST: '127.0.0.1',
        STORE_PORT: '5432',
        STORE_USER: 'dtx',
      }),
      timeoutMs: 30_000,
    });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /Store\.Driver=postgres needs the "pg" package: npm i pg/);
  });

  it('etcd registration and tracing name their packages too', { timeout: 30_000 }, async () => {
    const base = { HTTP_HOST: '127.0.0.1', GRPC_PORT: '0', STORE_SQLITE_PATH: join(dir, 'other.sqlite') };
    const etcd = await run(bin, ['serve'], {
      cwd: project,
      env: childEnv({
        ...base,
        HTTP_PORT: String(await freePort()),
        MICRO_SERVICE_DRIVER: 'dtm-driver-gozero',
        MICRO_SERVICE_TARGET: 'etcd://127.0.0.1:2379/dtxservice',
      }),
      timeoutMs: 30_000,
    });
    assert.equal(etcd.code, 1, etcd.stderr);
    assert.match(etcd.stderr, /etcd discovery needs the "etcd3" package: npm i etcd3/);
    const tracing = await run(bin, ['serve'], {
      cwd: project,
      env: childEnv({ ...base, HTTP_PORT: String(await freePort()), TRACING_EXPORTER: 'console' }),
      timeoutMs: 30_000,
    });
    assert.equal(tracing.code, 1, tracing.stderr);
    assert.match(tracing.stderr, /Tracing\.Exporter=console needs the .*"@opentelemetry\/sdk-trace-base".*: npm i /);
  });
});
