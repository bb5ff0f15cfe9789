// The typed errors of coordinator calls against the real coordinator (spec §2.1, §12.4).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  CoordinatorError,
  DtxClient,
  FailureError,
  generateGid,
  isCoordinatorError,
  isFailure,
  isOngoing,
  OngoingError,
} from '../src/index.js';
import { type DtxServer, startDtxServer } from './support/dtx-server.js';

describe('coordinator errors', () => {
  let server: DtxServer;
  let client: DtxClient;

  before(async () => {
    server = await startDtxServer();
    client = new DtxClient(server.url);
  });
  after(async () => {
    await client.close();
    await server.stop();
  });

  /** A saga whose step has empty URLs (no call, immediate success: spec §5.1) finishes at once. */
  const finishedSaga = async () => {
    const saga = client.saga(undefined, { waitResult: true }).add('', '');
    await saga.submit();
    return saga.gid;
  };

  test('newGid and query of an unknown gid', async () => {
    const gid = await client.newGid();
    assert.ok(gid.length > 0);
    assert.deepEqual(await client.query(gid), { transaction: null, branches: [] });
  });

  test('registerBranch on a gid that is not prepared is a FailureError (409)', async () => {
    await assert.rejects(
      client.registerBranch({
        gid: generateGid(),
        branch_id: '01',
        trans_type: 'tcc',
        data: '',
        confirm: '',
        cancel: '',
      }),
      (err) => err instanceof FailureError && /no trans with gid/.test(err.message),
    );
  });

  test("submitting a succeeded transaction again resolves: the SDK reads past DTM's 'cannot sumbmit' FAILURE", async () => {
    const gid = await finishedSaga();
    await client.submit({ gid, trans_type: 'saga', protocol: 'http', concurrent: false });
    assert.equal((await client.query(gid)).transaction?.status, 'succeed');
  });

  test('isFailure / isOngoing / isCoordinatorError read the result field or brand, not only the class', () => {
    // errors as another copy of the package would make them: same fields, other classes
    const failure = Object.assign(new Error('rolled back'), { result: 'FAILURE' });
    const ongoing = Object.assign(new Error('still running'), { result: 'ONGOING' });
    const coordinator = Object.assign(new Error('down'), { [Symbol.for('@dtx/client.CoordinatorError')]: true });
    assert.deepEqual(
      [failure, ongoing, coordinator, new Error('x')].map((e) => [isFailure(e), isOngoing(e), isCoordinatorError(e)]),
      [
        [true, false, false],
        [false, true, false],
        [false, false, true],
        [false, false, false],
      ],
    );
    assert.ok(isFailure(new FailureError('a')) && isOngoing(new OngoingError('b')));
    assert.ok(isCoordinatorError(new CoordinatorError('c', 503)));
    assert.ok(!isFailure({ result: 'FAILURE' }), 'only errors count');
  });

  test('preparing over a finished transaction is a FailureError', async () => {
    const gid = await finishedSaga();
    await assert.rejects(client.msg(gid).prepare('http://127.0.0.1:1/QueryPrepared'), (err) => {
      return err instanceof FailureError && /cannot prepare/.test(err.message);
    });
  });

  test('aborting a finished saga is a FailureError', async () => {
    const gid = await finishedSaga();
    await assert.rejects(
      client.abort({ gid, trans_type: 'saga', protocol: 'http', concurrent: false }),
      (err) => err instanceof FailureError && /cannot abort/.test(err.message),
    );
  });

  test('preparing a prepared msg again succeeds (idempotent)', async () => {
    const msg = client.msg().add('http://127.0.0.1:1/TransIn');
    await msg.prepare('http://127.0.0.1:1/QueryPrepared');
    await msg.prepare('http://127.0.0.1:1/QueryPrepared');
    await msg.abort();
    assert.equal((await client.query(msg.gid)).transaction?.status, 'failed');
  });

  test('a query without gid is a CoordinatorError carrying the HTTP status', async () => {
    // DTM answers 500 `no gid specified` (spec §2.7); dtx validates at the edge and answers 400.
    await assert.rejects(
      client.query(''),
      (err) => err instanceof CoordinatorError && (err.status === 400 || err.status === 500) && /gid/.test(err.message),
    );
  });

  test('a coordinator that is gone is a CoordinatorError with the network error as cause', async () => {
    const gone = await startDtxServer();
    const c = new DtxClient(gone.url);
    await gone.stop();
    try {
      await assert.rejects(c.newGid(), (err) => {
        assert.ok(err instanceof CoordinatorError);
        assert.equal(err.status, undefined);
        assert.ok(err.cause !== undefined);
        return true;
      });
    } finally {
      await c.close();
    }
  });
});
