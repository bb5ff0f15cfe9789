import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { Etcd3 } from 'etcd3';
import {
  advertisedEndpoint,
  createDiscovery,
  DiscoveryError,
  EtcdClients,
  EtcdTargetResolver,
  kratosInstanceAddress,
  parseTarget,
  planRegistration,
} from '../src/discovery/index.js';
import { silentLogger } from '../src/observe/logger.js';
import { waitFor } from './support/poll.js';

// etcd registration and resolution against the real etcd on 127.0.0.1:2379 (scripts/services.sh).
const ETCD = '127.0.0.1:2379';
const RUN = `dtx-test-${process.pid}-${Date.now().toString(36)}`;
const unique = (() => {
  let n = 0;
  return (what: string) => `${RUN}-${what}-${++n}`;
})();

describe('discovery targets (no etcd)', () => {
  it('parses go-zero, kratos and direct targets', () => {
    assert.deepEqual(parseTarget('etcd://127.0.0.1:2379/order.rpc'), {
      layout: 'gozero',
      scheme: 'etcd',
      etcdHosts: ['127.0.0.1:2379'],
      key: 'order.rpc',
    });
    assert.deepEqual(parseTarget('discov://etcd1:2379,etcd2/order.rpc?user=u&password=p'), {
      layout: 'gozero',
      scheme: 'discov',
      etcdHosts: ['etcd1:2379', 'etcd2:2379'],
      key: 'order.rpc',
      auth: { user: 'u', password: 'p' },
    });
    assert.deepEqual(parseTarget('discovery:///order'), { layout: 'kratos', etcdHosts: undefined, name: 'order' });
    assert.deepEqual(parseTarget('discovery://10.0.0.9:2379/order'), {
      layout: 'kratos',
      etcdHosts: ['10.0.0.9:2379'],
      name: 'order',
    });
    assert.deepEqual(parseTarget('localhost:58081'), { layout: 'direct', address: 'localhost:58081' });
  });

  it('refuses unknown schemes and targets without a name, with a message that says what is supported', () => {
    assert.throws(() => parseTarget('consul://127.0.0.1:8500/order'), /unsupported target scheme 'consul'.*etcd:\/\//);
    assert.throws(() => parseTarget('etcd://127.0.0.1:2379/'), DiscoveryError);
    assert.throws(() => parseTarget('discovery:///'), /no service name/);
    assert.throws(
      () => parseTarget('etcd://h:2379/?user=root&password=s3cret'),
      (err: Error) => !err.message.includes('s3cret') && err.message.includes('password=***'),
    );
  });

  it('reads the gRPC endpoint of a kratos ServiceInstance, skipping other names and http endpoints', () => {
    const si = { id: 'x', name: 'order', version: 'v1', metadata: null, endpoints: ['http://h:8000', 'grpc://h:9000'] };
    assert.equal(kratosInstanceAddress(JSON.stringify(si), 'order'), 'h:9000');
    assert.equal(kratosInstanceAddress(JSON.stringify({ ...si, name: 'other' }), 'order'), undefined);
    assert.equal(kratosInstanceAddress(JSON.stringify({ ...si, endpoints: ['http://h:8000'] }), 'order'), undefined);
    assert.equal(kratosInstanceAddress('not json', 'order'), undefined);
  });

  it('plans the go-zero and kratos registrations from MicroService, and none for the default driver', () => {
    const gz = planRegistration(
      { Driver: 'dtm-driver-gozero', Target: 'etcd://127.0.0.1:2379/dtmservice', EndPoint: '10.1.2.3:36790' },
      { grpcPort: 36790 },
    );
    assert.ok(gz);
    assert.equal(gz.keyOf('7587864068988009477'), 'dtmservice/7587864068988009477');
    assert.equal(gz.value, '10.1.2.3:36790');
    assert.equal(gz.ttlSeconds, 10);
    const kr = planRegistration(
      { Driver: 'dtm-driver-kratos', Target: 'discovery://127.0.0.1:2379/dtmservice', EndPoint: '10.1.2.3:36790' },
      { grpcPort: 36790, instanceId: 'abc' },
    );
    assert.ok(kr);
    assert.equal(kr.keyOf('1'), '/microservices/dtmservice/abc');
    const value = JSON.parse(kr.value);
    assert.equal(value.id, 'abc');
    assert.equal(value.name, 'dtmservice');
    assert.deepEqual(value.endpoints, ['grpc://10.1.2.3:36790']);
    assert.equal(kr.ttlSeconds, 15);
    assert.equal(
      planRegistration({ Driver: 'default', Target: 'etcd://h:2379/dtmservice', EndPoint: 'h:1' }, { grpcPort: 1 }),
      undefined,
    );
    assert.throws(
      () =>
        planRegistration(
          { Driver: 'dtm-driver-gozero', Target: 'consul://h:8500/dtmservice', EndPoint: 'h:1' },
          { grpcPort: 1 },
        ),
      /etcd only/,
    );
  });

  it('advertises a concrete address for a wildcard or missing EndPoint', () => {
    assert.equal(advertisedEndpoint('10.0.0.5:36790', 36790), '10.0.0.5:36790');
    assert.match(advertisedEndpoint('0.0.0.0:36790', 1), /^[^0][\d.]*:36790$|^\S+:36790$/);
    assert.notEqual(advertisedEndpoint('0.0.0.0:36790', 1), '0.0.0.0:36790');
    assert.match(advertisedEndpoint('', 36790), /:36790$/);
    assert.throws(() => advertisedEndpoint('no-port', 36790), /expected host:port/);
  });

  it('refuses a Target whose service name contains /, which no Node.js gRPC server can be called by', () => {
    for (const Driver of ['dtm-driver-gozero', 'dtm-driver-kratos']) {
      assert.throws(
        () =>
          planRegistration(
            { Driver, Target: 'etcd://127.0.0.1:2379/a/b/dtmservice', EndPoint: 'h:1' },
            { grpcPort: 1 },
          ),
        /service name 'a\/b\/dtmservice' contains '\/'.*:authority/,
      );
    }
  });

  it('accepts EndPoint grpc://host:port (the form of dtm-driver-kratos) and registers the same address', () => {
    assert.equal(advertisedEndpoint('grpc://10.0.0.5:36790', 1), '10.0.0.5:36790');
    assert.equal(advertisedEndpoint('GRPC://10.0.0.5:36790/', 1), '10.0.0.5:36790');
    assert.throws(() => advertisedEndpoint('http://10.0.0.5:36790', 1), /expected host:port/);
    const kr = planRegistration(
      {
        Driver: 'dtm-driver-kratos',
        Target: 'discovery://127.0.0.1:2379/dtmservice',
        EndPoint: 'grpc://10.1.2.3:36790',
      },
      { grpcPort: 36790, instanceId: 'abc' },
    );
    assert.ok(kr);
    assert.deepEqual(JSON.parse(kr.value).endpoints, ['grpc://10.1.2.3:36790']);
    const gz = planRegistration(
      { Driver: 'dtm-driver-gozero', Target: 'etcd://127.0.0.1:2379/dtmservice', EndPoint: 'grpc://10.1.2.3:36790' },
      { grpcPort: 36790 },
    );
    assert.equal(gz?.value, '10.1.2.3:36790');
  });

  it('shares one etcd client per etcd cluster', async () => {
    const clients = new EtcdClients();
    try {
      assert.equal(await clients.get(['a:2379', 'b:2379']), await clients.get(['b:2379', 'a:2379']));
      assert.notEqual(await clients.get(['a:2379']), await clients.get(['b:2379']));
    } finally {
      clients.close();
    }
  });
});

describe('discovery against etcd', () => {
  let etcd: Etcd3;
  before(() => {
    etcd = new Etcd3({ hosts: `http://${ETCD}` });
  });
  after(async () => {
    await etcd.delete().prefix(RUN).exec();
    await etcd.delete().prefix(`/microservices/${RUN}`).exec();
    etcd.close();
  });

  const keysUnder = async (prefix: string) => etcd.getAll().prefix(prefix).strings();

  describe('registration', () => {
    it('go-zero: registers EndPoint under <key>/<leaseId> with a kept-alive lease, and revokes it on close', async () => {
      const key = unique('dtmservice');
      const d = createDiscovery(
        {
          MicroService: { Driver: 'dtm-driver-gozero', Target: `etcd://${ETCD}/${key}`, EndPoint: '127.0.0.1:36790' },
          GrpcPort: 36790,
        },
        silentLogger,
      );
      try {
        await d.register();
        const res = await etcd.getAll().prefix(`${key}/`).exec();
        assert.equal(res.kvs.length, 1);
        const kv = res.kvs[0]!;
        assert.equal(kv.value.toString(), '127.0.0.1:36790');
        assert.equal(kv.key.toString(), `${key}/${kv.lease}`, 'the key ends with the decimal lease id');
        assert.match(String(kv.lease), /^[1-9]\d*$/);
        const lease = await etcd.leaseClient.leaseTimeToLive({ ID: kv.lease });
        assert.equal(String(lease.grantedTTL), '10', "go-zero's TTL");
        // dtx's own resolver finds the coordinator the way a go-zero client would.
        assert.equal(await d.resolver.resolve(`etcd://${ETCD}/${key}`), '127.0.0.1:36790');
      } finally {
        await d.close();
      }
      assert.deepEqual(await keysUnder(`${key}/`), {}, 'the key is gone once the lease is revoked');
    });

    it('kratos: registers a ServiceInstance under /microservices/<name>/<id>, removed on close', async () => {
      const name = unique('dtmservice');
      const d = createDiscovery(
        {
          MicroService: {
            Driver: 'dtm-driver-kratos',
            Target: `discovery://${ETCD}/${name}`,
            EndPoint: '127.0.0.1:36790',
          },
          GrpcPort: 36790,
        },
        silentLogger,
      );
      try {
        await d.register();
        const found = Object.entries(await keysUnder(`/microservices/${name}/`));
        assert.equal(found.length, 1);
        const [k, v] = found[0]!;
        const si = JSON.parse(v);
        assert.equal(k, `/microservices/${name}/${si.id}`);
        assert.equal(si.name, name);
        assert.deepEqual(si.endpoints, ['grpc://127.0.0.1:36790']);
        assert.equal(typeof si.version, 'string');
        // discovery:/// (no host) is looked up in the etcd of MicroService.Target.
        assert.equal(await d.resolver.resolve(`discovery:///${name}`), '127.0.0.1:36790');
      } finally {
        await d.close();
      }
      assert.deepEqual(await keysUnder(`/microservices/${name}/`), {});
    });

    it('the registration expires with its lease TTL when the process dies', async () => {
      const key = unique('dtmservice');
      const moduleUrl = new URL('../src/discovery/index.js', import.meta.url).href;
      const loggerUrl = new URL('../src/observe/logger.js', import.meta.url).href;
      const script = `
        import { createDiscovery } from ${JSON.stringify(moduleUrl)};
        import { silentLogger } from ${JSON.stringify(loggerUrl)};
        const d = createDiscovery({ MicroService: { Driver: 'dtm-driver-gozero', Target: ${JSON.stringify(`etcd://${ETCD}/${key}`)},
          EndPoint: '127.0.0.1:36790' }, GrpcPort: 36790 }, silentLogger, { leaseTtlSeconds: 2 });
        await d.register();
        process.stdout.write('registered\\n');
        setInterval(() => {}, 1 << 30);`;
      const child: ChildProcess = spawn(process.execPath, ['--input-type=module', '-e', script], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout?.on('data', (b: Buffer) => (output += b.toString()));
      child.stderr?.on('data', (b: Buffer) => (output += b.toString()));
      const exited = new Promise((r) => child.once('exit', r));
      try {
        await waitFor('the child to register', () => output.includes('registered'), 15_000);
        assert.equal(Object.keys(await keysUnder(`${key}/`)).length, 1);
      } finally {
        child.kill('SIGKILL');
        await exited;
      }
      await waitFor('the key to expire', async () => Object.keys(await keysUnder(`${key}/`)).length === 0, 15_000);
    });

    it('an empty EndPoint advertises this host with the port the gRPC API bound', async () => {
      const key = unique('dtmservice');
      const d = createDiscovery(
        { MicroService: { Driver: 'dtm-driver-gozero', Target: `etcd://${ETCD}/${key}`, EndPoint: '' }, GrpcPort: 0 },
        silentLogger,
      );
      try {
        await d.register(45678);
        const values = Object.values(await keysUnder(`${key}/`));
        assert.equal(values.length, 1);
        assert.match(values[0]!, /^[^:]+:45678$/);
        assert.notEqual(values[0], '0.0.0.0:45678');
      } finally {
        await d.close();
      }
    });

    it('register rejects with a clear error when etcd cannot be reached', async () => {
      const d = createDiscovery(
        {
          MicroService: { Driver: 'dtm-driver-gozero', Target: 'etcd://127.0.0.1:1/dtmservice', EndPoint: 'h:1' },
          GrpcPort: 1,
        },
        silentLogger,
        { etcdTimeoutMs: 1_000 },
      );
      try {
        await assert.rejects(d.register(), (err: Error) => {
          assert.ok(err instanceof DiscoveryError);
          assert.match(err.message, /cannot register MicroService.Target 'etcd:\/\/127.0.0.1:1\/dtmservice' in etcd/);
          return true;
        });
      } finally {
        await d.close();
      }
    });
  });

  describe('resolution', () => {
    let clients: EtcdClients;
    let resolver: EtcdTargetResolver;
    before(() => {
      clients = new EtcdClients({ callTimeoutMs: 1_000, dialTimeoutMs: 1_000 });
      resolver = new EtcdTargetResolver({ clients, log: silentLogger, lookupTimeoutMs: 2_000 });
    });
    after(async () => {
      await resolver.close();
      clients.close();
    });

    const resolveN = async (target: string, n: number) => {
      const out: string[] = [];
      for (let i = 0; i < n; i++) out.push(await resolver.resolve(target));
      return out;
    };

    it('etcd:// and discov:// resolve the values under <key>/, round-robin', async () => {
      const key = unique('order.rpc');
      await etcd.put(`${key}/101`).value('127.0.0.1:9001');
      await etcd.put(`${key}/102`).value('127.0.0.1:9002');
      await etcd.put(`${key}/103`).value('127.0.0.1:9003');
      await etcd.put(`${key}x/1`).value('127.0.0.1:9999'); // another service whose key shares the prefix text
      const got = await resolveN(`etcd://${ETCD}/${key}`, 6);
      assert.deepEqual(got.slice(0, 3).sort(), ['127.0.0.1:9001', '127.0.0.1:9002', '127.0.0.1:9003']);
      assert.deepEqual(got.slice(3), got.slice(0, 3), 'the same order again');
      const viaDiscov = await resolveN(`discov://${ETCD}/${key}`, 3);
      assert.deepEqual([...viaDiscov].sort(), ['127.0.0.1:9001', '127.0.0.1:9002', '127.0.0.1:9003']);
    });

    it('the watch adds a new instance and drops one whose key is deleted or whose lease is revoked', async () => {
      const key = unique('product.rpc');
      const target = `discov://${ETCD}/${key}`;
      await etcd.put(`${key}/1`).value('127.0.0.1:9101');
      assert.equal(await resolver.resolve(target), '127.0.0.1:9101');

      const lease = etcd.lease(30);
      await lease.put(`${key}/2`).value('127.0.0.1:9102');
      await waitFor('the new instance', async () => (await resolver.instances(target)).includes('127.0.0.1:9102'));
      assert.deepEqual((await resolveN(target, 4)).sort(), [
        '127.0.0.1:9101',
        '127.0.0.1:9101',
        '127.0.0.1:9102',
        '127.0.0.1:9102',
      ]);

      await etcd.delete().key(`${key}/1`);
      await waitFor(
        'the deleted instance to go',
        async () => !(await resolver.instances(target)).includes('127.0.0.1:9101'),
      );
      assert.deepEqual(await resolveN(target, 3), ['127.0.0.1:9102', '127.0.0.1:9102', '127.0.0.1:9102']);

      await lease.revoke();
      await waitFor('the revoked instance to go', async () => (await resolver.instances(target)).length === 0);
      await assert.rejects(resolver.resolve(target), /no live instance/);

      await etcd.put(`${key}/3`).value('127.0.0.1:9103');
      await waitFor('an instance to come back', async () => (await resolver.instances(target)).length === 1);
      assert.equal(await resolver.resolve(target), '127.0.0.1:9103');
    });

    it('kratos discovery:// resolves the grpc endpoint of each ServiceInstance, round-robin', async () => {
      const name = unique('order');
      const si = (id: string, port: number) =>
        JSON.stringify({
          id,
          name,
          version: '',
          metadata: {},
          endpoints: [`http://127.0.0.1:${port + 1000}`, `grpc://127.0.0.1:${port}`],
        });
      await etcd.put(`/microservices/${name}/a`).value(si('a', 9201));
      await etcd.put(`/microservices/${name}/b`).value(si('b', 9202));
      const target = `discovery://${ETCD}/${name}`;
      const got = await resolveN(target, 4);
      assert.deepEqual(got.slice(0, 2).sort(), ['127.0.0.1:9201', '127.0.0.1:9202']);
      assert.deepEqual(got.slice(2), got.slice(0, 2));

      await etcd.delete().key(`/microservices/${name}/a`);
      await waitFor('a to go', async () => (await resolver.instances(target)).length === 1);
      assert.equal(await resolver.resolve(target), '127.0.0.1:9202');

      const configured = new EtcdTargetResolver({ clients, log: silentLogger, kratosEtcdHosts: [ETCD] });
      try {
        assert.equal(await configured.resolve(`discovery:///${name}`), '127.0.0.1:9202');
      } finally {
        await configured.close();
      }
    });

    it('returns plain host:port targets as they are', async () => {
      assert.equal(await resolver.resolve('127.0.0.1:58081'), '127.0.0.1:58081');
    });

    it('an unresolvable target rejects with a DiscoveryError saying why, and the process keeps going', async () => {
      const missing = unique('missing.rpc');
      await assert.rejects(resolver.resolve(`etcd://${ETCD}/${missing}`), (err: Error) => {
        assert.ok(err instanceof DiscoveryError);
        assert.match(err.message, new RegExp(`no live instance of '${missing}'.*'${missing}/' in etcd ${ETCD}`));
        return true;
      });
      await assert.rejects(resolver.resolve('consul://127.0.0.1:8500/order'), /unsupported target scheme/);
      await assert.rejects(resolver.resolve('discovery:///order'), /names no etcd.*dtm-driver-kratos/);
      await assert.rejects(resolver.resolve('etcd://127.0.0.1:1/order.rpc'), (err: Error) => {
        assert.ok(err instanceof DiscoveryError);
        assert.match(err.message, /order.rpc.*etcd/);
        return true;
      });
      // A failed lookup is not cached: once etcd has the service, the same resolver finds it.
      await etcd.put(`${missing}/1`).value('127.0.0.1:9301');
      await waitFor(
        'the late instance',
        async () => (await resolver.resolve(`etcd://${ETCD}/${missing}`)) === '127.0.0.1:9301',
      );
    });
  });
});
