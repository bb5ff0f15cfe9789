/**
 * The three flows of chapter 10 with the workflow variant, `/api/order/createWorkflow`: the order api runs the
 * workflow itself (its steps order.Create / product.DecrStock over gRPC, with CreateRevert / DecrStockRevert as
 * onRollback), the coordinator records each step. Against a real dtx, etcd and MariaDB; with DTX_TEST_DTM_BIN
 * set, against a real DTM (an order api whose DtmServer is that DTM) on the same branches.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { RowDataPacket } from 'mysql2/promise';
import { type Dtm, startDtm } from './support/dtm.js';
import { type Mall, post, startMall } from './support/mall.js';

let mall: Mall;
let dtm: Dtm | undefined;
let orderApi: string;
let coordinatorBase: string;
let uid: number;
let auth: Record<string, string>;
let pid: number;
const closers: (() => Promise<void>)[] = [];

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
  orderApi = mall.api('order');
  coordinatorBase = mall.dtxBase;
  const bin = process.env.DTX_TEST_DTM_BIN;
  if (bin !== undefined && bin !== '') {
    dtm = await startDtm(bin);
    const api = await mall.another('order-api', { DtmServer: dtm.grpcAddress });
    closers.push(() => api.close());
    orderApi = `http://127.0.0.1:${api.port}`;
    coordinatorBase = dtm.origin;
  }
});
after(async () => {
  for (const c of closers) await c();
  await mall?.stop();
  await dtm?.stop();
});

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
const createOrder = () => post(`${orderApi}/api/order/createWorkflow`, { uid, pid, amount: 100, status: 0 }, auth);

/** The workflow's status and its recorded steps (`<branch_id> <op> <status>`), from the coordinator. */
async function recorded(gid: string) {
  const res = await fetch(`${coordinatorBase}/api/dtmsvr/query?gid=${encodeURIComponent(gid)}`);
  const body = (await res.json()) as {
    transaction?: { status: string; trans_type: string };
    branches: { branch_id: string; op: string; status: string }[];
  };
  return {
    type: body.transaction?.trans_type,
    status: body.transaction?.status ?? '',
    steps: body.branches.map((b) => `${b.branch_id} ${b.op} ${b.status}`).sort(),
  };
}

test('workflow flow A, normal: stock 1 → 0, the order has status 0, both steps recorded', async () => {
  const r = await createOrder();
  assert.equal(r.status, 200, r.text);
  const order = await latestOrder();
  assert.deepEqual(r.json, { id: order.id });
  assert.equal(order.status, 0);
  assert.equal(await stock(), 0);
  assert.deepEqual(await mall.barrierRows(order.gid), ['01 action action', '02 action action']);
  assert.deepEqual(await recorded(order.gid), {
    type: 'workflow',
    status: 'succeed',
    steps: ['01 action succeed', '02 action succeed'],
  });
});

test('workflow flow B, stock exhausted: 400, the new order is cancelled (9), DecrStockRevert a null compensation', async () => {
  const before = await latestOrder();
  const r = await createOrder();
  assert.equal(r.status, 400);
  assert.equal(r.text, 'rpc error: code = Code(100) desc = 订单创建失败: 库存不足\n');
  const order = await latestOrder();
  assert.notEqual(order.id, before.id);
  assert.equal(order.status, 9);
  assert.equal(await stock(), 0);
  assert.deepEqual(await mall.barrierRows(order.gid), [
    '01 action action',
    '01 rollback rollback',
    '02 action rollback', // DecrStock's row went with its rolled-back update; the rollback inserted it: a null compensation
    '02 rollback rollback',
  ]);
  assert.deepEqual(await recorded(order.gid), {
    type: 'workflow',
    status: 'failed',
    steps: ['01 action succeed', '01 rollback succeed', '02 action failed', '02 rollback succeed'],
  });
});

test('workflow flow C, a failure after DecrStock committed: both compensations run, the stock is restored', async (t) => {
  const upd = await post(`${mall.api('product')}/api/product/update`, { id: pid, stock: 100 }, auth);
  assert.equal(upd.status, 200, upd.text);
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
    '01 rollback rollback',
    '02 action action',
    '02 rollback rollback',
  ]);
  assert.equal((await recorded(order.gid)).status, 'failed');
});
