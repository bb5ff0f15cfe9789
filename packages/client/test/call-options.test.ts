// The per-client and per-call options of the SDK: the API token, AbortSignal, the retry policy of transient
// coordinator failures, submit handles, and errors that stay recognisable across two copies of the package.
// Token and retry wire behaviour is pinned on the recording stand-in coordinators (the token check itself is the
// server's, and a real coordinator cannot be made to answer 503 on demand); handles run against a real dtx.
import assert from 'node:assert/strict';
import { createServer as createHttpServer } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { GrpcStatus } from '@dtx/protocol';
import { DtxGrpcClient } from '../src/grpc/index.js';
import * as esm from '../src/index.js';
import {
  CoordinatorError,
  DtxClient,
  DtxError,
  FailureError,
  generateGid,
  isFailure,
  OngoingError,
} from '../src/index.js';
import { type BranchService, startBranchService } from './support/branch-service.js';
import { type DtxServer, startDtxServer } from './support/dtx-server.js';
import { startFakeCoordinator } from './support/fake-coordinator.js';
import { freePort, startFakeGrpcCoordinator } from './support/grpc-services.js';
import { waitFor } from './support/poll.js';

const fast = { retries: 3, minDelayMs: 1, maxDelayMs: 5 };

describe('token', () => {
  test('HTTP: every coordinator call carries Authorization: Bearer <token>', async () => {
    const fake = await startFakeCoordinator();
    const client = new DtxClient(fake.url, { token: 's3cret' });
    try {
      await client.saga('g-token').add('', '').submit();
      await client.query('g-token');
      assert.deepEqual(
        fake.requests.map((r) => [r.path, r.headers.authorization]),
        [
          ['/api/dtmsvr/submit', 'Bearer s3cret'],
          ['/api/dtmsvr/query', 'Bearer s3cret'],
        ],
      );
    } finally {
      await client.close();
      await fake.close();
    }
  });

  test('gRPC: every coordinator call carries authorization metadata', async () => {
    const fake = await startFakeGrpcCoordinator();
    const client = new DtxGrpcClient(fake.address, { token: 's3cret' });
    try {
      await client.saga('g-token').add('', '').submit();
      assert.equal(fake.calls[0]?.metadata.authorization, 'Bearer s3cret');
    } finally {
      await client.close();
      await fake.close();
    }
  });

  test('an empty token or one with a line break is refused', () => {
    assert.throws(() => new DtxClient('http://127.0.0.1:1/api/dtmsvr', { token: '' }), DtxError);
    assert.throws(() => new DtxClient('http://127.0.0.1:1/api/dtmsvr', { token: 'a\r\nx: y' }), /line breaks/);
    assert.throws(() => new DtxGrpcClient('127.0.0.1:1', { token: '' }), DtxError);
  });
});

describe('retry of transient coordinator failures', () => {
  test('HTTP 503 twice, then success: the submit resolves after three attempts', async () => {
    let n = 0;
    const fake = await startFakeCoordinator(() =>
      ++n <= 2 ? { status: 503, body: '{"message":"draining"}' } : undefined,
    );
    const client = new DtxClient(fake.url, { retry: fast });
    try {
      await client.saga('g-retry').add('', '').submit();
      assert.equal(fake.bodiesOf('submit').length, 3);
    } finally {
      await client.close();
      await fake.close();
    }
  });

  test('retries are spent: the CoordinatorError says how transient it was; retry: false makes one attempt', async () => {
    const fake = await startFakeCoordinator(() => ({ status: 503, body: '{"message":"draining"}' }));
    const retrying = new DtxClient(fake.url, { retry: { ...fast, retries: 2 } });
    const once = new DtxClient(fake.url, { retry: false });
    try {
      await assert.rejects(retrying.saga('g1').add('', '').submit(), (err: unknown) => {
        assert.ok(err instanceof CoordinatorError);
        assert.equal(err.status, 503);
        assert.equal(err.transience, 'unsent');
        return true;
      });
      assert.equal(fake.bodiesOf('submit').length, 3);
      await assert.rejects(once.saga('g2').add('', '').submit(), CoordinatorError);
      assert.equal(fake.bodiesOf('submit').length, 4);
    } finally {
      await retrying.close();
      await once.close();
      await fake.close();
    }
  });

  test('504 (may have arrived): submit is retried, abort is not; 500 is not transient at all', async () => {
    const fake = await startFakeCoordinator((r) =>
      r.path.endsWith('/abort') || r.path.endsWith('/submit')
        ? { status: 504, body: 'gateway timeout' }
        : { status: 500 },
    );
    const client = new DtxClient(fake.url, { retry: fast });
    try {
      await assert.rejects(client.abort({ gid: 'g-a', trans_type: 'msg' }), CoordinatorError);
      assert.equal(fake.bodiesOf('abort').length, 1);
      await assert.rejects(client.submit({ gid: 'g-s', trans_type: 'msg' }), CoordinatorError);
      assert.equal(fake.bodiesOf('submit').length, 4);
      await assert.rejects(client.prepare({ gid: 'g-p', trans_type: 'msg' }), (err: unknown) => {
        assert.ok(err instanceof CoordinatorError);
        assert.equal(err.transience, undefined);
        return true;
      });
      assert.equal(fake.bodiesOf('prepare').length, 1);
    } finally {
      await client.close();
      await fake.close();
    }
  });

  test('connection refused is transient and unsent', async () => {
    const port = await freePort();
    const client = new DtxClient(`http://127.0.0.1:${port}/api/dtmsvr`, { retry: fast });
    try {
      await assert.rejects(client.newGid(), (err: unknown) => {
        assert.ok(err instanceof CoordinatorError);
        assert.equal(err.transience, 'unsent');
        return true;
      });
    } finally {
      await client.close();
    }
  });

  test('gRPC UNAVAILABLE: Submit is retried until it succeeds, Abort is not retried', async () => {
    let submits = 0;
    const fake = await startFakeGrpcCoordinator((c) => {
      if (c.method === 'Submit' && ++submits <= 2) return { code: GrpcStatus.UNAVAILABLE, details: 'overloaded' };
      if (c.method === 'Abort') return { code: GrpcStatus.UNAVAILABLE, details: 'overloaded' };
      return undefined;
    });
    const client = new DtxGrpcClient(fake.address, { retry: fast });
    try {
      await client.saga('g-grpc-retry').add('', '').submit();
      assert.equal(fake.calls.filter((c) => c.method === 'Submit').length, 3);
      await assert.rejects(client.msg('g-grpc-abort').abort(), CoordinatorError);
      assert.equal(fake.calls.filter((c) => c.method === 'Abort').length, 1);
    } finally {
      await client.close();
      await fake.close();
    }
  });
});

describe('AbortSignal', () => {
  test('aborting a call in flight rejects it with the signal reason; an aborted signal sends nothing', async () => {
    let received = 0;
    const held: import('node:http').ServerResponse[] = [];
    const server = createHttpServer((_req, res) => {
      received++;
      held.push(res); // never answered
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/dtmsvr`;
    const client = new DtxClient(url, { requestTimeoutMs: 60_000 });
    try {
      const ac = new AbortController();
      const pending = client.saga('g-abort').add('', '').submit({ signal: ac.signal });
      await waitFor(() => (received === 1 ? true : undefined));
      ac.abort();
      await assert.rejects(pending, { name: 'AbortError' });
      await assert.rejects(client.query('g-abort', { signal: AbortSignal.abort() }), { name: 'AbortError' });
      assert.equal(received, 1);
    } finally {
      for (const r of held) r.destroy();
      await client.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  test('gRPC: an aborted signal makes no call', async () => {
    const fake = await startFakeGrpcCoordinator();
    const client = new DtxGrpcClient(fake.address);
    try {
      await assert.rejects(client.saga('g').add('', '').submit({ signal: AbortSignal.abort() }), {
        name: 'AbortError',
      });
      assert.equal(fake.calls.length, 0);
    } finally {
      await client.close();
      await fake.close();
    }
  });
});

describe('submit handles against a real dtx', () => {
  let server: DtxServer;
  let client: DtxClient;
  let busi: BranchService;

  before(async () => {
    server = await startDtxServer();
    client = new DtxClient(server.url);
    busi = await startBranchService((app) => {
      app.post('/ok', async () => ({ dtm_result: 'SUCCESS' }));
      app.post('/no', async (_req, reply) => reply.code(409).send({ dtm_result: 'FAILURE', message: 'no funds' }));
    });
  });
  after(async () => {
    await client.close();
    await busi.close();
    await server.stop();
  });

  test('wait() resolves once the saga succeeded; status() reads the stored state', async () => {
    const handle = client
      .saga()
      .add(`${busi.url}/ok`, `${busi.url}/ok`, {})
      .add(`${busi.url}/ok`, `${busi.url}/ok`, {})
      .submit();
    await handle.wait({ pollIntervalMs: 20 });
    assert.deepEqual(await handle.status(), { status: 'succeed' });
    await handle; // the handle is still the submit's promise
  });

  test('wait() rejects with a FailureError once the saga was compensated', async () => {
    const gid = generateGid();
    const handle = client
      .saga(gid)
      .add(`${busi.url}/ok`, `${busi.url}/ok`, {})
      .add(`${busi.url}/no`, `${busi.url}/ok`, {})
      .submit();
    assert.equal(handle.gid, gid);
    await assert.rejects(handle.wait({ pollIntervalMs: 20 }), FailureError);
    assert.equal((await handle.status())?.status, 'failed');
  });

  test('over gRPC, status() says it cannot query', async () => {
    const fake = await startFakeGrpcCoordinator();
    const grpc = new DtxGrpcClient(fake.address);
    try {
      const handle = grpc.saga().add('', '').submit();
      await handle;
      await assert.rejects(handle.status(), /cannot query/);
    } finally {
      await grpc.close();
      await fake.close();
    }
  });
});

describe('errors across two copies of the package', () => {
  // The CommonJS build is a second copy of every class, as a dual-package consumer may load both.
  const cjs = createRequire(import.meta.url)('../cjs/index.js') as typeof esm;

  test('instanceof holds by brand across copies, and only for the right class', () => {
    assert.notEqual(cjs.FailureError, esm.FailureError);
    const failure = new cjs.FailureError('no funds');
    assert.ok(failure instanceof esm.FailureError);
    assert.ok(failure instanceof esm.DtxError);
    assert.ok(!(failure instanceof esm.OngoingError));
    assert.ok(!(failure instanceof esm.CoordinatorError));
    assert.ok(isFailure(failure));
    assert.ok(new cjs.CoordinatorError('down', 503) instanceof esm.CoordinatorError);
    assert.ok(new esm.OngoingError('later') instanceof cjs.OngoingError);
    assert.ok(!(new Error('plain') instanceof esm.DtxError));
    assert.ok(!({} instanceof esm.FailureError));
    class Custom extends esm.FailureError {}
    assert.ok(!(new esm.FailureError('x') instanceof Custom));
    assert.ok(new Custom('x') instanceof cjs.FailureError);
    assert.ok(!(new esm.FailureError('x') instanceof OngoingError));
  });
});
