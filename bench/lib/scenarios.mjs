// The operations the bench measures. Each scenario's `make` returns one closed-loop operation.
//
//  - baseline: the two branch calls a 2-step saga makes, done directly by the client (no coordinator):
//              POST TransOut then POST TransIn, with the query string and body the coordinator would send.
//  - saga:     POST /api/dtmsvr/submit of a 2-step saga with wait_result, i.e. the coordinator records the
//              saga durably, calls both branches, records their results and the end, then replies.
//  - grpc-baseline: the same two branch calls over gRPC, made directly: busi.Busi/TransOut then TransIn
//              with the dtm-* metadata and the payload bytes the coordinator would send.
//  - grpc-saga: dtmgimp.Dtm/Submit of the same saga with gRPC branches and WaitResult.

import { randomUUID } from 'node:crypto';

/** How the bench's gids end after their prefix (`--gids`). */
const GID_MODES = ['seq', 'random'];

/** The value of `--gids`, checked. */
export function gidMode(value) {
  if (!GID_MODES.includes(value)) throw new Error(`--gids takes ${GID_MODES.join(' or ')}, got '${value}'`);
  return value;
}

/**
 * The end of a gid after its prefix: with `seq` the counter `n` in base 36 (a new gid mostly sorts after the last
 * one), with `random` a UUID, as a coordinator's newGid and DTM's clients make them (a new gid lands anywhere in a
 * gid index).
 */
export function gidTail(mode, n) {
  return mode === 'random' ? randomUUID() : n.toString(36);
}

/** The body of every branch call (and each saga step's payload). */
export const PAYLOAD = '{"amount":30}';
/** The message of every gRPC branch call: busi.proto's `BusiReq { Amount: 30 }`, sent unchanged. */
export const GRPC_PAYLOAD = Buffer.from([0x08, 0x1e]);

const JSON_HEADERS = { 'content-type': 'application/json' };

/**
 * @typedef {object} ScenarioCtx
 * @property {import('undici').Pool} busiPool keep-alive pool to the branch service
 * @property {import('undici').Pool | null} dtmPool keep-alive pool to the coordinator (null when not needed)
 * @property {ReturnType<typeof import('./busi.mjs').startBusi> extends Promise<infer B> ? B : never} busi
 * @property {string | undefined} token the coordinator's client token (--token), sent as a Bearer header
 * @property {() => string} nextGid unique gid with this scenario's prefix
 * @property {{ okGids: string[], failed: number }} tracker outcomes of saga submissions (for correctness checks)
 * @property {ReturnType<typeof import('./grpc-clients.mjs').createGrpcClients> | null} grpc gRPC clients (gRPC scenarios)
 * @property {Awaited<ReturnType<typeof import('./grpc-busi.mjs').startGrpcBusi>> | null} grpcBusi gRPC branch service
 */

/** True when a reply means success by DTM's rules (HTTP 200 and no FAILURE / ONGOING in the body). */
function isSuccess(statusCode, text) {
  return statusCode === 200 && !text.includes('FAILURE') && !text.includes('ONGOING');
}

function describeFailure(statusCode, text) {
  return `HTTP ${statusCode} ${text.slice(0, 120)}`;
}

async function post(pool, path, body, signal, headers = JSON_HEADERS) {
  const res = await pool.request({ path, method: 'POST', headers, body, signal });
  const text = await res.body.text();
  return { statusCode: res.statusCode, text };
}

function branchPath(route, gid, branchId) {
  return `/api/busi/${route}?gid=${encodeURIComponent(gid)}&trans_type=saga&branch_id=${branchId}&op=action`;
}

export const scenarios = {
  baseline: {
    describe: 'POST TransOut then POST TransIn directly (no coordinator)',
    gidPrefix: 'bench-base-',
    transport: 'http',
    needsCoordinator: false,
    /** @param {ScenarioCtx} ctx */
    make(ctx) {
      return async (signal) => {
        const gid = ctx.nextGid();
        const a = await post(ctx.busiPool, branchPath('TransOut', gid, '01'), PAYLOAD, signal);
        if (!isSuccess(a.statusCode, a.text))
          return { ok: false, error: `TransOut ${describeFailure(a.statusCode, a.text)}` };
        const b = await post(ctx.busiPool, branchPath('TransIn', gid, '02'), PAYLOAD, signal);
        if (!isSuccess(b.statusCode, b.text))
          return { ok: false, error: `TransIn ${describeFailure(b.statusCode, b.text)}` };
        return { ok: true };
      };
    },
  },
  saga: {
    describe: 'POST /api/dtmsvr/submit, 2-step saga, wait_result=true',
    gidPrefix: 'bench-saga-',
    transport: 'http',
    needsCoordinator: true,
    /** @param {ScenarioCtx} ctx */
    make(ctx) {
      const steps = JSON.stringify([
        { action: ctx.busi.url('TransOut'), compensate: ctx.busi.url('TransOutRevert') },
        { action: ctx.busi.url('TransIn'), compensate: ctx.busi.url('TransInRevert') },
      ]);
      const payloads = JSON.stringify([PAYLOAD, PAYLOAD]);
      // Same keys the Go SDK sends (spec §2.3); gid is the only part that changes.
      const rest = `,"trans_type":"saga","protocol":"http","concurrent":false,"wait_result":true,"steps":${steps},"payloads":${payloads}}`;
      const dtmPool = /** @type {import('undici').Pool} */ (ctx.dtmPool);
      const headers = ctx.token ? { ...JSON_HEADERS, authorization: `Bearer ${ctx.token}` } : JSON_HEADERS;
      return async (signal) => {
        const gid = ctx.nextGid();
        const r = await post(dtmPool, '/api/dtmsvr/submit', `{"gid":${JSON.stringify(gid)}${rest}`, signal, headers);
        if (r.statusCode === 200 && !r.text.includes('FAILURE')) {
          ctx.tracker.okGids.push(gid);
          return { ok: true };
        }
        ctx.tracker.failed++;
        return { ok: false, error: describeFailure(r.statusCode, r.text) };
      };
    },
  },
  'grpc-baseline': {
    describe: 'busi.Busi/TransOut then TransIn directly over gRPC, with dtm-* metadata (no coordinator)',
    gidPrefix: 'bench-gbase-',
    transport: 'grpc',
    needsCoordinator: false,
    /** @param {ScenarioCtx} ctx */
    make(ctx) {
      const grpc = /** @type {NonNullable<ScenarioCtx['grpc']>} */ (ctx.grpc);
      const md = (gid, branchId) => ({
        'dtm-gid': gid,
        'dtm-trans_type': 'saga',
        'dtm-branch_id': branchId,
        'dtm-op': 'action',
        'dtm-dtm': '',
      });
      return async (signal) => {
        const gid = ctx.nextGid();
        const a = await grpc.branch('/busi.Busi/TransOut', GRPC_PAYLOAD, md(gid, '01'), signal);
        if (!a.ok) return { ok: false, error: `TransOut ${a.error}` };
        const b = await grpc.branch('/busi.Busi/TransIn', GRPC_PAYLOAD, md(gid, '02'), signal);
        if (!b.ok) return { ok: false, error: `TransIn ${b.error}` };
        return { ok: true };
      };
    },
  },
  'grpc-saga': {
    describe: 'dtmgimp.Dtm/Submit, 2-step saga with gRPC branches, WaitResult',
    gidPrefix: 'bench-gsaga-',
    transport: 'grpc',
    needsCoordinator: true,
    /** @param {ScenarioCtx} ctx */
    make(ctx) {
      const grpc = /** @type {NonNullable<ScenarioCtx['grpc']>} */ (ctx.grpc);
      const busi = /** @type {NonNullable<ScenarioCtx['grpcBusi']>} */ (ctx.grpcBusi);
      // what dtmgrpc sends: steps as JSON text, payloads as protobuf bytes
      const Steps = JSON.stringify([
        { action: busi.url('TransOut'), compensate: busi.url('TransOutRevert') },
        { action: busi.url('TransIn'), compensate: busi.url('TransInRevert') },
      ]);
      const BinPayloads = [GRPC_PAYLOAD, GRPC_PAYLOAD];
      const TransOptions = { WaitResult: true };
      return async (signal) => {
        const Gid = ctx.nextGid();
        const r = await grpc.submit({ Gid, TransType: 'saga', Steps, BinPayloads, TransOptions }, signal);
        if (r.ok) {
          ctx.tracker.okGids.push(Gid);
          return { ok: true };
        }
        ctx.tracker.failed++;
        return { ok: false, error: r.error };
      };
    },
  },
};

/** The baseline each coordinator scenario is compared with. */
export const BASELINE_OF = { saga: 'baseline', 'grpc-saga': 'grpc-baseline' };
