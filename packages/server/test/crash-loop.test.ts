/**
 * Crash loop: the real `dtx serve` (the built CLI) is SIGKILLed every 2-3 s on a seeded schedule while a load
 * generator submits 2-branch sagas, and restarted on the same store each time; after the load stops every
 * coordinator is killed once more and restarted, and every saga that was acknowledged must reach the end its
 * design gives it, with the branch calls a saga makes (spec §6.7):
 *
 * - a saga whose actions answer 200 succeeds, each action having answered 200 at least once, the second only
 *   called after the first answered 200, and no compensation called;
 * - a saga whose step-1 action answers 409 fails after compensating step 1 only (step 2 never called);
 * - a saga whose step-2 action answers 409 fails after compensating step 2 and then step 1 (the first call of
 *   step 1's compensation comes after step 2's compensation answered 200);
 * - some branches answer 500 on their first call (retryable): their saga ends as designed all the same.
 *
 * Acknowledged means the submit was answered 200 (async), or 200 / 409 / 425 with wait_result. A submit that
 * got no answer (the connection died with the coordinator) is either not stored — and then no branch of it was
 * ever called — or stored, and then it must end too (the branch service's answers make its end the designed one).
 *
 * The cases: one coordinator on a SQLite file; three coordinators sharing one PostgreSQL schema, and one Redis
 * prefix, killed in turn. The branch service is a real HTTP server on 127.0.0.1. Everything is seeded
 * (DTX_CRASH_SEED): which sagas fail, which branches answer 500 once, which submits wait, the kill schedule.
 * Recovery is the production cron (TransCronInterval 1 s; each saga has retry_interval 1 s, so a 500 backs off
 * 2 s; a pass leased by a killed cron is picked up after RetryInterval, 10 s). Timers only shape the load and
 * the kill schedule; the end is polled for with a deadline.
 */

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DEFAULT_CONFIG, type DtxConfig } from '../src/config.js';
import { Busi, type BusiCall, type BusiResult } from './support/busi.js';
import { DtxProcess, dropTestStore, freePort, storeEnv, testStoreConfig } from './support/dtx.js';
import { call } from './support/http.js';
import { waitFor } from './support/poll.js';
import { seededRandom } from './support/random.js';
import { sagaBody } from './support/trans.js';

const SEED = Number(process.env.DTX_CRASH_SEED ?? 20261202);
/** Kill cycles under load (then one more kill of every coordinator once the load stopped). */
const KILLS = 6;
const WORKERS = 4;
/** Load shaping: a worker's pause between two submits, so a case stays at a few hundred sagas. */
const PACE_MS = 60;
/** Upper bound for everything to end after the last restart (the slowest path is a 10 s cron lease). */
const END_DEADLINE_MS = 45_000;

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms)); // load shaping only, never to synchronise

/** What the branch service does for one saga, drawn from the seed and the saga's index. */
interface Design {
  /** The step (1 or 2) whose action answers 409, or 0 when the saga succeeds. */
  failAt: 0 | 1 | 2;
  /** Branches (`01 action`, `02 compensate`, ...) whose first call answers 500. */
  errorOnce: Set<string>;
  wait: boolean;
  /** How long each branch call of this saga works before it answers (so kills find calls in flight). */
  holdMs: number;
}

function designOf(i: number): Design {
  const r = seededRandom(SEED ^ Math.imul(i + 1, 0x9e3779b1));
  const x = r();
  const failAt = x < 0.2 ? 1 : x < 0.4 ? 2 : 0;
  const errorOnce = new Set<string>();
  for (const k of ['01 action', '02 action', '01 compensate', '02 compensate']) if (r() < 0.15) errorOnce.add(k);
  return { failAt, errorOnce, wait: r() < 0.4, holdMs: Math.floor(r() * 120) };
}

const endOf = (d: Design) => (d.failAt === 0 ? 'succeed' : 'failed');
/** Final branch statuses in row order (comp01, act01, comp02, act02), spec §6.7's examples. */
const BRANCHES_AT_END: Record<Design['failAt'], string[]> = {
  0: ['prepared', 'succeed', 'prepared', 'succeed'],
  1: ['succeed', 'failed', 'prepared', 'prepared'],
  2: ['succeed', 'succeed', 'succeed', 'failed'],
};

/** One branch call as the branch service answered it. */
interface Hit {
  /** `01 action`, `02 compensate`, ... */
  branch: string;
  status: number;
}

/** A saga the load generator submitted, and what its submit got back. */
interface Submission {
  gid: string;
  design: Design;
  /** HTTP status of the submit, or 0 when no answer came. */
  reply: number;
  text: string;
}

/** The branch service: answers by each saga's design and records every call per gid. */
function branchService(busi: Busi, designs: Map<string, Design>, hits: Map<string, Hit[]>): void {
  busi.onCall = async (c) => {
    const d = designs.get(c.query.gid ?? '');
    if (d) await pause(d.holdMs); // the branch's work: load shaping, nothing waits on it
  };
  busi.answer = (c: BusiCall): BusiResult => {
    const gid = c.query.gid ?? '';
    const d = designs.get(gid);
    if (!d) return { status: 400, body: `{"error":"unknown gid ${gid}"}` };
    const branch = `${c.query.branch_id} ${c.query.op}`;
    const list = hits.get(gid) ?? [];
    hits.set(gid, list);
    const first = !list.some((h) => h.branch === branch);
    const status =
      d.errorOnce.has(branch) && first ? 500 : c.query.op === 'action' && branch === `0${d.failAt} action` ? 409 : 200;
    list.push({ branch, status });
    return status === 200 ? 'SUCCESS' : status === 409 ? 'FAILURE' : 'ERROR';
  };
}

/** The coordinators of one case, on one store, each restartable on its port. */
class Cluster {
  readonly up: boolean[];
  kills = 0;
  /** The output of killed processes (the tail of each), for failure messages. */
  readonly history: string[] = [];
  constructor(readonly nodes: DtxProcess[]) {
    this.up = nodes.map(() => false);
  }

  async startAll(): Promise<void> {
    // one after the other: the first one migrates the schema
    for (let k = 0; k < this.nodes.length; k++) {
      await this.nodes[k]!.start();
      this.up[k] = true;
    }
  }

  async kill(k: number): Promise<void> {
    this.up[k] = false;
    await this.nodes[k]!.kill();
    this.kills += 1;
    this.history.push(`--- node ${k}, kill ${this.kills}:\n${this.nodes[k]!.output.slice(-2000)}`);
  }

  /** The node submit `i` goes to: its own (i mod n) when up, else the next one up. */
  pick(i: number): DtxProcess | undefined {
    const n = this.nodes.length;
    for (let j = 0; j < n; j++) if (this.up[(i + j) % n]) return this.nodes[(i + j) % n];
    return undefined;
  }

  outputs(): string {
    return [
      ...this.history.slice(-6),
      ...this.nodes.map((p, k) => `--- node ${k} now:\n${p.output.slice(-3000)}`),
    ].join('\n');
  }
}

/** The checks of one finished saga against its design and the branch calls it made; returns the problems. */
function checkSaga(s: Submission, t: { status: string; rollback_reason?: string }, branches: string[], hits: Hit[]) {
  const problems: string[] = [];
  const d = s.design;
  const calls = hits.map((h) => `${h.branch} ${h.status}`).join(', ');
  const say = (what: string) => problems.push(`${s.gid} (reply ${s.reply}): ${what}; calls: ${calls || 'none'}`);
  if (t.status !== endOf(d)) say(`ended ${t.status}, designed ${endOf(d)}`);
  if (branches.join(',') !== BRANCHES_AT_END[d.failAt].join(',')) say(`branch statuses ${branches.join(',')}`);
  const first = (branch: string, status?: number) =>
    hits.findIndex((h) => h.branch === branch && (status === undefined || h.status === status));
  const called = (branch: string) => first(branch) >= 0;
  // actions: step 1 always runs; step 2 only after step 1 answered 200, and only if step 1 does not fail
  if (first('01 action', d.failAt === 1 ? 409 : 200) < 0) say('step 1 action never got its designed answer');
  if (d.failAt === 1) {
    if (called('02 action')) say('step 2 action called after step 1 failed');
  } else {
    const ok1 = first('01 action', 200);
    if (first('02 action', d.failAt === 2 ? 409 : 200) < 0) say('step 2 action never got its designed answer');
    if (first('02 action') < ok1) say('step 2 action called before step 1 answered 200');
  }
  // compensations: none for a succeeded saga; for a failed one each step whose action ran, the last step first
  if (d.failAt === 0) {
    if (called('01 compensate') || called('02 compensate')) say('a compensation ran for a saga that succeeds');
  } else {
    if (!called('02 action') && called('02 compensate')) say('step 2 compensated though its action never ran');
    if (first('01 compensate', 200) < 0) say('step 1 never compensated');
    if (d.failAt === 2) {
      const comp2ok = first('02 compensate', 200);
      if (comp2ok < 0) say('step 2 never compensated');
      if (first('01 compensate') < comp2ok) say('step 1 compensated before step 2 was');
      if (first('02 compensate') < first('02 action', 409)) say('step 2 compensated before its action failed');
    } else if (first('01 compensate') < first('01 action', 409)) {
      say('step 1 compensated before its action failed');
    }
    if (!t.rollback_reason) say('failed without a rollback_reason');
  }
  return problems;
}

const STORES = (process.env.DTX_CRASH_STORES ?? 'sqlite,postgres,redis').split(',').filter(Boolean);
const CASES = [
  { kind: 'sqlite', instances: 1 },
  { kind: 'postgres', instances: 3 },
  { kind: 'redis', instances: 3 },
].filter((c) => STORES.includes(c.kind));

// A test runner that dies abruptly must not leave coordinators behind.
const allNodes: DtxProcess[] = [];
process.on('exit', () => {
  for (const p of allNodes) p.proc?.kill('SIGKILL');
});

describe('crash loop: dtx serve SIGKILLed every few seconds under saga load', () => {
  for (const { kind, instances } of CASES) {
    const title = `${instances === 1 ? 'one coordinator' : `${instances} coordinators`} on ${kind}: every acknowledged saga ends as designed`;
    it(title, { timeout: 150_000 }, async (t) => {
      const dir = mkdtempSync(join(tmpdir(), 'dtx-crash-loop-'));
      const store = testStoreConfig(dir, kind);
      const config: DtxConfig = structuredClone(DEFAULT_CONFIG);
      config.Store = { ...config.Store, ...store };
      const env = {
        ...storeEnv(store),
        TRANS_CRON_INTERVAL: '1',
        RETRY_INTERVAL: '10',
        REQUEST_TIMEOUT: '3',
        LOG_LEVEL: 'warn',
      };
      const nodes: DtxProcess[] = [];
      for (let k = 0; k < instances; k++) nodes.push(new DtxProcess(await freePort(), env));
      allNodes.push(...nodes);
      const cluster = new Cluster(nodes);
      const busi = await new Busi().start();
      const designs = new Map<string, Design>();
      const hits = new Map<string, Hit[]>();
      branchService(busi, designs, hits);
      try {
        await cluster.startAll();

        // the load: WORKERS loops submitting sagas with seeded designs until told to stop
        const subs: Submission[] = [];
        let next = 0;
        let stopLoad = false;
        const worker = async () => {
          while (!stopLoad) {
            const i = next++;
            const node = await waitFor(
              'a coordinator up to submit to',
              () => (stopLoad ? 'stop' : cluster.pick(i)),
              20_000,
            );
            if (node === 'stop') break;
            const design = designOf(i);
            const gid = `cl-${kind}-${String(i).padStart(4, '0')}-${design.failAt ? `f${design.failAt}` : 'ok'}${design.errorOnce.size ? '-e' : ''}${design.wait ? '-w' : ''}`;
            designs.set(gid, design);
            const body = sagaBody(busi, gid, { retry_interval: 1, ...(design.wait ? { wait_result: true } : {}) });
            const sub: Submission = { gid, design, reply: 0, text: '' };
            try {
              const r = await call('POST', `${node.api}/submit`, body);
              sub.reply = r.status;
              sub.text = r.text;
            } catch (err) {
              sub.text = (err as Error).message;
            }
            subs.push(sub);
            await pause(PACE_MS);
          }
        };
        const workers = Array.from({ length: WORKERS }, worker);

        // the kill schedule: seeded delays of 2-3 s, one node at a time, each restarted on the same store at once
        const delays = Array.from({ length: KILLS }, (_, c) => 2000 + Math.floor(seededRandom(SEED + c)() * 1000));
        for (let c = 0; c < KILLS; c++) {
          await pause(delays[c]!);
          const k = c % instances;
          await cluster.kill(k);
          await nodes[k]!.start();
          cluster.up[k] = true;
        }
        await pause(delays[0]!);
        // the load stops; every node is killed while the last submits are in flight, then all restart
        stopLoad = true;
        for (let k = 0; k < instances; k++) await cluster.kill(k);
        await Promise.all(workers);
        await cluster.startAll();

        const api = nodes[0]!.api;
        const query = async (gid: string) => {
          const r = await call('GET', `${api}/query?gid=${encodeURIComponent(gid)}`);
          if (r.status !== 200) throw new Error(`query ${gid}: ${r.status} ${r.text}`);
          return r.json as { transaction: { status: string; rollback_reason?: string } | null; branches: any[] };
        };
        const inBatches = async (gids: string[], f: (gid: string) => Promise<void>) => {
          for (let j = 0; j < gids.length; j += 16) await Promise.all(gids.slice(j, j + 16).map(f));
        };

        const problems: string[] = [];
        const acked = (s: Submission) => s.reply === 200 || (s.design.wait && (s.reply === 409 || s.reply === 425));
        const unexpected = subs.filter((s) => !acked(s) && s.reply !== 0 && s.reply < 500);
        for (const s of unexpected) problems.push(`${s.gid}: submit answered ${s.reply} ${s.text}`);
        for (const s of subs) {
          if (s.design.wait && s.reply === 200 && s.design.failAt !== 0) problems.push(`${s.gid}: wait_result 200`);
          // FAILURE is the truth once given: never for a saga that goes on to succeed (it answers ONGOING then)
          if (s.design.wait && s.reply === 409 && s.design.failAt === 0) problems.push(`${s.gid}: wait_result 409`);
          if (!s.design.wait && s.reply === 200 && s.text !== '{"dtm_result":"SUCCESS"}')
            problems.push(`${s.gid}: submit 200 with ${s.text}`);
        }

        // which submissions must end: every acknowledged one, and every unanswered one that was stored
        const mustEnd: Submission[] = [];
        let unansweredStored = 0;
        let unansweredLost = 0;
        const byGid = new Map(subs.map((s) => [s.gid, s]));
        await inBatches(
          subs.map((s) => s.gid),
          async (gid) => {
            const s = byGid.get(gid)!;
            const q = await query(gid);
            if (acked(s)) {
              if (q.transaction) mustEnd.push(s);
              else problems.push(`${gid}: acknowledged (${s.reply}) but not stored`);
            } else if (q.transaction) {
              unansweredStored += 1;
              mustEnd.push(s);
            } else {
              unansweredLost += 1;
              if (hits.has(gid)) problems.push(`${gid}: not stored, yet its branches were called`);
            }
          },
        );

        const restartedAt = Date.now();
        const pending = new Set(mustEnd.map((s) => s.gid));
        const ends = new Map<string, { t: { status: string; rollback_reason?: string }; branches: string[] }>();
        try {
          await waitFor(
            'every stored saga to end',
            async () => {
              await inBatches([...pending], async (gid) => {
                const q = await query(gid);
                const st = q.transaction?.status ?? '';
                if (st === 'succeed' || st === 'failed') {
                  ends.set(gid, { t: q.transaction!, branches: q.branches.map((b: { status: string }) => b.status) });
                  pending.delete(gid);
                }
              });
              return pending.size === 0;
            },
            END_DEADLINE_MS,
          );
        } catch (err) {
          const left: string[] = [];
          await inBatches([...pending].slice(0, 20), async (gid) => {
            const q = await query(gid);
            left.push(`${gid} ${JSON.stringify(q.transaction)} ${q.branches.map((b) => b.status).join(',')}`);
          });
          throw new Error(
            `${(err as Error).message}: ${pending.size} sagas still unfinished, e.g.\n${left.join('\n')}\n${cluster.outputs()}`,
          );
        }

        const tally = { succeed: 0, succeedAfterRetry: 0, failed: 0, failedAfterRetry: 0 };
        const endedAfterMs = Date.now() - restartedAt;
        let calls = 0;
        let redelivered = 0; // calls of a branch that had answered 200 before: work a kill interrupted
        for (const s of mustEnd) {
          const end = ends.get(s.gid)!;
          const h = hits.get(s.gid) ?? [];
          calls += h.length;
          redelivered += h.filter((x, j) =>
            h.slice(0, j).some((y) => y.branch === x.branch && y.status === 200),
          ).length;
          problems.push(...checkSaga(s, end.t, end.branches, h));
          const retried = h.some((x) => x.status === 500);
          if (end.t.status === 'succeed') tally[retried ? 'succeedAfterRetry' : 'succeed'] += 1;
          else tally[retried ? 'failedAfterRetry' : 'failed'] += 1;
        }
        const ackedCount = subs.filter(acked).length;
        const waited = subs.filter((s) => s.design.wait && acked(s));
        t.diagnostic(
          `${kind} x${instances}: ${subs.length} sagas submitted, ${ackedCount} acknowledged ` +
            `(${waited.length} with wait_result: ${['200', '409', '425'].map((c) => `${waited.filter((s) => String(s.reply) === c).length}x${c}`).join(' ')}), ` +
            `${subs.length - ackedCount} unanswered (${unansweredStored} stored, ${unansweredLost} not); ` +
            `${cluster.kills} kills (${KILLS} under load + ${instances} after); endings: ${tally.succeed} succeed, ` +
            `${tally.succeedAfterRetry} succeed after a 500, ${tally.failed} failed after compensation, ` +
            `${tally.failedAfterRetry} failed with a retried branch; ${calls} branch calls (${redelivered} redelivered); ` +
            `all ended ${endedAfterMs} ms after the last restart; seed ${SEED}`,
        );
        assert.deepEqual(problems.slice(0, 30), [], `${problems.length} problems\n${cluster.outputs()}`);
        // the three endings were all exercised (the seeded designs make this a property of the run, not luck)
        assert.ok(tally.succeed > 0 && tally.succeedAfterRetry > 0 && tally.failed + tally.failedAfterRetry > 0);
        assert.equal(cluster.kills, KILLS + instances);
      } finally {
        for (let k = 0; k < instances; k++) await nodes[k]!.kill();
        await busi.stop();
        await dropTestStore(config);
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
