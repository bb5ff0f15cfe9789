/**
 * The three flows of the tutorial's chapter 10, against a real dtx, etcd and MariaDB: the order api's create runs
 * a saga over gRPC (dtx found in etcd) whose branches (found in etcd by dtx) run inside the barrier.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { RowDataPacket } from 'mysql2/promise';
import { freePort, type Mall, post, startMall } from './support/mall.js';

let mall: Mall;
let uid: number;
let auth: Record<string, string>;
let pid: number;

before(async () => {
  mall = await startMall();
  ({ uid, auth } = await mall.login());
  const p = await post(
    `${mall.api('product')}/api/product/create`,
    { name: 'phone', desc: 'a phone', stock: 1, amount: 100, status: 1 },
    auth,
  );
  assert.equal(p.status, 200, p.text);
  pid = p.json.id;
});
after(async () => mall?.stop());

const stock = async () => {
  const [rows] = await mall.db.query<RowDataPacket[]>('SELECT stock FROM product WHERE id = ?', [pid]);
  return rows[0]?.stock as number;
};
const latestOrder = async () => {
  const [rows] = await mall.db.query<RowDataPacket[]>('SELECT * FROM `order` WHERE uid = ? ORDER BY id DESC LIMIT 1', [
    uid,
  ]);
  return rows[0] as { id: number; pid: number; status: number; gid: string };
};
const createOrder = () => post(`${mall.api('order')}/api/order/create`, { uid, pid, amount: 100, status: 0 }, auth);

test('flow A, normal: stock 1 → 0, the order has status 0, both actions left barrier rows', async () => {
  const r = await createOrder();
  assert.equal(r.status, 200, r.text);
  const order = await latestOrder();
  assert.deepEqual(r.json, { id: order.id }, 'the api answers the id of the order its saga created');
  assert.equal(order.status, 0);
  assert.equal(order.pid, pid);
  assert.equal(await stock(), 0);
  assert.deepEqual(await mall.barrierRows(order.gid), ['01 action action', '02 action action']);
  assert.deepEqual(await mall.query(order.gid), {
    status: 'succeed',
    branches: ['01 action succeed', '01 compensate prepared', '02 action succeed', '02 compensate prepared'],
  });
  const detail = await post(`${mall.api('order')}/api/order/detail`, { id: order.id }, auth);
  assert.deepEqual(detail.json, { id: order.id, uid, pid, amount: 100, status: 0 });
});

test('flow B, stock exhausted: the new order ends cancelled (9), stock stays 0, DecrStockRevert was a null compensation', async () => {
  const before = await latestOrder();
  const r = await createOrder();
  assert.equal(r.status, 400);
  assert.match(r.type, /^text\/plain/);
  assert.equal(r.text, 'rpc error: code = Code(100) desc = 订单创建失败: 库存不足\n');
  const order = await latestOrder();
  assert.notEqual(order.id, before.id, 'the saga inserted a new order');
  assert.equal(order.status, 9);
  assert.equal(order.pid, pid);
  assert.equal(await stock(), 0);
  assert.deepEqual(await mall.barrierRows(order.gid), [
    '01 action action',
    '01 compensate compensate',
    // DecrStock rolled its barrier row back with its update; the compensation then inserted the action's row
    // itself (reason "compensate"): a null compensation, so the stock was not touched.
    '02 action compensate',
    '02 compensate compensate',
  ]);
  assert.deepEqual(await mall.query(order.gid), {
    status: 'failed',
    branches: ['01 action succeed', '01 compensate succeed', '02 action failed', '02 compensate succeed'],
  });
  assert.equal((await latestOrderOf(before.id)).status, 0, 'the compensation left the earlier order alone');
});

async function latestOrderOf(id: number) {
  const [rows] = await mall.db.query<RowDataPacket[]>('SELECT status FROM `order` WHERE id = ?', [id]);
  return rows[0] as { status: number };
}

test('flow C, a failure after DecrStock committed: both compensations run, the stock is restored, the order is 9', async (t) => {
  const upd = await post(`${mall.api('product')}/api/product/update`, { id: pid, stock: 100 }, auth);
  assert.equal(upd.status, 200, upd.text);
  assert.equal(await stock(), 100);
  const rpc = mall.services['product-rpc'].productRpc!;
  rpc.faults.failAfterDecrStock = true;
  t.after(() => {
    rpc.faults.failAfterDecrStock = false;
  });
  const r = await createOrder();
  assert.equal(r.status, 400);
  assert.match(r.text, /^rpc error: code = Code\(100\) desc = 订单创建失败: injected failure/);
  const order = await latestOrder();
  assert.equal(order.status, 9);
  assert.equal(await stock(), 100, 'DecrStockRevert gave back what DecrStock took');
  assert.deepEqual(await mall.barrierRows(order.gid), [
    '01 action action',
    '01 compensate compensate',
    '02 action action', // DecrStock committed
    '02 compensate compensate', // so its compensation ran
  ]);
  assert.deepEqual((await mall.query(order.gid)).status, 'failed');
});

test('concurrent orders never oversell: stock left + live orders = initial stock, every other order is 9', async () => {
  const p = await post(
    `${mall.api('product')}/api/product/create`,
    { name: 'limited', desc: 'only 5', stock: 5, amount: 10, status: 1 },
    auth,
  );
  const limited = p.json.id as number;
  const replies = await Promise.all(
    Array.from({ length: 20 }, () =>
      post(`${mall.api('order')}/api/order/create`, { uid, pid: limited, amount: 10, status: 0 }, auth),
    ),
  );
  assert.equal(replies.filter((r) => r.status === 200).length, 5, replies.map((r) => r.text).join('\n'));
  assert.ok(replies.every((r) => r.status === 200 || r.text.endsWith('库存不足\n')));
  const [rows] = await mall.db.query<RowDataPacket[]>(
    'SELECT status, COUNT(*) n FROM `order` WHERE pid = ? GROUP BY status',
    [limited],
  );
  const byStatus = Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
  assert.deepEqual(byStatus, { 0: 5, 9: 15 });
  const [[left]] = (await mall.db.query<RowDataPacket[][]>('SELECT stock FROM product WHERE id = ?', [
    limited,
  ])) as unknown as [[{ stock: number }]];
  assert.equal(left!.stock, 0);
});

test('an order whose saga is still being retried: 202 {id, gid}, the saga stays submitted (not rolled back)', async (t) => {
  const rpc = mall.services['product-rpc'].productRpc!;
  rpc.faults.decrStockErrors = 1;
  t.after(() => {
    rpc.faults.decrStockErrors = 0;
  });
  const before = await stock();
  const r = await createOrder();
  assert.equal(r.status, 202, r.text);
  assert.match(r.type, /^application\/json/);
  const order = await latestOrder();
  assert.deepEqual(r.json, { id: order.id, gid: order.gid }, 'the order created by the saga, and its gid');
  assert.equal(order.status, 0, 'not cancelled');
  assert.equal(await stock(), before, 'DecrStock has not run yet');
  assert.deepEqual(await mall.query(order.gid), {
    status: 'submitted',
    branches: ['01 action succeed', '01 compensate prepared', '02 action prepared', '02 compensate prepared'],
  });
});

test('the coordinator cannot be reached (a closed loopback port): 503, nothing is ordered', async (t) => {
  const port = await freePort();
  const api = await mall.another('order-api', { DtmServer: `127.0.0.1:${port}` });
  t.after(() => api.close());
  const before = await latestOrder();
  const r = await post(`http://127.0.0.1:${api.port}/api/order/create`, { uid, pid, amount: 1, status: 0 }, auth);
  assert.equal(r.status, 503, r.text);
  assert.match(r.type, /^text\/plain/);
  assert.match(
    r.text,
    /^order service unavailable, nothing was ordered, try again: NewGid: cannot reach the coordinator/,
  );
  assert.equal((await latestOrder())?.id, before?.id);
});
