/**
 * Tarballs of the workspace packages installed into a fresh project outside the workspace, the way a registry
 * would serve them, without any network: `npm pack` of each package, then `npm ci --offline` of a project whose
 * package-lock.json lists the tarballs and, for every other package, the entry (version and integrity) of the
 * workspace's own lock — so npm takes each package from its cache (filled by the workspace's `npm ci`) and
 * contacts no registry. Only the production dependencies of the packed packages are installed: their optional
 * peer dependencies are not, which is what an install that does not ask for them gets.
 *
 * Install scripts are not run (better-sqlite3's would download a prebuilt binary or compile SQLite for a
 * minute); its compiled addon is copied from the workspace's identical version instead.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root. */
export const ROOT = fileURLToPath(new URL('../../../../../', import.meta.url));

interface LockEntry {
  version?: string;
  resolved?: string;
  integrity?: string;
  link?: boolean;
  dev?: boolean;
  optional?: boolean;
  devOptional?: boolean;
  peer?: boolean;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  [k: string]: unknown;
}

interface PackageJson {
  name: string;
  version: string;
  dependencies?: Record<string, string>;
  [k: string]: unknown;
}

/** The outcome of a child process run to its end. */
export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `cmd` to its end (no shell), collecting its output. */
export function run(
  cmd: string,
  args: string[],
  o: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number },
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: o.cwd, env: o.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 120_000);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** `npm` with the environment of a user outside the workspace (no npm_* variables of the calling `npm test`). */
export function npm(args: string[], cwd: string, timeoutMs = 180_000): Promise<RunResult> {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k)) env[k] = v;
  env.npm_config_update_notifier = 'false';
  env.npm_config_fund = 'false';
  env.npm_config_audit = 'false';
  return run('npm', args, { cwd, env, timeoutMs });
}

/**
 * `npm pack`s the workspace packages at `dirs` (e.g. `packages/protocol`) into `dest`.
 * @returns name → tarball path.
 */
export async function packWorkspace(dirs: readonly string[], dest: string): Promise<Map<string, string>> {
  mkdirSync(dest, { recursive: true });
  const r = await npm(['pack', '--json', '--pack-destination', dest, ...dirs.flatMap((d) => ['-w', d])], ROOT, 120_000);
  assert.equal(r.code, 0, `npm pack failed:\n${r.stderr}`);
  const out = JSON.parse(r.stdout) as { name: string; filename: string; files: { path: string }[] }[];
  return new Map(out.map((p) => [p.name, join(dest, p.filename)]));
}

/** The file list of a packed tarball (`npm pack --dry-run --json`), for assertions on what is shipped. */
export async function packedFiles(dir: string): Promise<string[]> {
  const r = await npm(['pack', '--dry-run', '--json', '-w', dir], ROOT, 60_000);
  assert.equal(r.code, 0, `npm pack --dry-run failed:\n${r.stderr}`);
  const [p] = JSON.parse(r.stdout) as { files: { path: string }[] }[];
  return p!.files.map((f) => f.path);
}

const readJson = <T>(path: string): T => JSON.parse(readFileSync(path, 'utf8')) as T;

/**
 * Installs `tarballs` (package name → .tgz, all of them workspace packages) into the project at `dir` with
 * `npm ci --offline`. Without a package.json in `dir`, one is written that depends on `direct` of them and on
 * `extra` (other packages, at the workspace lock's version, e.g. `pg`); with one, its dependencies are installed,
 * those on packed packages rewritten to the tarballs.
 */
export async function installPacked(
  dir: string,
  tarballs: ReadonlyMap<string, string>,
  direct: readonly string[],
  extra: readonly string[] = [],
): Promise<void> {
  const rootLock = readJson<{ packages: Record<string, LockEntry> }>(join(ROOT, 'package-lock.json')).packages;
  // where each workspace package lives in the workspace (node_modules/@dtx/x → packages/x)
  const wsDir = new Map<string, string>();
  for (const [loc, e] of Object.entries(rootLock)) {
    if (e.link === true && typeof e.resolved === 'string') wsDir.set(loc.replace(/^node_modules\//, ''), e.resolved);
  }
  const lock: Record<string, LockEntry> = {};
  const rel = (name: string) => `file:${tarballs.get(name)!}`;
  mkdirSync(dir, { recursive: true });
  const pkgFile = join(dir, 'package.json');
  // a project of its own (dtx init's) keeps its manifest; its dependencies on packed packages point at the tarballs
  const pkg: PackageJson = existsSync(pkgFile)
    ? readJson<PackageJson>(pkgFile)
    : {
        name: 'packed-install-test',
        version: '1.0.0',
        private: true,
        type: 'module',
        dependencies: Object.fromEntries([
          ...direct.map((n) => [n, '']),
          ...extra.map((n) => [n, rootLock[`node_modules/${n}`]!.version!]),
        ]),
      };
  const deps: Record<string, string> = {};
  for (const [name, range] of Object.entries(pkg.dependencies ?? {}))
    deps[name] = tarballs.has(name) ? rel(name) : range;
  pkg.dependencies = deps;
  lock[''] = { name: pkg.name, version: pkg.version, dependencies: deps };

  /** The lock location a package `name` required from workspace location `from` resolves to (Node's lookup). */
  const resolveFrom = (from: string, name: string): string | undefined => {
    let base = from;
    for (;;) {
      const loc = base === '' ? `node_modules/${name}` : `${base}/node_modules/${name}`;
      if (rootLock[loc] !== undefined) return loc;
      if (base === '') return undefined;
      const i = base.lastIndexOf('/node_modules/');
      base = i < 0 ? '' : base.slice(0, i);
    }
  };
  /** The location in the new project of workspace location `loc` (packages/server/node_modules/x → node_modules/@dtx/server/node_modules/x). */
  const relocate = (loc: string): string => {
    for (const [name, d] of wsDir)
      if (loc.startsWith(`${d}/`)) return `node_modules/${name}/${loc.slice(d.length + 1)}`;
    return loc;
  };
  const visit = (from: string, depsOf: Record<string, string> | undefined, optional: Record<string, string> = {}) => {
    for (const name of [...Object.keys(depsOf ?? {}), ...Object.keys(optional)]) {
      if (tarballs.has(name)) continue; // a packed workspace package: installed from its tarball
      const loc = resolveFrom(from, name);
      if (loc === undefined) {
        if (name in optional) continue; // an optional dependency for another platform
        throw new Error(`${name} (needed by ${from || 'the project'}) is not in the workspace lock`);
      }
      const target = relocate(loc);
      if (lock[target] !== undefined) continue;
      const { dev: _d, optional: _o, devOptional: _do, peer: _p, ...entry } = rootLock[loc]!;
      // the tarball's registry URL (the workspace lock omits it): npm then reads the tarball from its cache by
      // integrity, without the package's registry document
      if (entry.resolved === undefined && entry.version !== undefined && entry.integrity !== undefined) {
        const name = loc.slice(loc.lastIndexOf('node_modules/') + 'node_modules/'.length);
        entry.resolved = `https://registry.npmjs.org/${name}/-/${name.split('/').pop()}-${entry.version}.tgz`;
      }
      lock[target] = entry;
      visit(loc, entry.dependencies, entry.optionalDependencies);
    }
  };
  for (const [name, tgz] of tarballs) {
    const manifest = readJson<PackageJson>(join(ROOT, wsDir.get(`${name}`)!, 'package.json'));
    const loc = `node_modules/${name}`;
    lock[loc] = { version: manifest.version, resolved: `file:${tgz}` };
    // the fields npm ci reads from a lock entry (bin: the links in node_modules/.bin)
    for (const k of [
      'license',
      'dependencies',
      'optionalDependencies',
      'peerDependencies',
      'peerDependenciesMeta',
      'bin',
      'engines',
    ]) {
      if (manifest[k] !== undefined) lock[loc][k] = manifest[k];
    }
    visit(wsDir.get(name)!, manifest.dependencies);
  }
  visit('', Object.fromEntries(Object.keys(deps).map((n) => [n, '*'])));
  writeFileSync(pkgFile, `${JSON.stringify(pkg, null, 2)}\n`);
  writeFileSync(
    join(dir, 'package-lock.json'),
    `${JSON.stringify({ name: pkg.name, version: pkg.version, lockfileVersion: 3, requires: true, packages: lock }, null, 2)}\n`,
  );
  const r = await npm(['ci', '--offline', '--ignore-scripts', '--no-audit', '--no-fund'], dir);
  assert.equal(r.code, 0, `npm ci --offline failed:\n${r.stdout}\n${r.stderr}`);
  copyNativeAddons(dir);
}

/** Copies the compiled addon of better-sqlite3 from the workspace (same version) into the project at `dir`. */
function copyNativeAddons(dir: string): void {
  const installed = join(dir, 'node_modules', 'better-sqlite3');
  if (!existsSync(installed)) return;
  const ws = join(ROOT, 'node_modules', 'better-sqlite3');
  assert.equal(
    readJson<PackageJson>(join(installed, 'package.json')).version,
    readJson<PackageJson>(join(ws, 'package.json')).version,
  );
  const addon = join('build', 'Release', 'better_sqlite3.node');
  mkdirSync(dirname(join(installed, addon)), { recursive: true });
  copyFileSync(join(ws, addon), join(installed, addon));
}
