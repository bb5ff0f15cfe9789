#!/usr/bin/env node
// The mall under load: many concurrent POST /api/order/create against products with limited stock, through
// the whole chapter-10 path, with dtx and the eight services as separate processes (`main.js up`, the command
// behind `npm run mall`, on free ports and a database of its own) (order api → dtx over gRPC → order.rpc and product.rpc inside the barrier on MariaDB,
// all found through etcd). After each round it checks that nothing was oversold:
//   stock left + orders with status 0 = initial stock, every other order of the round has status 9,
//   the api answered 200 exactly for the live orders, and dtx finished every saga (succeed or failed).
// The baseline, measured in the same run at the same concurrency, is POST /api/product/detail (api → rpc → MariaDB
// read): orders/s is reported against it. Needs the services of scripts/services.sh (MariaDB, etcd).
// Usage: npm run bench:mall [-- --orders 600 --stock 200 --concurrency 10,50 --rounds 3]
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { round2, summarise } from './lib/load.mjs';

const { values } = parseArgs({
  options: {
    orders: { type: 'string', default: '600' },
    stock: { type: 'string', default: '200' },
    concurrency: { type: 'string', default: '10,50' },
    rounds: { type: 'string', default: '3' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  console.log('usage: node bench/mall.mjs [--orders 600] [--stock 200] [--concurrency 10,50] [--rounds 3]');
  process.exit(0);
}
const ORDERS = Number(values.orders);
const STOCK = Number(values.stock);
const ROUNDS = Number(values.rounds);
const LEVELS = values.concurrency.split(',').map(Number);

const { post } = await import('../examples/mall/dist/test/support/mall.js');
const { writePrivateEtc } = await import('../examples/mall/dist/test/support/private-etc.js');
const { mysqlPool } = await import('../examples/mall/dist/src/common/mysql-dsn.js');
const dir = mkdtempSync(join(tmpdir(), 'mall-bench-'));
const etc = await writePrivateEtc(dir, `mall_bench_${process.pid}`);
const up = spawn(process.execPath, ['examples/mall/dist/src/main.js', 'up', '--etc', dir], {
  stdio: ['ignore', 'pipe', 'ignore'], // the services' own logs: run `npm run mall` to see them
  env: { ...process.env, LOG_LEVEL: 'warn' },
});
await new Promise((resolve, reject) => {
  let out = '';
  up.stdout.on('data', (c) => {
    out += c.toString();
    if (out.includes('[mall] all up')) resolve();
  });
  up.once('exit', (code) => reject(new Error(`the mall exited (${code}) before it was up:\n${out}`)));
});
up.stdout.resume();
const db = mysqlPool(etc.dsn);
const query = async (gid) => {
  const r = await fetch(`${etc.dtxBase}/api/dtmsvr/query?gid=${encodeURIComponent(gid)}`);
  return { status: (await r.json()).transaction?.status ?? '' };
};
let failures = 0;
try {
  const mobile = `1${String(Date.now()).slice(-10)}`;
  const reg = await post(`${etc.apis.user}/api/user/register`, {
    name: 'bench',
    gender: 1,
    mobile,
    password: '123456',
  });
  const login = await post(`${etc.apis.user}/api/user/login`, { mobile, password: '123456' });
  const uid = reg.json.id;
  const auth = { authorization: `Bearer ${login.json.accessToken}` };
  const orderUrl = `${etc.apis.order}/api/order/create`;
  const productUrl = `${etc.apis.product}/api/product`;

  /** Runs `n` calls of `op` with `concurrency` closed-loop workers; latencies of each call. */
  const fire = async (n, concurrency, op) => {
    let next = 0;
    const lat = [];
    const replies = [];
    const start = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < n) {
          next += 1;
          const t0 = performance.now();
          const r = await op();
          lat.push(performance.now() - t0);
          replies.push(r);
        }
      }),
    );
    return { ...summarise(lat, (performance.now() - start) / 1000), replies };
  };

  const rows = [];
  for (const c of LEVELS) {
    for (let round = 1; round <= ROUNDS; round++) {
      const p = await post(
        `${productUrl}/create`,
        { name: `bench ${c}/${round}`, desc: '', stock: STOCK, amount: 1, status: 1 },
        auth,
      );
      if (p.status !== 200) throw new Error(`product create: ${p.status} ${p.text}`);
      const pid = p.json.id;
      const base = await fire(ORDERS, c, () => post(`${productUrl}/detail`, { id: pid }, auth));
      const run = await fire(ORDERS, c, () => post(orderUrl, { uid, pid, amount: 1, status: 0 }, auth));
      // The check.
      const [[{ stock }]] = await db.query('SELECT stock FROM product WHERE id = ?', [pid]);
      const [byStatus] = await db.query(
        'SELECT status, COUNT(*) n, GROUP_CONCAT(gid) gids FROM `order` WHERE pid = ? GROUP BY status',
        [pid],
      );
      const count = (s) => Number(byStatus.find((r) => r.status === s)?.n ?? 0);
      const live = count(0);
      const cancelled = count(9);
      const other = byStatus.filter((r) => r.status !== 0 && r.status !== 9).length;
      const ok200 = run.replies.filter((r) => r.status === 200).length;
      const outOfStock = run.replies.filter((r) => r.status === 400 && r.text.endsWith('库存不足\n')).length;
      const gids = byStatus.flatMap((r) => String(r.gids ?? '').split(',')).filter(Boolean);
      const unfinished = [];
      for (const gid of gids) {
        const q = await query(gid);
        if (q.status !== 'succeed' && q.status !== 'failed') unfinished.push(`${gid}:${q.status}`);
      }
      const checks = {
        'stock + live = initial': stock + live === STOCK,
        'live = min(orders, stock)': live === Math.min(ORDERS, STOCK),
        'the rest are 9': live + cancelled === ORDERS && other === 0,
        '200 replies = live orders': ok200 === live,
        'other replies say out of stock': ok200 + outOfStock === ORDERS,
        'every saga finished': unfinished.length === 0,
      };
      const passed = Object.values(checks).every(Boolean);
      if (!passed) {
        failures += 1;
        console.error(`check FAILED at concurrency ${c} round ${round}:`, {
          checks,
          stock,
          live,
          cancelled,
          ok200,
          outOfStock,
          unfinished: unfinished.slice(0, 5),
        });
      }
      rows.push({
        concurrency: c,
        round,
        'orders/s': run.tps,
        'p50 ms': run.p50,
        'p99 ms': run.p99,
        'baseline reads/s': base.tps,
        ratio: round2(run.tps / base.tps),
        'stock left': stock,
        'live (0)': live,
        'cancelled (9)': cancelled,
        check: passed ? 'ok' : 'FAILED',
      });
      console.log(JSON.stringify(rows.at(-1)));
    }
  }
  console.log(
    `\n${ORDERS} orders per round against stock ${STOCK}; baseline = /api/product/detail at the same concurrency`,
  );
  console.table(rows);
} finally {
  await new Promise((resolve) => {
    up.once('exit', resolve);
    up.kill('SIGINT');
  });
  await db.query(`DROP DATABASE IF EXISTS \`${etc.database}\``);
  await db.end();
  rmSync(dir, { recursive: true, force: true });
}
if (failures > 0) {
  console.error(`${failures} round(s) failed the no-overselling check`);
  process.exit(1);
}
console.log('no overselling: every round passed the check');
