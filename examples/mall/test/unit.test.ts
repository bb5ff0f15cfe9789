/**
 * The go-zero conventions of src/common, without servers: the tutorial's password hash, its JWT, the bearer header,
 * Go's MySQL DSN, go-zero's request parsing and error text, the yaml configs of etc/, and the order api's reading of
 * a rollback reason.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { apiConf, ConfigError, readYaml, rpcConf } from '../src/common/config.js';
import { passwordEncrypt } from '../src/common/cryptx.js';
import { bearerToken, signToken, verifyToken } from '../src/common/jwt.js';
import { parseMysqlDsn } from '../src/common/mysql-dsn.js';
import { BadRequest, parseFields } from '../src/common/rest.js';
import { businessError, goCodeName, goErrorText, internalError, RpcError } from '../src/common/rpc-error.js';
import { rollbackReason } from '../src/order/api.js';
import { startService } from '../src/services.js';

const ETC = new URL('../../etc/', import.meta.url).pathname;
const SECRET = 'uOvKLmVfztaXGpNYd4Z0I1SiT7MweJhl';
const SALT = 'HWVOFkGgPTryzICwd7qnJaZR9KQ2i8xe';

const b64url = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
/** An HS256 token built here, independently of src/common/jwt.ts. */
const hs256 = (header: unknown, claims: unknown, secret = SECRET) => {
  const input = `${b64url(header)}.${b64url(claims)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
};
const decode = (part: string) => JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));

test('cryptx: the scrypt test vector of the tutorial (password 123456, the user rpc salt)', async () => {
  assert.equal(
    await passwordEncrypt(SALT, '123456'),
    'ef8364020560a703cfc7aebebcd0b62d1bfea7d4a841eb8964cfbcda2ba85dd5',
  );
  assert.notEqual(await passwordEncrypt(SALT, '1234567'), await passwordEncrypt(SALT, '123456'));
  assert.match(await passwordEncrypt('', ''), /^[0-9a-f]{64}$/);
});

test('jwt: signToken writes an HS256 header and the claims {exp: iat+expire, iat, uid}', () => {
  const token = signToken(SECRET, 1_700_000_000, 86400, 42);
  const [h = '', p = '', s = ''] = token.split('.');
  assert.deepEqual(decode(h), { alg: 'HS256', typ: 'JWT' });
  assert.deepEqual(decode(p), { exp: 1_700_086_400, iat: 1_700_000_000, uid: 42 });
  assert.deepEqual(Object.keys(decode(p)), ['exp', 'iat', 'uid'], 'the key order of Go marshalling a map');
  // An independent HS256 computation of the signature.
  assert.equal(s, createHmac('sha256', SECRET).update(`${h}.${p}`).digest('base64url'));
  assert.equal(token, hs256({ alg: 'HS256', typ: 'JWT' }, { exp: 1_700_086_400, iat: 1_700_000_000, uid: 42 }));
});

test('jwt: verifyToken accepts a valid token, signed here or by signToken', () => {
  const now = 1_700_000_100;
  assert.deepEqual(verifyToken(SECRET, signToken(SECRET, 1_700_000_000, 86400, 7), now), {
    exp: 1_700_086_400,
    iat: 1_700_000_000,
    uid: 7,
  });
  const own = hs256({ typ: 'JWT', alg: 'HS256' }, { uid: 9, iat: now, exp: now + 1, extra: 'kept' });
  assert.deepEqual(verifyToken(SECRET, own, now), { uid: 9, iat: now, exp: now + 1, extra: 'kept' });
  assert.deepEqual(verifyToken(SECRET, hs256({ alg: 'HS256' }, { uid: 1 }), now), { uid: 1 }, 'no exp: no expiry');
});

test('jwt: verifyToken refuses a tampered, expired, early, wrongly signed or malformed token', () => {
  const now = 1_700_000_100;
  const good = signToken(SECRET, 1_700_000_000, 86400, 7);
  const [h = '', p = '', s = ''] = good.split('.');
  const flip = (c: string) => (c === 'A' ? 'B' : 'A');
  // Signature bytes changed (the first character carries 6 whole bits).
  assert.equal(verifyToken(SECRET, `${h}.${p}.${flip(s[0]!)}${s.slice(1)}`, now), undefined);
  // Claims changed, signature kept.
  assert.equal(
    verifyToken(SECRET, `${h}.${b64url({ exp: 1_700_086_400, iat: 1_700_000_000, uid: 1 })}.${s}`, now),
    undefined,
  );
  // Characters outside base64url are refused, as Go's decoder does (Node's would skip them).
  assert.equal(verifyToken(SECRET, `${good}!`, now), undefined);
  assert.equal(verifyToken(SECRET, `${h}.${p}.${s.slice(0, 10)} ${s.slice(10)}`, now), undefined);
  // Another secret.
  assert.equal(verifyToken('another secret', good, now), undefined);
  // Expired: exp is the first second the token is no longer valid (golang-jwt v4: now < exp).
  assert.equal(verifyToken(SECRET, good, 1_700_086_400), undefined);
  assert.ok(verifyToken(SECRET, good, 1_700_086_399));
  assert.equal(verifyToken(SECRET, hs256({ alg: 'HS256' }, { exp: now - 3600, uid: 1 }), now), undefined);
  // Issued or valid only in the future.
  assert.equal(verifyToken(SECRET, hs256({ alg: 'HS256' }, { iat: now + 60, uid: 1 }), now), undefined);
  assert.equal(verifyToken(SECRET, hs256({ alg: 'HS256' }, { nbf: now + 60, uid: 1 }), now), undefined);
  assert.ok(verifyToken(SECRET, hs256({ alg: 'HS256' }, { iat: now, nbf: now, uid: 1 }), now));
  // Wrong algorithm: none, or HS384/HS512 even when keyed with the secret.
  assert.equal(verifyToken(SECRET, `${b64url({ alg: 'none' })}.${b64url({ uid: 1 })}.`, now), undefined);
  const input384 = `${b64url({ alg: 'HS384', typ: 'JWT' })}.${b64url({ uid: 1 })}`;
  const sig384 = createHmac('sha384', SECRET).update(input384).digest('base64url');
  assert.equal(verifyToken(SECRET, `${input384}.${sig384}`, now), undefined);
  assert.equal(verifyToken(SECRET, hs256({ alg: 'RS256' }, { uid: 1 }), now), undefined);
  // Malformed.
  for (const bad of ['', 'abc', 'a.b', 'a.b.c.d', `${h}.${p}`, `x.${p}.${s}`, hs256({ alg: 'HS256' }, [1, 2])]) {
    assert.equal(verifyToken(SECRET, bad, now), undefined, bad);
  }
});

test('jwt: bearerToken strips a case-insensitive "Bearer " prefix, as golang-jwt\'s AuthorizationHeaderExtractor', () => {
  assert.equal(bearerToken('Bearer a.b.c'), 'a.b.c');
  assert.equal(bearerToken('bearer a.b.c'), 'a.b.c');
  assert.equal(bearerToken('BEARER a.b.c'), 'a.b.c');
  assert.equal(bearerToken('BeArEr a.b.c'), 'a.b.c');
  // Without the prefix the whole header is the token (go-zero accepts a bare token).
  assert.equal(bearerToken('a.b.c'), 'a.b.c');
  assert.equal(bearerToken(undefined), undefined);
  assert.equal(bearerToken(''), undefined);
  assert.equal(bearerToken('Bearer '), undefined);
  // Only the one space of the prefix is removed: what follows is not a token.
  assert.notEqual(bearerToken('Bearer  a.b.c'), 'a.b.c');
  assert.notEqual(bearerToken('Basic dXNlcjpwYXNz'), 'dXNlcjpwYXNz');
});

test("mysql-dsn: the tutorial's DataSource and the harness's", () => {
  assert.deepEqual(
    parseMysqlDsn('root:123456@tcp(mysql:3306)/mall?charset=utf8mb4&parseTime=true&loc=Asia%2FShanghai'),
    { user: 'root', password: '123456', host: 'mysql', port: 3306, database: 'mall' },
  );
  assert.deepEqual(parseMysqlDsn('dtx:dtx@tcp(127.0.0.1:3307)/mall_t1_2'), {
    user: 'dtx',
    password: 'dtx',
    host: '127.0.0.1',
    port: 3307,
    database: 'mall_t1_2',
  });
});

test('mysql-dsn: Go driver rules — last @ and last /, literal password, default address and port', () => {
  // The password may hold @, : and / (Go splits at the last @ before the last /) and is not URL-decoded.
  assert.deepEqual(parseMysqlDsn('u:p@ss:w/rd%41@tcp(db:3306)/mall'), {
    user: 'u',
    password: 'p@ss:w/rd%41',
    host: 'db',
    port: 3306,
    database: 'mall',
  });
  assert.deepEqual(parseMysqlDsn('u:50%@tcp(db)/mall'), {
    user: 'u',
    password: '50%',
    host: 'db',
    port: 3306,
    database: 'mall',
  });
  assert.deepEqual(parseMysqlDsn('root@tcp(127.0.0.1:3306)/mall'), {
    user: 'root',
    password: '',
    host: '127.0.0.1',
    port: 3306,
    database: 'mall',
  });
  assert.deepEqual(parseMysqlDsn('root:pw@/mall'), {
    user: 'root',
    password: 'pw',
    host: '127.0.0.1',
    port: 3306,
    database: 'mall',
  });
  assert.deepEqual(parseMysqlDsn('root:pw@tcp([::1]:3307)/mall'), {
    user: 'root',
    password: 'pw',
    host: '::1',
    port: 3307,
    database: 'mall',
  });
});

test('mysql-dsn: a bad DataSource is a ConfigError naming Mysql.DataSource, never showing the password', () => {
  for (const bad of [
    '',
    'mall',
    'root:secret@tcp(mysql:3306)mall',
    'root:secret@tcp(mysql:3306/mall',
    'root:secret@tcp(mysql:3306)/',
    'root:secret@tcp(mysql:3306)/?charset=utf8mb4',
    'root:secret@unix(/tmp/mysql.sock)/mall',
    'root:secret@tcp(mysql:port)/mall',
    'root:secret@tcp(mysql:3306)/mall?loc=Asia/Shanghai',
    'mysql://root:secret@mysql:3306/mall',
  ]) {
    assert.throws(
      () => parseMysqlDsn(bad),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError, `${bad}: ${String(err)}`);
        assert.match(err.message, /Mysql\.DataSource/, bad);
        assert.doesNotMatch(err.message, /secret/, bad);
        return true;
      },
    );
  }
});

test('rest: parseFields — required, optional zero values, type mismatch', () => {
  const fields = { id: 'int', name: 'string?', stock: 'int?', mobile: 'string' } as const;
  assert.deepEqual(parseFields(fields, { id: 3, mobile: '138' }), { id: 3, name: '', stock: 0, mobile: '138' });
  assert.deepEqual(parseFields(fields, { id: 0, mobile: '', name: 'n', stock: 5, unknown: true }), {
    id: 0,
    name: 'n',
    stock: 5,
    mobile: '',
  });
  const missing = (body: unknown, name: string) =>
    assert.throws(
      () => parseFields(fields, body),
      (err: unknown) => err instanceof BadRequest && err.message === `field ${name} is not set`,
    );
  missing({ mobile: '1' }, 'id');
  missing({ id: 1 }, 'mobile');
  missing({ id: 1, mobile: null }, 'mobile');
  missing(undefined, 'id');
  missing([1, 2], 'id');
  missing('text', 'id');
  const mismatch = (body: unknown, name: string) =>
    assert.throws(
      () => parseFields(fields, body),
      (err: unknown) =>
        err instanceof BadRequest && new RegExp(`^error: type mismatch for field ${name}\\b`).test(err.message),
    );
  mismatch({ id: '1', mobile: '1' }, 'id');
  mismatch({ id: 1.5, mobile: '1' }, 'id');
  mismatch({ id: 1, mobile: 138 }, 'mobile');
  mismatch({ id: 1, mobile: '1', stock: true }, 'stock');
  mismatch({ id: 1, mobile: '1', name: {} }, 'name');
  assert.deepEqual(parseFields({}, undefined), {});
});

test('rpc-error: Go status names and the text go-zero answers for rpc errors', () => {
  assert.equal(goCodeName(0), 'OK');
  assert.equal(goCodeName(2), 'Unknown');
  assert.equal(goCodeName(9), 'FailedPrecondition');
  assert.equal(goCodeName(10), 'Aborted');
  assert.equal(goCodeName(14), 'Unavailable');
  assert.equal(goCodeName(16), 'Unauthenticated');
  assert.equal(goCodeName(17), 'Code(17)');
  assert.equal(goCodeName(100), 'Code(100)');
  assert.equal(goCodeName(500), 'Code(500)');
  assert.equal(goErrorText(businessError('用户不存在')), 'rpc error: code = Code(100) desc = 用户不存在');
  assert.equal(goErrorText(internalError(new Error('db down'))), 'rpc error: code = Code(500) desc = db down');
  assert.equal(goErrorText(new RpcError(10, 'FAILURE')), 'rpc error: code = Aborted desc = FAILURE');
  // A grpc-js ServiceError: message "100 undefined: …", details the status message.
  const grpcJs = Object.assign(new Error('100 undefined: 密码错误'), { code: 100, details: '密码错误' });
  assert.equal(goErrorText(grpcJs), 'rpc error: code = Code(100) desc = 密码错误');
  // Other errors: their message. A Node system error's string code is not a gRPC code.
  assert.equal(goErrorText(new Error('field mobile is not set')), 'field mobile is not set');
  assert.equal(
    goErrorText(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })),
    'connect ECONNREFUSED',
  );
  assert.equal(goErrorText('plain'), 'plain');
});

const SERVICES = [
  'user-api',
  'user-rpc',
  'product-api',
  'product-rpc',
  'order-api',
  'order-rpc',
  'pay-api',
  'pay-rpc',
] as const;

test('config: every yaml of etc/ parses with its reader, with the keys of the tutorial', async () => {
  const files = readdirSync(ETC).filter((f) => f.endsWith('.yaml'));
  assert.deepEqual(files.sort(), [...SERVICES.map((s) => `${s}.yaml`), 'dtx.yaml'].sort());
  const ports: Record<string, number> = {};
  for (const name of SERVICES) {
    const raw = await readYaml(`${ETC}${name}.yaml`);
    const domain = name.split('-')[0]!;
    if (name.endsWith('-api')) {
      const c = apiConf(raw);
      assert.equal(c.Name, domain[0]!.toUpperCase() + domain.slice(1));
      assert.deepEqual(c.Auth, { AccessSecret: SECRET, AccessExpire: 86400 });
      assert.equal(c.MaxBytes, 1 << 20);
      assert.equal(c.Telemetry.Name, `${domain}.api`);
      ports[name] = c.Port;
      const own = c[`${domain[0]!.toUpperCase()}${domain.slice(1)}Rpc` as 'UserRpc'];
      assert.deepEqual(own, { Etcd: { Hosts: ['127.0.0.1:2379'], Key: `${domain}.rpc` }, Timeout: 2000 }, name);
      if (domain === 'order') {
        assert.equal(c.ProductRpc?.Etcd.Key, 'product.rpc');
        assert.equal(c.DtmServer, 'etcd://127.0.0.1:2379/dtmservice');
      }
    } else {
      const c = rpcConf(raw);
      assert.equal(c.Name, `${domain}.rpc`);
      assert.deepEqual(c.Etcd, { Hosts: ['127.0.0.1:2379'], Key: `${domain}.rpc` });
      assert.deepEqual(parseMysqlDsn(c.Mysql.DataSource).database, 'mall');
      assert.equal(c.Telemetry.Name, `${domain}.rpc`);
      ports[name] = Number(c.ListenOn.split(':')[1]);
      if (domain === 'user') assert.equal(c.Salt, SALT);
      if (domain === 'order') assert.equal(c.UserRpc?.Etcd.Key, 'user.rpc');
      if (domain === 'pay') assert.deepEqual([c.UserRpc?.Etcd.Key, c.OrderRpc?.Etcd.Key], ['user.rpc', 'order.rpc']);
      if (domain === 'product') assert.equal(c.FailAfterDecrStock, process.env.MALL_FAIL_AFTER_DECR_STOCK === '1');
    }
    const c = name.endsWith('-api') ? apiConf(raw) : rpcConf(raw);
    assert.deepEqual(
      { Host: c.Prometheus.Host, Path: c.Prometheus.Path, Endpoint: c.Telemetry.Endpoint },
      { Host: '127.0.0.1', Path: '/metrics', Endpoint: '' },
    );
    ports[`${name} metrics`] = c.Prometheus.Port;
  }
  // The tutorial's ports: api 8000-8003, rpc 9000-9003, metrics 9080-9083 and 9090-9093.
  assert.deepEqual(ports, {
    'user-api': 8000,
    'user-api metrics': 9080,
    'user-rpc': 9000,
    'user-rpc metrics': 9090,
    'product-api': 8001,
    'product-api metrics': 9081,
    'product-rpc': 9001,
    'product-rpc metrics': 9091,
    'order-api': 8002,
    'order-api metrics': 9082,
    'order-rpc': 9002,
    'order-rpc metrics': 9092,
    'pay-api': 8003,
    'pay-api metrics': 9083,
    'pay-rpc': 9003,
    'pay-rpc metrics': 9093,
  });
});

test('config: defaults of the keys the yaml files leave out', () => {
  const api = apiConf({ Name: 'X', Port: 1, Auth: { AccessSecret: 's', AccessExpire: 60 } });
  assert.deepEqual(
    { Host: api.Host, MaxBytes: api.MaxBytes, Prometheus: api.Prometheus, Telemetry: api.Telemetry },
    {
      Host: '0.0.0.0',
      MaxBytes: 1 << 20,
      Prometheus: { Host: '127.0.0.1', Port: 0, Path: '/metrics' },
      Telemetry: { Name: 'X', Endpoint: '', Sampler: 1, Batcher: 'otlp' },
    },
  );
  const rpc = rpcConf({ Name: 'r', ListenOn: ':1', Etcd: { Hosts: ['e:1'], Key: 'k' }, Mysql: { DataSource: 'd' } });
  assert.equal(rpc.Salt, '');
  assert.equal(rpc.UserRpc, undefined);
});

test('config: a bad value is refused with a message naming its key', async () => {
  const api = await readYaml(`${ETC}order-api.yaml`);
  const rpc = await readYaml(`${ETC}pay-rpc.yaml`);
  const refuse = (read: (raw: Record<string, unknown>) => unknown, raw: Record<string, unknown>, key: string) =>
    assert.throws(
      () => read(raw),
      (err: unknown) => err instanceof ConfigError && err.message.startsWith(`${key}:`),
      `${key} in ${JSON.stringify(raw).slice(0, 80)}`,
    );
  const set = (raw: Record<string, unknown>, path: string, value: unknown) => {
    const copy = structuredClone(raw);
    const keys = path.split('.');
    let at: Record<string, unknown> = copy;
    for (const k of keys.slice(0, -1)) at = at[k] as Record<string, unknown>;
    if (value === undefined) delete at[keys.at(-1)!];
    else at[keys.at(-1)!] = value;
    return copy;
  };
  refuse(apiConf, set(api, 'Port', 'eight thousand'), 'Port');
  refuse(apiConf, set(api, 'Port', -1), 'Port');
  refuse(apiConf, set(api, 'Port', undefined), 'Port');
  refuse(apiConf, set(api, 'Name', 7), 'Name');
  refuse(apiConf, set(api, 'Auth.AccessExpire', '1d'), 'Auth.AccessExpire');
  refuse(apiConf, set(api, 'Auth.AccessSecret', undefined), 'Auth.AccessSecret');
  refuse(apiConf, set(api, 'Auth', 'secret'), 'Auth');
  refuse(apiConf, set(api, 'Auth', undefined), 'Auth');
  refuse(apiConf, set(api, 'Auth.AccessSecret', ''), 'Auth.AccessSecret');
  refuse(apiConf, set(api, 'OrderRpc.Etcd.Hosts', []), 'OrderRpc.Etcd.Hosts');
  refuse(apiConf, set(api, 'OrderRpc.Etcd.Hosts', '127.0.0.1:2379'), 'OrderRpc.Etcd.Hosts');
  refuse(apiConf, set(api, 'ProductRpc.Etcd.Key', undefined), 'ProductRpc.Etcd.Key');
  refuse(apiConf, set(api, 'ProductRpc.Etcd', undefined), 'ProductRpc.Etcd');
  refuse(apiConf, set(api, 'ProductRpc.Timeout', 'fast'), 'ProductRpc.Timeout');
  refuse(apiConf, set(api, 'Prometheus.Port', 'x'), 'Prometheus.Port');
  refuse(apiConf, set(api, 'Telemetry.Sampler', 'all'), 'Telemetry.Sampler');
  refuse(apiConf, set(api, 'DtmServer', 36790), 'DtmServer');
  refuse(rpcConf, set(rpc, 'ListenOn', undefined), 'ListenOn');
  refuse(rpcConf, set(rpc, 'Etcd', undefined), 'Etcd');
  refuse(rpcConf, set(rpc, 'Etcd.Key', 9), 'Etcd.Key');
  refuse(rpcConf, set(rpc, 'Mysql', undefined), 'Mysql.DataSource');
  refuse(rpcConf, set(rpc, 'Mysql.DataSource', 5), 'Mysql.DataSource');
  refuse(rpcConf, set(rpc, 'UserRpc.Etcd.Hosts', [1]), 'UserRpc.Etcd.Hosts');
  refuse(rpcConf, set(rpc, 'FailAfterDecrStock', 'yes'), 'FailAfterDecrStock');
  const dir = mkdtempSync(join(tmpdir(), 'mall-unit-'));
  try {
    writeFileSync(join(dir, 'list.yaml'), '- Name: user.rpc\n');
    await assert.rejects(readYaml(join(dir, 'list.yaml')), (err: unknown) => err instanceof ConfigError);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("config: user.rpc refuses to start without its Salt (no password would match the original's)", async () => {
  const raw = await readYaml(`${ETC}user-rpc.yaml`);
  delete raw.Salt;
  Object.assign(raw, { ListenOn: '127.0.0.1:0', Prometheus: { Port: 0 } });
  await assert.rejects(
    startService('user-rpc', raw, { quiet: true }),
    (err: unknown) => err instanceof ConfigError && err.message.startsWith('Salt:'),
  );
});

test('order api: rollbackReason reads the branch message out of the coordinator reason', () => {
  const url = 'discov://127.0.0.1:2379/product.rpc/product.Product/DecrStock';
  assert.equal(rollbackReason(`url:${url} return failed: 库存不足 FAILURE`), '库存不足');
  assert.equal(rollbackReason(`url:${url} return failed: 用户不存在`), '用户不存在');
  assert.equal(rollbackReason(`url:${url} return failed: line 1\nline 2 FAILURE`), 'line 1\nline 2');
  assert.equal(rollbackReason('timeout'), 'timeout');
  // An empty message: the whole reason, not an empty string.
  assert.equal(rollbackReason(`url:${url} return failed:  FAILURE`), `url:${url} return failed:  FAILURE`);
});
