// The grpc-js branch helpers: a real grpc-js server whose handlers are wrapped with grpcBranch, called by a real
// grpc-js client with DTM's metadata; the status codes are what DTM reads (spec §5.5), the barrier comes from the
// metadata, and a code DTM would retry forever is warned about once per method.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { GrpcStatus } from '@dtx/protocol';
import { Client, credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import Database from 'better-sqlite3';
import {
  type GrpcBranchContext,
  grpcBranch,
  grpcBranchService,
  grpcBranchStatusOf,
  grpcQueryPreparedHandler,
} from '../src/grpc/index.js';
import {
  BranchInfoError,
  DuplicatedError,
  ensureBarrierTable,
  FailureError,
  OngoingError,
  sqliteBarrierDb,
} from '../src/index.js';
import {
  type BusiReply,
  type BusiReq,
  busiReq,
  busiService,
  type GrpcTestServer,
  startGrpcServer,
} from './support/grpc-services.js';

const busi = busiService();

/** Records what the helpers log. */
function recordingLogger() {
  const warnings: string[] = [];
  const errors: [string, unknown][] = [];
  return {
    warnings,
    errors,
    warn: (m: string) => warnings.push(m),
    error: (m: string, e: unknown) => errors.push([m, e]),
  };
}

function dtmMetadata(op: string, extra: Record<string, string> = {}): Metadata {
  const md = new Metadata();
  const pairs = {
    'dtm-gid': 'g-grpc-1',
    'dtm-trans_type': 'saga',
    'dtm-branch_id': '01',
    'dtm-op': op,
    'dtm-dtm': '',
    ...extra,
  };
  for (const [k, v] of Object.entries(pairs)) md.set(k, v);
  return md;
}

describe('grpc-js branch helpers', () => {
  let server: GrpcTestServer;
  let client: Client;
  const log = recordingLogger();
  const seen: GrpcBranchContext<BusiReq>[] = [];
  const db = new Database(':memory:');
  const barrierDb = sqliteBarrierDb(db);
  let behaviour: (ctx: GrpcBranchContext<BusiReq, BusiReply>) => unknown = () => undefined;

  before(async () => {
    await ensureBarrierTable(barrierDb);
    db.exec('create table effects (op text, amount integer)');
    server = await startGrpcServer((s) =>
      s.addService(
        busi,
        grpcBranchService(
          {
            TransIn: async (ctx: GrpcBranchContext<BusiReq, BusiReply>) => {
              seen.push(ctx);
              return (await behaviour(ctx)) as BusiReply | undefined;
            },
            TransOut: (ctx: GrpcBranchContext<BusiReq, BusiReply>) => behaviour(ctx) as BusiReply | undefined,
            TransOutRevert: (ctx: GrpcBranchContext<BusiReq, BusiReply>) => behaviour(ctx) as BusiReply | undefined,
            TransInRevert: async (ctx: GrpcBranchContext<BusiReq>) => {
              await ctx.barrier.call(barrierDb, (tx) => {
                tx.prepare('insert into effects values (?, ?)').run(ctx.branchInfo.op, -ctx.request.Amount);
              });
            },
            Hello: async (ctx: GrpcBranchContext<BusiReq>) => {
              await ctx.barrier.call(barrierDb, (tx) => {
                tx.prepare('insert into effects values (?, ?)').run(ctx.branchInfo.op, ctx.request.Amount);
              });
              return { Message: `hello ${ctx.request.Note}` };
            },
            QueryPrepared: grpcQueryPreparedHandler(barrierDb),
          },
          { logger: log },
        ),
      ),
    );
    client = new Client(server.address, credentials.createInsecure());
  });
  after(async () => {
    client.close();
    await server.close();
    db.close();
  });

  /** Calls `method` and returns the status code, details and decoded reply. */
  const call = (method: string, md: Metadata, amount = 30, note = '') =>
    new Promise<{ code: number; details: string; reply?: BusiReply }>((resolve) => {
      const def = busi[method]!;
      client.makeUnaryRequest(
        def.path,
        (b: Buffer) => b,
        def.responseDeserialize,
        busiReq(busi, amount, note),
        md,
        { deadline: Date.now() + 10_000 },
        (err: ServiceError | null, reply?: BusiReply) =>
          resolve(err ? { code: err.code, details: err.details } : { code: GrpcStatus.OK, details: '', reply }),
      );
    });

  test('a returned reply is OK; undefined is an empty reply; the request and the dtm-* metadata reach the handler', async () => {
    behaviour = (ctx) => ({ Message: `got ${ctx.request.Amount}` });
    const r = await call('TransIn', dtmMetadata('action'));
    assert.deepEqual(r, { code: GrpcStatus.OK, details: '', reply: { Message: 'got 30' } });
    const ctx = seen.at(-1)!;
    assert.deepEqual(ctx.branchInfo, { trans_type: 'saga', gid: 'g-grpc-1', branch_id: '01', op: 'action' });
    assert.equal(ctx.barrier.gid, 'g-grpc-1');
    assert.equal(ctx.barrier, ctx.barrier, 'one barrier per call');
    behaviour = () => undefined;
    assert.deepEqual(await call('TransIn', dtmMetadata('action')), {
      code: GrpcStatus.OK,
      details: '',
      reply: { Message: '' },
    });
  });

  test('FailureError → Aborted, OngoingError → FailedPrecondition, DuplicatedError → OK', async () => {
    behaviour = () => {
      throw new FailureError('insufficient balance');
    };
    assert.deepEqual(await call('TransIn', dtmMetadata('action')), {
      code: GrpcStatus.ABORTED,
      details: 'insufficient balance',
    });
    behaviour = async () => {
      throw new OngoingError('not yet');
    };
    assert.deepEqual(await call('TransIn', dtmMetadata('action')), {
      code: GrpcStatus.FAILED_PRECONDITION,
      details: 'not yet',
    });
    behaviour = () => {
      throw new DuplicatedError('already rolled back');
    };
    assert.equal((await call('TransIn', dtmMetadata('action'))).code, GrpcStatus.OK);
    assert.deepEqual(log.warnings, []);
  });

  test('any other error → Unknown with its message, logged as an error (DTM retries it)', async () => {
    log.errors.length = 0;
    behaviour = () => {
      throw new Error('database is down');
    };
    assert.deepEqual(await call('TransOut', dtmMetadata('action')), {
      code: GrpcStatus.UNKNOWN,
      details: 'database is down',
    });
    assert.equal(log.errors.length, 1);
    assert.match(log.errors[0]![0], /gRPC branch \/busi\.Busi\/TransOut failed \(gid=g-grpc-1 .*op=action\)/);
    assert.deepEqual(log.warnings, [], 'a plain error is a retry on purpose: no warning');
  });

  test('a status code DTM retries forever is passed through and warned about once per method', async () => {
    log.warnings.length = 0;
    behaviour = () => {
      throw Object.assign(new Error('order creation error'), { code: 100 }); // go-zero mall's status.Error(100, …)
    };
    assert.deepEqual(await call('TransOut', dtmMetadata('action')), { code: 100, details: 'order creation error' });
    assert.equal((await call('TransOut', dtmMetadata('action'))).code, 100);
    assert.equal(log.warnings.length, 1, 'once per method');
    assert.match(
      log.warnings[0]!,
      /\/busi\.Busi\/TransOut answered Code\(100\).*retries .* forever.*throw FailureError/s,
    );

    behaviour = () => {
      throw { code: GrpcStatus.INTERNAL, details: 'boom' };
    };
    assert.deepEqual(await call('TransOutRevert', dtmMetadata('compensate')), {
      code: GrpcStatus.INTERNAL,
      details: 'boom',
    });
    assert.equal(log.warnings.length, 2, 'another method warns on its own');
    assert.match(log.warnings[1]!, /TransOutRevert answered Internal/);

    behaviour = () => {
      throw { code: GrpcStatus.ABORTED, details: 'explicit aborted' };
    };
    assert.deepEqual(await call('TransOut', dtmMetadata('action')), {
      code: GrpcStatus.ABORTED,
      details: 'explicit aborted',
    });
    assert.equal(log.warnings.length, 2, 'Aborted is a decision, not a warning');
  });

  test('the barrier from the metadata: once per op, null compensation, hanging action refused', async () => {
    const md = (op: string, gid: string) => dtmMetadata(op, { 'dtm-gid': gid });
    const effects = () => db.prepare('select op, amount from effects order by rowid').all();
    db.exec('delete from effects');
    assert.deepEqual(await call('Hello', md('action', 'g-b1'), 5, 'x'), {
      code: GrpcStatus.OK,
      details: '',
      reply: { Message: 'hello x' },
    });
    assert.equal((await call('Hello', md('action', 'g-b1'), 5, 'x')).code, GrpcStatus.OK, 'a repeat is skipped');
    assert.deepEqual(effects(), [{ op: 'action', amount: 5 }]);

    db.exec('delete from effects');
    assert.equal((await call('TransInRevert', md('compensate', 'g-b2'))).code, GrpcStatus.OK, 'null compensation');
    assert.equal((await call('Hello', md('action', 'g-b2'), 7)).code, GrpcStatus.OK, 'hanging action skipped');
    assert.deepEqual(effects(), []);
  });

  test('missing dtm-* metadata is an Unknown naming the key (a wiring mistake, retried)', async () => {
    const md = new Metadata();
    md.set('dtm-gid', 'g');
    const r = await call('Hello', md);
    assert.equal(r.code, GrpcStatus.UNKNOWN);
    assert.match(r.details, /missing branch info field "trans_type" in the dtm-\* metadata/);
  });

  test('the msg back-check handler answers OK when committed and Aborted when rolled back', async () => {
    const md = (gid: string) => dtmMetadata('msg', { 'dtm-gid': gid, 'dtm-trans_type': 'msg', 'dtm-branch_id': '00' });
    assert.equal((await call('QueryPrepared', md('g-qp-1'))).code, GrpcStatus.ABORTED, 'nothing committed');
    await barrierDb.transaction(async (tx) => {
      await tx.insertIgnore({
        trans_type: 'msg',
        gid: 'g-qp-2',
        branch_id: '00',
        op: 'msg',
        barrier_id: '01',
        reason: 'msg',
      });
    });
    assert.equal((await call('QueryPrepared', md('g-qp-2'))).code, GrpcStatus.OK, 'committed');
  });

  test('grpcBranchStatusOf maps thrown values without a server', () => {
    assert.deepEqual(grpcBranchStatusOf(new FailureError('ONGOING'))?.details, 'ONGOING FAILURE');
    assert.equal(grpcBranchStatusOf(new FailureError(''))?.details, 'FAILURE');
    assert.equal(grpcBranchStatusOf(new DuplicatedError('x')), undefined);
    assert.equal(grpcBranchStatusOf({ code: GrpcStatus.OK }), undefined);
    assert.equal(grpcBranchStatusOf('text')?.code, GrpcStatus.UNKNOWN);
    assert.equal(grpcBranchStatusOf(new BranchInfoError('gid', 'x'))?.code, GrpcStatus.UNKNOWN);
  });

  test('grpcBranch alone wraps one handler with its own warn-once state', async () => {
    const local = recordingLogger();
    const h = grpcBranch(
      () => {
        throw { code: GrpcStatus.UNAVAILABLE, details: 'x' };
      },
      { logger: local },
    );
    const srv = await startGrpcServer((s) => s.addService(busi, { Hello: h }));
    const c = new Client(srv.address, credentials.createInsecure());
    try {
      for (let i = 0; i < 2; i++) {
        const code = await new Promise<number>((resolve) =>
          c.makeUnaryRequest(
            busi.Hello!.path,
            (b: Buffer) => b,
            (b: Buffer) => b,
            Buffer.alloc(0),
            dtmMetadata('action'),
            (err: ServiceError | null) => resolve(err ? err.code : 0),
          ),
        );
        assert.equal(code, GrpcStatus.UNAVAILABLE);
      }
      assert.equal(local.warnings.length, 1);
    } finally {
      c.close();
      await srv.close();
    }
  });
});
