/**
 * The go-zero HTTP conventions of the four apis, over real HTTP, as the tutorial's Postman collection sees them:
 * replies, error texts and statuses, the JWT, request parsing, and the routes' quirks.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { RowDataPacket } from 'mysql2/promise';
import { signToken } from '../src/common/jwt.js';
import { type Mall, post, type Reply, readReply, startMall } from './support/mall.js';

const SECRET = 'uOvKLmVfztaXGpNYd4Z0I1SiT7MweJhl';
const HASH_123456 = 'ef8364020560a703cfc7aebebcd0b62d1bfea7d4a841eb8964cfbcda2ba85dd5';
const rpcError = (desc: string) => `rpc error: code = Code(100) desc = ${desc}`;

let mall: Mall;
let n = 0;
/** A mobile number no other test (nor another run) registered. */
const mobile = () => `1${String(process.pid).slice(-4).padStart(4, '0')}${String(Date.now()).slice(-4)}${++n}`;

before(async () => {
  mall = await startMall();
});
after(async () => mall?.stop());

/** A 400 text/plain with exactly `text`, as go-zero's httpx.Error. */
function assertError(r: Reply, text: string) {
  assert.equal(r.status, 400, r.text);
  assert.match(r.type, /^text\/plain\b/);
  assert.equal(r.text, `${text}\n`, 'go-zero (http.Error) ends the text with a newline');
}

/** A 401 with an empty body and no Content-Type, as go-zero's JWT middleware. */
function assertUnauthorized(r: Reply) {
  assert.equal(r.status, 401, r.text);
  assert.equal(r.text, '');
  assert.equal(r.type, '');
}

/** A 200 with a JSON body. */
function assertOk(r: Reply) {
  assert.equal(r.status, 200, r.text);
  assert.match(r.type, /^application\/json\b/);
}

/** POSTs raw bytes with the given headers (and no Content-Type unless given). */
async function postRaw(url: string, body: string, headers: Record<string, string> = {}): Promise<Reply> {
  return readReply(await fetch(url, { method: 'POST', headers, body: new TextEncoder().encode(body) }));
}

describe('user api', () => {
  const user = () => mall.api('user');

  test('register answers {id, name, gender, mobile}; the password is stored as the scrypt hex', async () => {
    const m = mobile();
    const r = await post(`${user()}/api/user/register`, { name: 'nivin', gender: 1, mobile: m, password: '123456' });
    assertOk(r);
    assert.deepEqual(Object.keys(r.json), ['id', 'name', 'gender', 'mobile']);
    assert.ok(Number.isSafeInteger(r.json.id) && r.json.id > 0);
    assert.deepEqual(r.json, { id: r.json.id, name: 'nivin', gender: 1, mobile: m });
    const [rows] = await mall.db.query<RowDataPacket[]>('SELECT * FROM `user` WHERE id = ?', [r.json.id]);
    assert.equal(rows[0]?.password, HASH_123456);
    assert.equal(rows[0]?.mobile, m);
  });

  test('register of a mobile already registered: 400 该用户已存在', async () => {
    const m = mobile();
    assertOk(await post(`${user()}/api/user/register`, { name: 'a', gender: 1, mobile: m, password: '123456' }));
    const again = await post(`${user()}/api/user/register`, { name: 'b', gender: 2, mobile: m, password: 'x' });
    assertError(again, rpcError('该用户已存在'));
  });

  test('login: wrong password → 密码错误, unknown mobile → 用户不存在', async () => {
    const m = mobile();
    assertOk(await post(`${user()}/api/user/register`, { name: 'a', gender: 1, mobile: m, password: '123456' }));
    assertError(await post(`${user()}/api/user/login`, { mobile: m, password: '654321' }), rpcError('密码错误'));
    assertError(
      await post(`${user()}/api/user/login`, { mobile: `9${m.slice(1)}`, password: '123456' }),
      rpcError('用户不存在'),
    );
  });

  test('login answers {accessToken, accessExpire}: an HS256 token {exp, iat, uid}, accessExpire = iat + 86400', async () => {
    const m = mobile();
    const reg = await post(`${user()}/api/user/register`, { name: 'a', gender: 0, mobile: m, password: '123456' });
    const before = Math.floor(Date.now() / 1000);
    const r = await post(`${user()}/api/user/login`, { mobile: m, password: '123456' });
    const after = Math.floor(Date.now() / 1000);
    assertOk(r);
    assert.deepEqual(Object.keys(r.json), ['accessToken', 'accessExpire']);
    const [h = '', p = ''] = String(r.json.accessToken).split('.');
    const header = JSON.parse(Buffer.from(h, 'base64url').toString());
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
    assert.deepEqual(header, { alg: 'HS256', typ: 'JWT' });
    assert.deepEqual(Object.keys(claims), ['exp', 'iat', 'uid']);
    assert.equal(claims.uid, reg.json.id);
    assert.ok(claims.iat >= before && claims.iat <= after, `iat ${claims.iat} between ${before} and ${after}`);
    assert.equal(claims.exp, claims.iat + 86400);
    assert.equal(r.json.accessExpire, claims.iat + 86400);
  });

  test('a missing required field: 400 text/plain "field <name> is not set"', async () => {
    assertError(
      await post(`${user()}/api/user/register`, { name: 'a', gender: 1, password: '123456' }),
      'field mobile is not set',
    );
    assertError(await post(`${user()}/api/user/login`, { mobile: '1' }), 'field password is not set');
    assertError(await post(`${user()}/api/user/login`, {}), 'field mobile is not set');
    assertError(await post(`${user()}/api/user/login`), 'field mobile is not set');
    const r = await post(`${user()}/api/user/register`, { name: 'a', gender: 'male', mobile: '1', password: '1' });
    assert.equal(r.status, 400);
    assert.match(r.text, /type mismatch for field gender/);
  });

  test('a body without Content-Type: application/json reads as empty', async () => {
    const m = mobile();
    const body = JSON.stringify({ name: 'a', gender: 1, mobile: m, password: '123456' });
    assertError(await postRaw(`${user()}/api/user/register`, body), 'field name is not set');
    assertError(
      await postRaw(`${user()}/api/user/register`, body, { 'content-type': 'text/plain' }),
      'field name is not set',
    );
    assertError(
      await postRaw(`${user()}/api/user/register`, body, { 'content-type': 'application/x-www-form-urlencoded' }),
      'field name is not set',
    );
    // The same body with a JSON Content-Type (any parameters) registers.
    assertOk(await postRaw(`${user()}/api/user/register`, body, { 'content-type': 'application/json; charset=utf-8' }));
  });

  test('a JSON body that does not parse: 400 text/plain', async () => {
    const r = await postRaw(`${user()}/api/user/login`, '{"mobile":', { 'content-type': 'application/json' });
    assert.equal(r.status, 400);
    assert.match(r.type, /^text\/plain\b/);
  });

  test('userinfo: 401 with an empty body without a token, with a bad or an expired one', async () => {
    const { uid, auth } = await mall.login(mobile());
    const url = `${user()}/api/user/userinfo`;
    assertUnauthorized(await post(url, {}));
    assertUnauthorized(await post(url, {}, { authorization: 'Bearer' }));
    assertUnauthorized(await post(url, {}, { authorization: 'Bearer not.a.token' }));
    assertUnauthorized(await post(url, {}, { authorization: `${auth.authorization}x` }));
    const other = signToken('another secret', Math.floor(Date.now() / 1000), 86400, uid);
    assertUnauthorized(await post(url, {}, { authorization: `Bearer ${other}` }));
    const expired = signToken(SECRET, Math.floor(Date.now() / 1000) - 2 * 86400, 86400, uid);
    assertUnauthorized(await post(url, {}, { authorization: `Bearer ${expired}` }));
    // The JWT is checked before the body: a 401 even with nothing to parse.
    assertUnauthorized(await postRaw(url, '{', { 'content-type': 'application/json' }));
  });

  test('userinfo with the token: the user of its uid; the prefix in any case, or none', async () => {
    const m = mobile();
    const { uid, auth } = await mall.login(m);
    const token = auth.authorization!.slice('Bearer '.length);
    const expected = { id: uid, name: 'tester', gender: 1, mobile: m };
    for (const authorization of [`Bearer ${token}`, `bearer ${token}`, `BEARER ${token}`, token]) {
      const r = await post(`${user()}/api/user/userinfo`, {}, { authorization });
      assertOk(r);
      assert.deepEqual(r.json, expected, authorization.slice(0, 10));
    }
    // No body at all.
    const r = await postRaw(`${user()}/api/user/userinfo`, '', { authorization: `Bearer ${token}` });
    assertOk(r);
    assert.deepEqual(r.json, expected);
  });

  test('userinfo of a token whose uid does not exist: 用户不存在', async () => {
    const token = signToken(SECRET, Math.floor(Date.now() / 1000), 86400, 999_999_999);
    assertError(
      await post(`${user()}/api/user/userinfo`, {}, { authorization: `Bearer ${token}` }),
      rpcError('用户不存在'),
    );
  });
});

describe('product api', () => {
  const product = () => mall.api('product');
  let auth: Record<string, string>;
  before(async () => {
    ({ auth } = await mall.login(mobile()));
  });

  test('every route needs the JWT', async () => {
    for (const path of ['create', 'update', 'remove', 'detail']) {
      assertUnauthorized(await post(`${product()}/api/product/${path}`, { id: 1 }));
    }
  });

  test('create → {id}; detail → {id, name, desc, stock, amount, status}', async () => {
    const c = await post(
      `${product()}/api/product/create`,
      { name: 'phone', desc: 'a phone', stock: 10, amount: 100, status: 1 },
      auth,
    );
    assertOk(c);
    assert.deepEqual(Object.keys(c.json), ['id']);
    const d = await post(`${product()}/api/product/detail`, { id: c.json.id }, auth);
    assertOk(d);
    assert.deepEqual(d.json, { id: c.json.id, name: 'phone', desc: 'a phone', stock: 10, amount: 100, status: 1 });
    assert.deepEqual(Object.keys(d.json), ['id', 'name', 'desc', 'stock', 'amount', 'status']);
    assertError(await post(`${product()}/api/product/create`, { name: 'x' }, auth), 'field desc is not set');
  });

  test('update copies only the non-zero fields; stock is required; an unknown id is 产品不存在', async () => {
    const c = await post(
      `${product()}/api/product/create`,
      { name: 'pad', desc: 'a pad', stock: 5, amount: 300, status: 1 },
      auth,
    );
    const id = c.json.id as number;
    const detail = async () => (await post(`${product()}/api/product/detail`, { id }, auth)).json;
    const u = await post(`${product()}/api/product/update`, { id, stock: 7 }, auth);
    assertOk(u);
    assert.deepEqual(u.json, {});
    assert.deepEqual(await detail(), { id, name: 'pad', desc: 'a pad', stock: 7, amount: 300, status: 1 });
    assertOk(await post(`${product()}/api/product/update`, { id, stock: 0, name: 'pad 2', status: 0 }, auth));
    assert.deepEqual(
      await detail(),
      { id, name: 'pad 2', desc: 'a pad', stock: 7, amount: 300, status: 1 },
      'stock and status 0 are not copied: they can never be set to 0 this way',
    );
    assertOk(await post(`${product()}/api/product/update`, { id, stock: 1, desc: 'new', amount: 5, status: 2 }, auth));
    assert.deepEqual(await detail(), { id, name: 'pad 2', desc: 'new', stock: 1, amount: 5, status: 2 });
    assertError(await post(`${product()}/api/product/update`, { id, name: 'x' }, auth), 'field stock is not set');
    assertError(
      await post(`${product()}/api/product/update`, { id: 999_999_999, stock: 1 }, auth),
      rpcError('产品不存在'),
    );
  });

  test('remove → {}; then detail, update and remove are 产品不存在', async () => {
    const c = await post(
      `${product()}/api/product/create`,
      { name: 'gone', desc: '', stock: 1, amount: 1, status: 0 },
      auth,
    );
    const id = c.json.id as number;
    const r = await post(`${product()}/api/product/remove`, { id }, auth);
    assertOk(r);
    assert.deepEqual(r.json, {});
    assertError(await post(`${product()}/api/product/detail`, { id }, auth), rpcError('产品不存在'));
    assertError(await post(`${product()}/api/product/update`, { id, stock: 2 }, auth), rpcError('产品不存在'));
    assertError(await post(`${product()}/api/product/remove`, { id }, auth), rpcError('产品不存在'));
  });
});

describe('order api', () => {
  const order = () => mall.api('order');
  let uid: number;
  let auth: Record<string, string>;
  before(async () => {
    ({ uid, auth } = await mall.login(mobile()));
  });

  test('every route needs the JWT', async () => {
    for (const path of ['create', 'update', 'remove', 'detail', 'list']) {
      assertUnauthorized(await post(`${order()}/api/order/${path}`, { id: 1, uid: 1 }));
    }
  });

  test('list answers a bare JSON array: empty, then the orders of the user', async () => {
    const empty = await post(`${order()}/api/order/list`, { uid }, auth);
    assertOk(empty);
    assert.deepEqual(empty.json, []);
    const p = await post(
      `${mall.api('product')}/api/product/create`,
      { name: 'book', desc: 'a book', stock: 3, amount: 20, status: 1 },
      auth,
    );
    const pid = p.json.id as number;
    const ids: number[] = [];
    for (const amount of [20, 40]) {
      const c = await post(`${order()}/api/order/create`, { uid, pid, amount, status: 5 }, auth);
      assertOk(c);
      assert.deepEqual(Object.keys(c.json), ['id']);
      ids.push(c.json.id);
    }
    const list = await post(`${order()}/api/order/list`, { uid }, auth);
    assertOk(list);
    assert.ok(Array.isArray(list.json));
    assert.deepEqual(list.json, [
      { id: ids[0], uid, pid, amount: 20, status: 0 },
      { id: ids[1], uid, pid, amount: 40, status: 0 },
    ]);
    const d = await post(`${order()}/api/order/detail`, { id: ids[1] }, auth);
    assertOk(d);
    assert.deepEqual(d.json, { id: ids[1], uid, pid, amount: 40, status: 0 });
    assert.deepEqual(Object.keys(d.json), ['id', 'uid', 'pid', 'amount', 'status']);
  });

  test('detail, update and remove of a missing id: 订单不存在; list of an unknown user: 用户不存在', async () => {
    assertError(await post(`${order()}/api/order/detail`, { id: 999_999_999 }, auth), rpcError('订单不存在'));
    assertError(await post(`${order()}/api/order/update`, { id: 999_999_999 }, auth), rpcError('订单不存在'));
    assertError(await post(`${order()}/api/order/remove`, { id: 999_999_999 }, auth), rpcError('订单不存在'));
    assertError(await post(`${order()}/api/order/list`, { uid: 999_999_999 }, auth), rpcError('用户不存在'));
    assertError(await post(`${order()}/api/order/create`, { uid, pid: 1, amount: 1 }, auth), 'field status is not set');
  });
});

describe('routing', () => {
  test('an unknown route is 404 on every api', async () => {
    for (const domain of ['user', 'product', 'order', 'pay'] as const) {
      const r = await post(`${mall.api(domain)}/api/${domain}/nothing`, {});
      assert.equal(r.status, 404, domain);
      assert.match(r.type, /^text\/plain\b/);
      assert.equal(r.text.trim(), '404 page not found');
    }
    assert.equal((await post(`${mall.api('user')}/`, {})).status, 404);
    assert.equal((await post(`${mall.api('user')}/api/product/detail`, {})).status, 404, 'routes of another api');
  });

  test('a body over MaxBytes (1 MiB): 413 with an empty body, before the JWT check', async () => {
    const big = JSON.stringify({ id: 1, name: 'x'.repeat(1 << 20) });
    for (const url of [`${mall.api('user')}/api/user/login`, `${mall.api('product')}/api/product/update`]) {
      const r = await postRaw(url, big, { 'content-type': 'application/json' });
      assert.equal(r.status, 413, url);
      assert.equal(r.text, '');
    }
  });

  test("a route asked with another method: 405 with Allow: POST and an empty body, as go-zero's router", async () => {
    const res = await fetch(`${mall.api('user')}/api/user/login`);
    assert.equal(res.status, 405);
    assert.equal(res.headers.get('allow'), 'POST');
    assert.equal(res.headers.get('content-type'), null);
    assert.equal(await res.text(), '');
    const put = await fetch(`${mall.api('product')}/api/product/detail`, { method: 'PUT', body: '{}' });
    assert.equal(put.status, 405);
    assert.equal(put.headers.get('allow'), 'POST');
  });

  test('the request path is cleaned as go-zero does (a trailing or a doubled slash)', async () => {
    assertError(await post(`${mall.api('user')}/api/user/login/`, {}), 'field mobile is not set');
    assertError(await post(`${mall.api('user')}/api//user/login`, {}), 'field mobile is not set');
  });
});
