import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Etcd3 } from 'etcd3';
import { createDiscovery, type Discovery, LeasedKey } from '../src/discovery/index.js';
import { createLogger, silentLogger } from '../src/observe/logger.js';
import { freePort, startTestDtx, type TestDtx } from './support/dtx.js';
import { busiReq, DtmGrpcClient, GrpcBusi } from './support/grpc-busi.js';
import { waitFor } from './support/poll.js';
import { gidFor } from './support/trans.js';

// A dtx wired with createDiscovery as server.ts should be (resolver into the branch caller, register once the
// gRPC API listens), against the real etcd: dtx is found through etcd the way a go-zero client finds it, and its
// saga branches are go-zero (discov://) and kratos (discovery:///) targets of real grpc-js services registered
// there, balanced round-robin, dropped when they deregister, and retried while unresolvable.
const ETCD = '127.0.0.1:2379';
const RUN = `dtx-e2e-${process.pid}-${Date.now().toString(36)}`;

describe('discovery wired into a dtx server', () => {
  let etcd: Etcd3;
  let discovery: Discovery;
  let dtx: TestDtx;
  let dtm: DtmGrpcClient;
  const a = new GrpcBusi();
  const b = new GrpcBusi();
  const registrations: LeasedKey[] = [];
  const logLines: string[] = [];
  const dtmKey = `${RUN}-dtmservice`;
  const svcKey = `${RUN}-trans.rpc`;

  /** Registers a busi the way a go-zero service registers itself: `<key>/<leaseId>` = host:port, leased. */
  const registerGoZero = async (key: string, address: string) => {
    const r = new LeasedKey({
      client: etcd,
      keyOf: (id) => `${key}/${id}`,
      value: address,
      ttlSeconds: 10,
      log: silentLogger,
      what: key,
    });
    await r.start();
    registrations.push(r);
    return r;
  };

  before(async () => {
    etcd = new Etcd3({ hosts: `http://${ETCD}` });
    await Promise.all([a.start(), b.start()]);
    const grpcPort = await freePort();
    const config = {
      MicroService: {
        Driver: 'dtm-driver-gozero',
        Target: `etcd://${ETCD}/${dtmKey}`,
        EndPoint: `127.0.0.1:${grpcPort}`,
      },
      GrpcPort: grpcPort,
    };
    discovery = createDiscovery(config, silentLogger, { kratosEtcdHosts: [ETCD] });
    dtx = await startTestDtx(
      { ...config, GrpcPort: grpcPort },
      { resolver: discovery.resolver, log: createLogger('debug', (line) => logLines.push(line)) },
    );
    await discovery.register();
    // A go-zero client of dtx: `etcd://etcd:2379/dtmservice` resolves to the registered endpoint.
    const address = await discovery.resolver.resolve(`etcd://${ETCD}/${dtmKey}`);
    assert.equal(address, dtx.grpc);
    dtm = new DtmGrpcClient(address);
  });
  after(async () => {
    dtm.close();
    await Promise.all(registrations.map((r) => r.stop()));
    await discovery.deregister();
    await dtx.stop();
    await discovery.close();
    await Promise.all([a.stop(), b.stop()]);
    await etcd.delete().prefix(RUN).exec();
    await etcd.delete().prefix(`/microservices/${RUN}`).exec();
    etcd.close();
  });

  const saga = (gid: string, target: string) => ({
    Gid: gid,
    TransType: 'saga',
    Steps: JSON.stringify([
      { action: `${target}/busi.Busi/TransOut`, compensate: `${target}/busi.Busi/TransOutRevert` },
      { action: `${target}/busi.Busi/TransIn`, compensate: `${target}/busi.Busi/TransInRevert` },
    ]),
    BinPayloads: [busiReq(30), busiReq(30)],
  });
  const succeeded = (gid: string) => waitFor(`${gid} succeed`, async () => (await dtx.status(gid)) === 'succeed');
  const callsOf = (gid: string) => [...a.callsOf(gid).map((c) => `a ${c}`), ...b.callsOf(gid).map((c) => `b ${c}`)];

  it('go-zero discov:// branches are balanced round-robin over the registered instances', async () => {
    await registerGoZero(svcKey, a.address);
    await registerGoZero(svcKey, b.address);
    const target = `discov://${ETCD}/${svcKey}`;
    for (let i = 0; i < 3; i++) {
      const gid = gidFor(`disc-rr-${i}`);
      assert.deepEqual(await dtm.call('Submit', saga(gid, target)), {});
      await succeeded(gid);
      const calls = callsOf(gid);
      assert.equal(calls.length, 2);
      assert.deepEqual(calls.map((c) => c.slice(2)).sort(), ['TransIn action', 'TransOut action']);
      assert.deepEqual(calls.map((c) => c[0]).sort(), ['a', 'b'], 'two consecutive calls go to the two instances');
    }
  });

  it('an instance that deregisters is dropped; only the live one is called', async () => {
    const target = `discov://${ETCD}/${svcKey}`;
    const gone = registrations.shift()!; // a
    await gone.stop();
    await waitFor('a to be dropped', async () => !(await discovery.resolver.instances(target)).includes(a.address));
    const gid = gidFor('disc-drop');
    await dtm.call('Submit', saga(gid, target));
    await succeeded(gid);
    assert.deepEqual(callsOf(gid), ['b TransOut action', 'b TransIn action']);
  });

  it('an unresolvable target is a retried error, not a crash; it succeeds once the service registers', async () => {
    const key = `${RUN}-late.rpc`;
    const target = `etcd://${ETCD}/${key}`;
    const gid = gidFor('disc-late');
    await dtm.call('Submit', saga(gid, target));
    await waitFor('the first attempt to fail', () =>
      logLines.some((l) => l.includes(gid) && l.includes(`cannot resolve '${target}'`)),
    );
    assert.equal(await dtx.status(gid), 'submitted');
    assert.deepEqual(await dtx.branchStatuses(gid), ['prepared', 'prepared', 'prepared', 'prepared']);
    await registerGoZero(key, a.address);
    await waitFor('the late instance', async () => (await discovery.resolver.instances(target)).length === 1);
    await dtx.cronFor(gid, 3600);
    await succeeded(gid);
    assert.deepEqual(callsOf(gid), ['a TransOut action', 'a TransIn action']);
  });

  it('kratos discovery:/// branches resolve through the configured etcd', async () => {
    const name = `${RUN}-busi`;
    const lease = etcd.lease(30);
    await lease
      .put(`/microservices/${name}/inst-1`)
      .value(JSON.stringify({ id: 'inst-1', name, version: 'v1', metadata: {}, endpoints: [`grpc://${b.address}`] }));
    try {
      const gid = gidFor('disc-kratos');
      await dtm.call('Submit', saga(gid, `discovery:///${name}`));
      await succeeded(gid);
      assert.deepEqual(callsOf(gid), ['b TransOut action', 'b TransIn action']);
    } finally {
      await lease.revoke();
    }
  });
});
