// Several coordinators on one store (issue 3): three real `dtx serve` processes share a PostgreSQL schema,
// a MariaDB database or a Redis prefix; sagas are submitted to all three, one is SIGKILLed while branch
// calls are in flight, and the survivors must finish every saga. Branch handlers run inside the barrier
// on MariaDB and record each business effect as a row, so "no effect happened twice" is a row count.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { fastifyBranch } from '../src/adapters/fastify.js';
import { DtxClient, ensureBarrierTable, FailureError, mysqlBarrierDb } from '../src/index.js';
import { MYSQL_URL, PG_URL, uniqueSuffix } from './support/db.js';
import { type DtxServer, startDtxServer } from './support/dtx-server.js';
import { waitFor } from './support/poll.js';

const STORES = (process.env.DTX_MULTI_STORES ?? 'postgres,mysql,redis').split(',').filter(Boolean);
const RETRY_INTERVAL = 10;
const SAGAS = 45;

function storeEnv(kind: string, unique: string): Record<string, string> {
  const sql = { STORE_HOST: '127.0.0.1', STORE_USER: 'dtx', STORE_PASSWORD: 'dtx' };
  if (kind === 'postgres')
    return { ...sql, STORE_DRIVER: 'postgres', STORE_PORT: '5432', STORE_DB: 'dtx_test', STORE_SCHEMA: unique };
  if (kind === 'mysql') return { ...sql, STORE_DRIVER: 'mysql', STORE_PORT: '3306', STORE_DB: unique };
  if (kind === 'redis')
    return { STORE_DRIVER: 'redis', STORE_HOST: '127.0.0.1', STORE_PORT: '6379', STORE_REDIS_PREFIX: unique };
  throw new Error(`DTX_MULTI_STORES: unknown store '${kind}'`);
}

/** Remove the schema / database / keys the three coordinators shared. */
async function dropStore(kind: string, unique: string, mysqlPool: mysql.Pool): Promise<void> {
  if (kind === 'postgres') {
    const c = new pg.Client({ connectionString: PG_URL });
    await c.connect();
    await c.query(`DROP SCHEMA IF EXISTS ${unique} CASCADE`);
    await c.end();
  } else if (kind === 'mysql') {
    await mysqlPool.query(`DROP DATABASE IF EXISTS ${unique}`);
  } else if (kind === 'redis') {
    const r = new Redis({ host: '127.0.0.1', port: 6379, lazyConnect: true });
    await r.connect();
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${unique}*`, 'COUNT', 1000);
      cursor = next;
      for (const k of keys) await r.unlink(k);
    } while (cursor !== '0');
    r.disconnect();
  }
}

for (const kind of STORES) {
  describe(`three coordinators on one ${kind} store`, () => {
    const unique = `dtx_mi_${uniqueSuffix()}`;
    const table = `mi_effects_${uniqueSuffix()}`;
    let pool: mysql.Pool;
    let busi: FastifyInstance;
    let busiUrl = '';
    const servers: DtxServer[] = [];
    const inflight = new Set<string>();
    const overlaps: string[] = [];
    const deliveries = new Map<string, number>();
    let heldFromKilled = 0;
    let gateOpen = false;
    let openGate!: () => void;
    const gate = new Promise<void>((r) => {
      openGate = r;
    });
    let reachedGate!: () => void;
    const gateReached = new Promise<void>((r) => {
      reachedGate = r;
    });

    before(async () => {
      pool = mysql.createPool({ uri: MYSQL_URL, connectionLimit: 20 });
      const db = mysqlBarrierDb(pool);
      await ensureBarrierTable(db);
      await pool.query(
        `CREATE TABLE ${table} (id BIGINT AUTO_INCREMENT PRIMARY KEY, gid VARCHAR(128), branch_id VARCHAR(16), op VARCHAR(16))`,
      );
      busi = Fastify();
      const handler = (step: string, op: string, refuse: boolean) =>
        fastifyBranch(async (ctx) => {
          const key = `${ctx.branchInfo.gid}/${ctx.branchInfo.branch_id}/${ctx.branchInfo.op}`;
          if (inflight.has(key)) overlaps.push(key);
          inflight.add(key);
          deliveries.set(key, (deliveries.get(key) ?? 0) + 1);
          try {
            // hold every TransIn until the kill, and kill once 3 of instance 0's are held in flight
            if (step === '02' && op === 'action' && !gateOpen) {
              if (ctx.branchInfo.gid.includes('-n0-') && ++heldFromKilled === 3) reachedGate();
              await gate;
            }
            await ctx.barrier.call(db, async (conn) => {
              if (refuse && ctx.branchInfo.gid.endsWith('-refuse')) throw new FailureError('refused');
              await conn.execute(`INSERT INTO ${table} (gid, branch_id, op) VALUES (?, ?, ?)`, [
                ctx.branchInfo.gid,
                step,
                op,
              ]);
            });
            return undefined;
          } finally {
            inflight.delete(key);
          }
        });
      busi.post('/TransOut', handler('01', 'action', false));
      busi.post('/TransOutRevert', handler('01', 'compensate', false));
      busi.post('/TransIn', handler('02', 'action', true));
      busi.post('/TransInRevert', handler('02', 'compensate', false));
      await busi.listen({ port: 0, host: '127.0.0.1' });
      const addr = busi.server.address() as { port: number };
      busiUrl = `http://127.0.0.1:${addr.port}`;
      const env = {
        ...storeEnv(kind, unique),
        TRANS_CRON_INTERVAL: '1',
        RETRY_INTERVAL: String(RETRY_INTERVAL),
        DTX_TEST_MODE: '0',
        LOG_LEVEL: 'warn',
      };
      for (let i = 0; i < 3; i++) servers.push(await startDtxServer({ env }));
    });

    after(async () => {
      openGate();
      for (const s of servers) await s.stop();
      await busi?.close();
      await pool?.query(`DROP TABLE IF EXISTS ${table}`);
      await dropStore(kind, unique, pool);
      await pool?.end();
    });

    test('a SIGKILLed instance’s sagas are finished by the others, each branch effect exactly once', async () => {
      const clients = servers.map((s) => new DtxClient(s.url));
      // the gid names the instance it is submitted to (-n0- is the one that will be killed)
      const gids = Array.from({ length: SAGAS }, (_, i) => `${unique}-${i}-n${i % 3}-${i % 5 === 4 ? 'refuse' : 'ok'}`);
      await Promise.all(
        gids.map((gid, i) =>
          clients[i % 3]!.saga(gid)
            .add(`${busiUrl}/TransOut`, `${busiUrl}/TransOutRevert`, { amount: 1 })
            .add(`${busiUrl}/TransIn`, `${busiUrl}/TransInRevert`, { amount: 1 })
            .submit(),
        ),
      );
      await gateReached; // TransIn calls are held in flight, some of them from instance 0
      await servers[0]!.kill();
      const killedAt = Date.now();
      gateOpen = true;
      openGate();

      // The lease the killed instance holds on each of its unfinished sagas ends within one RetryInterval of the kill
      // (a stored fact, not a timing). Only its sagas: a survivor renews the lease of its own sagas when a held call
      // returns after the gate opens (the 1.5 s rule), which may be later than the kill by any amount.
      const survivor = clients[1]!;
      for (const gid of gids.filter((g) => g.includes('-n0-'))) {
        const q = await survivor.query(gid);
        const t = q.transaction as { status: string; next_cron_time?: string } | null;
        assert.ok(t, `${gid} is stored`);
        if (t.status === 'submitted' || t.status === 'aborting') {
          assert.ok(
            Date.parse(t.next_cron_time!) <= killedAt + RETRY_INTERVAL * 1000 + 1000,
            `${gid} lease ends within RetryInterval`,
          );
        }
      }

      await waitFor(
        async () => {
          for (const gid of gids) {
            const s = ((await survivor.query(gid)).transaction as { status: string }).status;
            if (s !== 'succeed' && s !== 'failed') return undefined;
          }
          return true;
        },
        { timeoutMs: 90_000, intervalMs: 250, what: `all ${SAGAS} sagas finished on ${kind}` },
      );

      const [rows] = await pool.query(
        `SELECT gid, branch_id, op, COUNT(*) AS n FROM ${table} GROUP BY gid, branch_id, op`,
      );
      const effects = new Map<string, string[]>();
      for (const r of rows as { gid: string; branch_id: string; op: string; n: number }[]) {
        assert.equal(Number(r.n), 1, `effect ${r.gid} ${r.branch_id} ${r.op} happened ${r.n} times`);
        effects.set(r.gid, [...(effects.get(r.gid) ?? []), `${r.branch_id} ${r.op}`].sort());
      }
      for (const gid of gids) {
        const status = ((await survivor.query(gid)).transaction as { status: string }).status;
        if (gid.endsWith('-refuse')) {
          assert.equal(status, 'failed', gid);
          assert.deepEqual(effects.get(gid), ['01 action', '01 compensate'], gid);
        } else {
          assert.equal(status, 'succeed', gid);
          assert.deepEqual(effects.get(gid), ['01 action', '02 action'], gid);
        }
      }
      assert.deepEqual(overlaps, [], 'no branch ran in two passes at once');
      const redelivered = [...deliveries].filter(([k, n]) => k.includes('-n0-') && k.endsWith('/02/action') && n >= 2);
      assert.ok(
        redelivered.length >= 1,
        'the killed instance’s in-flight TransIn calls were delivered again by the others',
      );
      for (const c of clients) await c.close();
    });
  });
}
