#!/usr/bin/env node
// The README's test command: runs every compiled test file of every package with node's test runner.
// Usage: npm test [-- <substring filter on file paths>]
// The tests use real PostgreSQL, MariaDB, Redis and etcd on 127.0.0.1: when one of them does not answer,
// scripts/services.sh is run first to install (apt) and start them.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const filters = process.argv.slice(2);

function walk(dir, out) {
  let entries;
  try {
    entries = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of entries) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const files = [];
for (const pkg of readdirSync(join(root, 'packages'))) walk(join(root, 'packages', pkg, 'dist', 'test'), files);
const selected = files.filter((f) => filters.length === 0 || filters.some((s) => f.includes(s))).sort();
if (selected.length === 0) {
  console.error('no test files found: run `npm run build` first');
  process.exit(1);
}
const SERVICES = { PostgreSQL: 5432, MariaDB: 3306, Redis: 6379, etcd: 2379 };
const answers = (port) =>
  new Promise((resolve) => {
    const sock = connect({ host: '127.0.0.1', port });
    sock.setTimeout(2000, () => (sock.destroy(), resolve(false)));
    sock.once('connect', () => (sock.end(), resolve(true)));
    sock.once('error', () => resolve(false));
  });
const down = [];
for (const [name, port] of Object.entries(SERVICES)) if (!(await answers(port))) down.push(`${name} (:${port})`);
if (down.length > 0) {
  console.error(
    `not answering on 127.0.0.1: ${down.join(', ')} — running scripts/services.sh to install and start them`,
  );
  const s = spawnSync('bash', [join(root, 'scripts', 'services.sh')], { stdio: 'inherit' });
  if (s.status !== 0) {
    console.error(
      'scripts/services.sh failed: the database tests cannot run (it needs root for apt-get; try `sudo bash scripts/services.sh`)',
    );
    process.exit(1);
  }
}

const concurrency = process.env.DTX_TEST_CONCURRENCY ?? '2';
const r = spawnSync(process.execPath, ['--test', `--test-concurrency=${concurrency}`, ...selected], {
  stdio: 'inherit',
  cwd: root,
});
process.exit(r.status ?? 1);
