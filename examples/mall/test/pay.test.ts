/**
 * The pay service (tutorial section 3) over the apis: a payment for an order created through the order api's saga,
 * its detail, and the callback that marks the order paid.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { RowDataPacket } from 'mysql2/promise';
import { type Mall, post, type Reply, startMall } from './support/mall.js';

const rpcError = (desc: string) => `rpc error: code = Code(100) desc = ${desc}`;

let mall: Mall;
let uid: number;
let auth: Record<string, string>;
let oid: number;
let payId: number;

before(async () => {
  mall = await startMall();
  ({ uid, auth } = await mall.login());
  const p = await post(
    `${mall.api('product')}/api/product/create`,
    { name: 'phone', desc: 'a phone', stock: 3, amount: 4999, status: 1 },
    auth,
  );
  assert.equal(p.status, 200, p.text);
  const o = await post(`${mall.api('order')}/api/order/create`, { uid, pid: p.json.id, amount: 4999, status: 0 }, auth);
  assert.equal(o.status, 200, o.text);
  oid = o.json.id;
  assert.ok(oid > 0, o.text);
});
after(async () => mall?.stop());

const pay = (route: string, body: unknown, headers = auth) =>
  post(`${mall.api('pay')}/api/pay/${route}`, body, headers);

function assertError(r: Reply, text: string) {
  assert.equal(r.status, 400, r.text);
  assert.match(r.type, /^text\/plain\b/);
  assert.equal(r.text, `${text}\n`, 'go-zero (http.Error) ends the text with a newline');
}

const payRow = async (id: number) => {
  const [rows] = await mall.db.query<RowDataPacket[]>('SELECT * FROM pay WHERE id = ?', [id]);
  return rows[0];
};
const orderDetail = async () => {
  const r = await post(`${mall.api('order')}/api/order/detail`, { id: oid }, auth);
  assert.equal(r.status, 200, r.text);
  return r.json as { id: number; uid: number; pid: number; amount: number; status: number };
};

test('every pay route needs the JWT', async () => {
  for (const route of ['create', 'detail', 'callback']) {
    const r = await pay(route, { id: 1 }, {});
    assert.equal(r.status, 401, route);
    assert.equal(r.text, '');
  }
});

test('create → {id}: a pay row with source 0, status 0', async () => {
  const r = await pay('create', { uid, oid, amount: 4999 });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(Object.keys(r.json), ['id']);
  payId = r.json.id;
  assert.ok(payId > 0);
  const row = await payRow(payId);
  assert.deepEqual(
    { uid: row?.uid, oid: row?.oid, amount: row?.amount, source: row?.source, status: row?.status },
    { uid, oid, amount: 4999, source: 0, status: 0 },
  );
  assert.equal((await orderDetail()).status, 0, 'creating the payment does not touch the order');
});

test('a second create for the same order: 订单已创建支付', async () => {
  assertError(await pay('create', { uid, oid, amount: 4999 }), rpcError('订单已创建支付'));
  const [rows] = await mall.db.query<RowDataPacket[]>('SELECT COUNT(*) n FROM pay WHERE oid = ?', [oid]);
  assert.equal(Number(rows[0]?.n), 1);
});

test('create for an unknown user or order: the error of that rpc, passed through', async () => {
  assertError(await pay('create', { uid: 999_999_999, oid, amount: 1 }), rpcError('用户不存在'));
  assertError(await pay('create', { uid, oid: 999_999_999, amount: 1 }), rpcError('订单不存在'));
  assertError(await pay('create', { uid, oid }), 'field amount is not set');
});

test('detail echoes the request id: {id, uid, oid, amount, source: 0, status: 0}', async () => {
  const r = await pay('detail', { id: payId });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json, { id: payId, uid, oid, amount: 4999, source: 0, status: 0 });
  assert.deepEqual(Object.keys(r.json), ['id', 'uid', 'oid', 'amount', 'source', 'status']);
});

test('callback with another amount than the payment: 支付金额与订单金额不符, nothing changes', async () => {
  const r = await pay('callback', { id: payId, uid, oid, amount: 1, source: 1, status: 1 });
  assertError(r, rpcError('支付金额与订单金额不符'));
  const row = await payRow(payId);
  assert.deepEqual([row?.source, row?.status], [0, 0]);
  assert.equal((await orderDetail()).status, 0);
  assertError(await pay('callback', { id: payId, uid, oid, amount: 4999, source: 1 }), 'field status is not set');
  assertError(
    await pay('callback', { id: 999_999_999, uid, oid, amount: 4999, source: 1, status: 1 }),
    rpcError('支付不存在'),
  );
});

test('callback with the amount, source 1 status 1 → {}: the payment is 1/1 and the order is paid (1)', async () => {
  const r = await pay('callback', { id: payId, uid, oid, amount: 4999, source: 1, status: 1 });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json, {});
  const row = await payRow(payId);
  assert.deepEqual([row?.source, row?.status], [1, 1]);
  const d = await pay('detail', { id: payId });
  assert.deepEqual(d.json, { id: payId, uid, oid, amount: 4999, source: 1, status: 1 });
  assert.equal((await orderDetail()).status, 1);
});

test('detail of a missing payment: 支付不存在', async () => {
  assertError(await pay('detail', { id: 999_999_999 }), rpcError('支付不存在'));
  assertError(await pay('detail', {}), 'field id is not set');
});
