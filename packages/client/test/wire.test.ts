// The exact requests the SDK sends (spec §2.3, §2.5, §12.5) and how it reads the coordinator's replies
// (spec §2.1), pinned against a recording stand-in coordinator.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  BranchError,
  BranchIdGenerator,
  BranchInfoError,
  CoordinatorError,
  DtxClient,
  DtxError,
  FailureError,
  generateGid,
  OngoingError,
  Tcc,
} from '../src/index.js';
import { type FakeCoordinator, type FakeReply, startFakeCoordinator } from './support/fake-coordinator.js';

/** Replies by path; everything else is SUCCESS. */
function routes(table: Record<string, FakeReply>) {
  return (req: { path: string }) => table[req.path];
}

describe('request bodies', () => {
  let fake: FakeCoordinator;
  let client: DtxClient;
  let replies: Record<string, FakeReply> = {};
  before(async () => {
    fake = await startFakeCoordinator((req) => routes(replies)(req));
    client = new DtxClient(fake.url);
  });
  after(async () => {
    await client.close();
    await fake.close();
  });

  test('a plain saga sends gid, trans_type, steps, payloads, protocol and concurrent, in that order', async () => {
    fake.requests.length = 0;
    await client.saga('g-saga-1').add('http://b/TransOut', 'http://b/TransOutCompensate').submit();
    const [req] = fake.requests;
    assert.equal(req?.method, 'POST');
    assert.equal(req?.path, '/api/dtmsvr/submit');
    assert.equal(req?.headers['content-type'], 'application/json');
    assert.equal(
      req?.body,
      '{"gid":"g-saga-1","trans_type":"saga","steps":[{"action":"http://b/TransOut","compensate":"http://b/TransOutCompensate"}],' +
        '"payloads":["null"],"protocol":"http","concurrent":false}',
    );
  });

  test('a saga with every option and orders', async () => {
    fake.requests.length = 0;
    await client
      .saga('g-saga-2', {
        waitResult: true,
        timeoutToFail: 60,
        requestTimeout: 5,
        retryInterval: 7,
        retryLimit: 2,
        branchHeaders: { 'x-test': 'yes' },
      })
      .add('http://b/A', 'http://b/AC', { amount: 30 })
      .add('http://b/B', 'http://b/BC', 'text')
      .addBranchOrder(1, [0])
      .submit();
    const body = JSON.parse(fake.requests[0]?.body ?? '') as Record<string, unknown>;
    assert.deepEqual(Object.keys(body), [
      'gid',
      'trans_type',
      'steps',
      'payloads',
      'custom_data',
      'protocol',
      'wait_result',
      'timeout_to_fail',
      'request_timeout',
      'retry_interval',
      'branch_headers',
      'concurrent',
      'retry_limit',
    ]);
    assert.deepEqual(body, {
      gid: 'g-saga-2',
      trans_type: 'saga',
      steps: [
        { action: 'http://b/A', compensate: 'http://b/AC' },
        { action: 'http://b/B', compensate: 'http://b/BC' },
      ],
      payloads: ['{"amount":30}', '"text"'],
      custom_data: '{"orders":{"1":[0]},"concurrent":true}',
      protocol: 'http',
      wait_result: true,
      timeout_to_fail: 60,
      request_timeout: 5,
      retry_interval: 7,
      branch_headers: { 'x-test': 'yes' },
      concurrent: false,
      retry_limit: 2,
    });
  });

  test('a concurrent saga without orders sends empty orders', async () => {
    const req = client.saga('g').add('http://b/A', '').concurrent().toRequest();
    assert.equal(req.custom_data, '{"orders":{},"concurrent":true}');
  });

  test('compensateDelay: compensate_delay on that step only; 0 or none sends the DTM body', async () => {
    fake.requests.length = 0;
    await client
      .saga('g-saga-delay')
      .add('http://b/StockDeduct', 'http://b/StockRestore', { sku: 'a1' }, { compensateDelay: 600 })
      .add('http://b/Pay', 'http://b/Refund', null, { compensateDelay: 0 })
      .add('http://b/Notify', '', null, {})
      .submit();
    assert.equal(
      fake.requests[0]?.body,
      '{"gid":"g-saga-delay","trans_type":"saga","steps":[' +
        '{"action":"http://b/StockDeduct","compensate":"http://b/StockRestore","compensate_delay":600},' +
        '{"action":"http://b/Pay","compensate":"http://b/Refund"},{"action":"http://b/Notify","compensate":""}],' +
        '"payloads":["{\\"sku\\":\\"a1\\"}","null","null"],"protocol":"http","concurrent":false}',
    );
    const max = client.saga('g').add('http://b/A', 'http://b/ARevert', null, { compensateDelay: 604800 }).toRequest();
    assert.equal(max.steps?.[0]?.compensate_delay, 604800);
  });

  test('compensateDelay: anything but whole seconds from 0 to 604800, or on a step without compensation, throws at add', () => {
    for (const bad of [-1, 1.5, 604801, Number.NaN, '600' as unknown as number]) {
      assert.throws(
        () => client.saga('g-bad').add('http://b/A', 'http://b/ARevert', null, { compensateDelay: bad }),
        (err) =>
          err instanceof DtxError &&
          /^saga g-bad step 0: compensateDelay must be a whole number of seconds from 0 to 604800 \(7 days\), got /.test(
            err.message,
          ),
        String(bad),
      );
    }
    const saga = client.saga('g-none').add('http://b/A', 'http://b/ARevert');
    assert.throws(
      () => saga.add('http://b/B', '', null, { compensateDelay: 60 }),
      /saga g-none step 1: compensateDelay is set, but the step has no compensation to delay$/,
    );
    // the refused step was not added
    assert.equal(saga.toRequest().steps?.length, 1);
  });

  test('invalid options and orders are refused before anything is sent', () => {
    assert.throws(() => client.saga('g', { timeoutToFail: 1.5 }).toRequest(), DtxError);
    assert.throws(() => client.saga('g').add('http://b/A', '').addBranchOrder(1, [0]).toRequest(), /step 1/);
  });

  test('msg: prepare carries query_prepared, submit also the delay', async () => {
    fake.requests.length = 0;
    const msg = client.msg('g-msg-1', { concurrent: true }).add('http://b/TransIn', { amount: 1 }).delay(5);
    await msg.prepare('http://b/QueryPrepared');
    await msg.submit();
    const expected =
      '{"gid":"g-msg-1","trans_type":"msg","steps":[{"action":"http://b/TransIn"}],"payloads":["{\\"amount\\":1}"],' +
      '"custom_data":"{\\"delay\\":5}","query_prepared":"http://b/QueryPrepared","protocol":"http","concurrent":true}';
    assert.deepEqual(
      fake.requests.map((r) => [r.path, r.body]),
      [
        ['/api/dtmsvr/prepare', expected],
        ['/api/dtmsvr/submit', expected],
      ],
    );
  });

  test('tcc: prepare, registerBranch, try with dtm/gid/branch_id/trans_type/op, submit', async () => {
    fake.requests.length = 0;
    replies = { '/busi/TransOutTry': { body: '{"ok":1}' } };
    const out = await client.tccGlobalTransaction(
      'g-tcc-1',
      async (tcc) => {
        const r1 = await tcc.callBranch(
          { amount: 30 },
          `${fake.origin}/busi/TransOutTry`,
          'http://b/C1',
          'http://b/X1',
        );
        await tcc.callBranch(null, `${fake.origin}/busi/TransInTry?keep=1`, 'http://b/C2', 'http://b/X2');
        return r1.text;
      },
      { timeoutToFail: 30 },
    );
    assert.equal(out, '{"ok":1}');
    const seen = fake.requests.map((r) => `${r.method} ${r.path}`);
    assert.deepEqual(seen, [
      'POST /api/dtmsvr/prepare',
      'POST /api/dtmsvr/registerBranch',
      'POST /busi/TransOutTry',
      'POST /api/dtmsvr/registerBranch',
      'POST /busi/TransInTry',
      'POST /api/dtmsvr/submit',
    ]);
    const tccBody = '{"gid":"g-tcc-1","trans_type":"tcc","protocol":"http","timeout_to_fail":30,"concurrent":false}';
    assert.equal(fake.requests[0]?.body, tccBody);
    assert.equal(fake.requests[5]?.body, tccBody);
    assert.deepEqual(JSON.parse(fake.requests[1]?.body ?? ''), {
      gid: 'g-tcc-1',
      branch_id: '01',
      trans_type: 'tcc',
      data: '{"amount":30}',
      confirm: 'http://b/C1',
      cancel: 'http://b/X1',
    });
    const try1 = fake.requests[2];
    assert.equal(try1?.body, '{"amount":30}');
    assert.deepEqual(Object.fromEntries(try1?.query ?? []), {
      dtm: fake.url,
      gid: 'g-tcc-1',
      branch_id: '01',
      trans_type: 'tcc',
      op: 'try',
    });
    assert.equal(JSON.parse(fake.requests[3]?.body ?? '').branch_id, '02');
    assert.equal(fake.requests[4]?.query.get('keep'), '1');
    assert.equal(fake.requests[4]?.body, 'null');
  });

  test('tcc: a try answering 409 aborts with its text as rollback_reason and throws FailureError', async () => {
    fake.requests.length = 0;
    replies = { '/busi/TransInTry': { status: 409, body: '{"error":"no money"}' } };
    await assert.rejects(
      client.tccGlobalTransaction('g-tcc-2', async (tcc) => {
        await tcc.callBranch({}, `${fake.origin}/busi/TransOutTry`, 'http://b/C1', 'http://b/X1');
        await tcc.callBranch({}, `${fake.origin}/busi/TransInTry`, 'http://b/C2', 'http://b/X2');
      }),
      (err) => err instanceof FailureError && err.message === '{"error":"no money"}',
    );
    assert.deepEqual(fake.bodiesOf('abort'), [
      {
        gid: 'g-tcc-2',
        trans_type: 'tcc',
        protocol: 'http',
        rollback_reason: '{"error":"no money"}',
        concurrent: false,
      },
    ]);
    assert.equal(fake.bodiesOf('submit').length, 0);
  });

  test('tcc: try replies 425 and 500 become OngoingError and BranchError; a throwing body aborts', async () => {
    replies = {
      '/busi/Ongoing': { status: 425, body: 'ONGOING' },
      '/busi/Broken': { status: 500, body: 'boom' },
    };
    await assert.rejects(
      client.tccGlobalTransaction('g-tcc-3', (tcc) => tcc.callBranch({}, `${fake.origin}/busi/Ongoing`, '', '')),
      OngoingError,
    );
    await assert.rejects(
      client.tccGlobalTransaction('g-tcc-4', (tcc) => tcc.callBranch({}, `${fake.origin}/busi/Broken`, '', '')),
      (err) => err instanceof BranchError && err.status === 500 && err.url.endsWith('/busi/Broken'),
    );
    fake.requests.length = 0;
    await assert.rejects(
      client.tccGlobalTransaction('g-tcc-5', async () => {
        throw new Error('out of stock');
      }),
      /out of stock/,
    );
    assert.equal((fake.bodiesOf('abort')[0] as { rollback_reason: string }).rollback_reason, 'out of stock');
  });

  test('nested tcc: Tcc.fromQuery continues the gid with sub-branch ids', async () => {
    fake.requests.length = 0;
    replies = {};
    const tcc = Tcc.fromQuery(
      { gid: 'g-tcc-6', branch_id: '02', trans_type: 'tcc', op: 'try', dtm: `${fake.url}/` },
      client,
    );
    await tcc.callBranch({}, `${fake.origin}/busi/Sub`, 'http://b/C', 'http://b/X');
    await tcc.callBranch({}, `${fake.origin}/busi/Sub`, 'http://b/C', 'http://b/X');
    assert.deepEqual(
      fake.bodiesOf('registerBranch').map((b) => (b as { branch_id: string }).branch_id),
      ['0201', '0202'],
    );
    assert.equal(fake.bodiesOf('prepare').length, 0);
    assert.throws(() => Tcc.fromQuery({ gid: 'g', branch_id: '01', trans_type: 'saga', op: 'action' }, client), /saga/);
    assert.throws(() => Tcc.fromQuery({ gid: 'g', trans_type: 'tcc', op: 'try' }, client), BranchInfoError);
    assert.throws(
      () =>
        Tcc.fromQuery(
          { gid: 'g', branch_id: '01', trans_type: 'tcc', op: 'try', dtm: 'http://other:1/api/dtmsvr' },
          client,
        ),
      /other:1/,
    );
  });
});

describe('coordinator replies', () => {
  let fake: FakeCoordinator;
  let client: DtxClient;
  let next: FakeReply = {};
  before(async () => {
    fake = await startFakeCoordinator(() => next);
    client = new DtxClient(`${fake.url}/`);
  });
  after(async () => {
    await client.close();
    await fake.close();
  });

  const submit = () => client.submit({ gid: 'g', trans_type: 'saga' });

  test('200 SUCCESS resolves', async () => {
    next = {};
    await submit();
  });

  test('409 is a FailureError with the body message', async () => {
    next = {
      status: 409,
      body: '{"dtm_result":"FAILURE","message":"url:http://b/TransIn return failed: no money FAILURE"}',
    };
    await assert.rejects(submit(), (err) => {
      assert.ok(err instanceof FailureError);
      assert.equal(err.message, 'url:http://b/TransIn return failed: no money FAILURE');
      assert.equal(err.result, 'FAILURE');
      return true;
    });
  });

  test('a 200 body containing FAILURE (old style) is a FailureError', async () => {
    next = { body: '{"dtm_result":"FAILURE"}' };
    await assert.rejects(submit(), FailureError);
  });

  test('425 is an OngoingError', async () => {
    next = { status: 425, body: '{"dtm_result":"ONGOING","message":"ONGOING"}' };
    await assert.rejects(submit(), (err) => err instanceof OngoingError && err.message === 'ONGOING');
  });

  test('500 and 404 are CoordinatorErrors with the status', async () => {
    next = { status: 500, body: '{"message":"no gid specified"}' };
    await assert.rejects(
      client.query(''),
      (err) => err instanceof CoordinatorError && err.status === 500 && /no gid specified/.test(err.message),
    );
    next = { status: 404, body: '404 page not found' };
    await assert.rejects(submit(), (err) => err instanceof CoordinatorError && err.status === 404);
  });

  test('newGid and query parse the reply', async () => {
    next = { body: '{"gid":"abc","dtm_result":"SUCCESS"}' };
    assert.equal(await client.newGid(), 'abc');
    next = { body: '{"transaction":null,"branches":[]}' };
    assert.deepEqual(await client.query('x y'), { transaction: null, branches: [] });
    const last = fake.requests.at(-1);
    assert.equal(last?.method, 'GET');
    assert.equal(last?.path, '/api/dtmsvr/query');
    assert.equal(last?.query.get('gid'), 'x y');
  });

  test('a query reply quoting a rollback reason that ends in FAILURE is still a success', async () => {
    const stored = { transaction: { gid: 'g', status: 'failed', rollback_reason: 'x FAILURE' }, branches: [] };
    next = { body: JSON.stringify(stored) };
    assert.deepEqual(await client.query('g'), stored);
  });

  test('an unreachable coordinator is a CoordinatorError with the cause and no status', async () => {
    const closed = await startFakeCoordinator();
    await closed.close();
    const dead = new DtxClient(closed.url);
    try {
      await assert.rejects(dead.submit({ gid: 'g', trans_type: 'saga' }), (err) => {
        assert.ok(err instanceof CoordinatorError);
        assert.equal(err.status, undefined);
        assert.ok(err.cause instanceof Error);
        assert.match(err.message, /cannot reach the coordinator/);
        return true;
      });
    } finally {
      await dead.close();
    }
  });

  test('a bad coordinator URL is refused at construction', () => {
    assert.throws(() => new DtxClient('not a url'), DtxError);
    assert.throws(() => new DtxClient('ftp://x/api'), /http/);
  });
});

describe('ids', () => {
  test('generateGid makes 22 base57 characters, all different', () => {
    const ids = new Set(Array.from({ length: 1000 }, generateGid));
    assert.equal(ids.size, 1000);
    for (const id of ids) assert.match(id, /^[2-9A-HJ-NP-Za-km-z]{22}$/);
  });

  test('BranchIdGenerator counts 01..99 under its parent, then refuses', () => {
    const top = new BranchIdGenerator();
    assert.equal(top.next(), '01');
    assert.equal(top.next(), '02');
    const nested = new BranchIdGenerator('02');
    assert.equal(nested.next(), '0201');
    for (let i = 2; i <= 99; i++) nested.next();
    assert.equal(nested.current(), '0299');
    assert.throws(() => nested.next(), /too many branches/);
    assert.throws(() => new BranchIdGenerator('0'.repeat(20)).next(), /nested too deep/);
  });
});
