/**
 * The rpcs' etcd registration as go-zero's zrpc writes it — key `<Etcd.Key>/<leaseId in decimal>`, value
 * `<ip>:<port>`, a 10-second lease kept alive — read back with a plain etcd3 client; and what the apis' discovery
 * makes of instances that come and go. This file stops and restarts the mall's user rpc, so it has a mall of its own.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Etcd3 } from 'etcd3';
import { readYaml } from '../src/common/config.js';
import { REGISTRATION_TTL_SECONDS } from '../src/common/zrpc.js';
import { type RunningService, startService } from '../src/services.js';
import { type Mall, post, startMall, waitFor } from './support/mall.js';

const ETC = new URL('../../etc/', import.meta.url).pathname;

let mall: Mall;
let etcd: Etcd3;
const extra: RunningService[] = [];

before(async () => {
  mall = await startMall();
  etcd = new Etcd3({ hosts: mall.etcd });
});
after(async () => {
  for (const s of extra) await s.close();
  etcd?.close();
  await mall?.stop();
});

/** The registrations under `<prefix><key>/`: etcd key → value. */
async function registered(key: string): Promise<Record<string, string>> {
  return etcd.getAll().prefix(`${mall.prefix}${key}/`).strings();
}

/** Another user rpc from etc/user-rpc.yaml, registered under this mall's `user.rpc`, on this mall's database. */
async function startUserRpc(): Promise<RunningService> {
  const raw = await readYaml(`${ETC}user-rpc.yaml`);
  Object.assign(raw, {
    ListenOn: '127.0.0.1:0',
    Etcd: { Hosts: [mall.etcd], Key: `${mall.prefix}user.rpc` },
    Mysql: { DataSource: mall.dsn },
    Prometheus: { Port: 0 },
  });
  const s = await startService('user-rpc', raw, { quiet: true });
  extra.push(s);
  return s;
}

const login = (mobile: string) => post(`${mall.api('user')}/api/user/login`, { mobile, password: '123456' });

test('each rpc is registered as <Key>/<leaseId> = 127.0.0.1:<port>, on a lease of 10 s kept alive', async () => {
  assert.equal(REGISTRATION_TTL_SECONDS, 10);
  for (const domain of ['user', 'product', 'order', 'pay'] as const) {
    const service = mall.services[`${domain}-rpc`];
    const keys = await registered(`${domain}.rpc`);
    assert.equal(Object.keys(keys).length, 1, `${domain}.rpc: ${JSON.stringify(keys)}`);
    const [key, value] = Object.entries(keys)[0]!;
    const m = new RegExp(`^${mall.prefix.replaceAll('.', '\\.')}${domain}\\.rpc/(\\d+)$`).exec(key);
    assert.ok(m, `${key} is <prefix>${domain}.rpc/<decimal lease id>`);
    assert.equal(value, `127.0.0.1:${service.port}`);
    // The key is attached to the lease its name gives, and that lease was granted 10 s and is kept alive.
    const kv = (await etcd.get(key).exec()).kvs[0];
    assert.equal(kv?.lease, m[1]);
    const lease = await etcd.leaseClient.leaseTimeToLive({ ID: m[1], keys: true });
    assert.equal(Number(lease.grantedTTL), 10);
    const ttl = Number(lease.TTL);
    assert.ok(ttl > 0 && ttl <= 10, `remaining TTL ${ttl}`);
    assert.deepEqual(
      lease.keys.map((k) => k.toString()),
      [key],
    );
  }
});

test('the keep-alive renews the lease: its TTL goes back up after it went down', async () => {
  const [key] = Object.keys(await registered('user.rpc'));
  const id = key!.split('/').at(-1)!;
  const ttl = async () => Number((await etcd.leaseClient.leaseTimeToLive({ ID: id })).TTL);
  // etcd reports the remaining seconds rounded down: they fall (9, 8, 7…) until a keep-alive resets the lease to
  // 10 s, when a reading is higher than the one before.
  let previous = await ttl();
  await waitFor(
    async () => {
      const t = await ttl();
      assert.ok(t > 0, `the lease is about to expire: TTL ${t}`);
      const renewed = t > previous;
      previous = t;
      return renewed ? true : undefined;
    },
    'a keep-alive to renew the lease',
    15_000,
  );
  assert.deepEqual(Object.keys(await registered('user.rpc')), [key], 'the same key, on the same lease');
});

test('a second instance registers its own key; the api uses both; closing it removes only its key', async () => {
  const { auth } = await mall.login();
  assert.ok(auth.authorization);
  const first = mall.services['user-rpc'];
  const second = await startUserRpc();
  const keys = await registered('user.rpc');
  assert.deepEqual(Object.values(keys).sort(), [`127.0.0.1:${first.port}`, `127.0.0.1:${second.port}`].sort());
  // Round-robin over the instances: some login reaches the second (its server metrics count it).
  const mobile = `1${String(Date.now()).slice(-10)}`;
  assert.equal(
    (
      await post(`${mall.api('user')}/api/user/register`, {
        name: 'rr',
        gender: 1,
        mobile,
        password: '123456',
      })
    ).status,
    200,
  );
  const served = async () => (await second.kit.metrics.rpcServerCode.get()).values.reduce((sum, v) => sum + v.value, 0);
  await waitFor(async () => {
    const r = await login(mobile);
    assert.equal(r.status, 200, r.text);
    return (await served()) > 0 ? true : undefined;
  }, 'a login served by the second instance');
  await second.close();
  extra.splice(extra.indexOf(second), 1);
  assert.deepEqual(Object.values(await registered('user.rpc')), [`127.0.0.1:${first.port}`]);
  // The api's watch dropped it: every login now reaches the first instance.
  await waitFor(async () => {
    const results = await Promise.all([1, 2, 3, 4].map(() => login(mobile)));
    return results.every((r) => r.status === 200) ? true : undefined;
  }, 'logins to succeed on the remaining instance');
});

test('closing the user rpc revokes its lease (the key goes at once); a new one is found again', async () => {
  const mobile = `1${String(Date.now()).slice(-10)}`;
  await mall.login(mobile);
  const old = mall.services['user-rpc'];
  const [key] = Object.keys(await registered('user.rpc'));
  const lease = key!.split('/').at(-1)!;
  await old.close();
  assert.deepEqual(await registered('user.rpc'), {});
  assert.equal(Number((await etcd.leaseClient.leaseTimeToLive({ ID: lease })).TTL), -1, 'the lease is gone');
  const down = await login(mobile);
  assert.equal(down.status, 400, 'no instance to call');
  assert.match(down.text, /^rpc error: code = Unavailable desc = no live instance of /, 'as grpc-go reports it');
  const fresh = await startUserRpc();
  // The harness stops the new one with the rest of the mall.
  extra.splice(extra.indexOf(fresh), 1);
  mall.services['user-rpc'] = fresh;
  const keys = await registered('user.rpc');
  assert.deepEqual(Object.values(keys), [`127.0.0.1:${fresh.port}`]);
  assert.notEqual(Object.keys(keys)[0], key, 'a new lease, so a new key');
  const r = await waitFor(async () => {
    const res = await login(mobile);
    return res.status === 200 ? res : undefined;
  }, 'the api to find the new user rpc');
  assert.deepEqual(Object.keys(r.json), ['accessToken', 'accessExpire']);
});
