#!/usr/bin/env node
// The README's test command: runs every compiled test file of every package and example with node's test runner.
// Usage: npm test [-- <substring filter on file paths>]
// The tests use real PostgreSQL, MariaDB, Redis and etcd on 127.0.0.1: when one of them does not answer,
// scripts/services.sh is run first to install (apt) and start them.
// The end-to-end scenarios (packages/server/dist/test/e2e-*.test.js) then run once more on each production
// store (DTX_E2E_STORES, default postgres,mysql,redis; empty to skip) with DTX_TEST_STORE set.
// Then, whenever `go` is on PATH, the Go compatibility suite compat/go (DTM's own Go clients against
// dtx) runs too; a filter selects it when it is a substring of 'compat/go'.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

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
for (const top of ['packages', 'examples']) {
  for (const pkg of readdirSync(join(root, top))) walk(join(root, top, pkg, 'dist', 'test'), files);
}
const selected = files.filter((f) => filters.length === 0 || filters.some((s) => f.includes(s))).sort();
const GO_SUITE = 'compat/go';
const goSelected = filters.length === 0 || filters.some((s) => GO_SUITE.includes(s));
if (selected.length === 0 && (filters.length === 0 || !goSelected)) {
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
// Every failure is repeated at the end (scripts/test-failures.mjs collects them next to the usual reporter),
// so the tail of a long log says which test failed and why, whichever stage it was in.
const scratch = mkdtempSync(join(tmpdir(), 'dtx-test-'));
const failuresReporter = pathToFileURL(join(root, 'scripts', 'test-failures.mjs')).href;
const stages = []; // { title, status, failures: [{ file, test, error }] }
const nodeTest = (title, list, env = {}) => {
  const sink = join(scratch, `${stages.length}.jsonl`);
  const status =
    spawnSync(
      process.execPath,
      [
        '--test',
        `--test-concurrency=${concurrency}`,
        `--test-reporter=${process.stdout.isTTY ? 'spec' : 'tap'}`,
        '--test-reporter-destination=stdout',
        `--test-reporter=${failuresReporter}`,
        `--test-reporter-destination=${sink}`,
        ...list,
      ],
      { stdio: 'inherit', cwd: root, env: { ...process.env, ...env } },
    ).status ?? 1;
  const failures = [];
  // no sink when the runner itself did not start, a cut last line when it was killed: the status says so
  const lines = existsSync(sink) ? readFileSync(sink, 'utf8').split('\n') : [];
  for (const line of lines) {
    try {
      if (line) failures.push(JSON.parse(line));
    } catch {}
  }
  stages.push({ title, status, failures });
  return status;
};
let status = 0;
if (selected.length > 0) status = nodeTest('all test files', selected);
const e2e = selected.filter((f) => /[/\\]server[/\\]dist[/\\]test[/\\]e2e-[^/\\]*\.test\.js$/.test(f));
for (const store of (process.env.DTX_E2E_STORES ?? 'postgres,mysql,redis').split(',').filter(Boolean)) {
  if (e2e.length === 0) break;
  console.log(`\n# end-to-end scenarios on the ${store} store (DTX_TEST_STORE=${store})`);
  status = nodeTest(`end-to-end scenarios on ${store}`, e2e, { DTX_TEST_STORE: store }) || status;
}
if (goSelected) {
  const goStatus = runGoSuite();
  stages.push({ title: 'Go compatibility suite (compat/go)', status: goStatus, failures: [] });
  status = goStatus || status;
}
rmSync(scratch, { recursive: true, force: true });
printSummary();
process.exit(status);

function printSummary() {
  console.log('\n# summary');
  for (const { title, status: s, failures } of stages) {
    console.log(`# ${s === 0 ? 'ok' : `FAILED (exit ${s})`}: ${title}`);
    if (s !== 0 && failures.length === 0) console.log('#   no failed test to name here: see its output above');
    for (const f of failures) {
      console.log(`#   not ok: ${f.test}${f.file ? ` (${f.file.replace(root, '')})` : ''}`);
      for (const line of f.error.split('\n')) console.log(`#     ${line}`);
    }
  }
}

// compat/go: `go test` starts the built dtx (packages/server/dist) itself, on free ports. Returns the exit status.
function runGoSuite() {
  const goDir = join(root, 'compat', 'go');
  const hasGo = spawnSync('go', ['version'], { stdio: 'ignore' }).status === 0;
  if (!hasGo) {
    console.log('Go compatibility suite (compat/go) SKIPPED: go is not installed (no `go` on PATH)');
    return 0;
  }
  if (!existsSync(join(root, 'packages', 'server', 'dist', 'src', 'cli.js'))) {
    console.error('Go compatibility suite: packages/server/dist is missing: run `npm run build` first');
    return 1;
  }
  console.log(`\n# Go compatibility suite: go test ./... in ${goDir}`);
  const started = Date.now();
  // -timeout bounds the tests; the outer timeout also covers a cold module download and the compile.
  const r = spawnSync('go', ['test', '-count=1', '-v', '-timeout=5m', './...'], {
    stdio: 'inherit',
    cwd: goDir,
    timeout: 15 * 60 * 1000,
    killSignal: 'SIGKILL',
    env: {
      ...process.env,
      GOFLAGS: `${process.env.GOFLAGS ?? ''} -mod=readonly`.trim(),
      DTX_NODE: process.execPath,
    },
  });
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  if (r.error) {
    console.error(`Go compatibility suite FAILED to run (${secs}s): ${r.error.message}`);
    return 1;
  }
  console.log(`# Go compatibility suite ${r.status === 0 ? 'passed' : 'FAILED'} (${secs}s)`);
  return r.status ?? 1;
}
