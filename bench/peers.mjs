// `node bench/run.mjs --peers`: the same 2-step HTTP saga against dtx, DTM and dtmrs, one server at a time,
// interleaved (dtx, dtm, dtmrs, dtx, ...), each on its counterpart of the chosen store. See bench/README.md.
import { setMaxListeners } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { startBusi } from './lib/busi.mjs';
import { fsyncProbe } from './lib/fsync-probe.mjs';
import { round2, runClosedLoop, WARMUP_CONCURRENCY, WARMUP_OPS } from './lib/load.mjs';
import {
  CACHE_DIR,
  DTM_VERSION,
  DTMRS_REDIS_DB,
  DTMRS_VERSION,
  DURABILITY,
  ensureDtm,
  ensureDtmrs,
  PEER_STORES,
  preparePeerSqlStore,
  writeDtmConfig,
} from './lib/peers.mjs';
import { table } from './lib/report.mjs';
import { gidMode, gidTail, PAYLOAD, scenarios } from './lib/scenarios.mjs';
import { freePort, procCpuSeconds, startProcess, startServer } from './lib/server.mjs';
import { stores } from './lib/stores.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');
const PEERS = ['dtm', 'dtmrs'];
const STORES = ['sqlite', 'postgres', 'mysql', 'redis'];

const USAGE = `usage: node bench/run.mjs --peers [options]
  --store <list>        dtx stores: sqlite (vs DTM's BoltDB and dtmrs's SQLite), postgres, mysql, redis (each
                        peer on the same server, a database of its own), a comma list or all (default sqlite)
  --peer <list>         dtm, dtmrs or both (default dtm,dtmrs); a peer whose toolchain (go / cargo) is
                        missing or whose build fails is left out with a message
  --duration <s>        measured seconds per server and concurrency level (default 10)
  --warmup <s>          unmeasured seconds before each measurement (default 2)
  --warmup-ops <n>      unmeasured sagas at C=50 once per server start, before its first level, so that a
                        JIT-compiled server is measured warm, not in its first seconds (default 3000; 0 skips)
  --concurrency <list>  closed-loop worker counts (default 1,50)
  --rounds <n>          interleaved rounds (dtx, dtm, dtmrs, dtx, ...); the table shows medians (default 3)
  --drain <n>           also submit <n> sagas at C=50 without wait_result and time until all have ended
                        (default 10000; 0 skips it)
  --gids <seq|random>   how each gid ends after its prefix: a counter (default) or a UUID (as newGid makes them)
  --dtm-async           run DTM with its default asynchronous branch writes (UpdateBranchSync: 0)
  --server-entry <js>   dtx's entry point (default packages/server/dist/src/cli.js): another build, or a wrapper
  --no-save             do not write bench/results/*.json
  -h, --help`;

function parseCli(argv) {
  const { values } = parseArgs({
    args: argv.filter((a) => a !== '--peers'),
    options: {
      store: { type: 'string', default: 'sqlite' },
      peer: { type: 'string', default: PEERS.join(',') },
      duration: { type: 'string', default: '10' },
      warmup: { type: 'string', default: '2' },
      'warmup-ops': { type: 'string', default: String(WARMUP_OPS) },
      concurrency: { type: 'string', default: '1,50' },
      rounds: { type: 'string', default: '3' },
      drain: { type: 'string', default: '10000' },
      'dtm-async': { type: 'boolean', default: false },
      gids: { type: 'string', default: 'seq' },
      'server-entry': { type: 'string', default: join(ROOT, 'packages/server/dist/src/cli.js') },
      'no-save': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const num = (name, v, min) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number >= ${min}, got '${v}'`);
    return n;
  };
  const list = (name, v, allowed) => {
    const xs = v === 'all' ? allowed : v.split(',').map((s) => s.trim());
    for (const x of xs) if (!allowed.includes(x)) throw new Error(`--${name} takes ${allowed.join(', ')}, got '${x}'`);
    return xs;
  };
  const concurrency = values.concurrency.split(',').map((s) => {
    const n = Number(s.trim());
    if (!Number.isInteger(n) || n < 1) throw new Error(`--concurrency takes positive integers, got '${s}'`);
    return n;
  });
  const rounds = num('rounds', values.rounds, 1);
  if (!Number.isInteger(rounds)) throw new Error('--rounds must be an integer');
  const durationS = num('duration', values.duration, 0);
  if (durationS <= 0) throw new Error('--duration must be > 0');
  return {
    stores: list('store', values.store, STORES),
    peers: list('peer', values.peer, PEERS),
    durationS,
    warmupS: num('warmup', values.warmup, 0),
    warmupOps: Math.floor(num('warmup-ops', values['warmup-ops'], 0)),
    concurrency,
    rounds,
    drain: Math.floor(num('drain', values.drain, 0)),
    dtmSync: !values['dtm-async'],
    gids: gidMode(values.gids),
    serverEntry: values['server-entry'],
    save: !values['no-save'],
  };
}

const log = (m) => process.stderr.write(`${m}\n`);
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  if (!s.length) return null;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/**
 * The saga operation against one server. dtx and DTM: submit with wait_result (the reply comes when the saga
 * has ended). dtmrs's HTTP submit has no wait_result, so the operation submits and then polls
 * /api/dtmsvr/query until the saga has ended: the same "submitted → ended" span, measured from outside.
 */
function sagaOp({ kind, pool, busi, nextGid, tracker }) {
  if (kind !== 'dtmrs') return scenarios.saga.make({ busi, dtmPool: pool, nextGid, tracker });
  const steps = JSON.stringify([
    { action: busi.url('TransOut'), compensate: busi.url('TransOutRevert'), payload: PAYLOAD },
    { action: busi.url('TransIn'), compensate: busi.url('TransInRevert'), payload: PAYLOAD },
  ]);
  const headers = { 'content-type': 'application/json' };
  return async (signal) => {
    const gid = nextGid();
    const sub = await pool.request({
      path: '/api/dtmsvr/submit',
      method: 'POST',
      headers,
      body: `{"gid":${JSON.stringify(gid)},"trans_type":"saga","steps":${steps}}`,
      signal,
    });
    const st = await sub.body.text();
    if (sub.statusCode !== 200 || st.includes('FAILURE')) {
      tracker.failed++;
      return { ok: false, error: `submit HTTP ${sub.statusCode} ${st.slice(0, 120)}` };
    }
    const path = `/api/dtmsvr/query?gid=${encodeURIComponent(gid)}`;
    for (;;) {
      const q = await pool.request({ path, method: 'GET', signal });
      const text = await q.body.text();
      const status = q.statusCode === 200 ? /"status":"([a-z]+)"/.exec(text)?.[1] : null;
      if (status === 'succeed') {
        tracker.okGids.push(gid);
        return { ok: true };
      }
      if (status === 'failed' || (q.statusCode !== 200 && q.statusCode !== 404)) {
        tracker.failed++;
        return { ok: false, error: `query HTTP ${q.statusCode} ${text.slice(0, 120)}` };
      }
      await new Promise((r) => setTimeout(r, 1));
    }
  };
}

/** Peak resident memory of a process so far (VmHWM), MiB; null when /proc cannot tell. */
function peakRssMiB(pid) {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? round2(Number(m[1]) / 1024) : null;
  } catch {
    return null;
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Keep-alive connections to the server under test, one per worker (the warm-up, each level and the drain). */
const poolOf = (origin, connections) => new Pool(origin, { connections, pipelining: 1, keepAliveTimeout: 60_000 });

/**
 * The drain: `n` 2-step sagas submitted at concurrency 50 without wait_result, timed from the first submit until
 * every saga's last branch (TransIn) has been called — busi counts the calls per gid, so the check costs the
 * servers nothing. Then, untimed, every gid is read back through /api/dtmsvr/query (50 at a time, for up to 30 s)
 * and each one not stored as succeed counts as an error.
 */
async function drain({ kind, origin, busi, n, nextGid, signal, cpuNow }) {
  const pool = poolOf(origin, 50);
  const headers = { 'content-type': 'application/json' };
  const stepsDtm = JSON.stringify([
    { action: busi.url('TransOut'), compensate: busi.url('TransOutRevert') },
    { action: busi.url('TransIn'), compensate: busi.url('TransInRevert') },
  ]);
  const stepsRs = JSON.stringify([
    { action: busi.url('TransOut'), compensate: busi.url('TransOutRevert'), payload: PAYLOAD },
    { action: busi.url('TransIn'), compensate: busi.url('TransInRevert'), payload: PAYLOAD },
  ]);
  const rest =
    kind === 'dtmrs'
      ? `,"trans_type":"saga","steps":${stepsRs}}`
      : `,"trans_type":"saga","protocol":"http","steps":${stepsDtm},"payloads":${JSON.stringify([PAYLOAD, PAYLOAD])}}`;
  const gids = [];
  let submitErrors = 0;
  const t0 = performance.now();
  const submitter = async () => {
    while (gids.length < n && !signal.aborted) {
      const gid = nextGid();
      gids.push(gid);
      try {
        const r = await pool.request({
          path: '/api/dtmsvr/submit',
          method: 'POST',
          headers,
          body: `{"gid":${JSON.stringify(gid)}${rest}`,
          signal,
        });
        const text = await r.body.text();
        if (r.statusCode !== 200 || text.includes('FAILURE')) submitErrors++;
      } catch {
        submitErrors++;
      }
    }
  };
  await Promise.all(Array.from({ length: 50 }, submitter));
  const submittedS = (performance.now() - t0) / 1000;
  let pending = gids;
  const deadline = performance.now() + 120_000;
  while (pending.length > 0 && performance.now() < deadline && !signal.aborted) {
    pending = pending.filter((g) => !(busi.perGid.get(g)?.[1] >= 1));
    if (pending.length > 0) await sleep(2);
  }
  const drainS = (performance.now() - t0) / 1000;
  // the server's CPU for the drain itself, not for the reads of the check below
  const cpuEnd = cpuNow();
  // untimed: every saga must be stored as succeed
  let notSucceed = 0;
  let next = 0;
  const checker = async () => {
    while (next < gids.length) {
      const gid = gids[next++];
      const until = performance.now() + 30_000;
      for (;;) {
        const q = await pool.request({ path: `/api/dtmsvr/query?gid=${encodeURIComponent(gid)}`, method: 'GET' });
        const text = await q.body.text();
        if (/"status":"succeed"/.test(text.slice(0, 2000))) break;
        if (performance.now() > until) {
          notSucceed++;
          break;
        }
        await sleep(20);
      }
    }
  };
  await Promise.all(Array.from({ length: 50 }, checker));
  await pool.close();
  return {
    n,
    submittedS: round2(submittedS),
    drainS: round2(drainS),
    tps: round2(n / drainS),
    cpuEnd,
    errors: submitErrors + pending.length + notSucceed,
  };
}

/** Starts one server on its store for one round; returns { handle, facts, cleanup }. */
async function launch({ kind, store, tmp, bins, dtmSync, serverEntry }) {
  const port = await freePort();
  const dir = mkdtempSync(join(tmp, `${kind}-`));
  const logFile = join(dir, 'server.log');
  if (kind === 'dtx') {
    const prepared = await stores[store].prepare({ tmpDir: dir });
    const handle = await startServer({
      entry: serverEntry,
      cwd: ROOT,
      env: { ...prepared.env, GRPC_PORT: String(await freePort()), LOG_LEVEL: 'warn' },
      port,
      logFile,
    });
    return {
      handle,
      facts: { store, durability: prepared.facts.durability ?? DURABILITY.dtx[store] },
      cleanup: () => prepared.cleanup(),
    };
  }
  const peerStore = PEER_STORES[kind][store];
  const sql = peerStore === 'postgres' || peerStore === 'mysql' ? await preparePeerSqlStore(kind, peerStore) : null;
  if (kind === 'dtm') {
    const conf = join(dir, 'dtm.yml');
    const redisPrefix = `{dtmbench-${process.pid}-${Date.now().toString(36)}}`;
    const config = writeDtmConfig({
      file: conf,
      store: peerStore,
      httpPort: port,
      grpcPort: await freePort(),
      jsonRpcPort: await freePort(),
      redisPrefix,
      sql,
      sync: dtmSync,
    });
    // BoltDB lives in ./dtm.bolt of the working directory: a fresh one per run
    const handle = await startProcess({
      cmd: bins.dtm,
      args: ['-c', conf],
      cwd: dir,
      env: { LOG_LEVEL: 'error' },
      port,
      readyPath: '/api/ping',
      logFile,
    });
    return {
      handle,
      facts: {
        store: peerStore,
        config,
        durability: `${DURABILITY.dtm[peerStore]}${sql ? ` (${sql.durability})` : ''}${dtmSync ? '' : ' → UpdateBranchSync: 0'}`,
      },
      cleanup: async () => {
        if (sql) return sql.cleanup();
        if (peerStore !== 'redis') return;
        const url = new URL(process.env.DTX_REDIS_URL ?? 'redis://127.0.0.1:6379');
        const { Redis } = await import('ioredis');
        const redis = new Redis({ host: url.hostname, port: Number(url.port || 6379), maxRetriesPerRequest: 1 });
        let cursor = '0';
        do {
          const [next, keys] = await redis.scan(cursor, 'MATCH', `${redisPrefix}*`, 'COUNT', 1000);
          cursor = next;
          if (keys.length) await redis.unlink(...keys);
        } while (cursor !== '0');
        redis.disconnect();
      },
    };
  }
  const redisUrl = new URL(process.env.DTX_REDIS_URL ?? 'redis://127.0.0.1:6379');
  const flushRedis = async () => {
    const { Redis } = await import('ioredis');
    const r = new Redis({
      host: redisUrl.hostname,
      port: Number(redisUrl.port || 6379),
      db: DTMRS_REDIS_DB,
      maxRetriesPerRequest: 1,
    });
    await r.flushdb();
    r.disconnect();
  };
  let db;
  if (peerStore === 'sqlite') db = `sqlite:${join(dir, 'dtmrs.db')}?mode=rwc`;
  else if (peerStore === 'redis') {
    await flushRedis();
    db = `redis://${redisUrl.hostname}:${redisUrl.port || 6379}/${DTMRS_REDIS_DB}`;
  } else {
    const c = sql.conn;
    const auth = `${encodeURIComponent(c.user)}:${encodeURIComponent(c.password)}`;
    db = `${peerStore}://${auth}@${c.host}:${c.port}/${sql.db}`;
  }
  const handle = await startProcess({
    cmd: bins.dtmrs,
    args: [],
    cwd: dir,
    env: {
      DTMRS_DB: db,
      DTMRS_ADDR: `127.0.0.1:${port}`,
      DTMRS_GRPC_ADDR: `127.0.0.1:${await freePort()}`,
      RUST_LOG: 'warn',
    },
    port,
    readyPath: '/health',
    logFile,
  });
  return {
    handle,
    facts: {
      store: peerStore,
      db: db.replace(/\/\/[^@/]*@/, '//'),
      durability: `${DURABILITY.dtmrs[peerStore]}${sql ? ` (${sql.durability})` : ''}`,
    },
    cleanup: async () => {
      if (sql) await sql.cleanup();
      if (peerStore === 'redis') await flushRedis();
    },
  };
}

export async function runPeers(argv) {
  const opts = parseCli(argv);
  const bins = { dtx: true };
  const notes = [];
  for (const peer of opts.peers) {
    const r = peer === 'dtm' ? ensureDtm() : ensureDtmrs();
    notes.push(`${peer}: ${r.note}`);
    log(`${peer}: ${r.note}`);
    if (r.bin) bins[peer] = r.bin;
  }
  const startedAt = new Date();
  const tmp = mkdtempSync(join(tmpdir(), 'dtx-peers-'));
  const busi = await startBusi({ trackPrefix: scenarios.saga.gidPrefix, expectBody: PAYLOAD });
  const runId = Math.random().toString(36).slice(2, 8);
  let seq = 0;
  /** rows[store][conc][kind] = [{ tps, p50, p99, errors, cpuMsPerOp }, ...] one per round */
  const runs = [];
  const servers = {};
  const fsyncBefore = fsyncProbe(tmp);
  const stopAll = new AbortController();
  setMaxListeners(0, stopAll.signal); // each of the drain's 50 submitters listens on it
  process.once('SIGINT', () => stopAll.abort(new Error('interrupted by SIGINT')));
  let current = null;
  let warmupErrors = 0;
  process.on('exit', () => current?.handle.killNow());
  try {
    for (const store of opts.stores) {
      const kinds = ['dtx', ...opts.peers.filter((p) => bins[p] && PEER_STORES[p][store])];
      for (const p of opts.peers) {
        if (bins[p] && !PEER_STORES[p][store]) notes.push(`${p}: not run on ${store} (no counterpart store wired)`);
      }
      for (let round = 1; round <= opts.rounds; round++) {
        for (const kind of kinds) {
          log(`store ${store}, round ${round}/${opts.rounds}: ${kind}`);
          current = await launch({ kind, store, tmp, bins, dtmSync: opts.dtmSync, serverEntry: opts.serverEntry });
          servers[`${store}/${kind}`] = current.facts;
          try {
            if (opts.warmupOps > 0) {
              const pool = poolOf(current.handle.origin, WARMUP_CONCURRENCY);
              const op = sagaOp({
                kind,
                pool,
                busi,
                tracker: { okGids: [], failed: 0 },
                nextGid: () => `${scenarios.saga.gidPrefix}${runId}-${kind}-w-${gidTail(opts.gids, ++seq)}`,
              });
              const w = await runClosedLoop({
                op,
                concurrency: WARMUP_CONCURRENCY,
                durationS: 300,
                maxOps: opts.warmupOps,
                stop: stopAll.signal,
              });
              await pool.close();
              if (stopAll.signal.aborted) throw stopAll.signal.reason;
              log(
                `  warm-up ${kind}: ${w.ops} sagas at c=${WARMUP_CONCURRENCY} in ${w.elapsedS.toFixed(1)} s, ${w.errors} errors`,
              );
              for (const [k, n] of Object.entries(w.errorKinds).slice(0, 3)) log(`    ${n} x ${k}`);
              if (w.errors) notes.push(`${store}/${kind} round ${round}: ${w.errors} sagas failed in the warm-up`);
              warmupErrors += w.errors;
            }
            for (const concurrency of opts.concurrency) {
              const pool = poolOf(current.handle.origin, concurrency);
              const tracker = { okGids: [], failed: 0 };
              const op = sagaOp({
                kind,
                pool,
                busi,
                tracker,
                nextGid: () => `${scenarios.saga.gidPrefix}${runId}-${kind}-${gidTail(opts.gids, ++seq)}`,
              });
              if (opts.warmupS > 0)
                await runClosedLoop({ op, concurrency, durationS: opts.warmupS, stop: stopAll.signal });
              const cpu0 = procCpuSeconds(current.handle.pid);
              const s = await runClosedLoop({ op, concurrency, durationS: opts.durationS, stop: stopAll.signal });
              const cpu1 = procCpuSeconds(current.handle.pid);
              await pool.close();
              if (stopAll.signal.aborted) throw stopAll.signal.reason;
              const cpuMsPerOp =
                cpu0 === null || cpu1 === null || !s.ops ? null : round2(((cpu1 - cpu0) * 1000) / s.ops);
              // every saga reported as ended must have reached both branches exactly once, no compensation
              const bad = tracker.okGids.filter((gid) => {
                const n = busi.perGid.get(gid);
                return !(n?.[0] === 1 && n[1] === 1 && n[2] === 0 && n[3] === 0);
              });
              const unverified = bad.length;
              if (unverified) {
                const calls = bad.slice(0, 3).map((g) => `${g}: ${JSON.stringify(busi.perGid.get(g) ?? null)}`);
                log(
                  `  ${kind}: ${unverified} ended sagas without exactly one call to each branch, e.g. ${calls.join(', ')}`,
                );
              }
              runs.push({ store, round, kind, concurrency, ...s, cpuMsPerOp, unverified });
              log(
                `  c=${concurrency} ${kind}: ${s.ops} ok, ${s.errors} errors, ${s.tps.toFixed(1)} tx/s, p50 ${s.p50} p99 ${s.p99} ms`,
              );
              for (const [k, n] of Object.entries(s.errorKinds).slice(0, 3)) log(`    ${n} x ${k}`);
              if (current.handle.exited) throw new Error(`${kind} exited; log tail:\n${current.handle.logTail()}`);
            }
            if (opts.drain > 0) {
              const cpu0 = procCpuSeconds(current.handle.pid);
              const d = await drain({
                kind,
                origin: current.handle.origin,
                busi,
                n: opts.drain,
                nextGid: () => `${scenarios.saga.gidPrefix}${runId}-${kind}-d-${gidTail(opts.gids, ++seq)}`,
                signal: stopAll.signal,
                cpuNow: () => procCpuSeconds(current.handle.pid),
              });
              const cpu1 = d.cpuEnd;
              if (stopAll.signal.aborted) throw stopAll.signal.reason;
              const cpuMsPerOp = cpu0 === null || cpu1 === null ? null : round2(((cpu1 - cpu0) * 1000) / d.n);
              runs.push({
                store,
                round,
                kind,
                concurrency: 'drain',
                tps: d.tps,
                p50: null,
                p99: null,
                ops: d.n,
                errors: d.errors,
                cpuMsPerOp,
                unverified: 0,
                drainS: d.drainS,
                submittedS: d.submittedS,
              });
              log(
                `  drain ${kind}: ${d.n} sagas submitted in ${d.submittedS} s, all ended after ${d.drainS} s (${d.tps} tx/s), ${d.errors} errors`,
              );
            }
            const rss = peakRssMiB(current.handle.pid);
            for (const r of runs) if (r.store === store && r.round === round && r.kind === kind) r.peakRssMiB = rss;
          } finally {
            await current.handle.stop();
            await current.cleanup().catch(() => {});
            current = null;
          }
        }
      }
    }
  } finally {
    await busi.close();
    rmSync(tmp, { recursive: true, force: true });
  }

  // medians over rounds, and dtx / peer
  const summary = [];
  for (const store of opts.stores) {
    for (const concurrency of [...opts.concurrency, ...(opts.drain > 0 ? ['drain'] : [])]) {
      const of = (kind) => runs.filter((r) => r.store === store && r.concurrency === concurrency && r.kind === kind);
      const dtxTps = median(of('dtx').map((r) => r.tps));
      for (const kind of ['dtx', ...PEERS]) {
        const rs = of(kind);
        if (!rs.length) continue;
        const tps = median(rs.map((r) => r.tps));
        summary.push({
          store: kind === 'dtx' ? store : PEER_STORES[kind][store],
          dtxStore: store,
          server: kind,
          concurrency,
          rounds: rs.length,
          tps: round2(tps),
          p50: concurrency === 'drain' ? null : round2(median(rs.map((r) => r.p50 ?? 0))),
          p99: concurrency === 'drain' ? null : round2(median(rs.map((r) => r.p99 ?? 0))),
          peakRssMiB: median(rs.map((r) => r.peakRssMiB).filter((x) => x !== null && x !== undefined)),
          errors: rs.reduce((a, r) => a + r.errors + r.unverified, 0),
          cpuMsPerOp: median(rs.map((r) => r.cpuMsPerOp).filter((x) => x !== null)),
          dtxOverPeer: kind === 'dtx' || !tps ? null : round2(dtxTps / tps),
        });
      }
    }
  }
  const c = cpus();
  const machine = {
    node: process.version,
    platform: `${process.platform} ${release()} ${process.arch}`,
    cpus: c.length,
    cpuModel: c[0]?.model ?? 'unknown',
    totalMemMiB: Math.round(totalmem() / 2 ** 20),
    loadavgAtEnd: loadavg().map(round2),
    fsyncBefore,
  };
  console.log(
    `\npeers: 2-step HTTP saga, median of ${opts.rounds} interleaved round(s), ${opts.durationS} s each ` +
      `(${opts.warmupS} s warm-up${opts.warmupOps ? `, after ${opts.warmupOps} sagas at C=${WARMUP_CONCURRENCY} per server start` : ''}); ${machine.cpus} cpus ${machine.cpuModel}; DTM ${DTM_VERSION} ` +
      `UpdateBranchSync ${opts.dtmSync ? 1 : 0}, dtmrs ${DTMRS_VERSION}`,
  );
  console.log(
    table(
      [
        'dtx store',
        'server',
        'its store',
        'conc',
        'tx/s',
        'p50 ms',
        'p99 ms',
        'errors',
        'cpu ms/op',
        'peak rss MiB',
        'dtx/peer',
      ],
      summary.map((r) => [
        r.dtxStore,
        r.server,
        r.store,
        r.concurrency,
        r.tps.toFixed(1),
        r.p50 === null ? null : r.p50.toFixed(2),
        r.p99 === null ? null : r.p99.toFixed(2),
        r.errors,
        r.cpuMsPerOp === null ? null : r.cpuMsPerOp.toFixed(3),
        r.peakRssMiB === null ? null : r.peakRssMiB.toFixed(0),
        r.dtxOverPeer === null ? null : `${r.dtxOverPeer.toFixed(2)}x`,
      ]),
    ),
  );
  for (const [k, f] of Object.entries(servers)) console.log(`  ${k}: ${f.durability}`);
  for (const n of notes) console.log(`  note: ${n}`);
  if (opts.save) {
    const stamp = startedAt
      .toISOString()
      .replace(/:/g, '-')
      .replace(/\.\d+Z$/, 'Z');
    const file = join(ROOT, 'bench/results', `${stamp}-peers-${opts.stores.join('+')}.json`);
    mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
    const result = {
      version: 1,
      kind: 'peers',
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      machine,
      config: { ...opts, cacheDir: CACHE_DIR, dtm: DTM_VERSION, dtmrs: DTMRS_VERSION },
      servers,
      notes,
      summary,
      runs,
    };
    writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
    console.log(`\nresults: ${relative(ROOT, file)}`);
  }
  return warmupErrors > 0 || summary.some((r) => r.errors > 0) ? 1 : 0;
}
