// The packages as a registry would serve them: `npm pack` of @dtx/protocol and @dtx/client, installed from the
// tarballs alone into a fresh project outside the workspace (only the registry's dependencies come from the
// registry; no optional peer is installed), then an ESM consumer (.mts) and a CommonJS consumer (.cts) compiled
// with the workspace's tsc — strict, skipLibCheck false — under module/moduleResolution nodenext and node16, and
// run: each drives a committing and a rolling-back 2-step saga through a real dtx on loopback, and loads the XA
// dialect subpaths.
//
// The coordinator is the workspace build of the server (support/dtx-server.ts), not a packed @dtx/server: the
// server package is made installable separately.
//
// The installed project is cached under the OS temp directory, keyed by the tarballs' digest: an unchanged
// package is not installed twice.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cp, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type DtxServer, startDtxServer } from './support/dtx-server.js';

const here = dirname(fileURLToPath(import.meta.url)); // packages/client/dist/test
const packagesDir = join(here, '..', '..', '..');
const consumersDir = join(here, '..', '..', 'test-packed');
const tscBin = (() => {
  const pkgJson = createRequire(import.meta.url).resolve('typescript/package.json');
  const bin = (createRequire(import.meta.url)(pkgJson) as { bin: Record<string, string> }).bin.tsc;
  return join(dirname(pkgJson), bin ?? 'bin/tsc');
})();

/** The environment of child processes: npm's own variables of a surrounding `npm test` are dropped. */
const childEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_')));

function run(cmd: string, args: string[], cwd: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out }));
  });
}

async function must(cmd: string, args: string[], cwd: string): Promise<string> {
  const r = await run(cmd, args, cwd);
  assert.equal(r.code, 0, `${cmd} ${args.join(' ')} in ${cwd} failed:\n${r.out}`);
  return r.out;
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

const CONSUMERS = [
  { name: 'esm-nodenext', file: 'consumer.mts', module: 'nodenext', out: 'consumer.mjs' },
  { name: 'esm-node16', file: 'consumer.mts', module: 'node16', out: 'consumer.mjs' },
  { name: 'cjs-nodenext', file: 'consumer.cts', module: 'nodenext', out: 'consumer.cjs' },
  { name: 'cjs-node16', file: 'consumer.cts', module: 'node16', out: 'consumer.cjs' },
] as const;

describe('packed install: @dtx/protocol and @dtx/client from their tarballs', () => {
  let server: DtxServer;
  let project: string;

  before(async () => {
    server = await startDtxServer();
    const packDir = await mkdtemp(join(tmpdir(), 'dtx-pack-'));
    try {
      const packed = JSON.parse(
        await must(
          'npm',
          ['pack', '--json', '--pack-destination', packDir, join(packagesDir, 'protocol'), join(packagesDir, 'client')],
          packDir,
        ),
      ) as { filename: string }[];
      const hash = createHash('sha256');
      for (const p of packed) hash.update(await readFile(join(packDir, p.filename)));
      project = join(tmpdir(), `dtx-packed-install-${hash.digest('hex').slice(0, 16)}`);
      if (!(await exists(join(project, 'node_modules', '@dtx', 'client', 'package.json')))) {
        const staging = await mkdtemp(join(tmpdir(), 'dtx-packed-install-staging-'));
        for (const p of packed) await cp(join(packDir, p.filename), join(staging, p.filename));
        await writeFile(join(staging, 'package.json'), '{"name":"dtx-consumer","private":true}\n');
        await must(
          'npm',
          [
            'install',
            ...packed.map((p) => `./${p.filename}`),
            '@types/node@20',
            '--no-audit',
            '--no-fund',
            '--prefer-offline',
            '--no-package-lock',
          ],
          staging,
        );
        await rm(project, { recursive: true, force: true });
        await rename(staging, project);
        // Older cached installs (of tarballs that changed since) are dropped.
        for (const name of await readdir(tmpdir())) {
          const old = join(tmpdir(), name);
          if (/^dtx-packed-install-[0-9a-f]{16}$/.test(name) && old !== project)
            await rm(old, { recursive: true, force: true });
        }
      }
    } finally {
      await rm(packDir, { recursive: true, force: true });
    }
  });
  after(async () => {
    await server?.stop();
  });

  test('the install holds no gRPC, framework or driver package', async () => {
    const installed = new Set<string>();
    for (const name of await readdir(join(project, 'node_modules'))) {
      if (name.startsWith('@')) {
        for (const sub of await readdir(join(project, 'node_modules', name))) installed.add(`${name}/${sub}`);
      } else if (!name.startsWith('.')) installed.add(name);
    }
    for (const pkg of [
      '@grpc/grpc-js',
      '@grpc/proto-loader',
      'fastify',
      'express',
      'better-sqlite3',
      'pg',
      'mysql2',
      'ioredis',
    ]) {
      assert.ok(!installed.has(pkg), `${pkg} was installed`);
    }
    assert.ok(installed.has('@dtx/client') && installed.has('@dtx/protocol'));
    const files = await readdir(join(project, 'node_modules', '@dtx', 'client'), { recursive: true });
    assert.ok(
      !files.some((f) => f.includes('test')),
      `the client tarball ships test files: ${files.filter((f) => f.includes('test'))}`,
    );
  });

  for (const c of CONSUMERS) {
    test(`${c.name}: compiles strict with skipLibCheck false, and runs a committing and a rolled-back saga`, async () => {
      const dir = join(project, c.name);
      await rm(dir, { recursive: true, force: true });
      await mkdir(dir);
      await cp(join(consumersDir, c.file), join(dir, c.file));
      const tsconfig = {
        compilerOptions: {
          module: c.module,
          moduleResolution: c.module,
          target: 'es2022',
          strict: true,
          skipLibCheck: false,
          types: ['node'],
          outDir: 'out',
        },
        files: [c.file],
      };
      await writeFile(join(dir, 'tsconfig.json'), JSON.stringify(tsconfig));
      await must(process.execPath, [tscBin, '-p', dir], dir);
      const out = await must(process.execPath, [join(dir, 'out', c.out), server.url], dir);
      const result = JSON.parse(out.trim().split('\n').pop() ?? '') as {
        format: string;
        committed: string;
        rolledBack: string;
        calls: string[];
        xa: string[];
      };
      assert.equal(result.format, c.file.endsWith('.cts') ? 'cjs' : 'esm');
      assert.equal(result.committed, 'succeed');
      assert.equal(result.rolledBack, 'failed');
      assert.deepEqual(result.calls.slice(0, 2), ['/out', '/in']);
      // the rolled-back saga: out, refused, then the compensations of everything that may have run, last first
      assert.deepEqual(result.calls.slice(2), ['/out', '/refuse', '/refuse-revert', '/out-revert']);
      // @dtx/client/xa/mysql and @dtx/client/xa/postgres resolve, type-check and run without mysql2 or pg
      assert.deepEqual(result.xa, ['mysql:64', 'postgres:199', 'g-01']);
    });
  }
});
