#!/usr/bin/env node
// dtx benchmark: 2-step sagas through the coordinator vs. the same branch calls made directly, over
// HTTP and over gRPC. See bench/README.md.
// Usage: node bench/run.mjs [--quick] [--duration 10] [--concurrency 1,10,50] [--store sqlite] [--transport http,grpc]
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, freemem, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Pool, request } from 'undici';
import { startBusi } from './lib/busi.mjs';
import { formatProfileSummary, summariseProfiles } from './lib/cpuprofile.mjs';
import { fsyncProbe } from './lib/fsync-probe.mjs';
import { startGrpcBusi } from './lib/grpc-busi.mjs';
import { createGrpcClients } from './lib/grpc-clients.mjs';
import { errorText, round2, runClosedLoop, WARMUP_CONCURRENCY, WARMUP_OPS } from './lib/load.mjs';
import { levelTable, summaryTable } from './lib/report.mjs';
import { BASELINE_OF, GRPC_PAYLOAD, gidMode, gidTail, PAYLOAD, scenarios } from './lib/scenarios.mjs';
import { freePort, procCpuSeconds, startServer, systemBusyCpuSeconds } from './lib/server.mjs';
import { storeNames, stores } from './lib/stores.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');
const TRANSPORTS = ['http', 'grpc'];
/** Order matters: each baseline runs before its coordinator scenario at each concurrency level. */
const ALL_SCENARIOS = ['baseline', 'saga', 'grpc-baseline', 'grpc-saga'];

const USAGE = `usage: node bench/run.mjs [options]
  --duration <s>        measured seconds per scenario and concurrency level (default 10)
  --warmup <s>          unmeasured seconds before each measurement (default 2; 0.5 with --quick)
  --warmup-ops <n>      unmeasured sagas of each coordinator scenario at C=50 once, before the first level,
                        so that C=1 is measured on warm code, not in the server's first seconds
                        (default 3000; 300 with --quick; 0 skips)
  --concurrency <list>  comma-separated closed-loop worker counts (default 1,10,50)
  --store <names>       coordinator store(s): ${storeNames().join(', ')}, a comma list or all (default sqlite);
                        several run one after the other and are then shown side by side
  --transport <list>    http, grpc or both (default http,grpc): client → dtx → branches over that transport
  --quick               1 s durations, for a smoke run
  --profile             run the coordinator with --cpu-prof and summarise it (same as DTX_BENCH_PROFILE=1)
  --server-entry <js>   coordinator entry point (default packages/server/dist/src/cli.js)
  --token <t>           start the coordinator with Auth.Token <t> (AUTH_TOKEN) and send it on every call
                        (Authorization: Bearer / authorization metadata): the cost of the token check
  --gids <seq|random>   how each gid ends after its prefix: a counter (default) or a UUID, as newGid and DTM's
                        clients make them (a new gid then lands anywhere in the stores' gid indexes)
  --keep-data           keep the temporary directory (store file, server log)
  --no-save             do not write bench/results/*.json
  --peers               compare with DTM and dtmrs instead (node bench/run.mjs --peers --help)
  -h, --help`;

function parseCli() {
  const { values } = parseArgs({
    options: {
      duration: { type: 'string' },
      warmup: { type: 'string' },
      'warmup-ops': { type: 'string' },
      concurrency: { type: 'string', default: '1,10,50' },
      store: { type: 'string', default: 'sqlite' },
      transport: { type: 'string', default: TRANSPORTS.join(',') },
      quick: { type: 'boolean', default: false },
      profile: { type: 'boolean', default: process.env.DTX_BENCH_PROFILE === '1' },
      'server-entry': { type: 'string', default: join(ROOT, 'packages/server/dist/src/cli.js') },
      'keep-data': { type: 'boolean', default: false },
      gids: { type: 'string', default: 'seq' },
      token: { type: 'string' },
      'no-save': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const num = (name, v) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a non-negative number, got '${v}'`);
    return n;
  };
  const durationS = num('duration', values.duration ?? (values.quick ? 1 : 10));
  if (durationS <= 0) throw new Error('--duration must be > 0');
  const warmupS = num('warmup', values.warmup ?? (values.quick ? 0.5 : 2));
  const warmupOps = Math.floor(num('warmup-ops', values['warmup-ops'] ?? (values.quick ? 300 : WARMUP_OPS)));
  const concurrency = values.concurrency.split(',').map((s) => {
    const n = Number(s.trim());
    if (!Number.isInteger(n) || n < 1) throw new Error(`--concurrency takes positive integers, got '${s}'`);
    return n;
  });
  const transports = values.transport.split(',').map((t) => t.trim());
  for (const t of transports) {
    if (!TRANSPORTS.includes(t)) throw new Error(`--transport takes ${TRANSPORTS.join(', ')}, got '${t}'`);
  }
  const storeList = values.store === 'all' ? storeNames() : values.store.split(',').map((x) => x.trim());
  for (const name of storeList) {
    if (!stores[name]) throw new Error(`--store takes ${storeNames().join(', ')} or all, got '${name}'`);
  }
  if (storeList.length > 1) return { compare: storeList };
  return {
    durationS,
    warmupS,
    warmupOps,
    concurrency,
    store: values.store,
    transports: TRANSPORTS.filter((t) => transports.includes(t)),
    quick: values.quick,
    profile: values.profile,
    serverEntry: values['server-entry'],
    keepData: values['keep-data'],
    gids: gidMode(values.gids),
    token: values.token,
    save: !values['no-save'],
  };
}

function machineFacts() {
  const c = cpus();
  let commit = null;
  let dirty = null;
  try {
    commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT, encoding: 'utf8', stdio: 'pipe' }).trim();
    dirty = execFileSync('git', ['status', '--porcelain', '--', 'packages'], {
      cwd: ROOT,
      encoding: 'utf8',
      stdio: 'pipe',
    })
      .trim()
      .split('\n')
      .filter(Boolean).length;
  } catch {}
  return {
    node: process.version,
    platform: `${process.platform} ${release()} ${process.arch}`,
    cpus: c.length,
    cpuModel: c[0]?.model ?? 'unknown',
    totalMemMiB: Math.round(totalmem() / 2 ** 20),
    freeMemMiB: Math.round(freemem() / 2 ** 20),
    loadavgAtStart: loadavg().map((v) => round2(v)),
    gitCommit: commit,
    uncommittedFilesInPackages: dirty,
  };
}

function log(msg) {
  process.stderr.write(`${msg}\n`);
}

/** Waits until the branch service has seen no new call for `quietMs` (or the deadline passes). */
async function settle(busi, quietMs = 300, deadlineMs = 5000) {
  const deadline = Date.now() + deadlineMs;
  let last = busi.totalCalls();
  let quietSince = Date.now();
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    const now = busi.totalCalls();
    if (now !== last) {
      last = now;
      quietSince = Date.now();
    } else if (Date.now() - quietSince >= quietMs) return true;
  }
  return false;
}

/** Checks the coordinator's work: branch calls seen by the branch service, and a sample of stored sagas. */
async function checkCorrectness({ busi, tracker, origin, token, sampleSize = 8 }) {
  const quiet = await settle(busi);
  const okGids = tracker.okGids;
  let actionCalls = 0;
  let compensationCalls = 0;
  for (const c of busi.perGid.values()) {
    actionCalls += c[0] + c[1];
    compensationCalls += c[2] + c[3];
  }
  const wrong = [];
  for (const gid of okGids) {
    const c = busi.perGid.get(gid);
    if (c?.[0] !== 1 || c[1] !== 1 || c[2] !== 0 || c[3] !== 0) wrong.push({ gid, calls: c ?? [0, 0, 0, 0] });
  }
  const totalCompensations = busi.calls.TransOutRevert + busi.calls.TransInRevert;

  const queried = [];
  const picks = new Set();
  while (picks.size < Math.min(sampleSize, okGids.length)) picks.add(okGids[Math.floor(Math.random() * okGids.length)]);
  for (const gid of picks) {
    const entry = { gid, ok: false, status: null, branches: null, error: null };
    try {
      const res = await request(`${origin}/api/dtmsvr/query?gid=${encodeURIComponent(gid)}`, {
        headersTimeout: 5000,
        bodyTimeout: 5000,
        headers: token ? { authorization: `Bearer ${token}` } : {},
      });
      const text = await res.body.text();
      if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode} ${text.slice(0, 200)}`);
      const body = JSON.parse(text);
      entry.status = body.transaction?.status ?? null;
      const branches = Array.isArray(body.branches) ? body.branches : [];
      entry.branches = branches.map((b) => `${b.branch_id}/${b.op}=${b.status}`);
      entry.ok =
        entry.status === 'succeed' &&
        body.transaction?.trans_type === 'saga' &&
        branches.length === 4 &&
        branches.every((b) => (b.op === 'action' ? b.status === 'succeed' : b.status === 'prepared'));
    } catch (e) {
      entry.error = errorText(e);
    }
    queried.push(entry);
  }

  const result = {
    branchServiceQuiet: quiet,
    okSagas: okGids.length,
    failedSagas: tracker.failed,
    expectedActionCalls: 2 * okGids.length,
    actionCalls,
    compensationCalls: totalCompensations,
    okSagasWithWrongCalls: wrong.length,
    wrongCallSamples: wrong.slice(0, 5),
    malformedBranchCalls: busi.malformed.count,
    malformedSamples: busi.malformed.samples,
    queried,
  };
  const problems = [];
  if (actionCalls !== result.expectedActionCalls)
    problems.push(
      `branch service saw ${actionCalls} action calls for saga gids, expected ${result.expectedActionCalls}`,
    );
  if (totalCompensations !== 0 || compensationCalls !== 0)
    problems.push(`${totalCompensations} compensation calls, expected 0`);
  if (wrong.length)
    problems.push(`${wrong.length} OK sagas did not get exactly one TransOut, one TransIn and no compensation`);
  if (busi.malformed.count) problems.push(`${busi.malformed.count} branch calls with an unexpected method/query/body`);
  const badQueries = queried.filter((q) => !q.ok);
  if (badQueries.length)
    problems.push(`${badQueries.length}/${queried.length} sampled gids not stored as a succeeded saga`);
  if (!okGids.length) problems.push('no saga succeeded');
  result.problems = problems;
  result.pass = problems.length === 0;
  return result;
}

/**
 * `--store a,b` (or `all`): each store in a bench process of its own (same other flags), then one table of
 * the stores next to each other, read from the JSON results they wrote.
 */
async function compareStores(names) {
  const rest = [];
  const args = process.argv.slice(2);
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--store') i++;
    else if (!args[i].startsWith('--store=')) rest.push(args[i]);
  }
  const results = [];
  let code = 0;
  for (const name of names) {
    log(`\n===== store ${name} =====`);
    let out = '';
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--store', name, ...rest], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    child.stdout.on('data', (d) => {
      out += d;
      process.stdout.write(d);
    });
    const status = await new Promise((resolve) => child.on('exit', (c) => resolve(c ?? 1)));
    code = code || status;
    const file = /^results: (.+)$/m.exec(out)?.[1];
    if (file) results.push({ name, result: JSON.parse(readFileSync(join(ROOT, file), 'utf8')) });
    else log(`store ${name}: no results file (exit ${status})`);
  }
  console.log('\nstores side by side (sagas: tx/s, p50/p99 ms, ratio to the direct-call baseline of the same run)');
  const rows = [['store', 'transport', 'conc', 'tx/s', 'p50', 'p99', 'ratio', 'other cpu %']];
  for (const { name, result } of results) {
    for (const level of result.levels) {
      for (const [scenario, r] of Object.entries(level.scenarios)) {
        if (!scenario.endsWith('saga')) continue;
        const transport = scenario === 'saga' ? 'http' : scenario.replace(/-saga$/, '');
        rows.push([
          name,
          transport,
          String(level.concurrency),
          String(r.tps),
          String(r.p50),
          String(r.p99),
          String(level.ratios?.[transport] ?? level.ratio ?? '-'),
          String(r.cpu?.othersPct ?? '-'),
        ]);
      }
    }
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows) console.log(r.map((c, i) => c.padStart(widths[i])).join('  '));
  return code;
}

async function main() {
  if (process.argv.includes('--peers')) {
    const { runPeers } = await import('./peers.mjs');
    return runPeers(process.argv.slice(2));
  }
  const opts = parseCli();
  if (opts.compare) return compareStores(opts.compare);
  if (!existsSync(opts.serverEntry)) {
    throw new Error(
      `coordinator entry not found: ${opts.serverEntry}\n  build it first: npx tsc -b (or npm run bench)`,
    );
  }
  const startedAt = new Date();
  const stamp = startedAt
    .toISOString()
    .replace(/:/g, '-')
    .replace(/\.\d+Z$/, 'Z');
  const machine = machineFacts();
  const tmpDir = mkdtempSync(join(tmpdir(), 'dtx-bench-'));
  const profileDir = opts.profile ? join(ROOT, 'bench/results/profiles', stamp) : null;
  if (profileDir) mkdirSync(profileDir, { recursive: true });

  /** @type {Awaited<ReturnType<typeof startServer>> | null} */
  let server = null;
  let busi = null;
  let grpcBusi = null;
  let store = null;
  const pools = new Set();
  let cleanedUp = false;
  const cleanup = async () => {
    if (cleanedUp) return;
    cleanedUp = true;
    await Promise.allSettled([...pools].map((p) => p.destroy()));
    if (server) await server.stop();
    if (busi) await busi.close();
    if (grpcBusi) await grpcBusi.close();
    if (store) await store.cleanup().catch(() => {});
    if (!opts.keepData) rmSync(tmpDir, { recursive: true, force: true });
    else log(`kept ${tmpDir}`);
  };
  process.on('exit', () => server?.killNow());
  const interrupt = new AbortController();
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.once(sig, () => {
      log(`\n${sig}: stopping the load, the coordinator and exiting`);
      interrupt.abort(new Error(`interrupted by ${sig}`));
      setTimeout(() => cleanup().finally(() => process.exit(130)), 15_000).unref();
    });
  }
  const runPhase = async (o) => {
    const r = await runClosedLoop({ ...o, stop: interrupt.signal });
    if (interrupt.signal.aborted) throw interrupt.signal.reason;
    return r;
  };

  try {
    store = await stores[opts.store].prepare({ tmpDir });
    machine.fsyncBefore = fsyncProbe(tmpDir);
    const useHttp = opts.transports.includes('http');
    const useGrpc = opts.transports.includes('grpc');
    const scenarioOrder = ALL_SCENARIOS.filter((n) => opts.transports.includes(scenarios[n].transport));
    if (useHttp) busi = await startBusi({ trackPrefix: scenarios.saga.gidPrefix, expectBody: PAYLOAD });
    if (useGrpc) {
      grpcBusi = await startGrpcBusi({ trackPrefix: scenarios['grpc-saga'].gidPrefix, expectBody: GRPC_PAYLOAD });
    }
    const port = await freePort();
    const grpcPort = await freePort();
    const nodeArgs = profileDir
      ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, '--import', join(ROOT, 'bench/lib/profile-preload.mjs')]
      : [];
    const serverEnv = {
      ...store.env,
      GRPC_PORT: String(grpcPort),
      LOG_LEVEL: process.env.DTX_BENCH_LOG_LEVEL ?? 'warn',
      ...(opts.token ? { AUTH_TOKEN: opts.token } : {}),
    };
    log(`starting coordinator: node ${[...nodeArgs, relative(ROOT, opts.serverEntry), 'serve'].join(' ')}`);
    server = await startServer({
      entry: opts.serverEntry,
      cwd: ROOT,
      env: serverEnv,
      port,
      logFile: join(tmpDir, 'server.log'),
      nodeArgs,
    });
    const dtmGrpcAddress = `127.0.0.1:${grpcPort}`;
    const branchServices = [busi?.origin, grpcBusi?.origin].filter(Boolean).join(' and ');
    log(
      `coordinator ${server.origin} and grpc://${dtmGrpcAddress} (pid ${server.pid}), ` +
        `branch services ${branchServices}, store ${opts.store}`,
    );
    log(
      `node ${machine.node}, ${machine.cpus} cpus (${machine.cpuModel}), load ${machine.loadavgAtStart.join(' ')}, ` +
        `fsync of 4 KiB p50 ${machine.fsyncBefore.p50Ms} ms (max ${machine.fsyncBefore.maxMs}); ` +
        `${opts.warmupOps ? `${opts.warmupOps} sagas per coordinator scenario at c=${WARMUP_CONCURRENCY} first, then ` : ''}` +
        `${opts.warmupS} s warm-up + ${opts.durationS} s per scenario at concurrency ${opts.concurrency.join(', ')}\n`,
    );

    /** Saga outcomes per transport, for the correctness checks. */
    const trackers = { http: { okGids: [], failed: 0 }, grpc: { okGids: [], failed: 0 } };
    let gidSeq = 0;
    const runId = Math.random().toString(36).slice(2, 8);
    const levels = [];

    /** The clients of one concurrency level: undici pools of `concurrency` connections, and gRPC channels. */
    const openClients = (concurrency) => {
      const poolOpts = {
        connections: concurrency,
        pipelining: 1,
        keepAliveTimeout: 60_000,
        headersTimeout: 30_000,
        bodyTimeout: 30_000,
      };
      const busiPool = useHttp ? new Pool(busi.origin, poolOpts) : null;
      const dtmPool = useHttp ? new Pool(server.origin, poolOpts) : null;
      for (const p of [busiPool, dtmPool]) if (p) pools.add(p);
      // gRPC: one channel to the coordinator and one to the branch service, multiplexing every worker
      const grpc = useGrpc
        ? createGrpcClients({ dtmAddress: dtmGrpcAddress, busiAddress: grpcBusi.address, token: opts.token })
        : null;
      const makeOp = (name) => {
        const sc = scenarios[name];
        const prefix = `${sc.gidPrefix}${runId}-`;
        return sc.make({
          busi,
          busiPool,
          dtmPool: sc.needsCoordinator ? dtmPool : null,
          token: opts.token,
          grpc,
          grpcBusi,
          nextGid: () => prefix + gidTail(opts.gids, ++gidSeq),
          tracker: trackers[sc.transport],
        });
      };
      const close = async () => {
        await Promise.allSettled([busiPool?.close(), dtmPool?.close()]);
        for (const p of [busiPool, dtmPool]) if (p) pools.delete(p);
        grpc?.close();
      };
      return { makeOp, close };
    };

    if (opts.warmupOps > 0) {
      // once, before the first level: the coordinator's code warm (V8 tiers it up over its first few
      // thousand sagas), so that C=1 measures the server and not its start-up
      const clients = openClients(WARMUP_CONCURRENCY);
      for (const name of scenarioOrder) {
        if (!scenarios[name].needsCoordinator) continue;
        const w = await runPhase({
          op: clients.makeOp(name),
          concurrency: WARMUP_CONCURRENCY,
          durationS: 300,
          maxOps: opts.warmupOps,
        });
        log(
          `  warm-up ${name}: ${w.ops} ok, ${w.errors} errors in ${w.elapsedS.toFixed(1)} s at c=${WARMUP_CONCURRENCY}`,
        );
        for (const [k, n] of Object.entries(w.errorKinds).slice(0, 5)) log(`    ${n} x ${k}`);
      }
      await clients.close();
    }

    for (const concurrency of opts.concurrency) {
      const clients = openClients(concurrency);
      /** `ratio` is the HTTP one (as before gRPC joined); `ratios` has one per transport. */
      const level = { concurrency, scenarios: {}, ratio: null, ratios: {} };
      for (const name of scenarioOrder) {
        const sc = scenarios[name];
        const op = clients.makeOp(name);
        if (opts.warmupS > 0) await runPhase({ op, concurrency, durationS: opts.warmupS });
        const srv0 = procCpuSeconds(server.pid);
        const sys0 = systemBusyCpuSeconds();
        const bench0 = process.cpuUsage();
        const stats = await runPhase({ op, concurrency, durationS: opts.durationS });
        const srv1 = procCpuSeconds(server.pid);
        const sys1 = systemBusyCpuSeconds();
        const benchUs = process.cpuUsage(bench0);
        const srvS = srv0 === null || srv1 === null ? null : srv1 - srv0;
        const benchS = (benchUs.user + benchUs.system) / 1e6;
        const othersS =
          srvS === null || sys0 === null || sys1 === null ? null : Math.max(0, sys1 - sys0 - srvS - benchS);
        stats.cpu = {
          serverPct: srvS === null ? null : round2((srvS / stats.elapsedS) * 100),
          benchPct: round2((benchS / stats.elapsedS) * 100),
          /** the rest of the machine (kernel work on our behalf included): high values mean a noisy run */
          othersPct: othersS === null ? null : round2((othersS / stats.elapsedS) * 100),
          serverMsPerOp:
            srvS === null || !stats.ops || !sc.needsCoordinator ? null : Math.round((srvS * 1e6) / stats.ops) / 1000,
        };
        level.scenarios[name] = stats;
        log(`  c=${concurrency} ${name}: ${stats.ops} ok, ${stats.errors} errors, ${stats.tps.toFixed(1)} tx/s`);
        if (stats.errors) {
          for (const [k, n] of Object.entries(stats.errorKinds).slice(0, 5)) log(`    ${n} x ${k}`);
        }
        if (server.exited) {
          throw new Error(
            `coordinator exited during the run (code ${server.exited.code}, signal ${server.exited.signal})` +
              (server.exited.code === 0
                ? ' — a clean exit, as after SIGTERM/SIGINT: did another process signal it? (DTX_BENCH_LOG_LEVEL=info shows the shutdown)'
                : '') +
              `; log tail:\n${server.logTail()}`,
          );
        }
      }
      for (const [name, baseName] of Object.entries(BASELINE_OF)) {
        const b = level.scenarios[baseName]?.tps;
        const s = level.scenarios[name]?.tps;
        if (b && s !== undefined) level.ratios[scenarios[name].transport] = Math.round((s / b) * 1000) / 1000;
      }
      level.ratio = level.ratios.http ?? null;
      levels.push(level);
      console.log(`\nconcurrency ${concurrency}  (${opts.durationS} s measured per scenario)`);
      console.log(levelTable(level));
      for (const t of opts.transports) console.log(`ratio dtx/baseline over ${t} (tx/s): ${level.ratios[t] ?? '-'}`);
      const noise = Math.max(...Object.values(level.scenarios).map((x) => x.cpu.othersPct ?? 0));
      if (noise > 25) console.log(`note: other processes used up to ${Math.round(noise)} % CPU meanwhile; a noisy run`);
      await clients.close();
    }

    /** One check per transport; the run passes when every one does. */
    const checks = {};
    if (useHttp)
      checks.http = await checkCorrectness({ busi, tracker: trackers.http, origin: server.origin, token: opts.token });
    if (useGrpc)
      checks.grpc = await checkCorrectness({
        busi: grpcBusi,
        tracker: trackers.grpc,
        origin: server.origin,
        token: opts.token,
      });
    const correctness = { ...checks, pass: Object.values(checks).every((c) => c.pass) };
    machine.fsyncAfter = fsyncProbe(tmpDir);
    const serverLogLines = readFileSync(server.logFile, 'utf8').split('\n').filter(Boolean);
    const exit = await server.stop();
    server = null;

    let profile = null;
    if (profileDir) {
      const files = readdirSync(profileDir)
        .filter((f) => f.endsWith('.cpuprofile'))
        .map((f) => join(profileDir, f));
      if (files.length) {
        profile = { dir: relative(ROOT, profileDir), ...summariseProfiles(files, { root: ROOT }) };
      } else {
        profile = {
          dir: relative(ROOT, profileDir),
          error: 'no .cpuprofile written (did the coordinator exit normally?)',
        };
      }
    }

    const transportName = opts.transports.join('+');
    console.log(
      `\nsummary (store ${opts.store}, transport ${transportName}, node ${machine.node}, ${machine.cpus} cpus)`,
    );
    console.log(
      `fsync of 4 KiB on the store's disk, p50/max ms: ${machine.fsyncBefore.p50Ms}/${machine.fsyncBefore.maxMs} before, ` +
        `${machine.fsyncAfter.p50Ms}/${machine.fsyncAfter.maxMs} after; load average ${machine.loadavgAtStart.join(' ')} at start`,
    );
    console.log(summaryTable(levels));
    for (const [t, c] of Object.entries(checks)) {
      console.log(
        `${t === opts.transports[0] ? '\n' : ''}correctness over ${t}: ${c.pass ? 'ok' : 'PROBLEMS'}: ${c.okSagas} OK sagas, ` +
          `${c.actionCalls}/${c.expectedActionCalls} action calls, ` +
          `${c.compensationCalls} compensations, ` +
          `${c.queried.filter((q) => q.ok).length}/${c.queried.length} sampled gids stored as succeeded`,
      );
      for (const p of c.problems) console.log(`  - ${p}`);
      for (const q of c.queried.filter((x) => !x.ok).slice(0, 3)) console.log(`    ${JSON.stringify(q)}`);
    }
    if (serverLogLines.length) {
      console.log(
        `\ncoordinator wrote ${serverLogLines.length} log lines at LOG_LEVEL=${serverEnv.LOG_LEVEL}; first ones:`,
      );
      for (const l of serverLogLines.slice(0, 5)) console.log(`  ${l.slice(0, 300)}`);
    }
    if (profile) console.log(`\n${profile.error ?? formatProfileSummary(profile)}\n(profiles in ${profile.dir})`);

    const result = {
      version: 1,
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      machine: { ...machine, loadavgAtEnd: loadavg().map((v) => round2(v)) },
      config: {
        store: opts.store,
        transport: transportName,
        durationS: opts.durationS,
        warmupS: opts.warmupS,
        warmupOps: opts.warmupOps,
        concurrency: opts.concurrency,
        gids: opts.gids,
        quick: opts.quick,
        profile: opts.profile,
        serverEntry: relative(ROOT, opts.serverEntry),
        serverEnv: Object.fromEntries(Object.entries(serverEnv).filter(([k]) => k !== 'STORE_PASSWORD')),
        scenarios: Object.fromEntries(scenarioOrder.map((n) => [n, scenarios[n].describe])),
      },
      store: store.facts,
      levels,
      correctness,
      server: { exit, logLines: serverLogLines.length, logHead: serverLogLines.slice(0, 20) },
      profile,
    };
    if (opts.save) {
      const file = join(ROOT, 'bench/results', `${stamp}-${opts.store}-${transportName}.json`);
      mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
      writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
      console.log(`\nresults: ${relative(ROOT, file)}`);
    }
    return correctness.pass ? 0 : 1;
  } catch (e) {
    if (server && !server.exited && !interrupt.signal.aborted) log(`coordinator log tail:\n${server.logTail(20)}`);
    throw e;
  } finally {
    await cleanup();
  }
}

main().then(
  (code) => process.exit(code),
  (e) => {
    const msg = e instanceof Error ? e.message : String(e);
    log(`bench failed: ${msg}`);
    process.exit(msg.startsWith('interrupted by') ? 130 : 2);
  },
);
