import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { GrpcStatus } from '@dtx/protocol';
import type { TargetResolver } from '../src/branch/dispatch.js';
import { createLogger, type Logger } from '../src/observe/logger.js';
import { startTestDtx, type TestDtx } from './support/dtx.js';
import { busiReq, DtmGrpcClient, GrpcBusi } from './support/grpc-busi.js';
import { call } from './support/http.js';
import { gidFor } from './support/trans.js';

// Issue 4 item 7: malformed protobuf, unknown methods, invalid or unresolvable branch URLs and
// oversize messages get clear status codes and log lines, and the server keeps serving.

interface LogLine {
  level: string;
  msg: string;
  [k: string]: unknown;
}

/** A real logger whose lines are kept for the test to read. */
function capture(): { log: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  return { log: createLogger('debug', (l) => lines.push(JSON.parse(l) as LogLine)), lines };
}

function varint(n: number): number[] {
  const out: number[] = [];
  let v = n;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return out;
}
function lenField(field: number, bytes: Buffer | string): Buffer {
  const b = typeof bytes === 'string' ? Buffer.from(bytes) : bytes;
  return Buffer.from([...varint((field << 3) | 2), ...varint(b.length), ...b]);
}

describe('bad input over gRPC', () => {
  let dtx: TestDtx;
  let busi: GrpcBusi;
  let dtm: DtmGrpcClient;
  let lines: LogLine[];
  before(async () => {
    const c = capture();
    lines = c.lines;
    dtx = await startTestDtx({}, { log: c.log });
    busi = await new GrpcBusi().start();
    dtm = new DtmGrpcClient(dtx.grpc);
  });
  beforeEach(() => busi.reset());
  after(async () => {
    dtm.close();
    await dtx.stop();
    await busi.stop();
  });

  const saga = (gid: string, extra: Record<string, unknown> = {}) => ({
    Gid: gid,
    TransType: 'saga',
    Steps: JSON.stringify([
      { action: busi.url('TransOut'), compensate: busi.url('TransOutRevert') },
      { action: busi.url('TransIn'), compensate: busi.url('TransInRevert') },
    ]),
    BinPayloads: [busiReq(30), busiReq(30)],
    ...extra,
  });
  const steps = (action: string) =>
    JSON.stringify([
      { action, compensate: busi.url('TransOutRevert') },
      { action: busi.url('TransIn'), compensate: busi.url('TransInRevert') },
    ]);
  const urlProblem = (field: string, problem: string, url: string) =>
    `${field}: expected an http(s):// URL or a gRPC URL host:port/package.Service/Method (${problem}), got '${url}'`;

  it('invalid requests get INVALID_ARGUMENT naming the protobuf field, and nothing is stored', async () => {
    const tcc = gidFor('bad-grpc-tcc');
    await dtm.call('Prepare', { Gid: tcc, TransType: 'tcc', Steps: 'null' });
    const cases: [string, Record<string, unknown>, string | RegExp][] = [
      ['Submit', saga(''), 'Gid: required'],
      ['Submit', saga('g'.repeat(129)), 'Gid: longer than 128 characters'],
      ['Submit', saga('gid-é'), 'Gid: must be printable ASCII in a gRPC transaction (it is sent as metadata)'],
      [
        'Submit',
        saga(gidFor('bad'), { TransType: 'sagaa' }),
        "TransType: unknown trans type 'sagaa' (one of saga, tcc, msg, xa, workflow)",
      ],
      [
        'Submit',
        saga(gidFor('bad'), { TransType: 'workflow' }),
        'ReqExtra.status: required for a workflow submit: succeed or failed',
      ],
      ['Prepare', saga(gidFor('bad')), 'TransType: a saga is not prepared: submit it directly'],
      [
        'Submit',
        saga(gidFor('bad'), { Steps: '[{"action":' }),
        /^Steps: expected the JSON text of an array of steps: /,
      ],
      ['Submit', saga(gidFor('bad'), { Steps: '{"action":"x"}' }), 'Steps: expected an array, got an object'],
      ['Submit', saga(gidFor('bad'), { Steps: '["x"]' }), 'Steps[0]: expected an object of strings, got string "x"'],
      ['Submit', saga(gidFor('bad'), { Steps: '[{"action":1}]' }), 'Steps[0].action: expected a string, got number 1'],
      [
        'Submit',
        saga(gidFor('bad'), { BinPayloads: [busiReq(1)] }),
        'BinPayloads: expected one payload per step (2), got 1',
      ],
      [
        'Submit',
        saga(gidFor('bad'), { CustomedData: '{"concurrent":' }),
        'CustomedData: expected the text of a JSON object',
      ],
      [
        'Submit',
        saga(gidFor('bad'), { TransOptions: { TimeoutToFail: -1 } }),
        'TransOptions.TimeoutToFail: must not be negative, got -1',
      ],
      [
        'Submit',
        saga(gidFor('bad'), { TransOptions: { RetryInterval: 1e12 } }),
        /^TransOptions.RetryInterval: must be at most \d+, got 1000000000000$/,
      ],
      [
        'Submit',
        saga(gidFor('bad'), { TransOptions: { BranchHeaders: { 'grpc-timeout': '1S' } } }),
        /^TransOptions.BranchHeaders.grpc-timeout: not usable as gRPC metadata/,
      ],
      [
        'Submit',
        saga(gidFor('bad'), { TransOptions: { BranchHeaders: { 'x-trace-bin': 'abc' } } }),
        /^TransOptions.BranchHeaders.x-trace-bin: not usable as gRPC metadata/,
      ],
      [
        'Submit',
        saga(gidFor('bad'), { TransOptions: { BranchHeaders: { 'x-name': 'café' } } }),
        'TransOptions.BranchHeaders.x-name: a gRPC metadata value must be printable ASCII',
      ],
      // branch URLs
      ...(
        [
          ['localhost:8080', "no '/' found"],
          ['localhost:8080/x', "'/x' is not a method path /package.Service/Method"],
          [
            'localhost:8080/busi.Busi/TransOut/extra',
            "'/busi.Busi/TransOut/extra' is not a method path /package.Service/Method",
          ],
          ['ho st:1/busi.Busi/TransOut', "'ho st:1' is not host:port"],
          [
            'not_exists://abc/svc/busi.Busi/TransOut',
            "unknown scheme 'not_exists://': only etcd://, discov://, discovery:// are resolved",
          ],
          ['ftp://x', "unknown scheme 'ftp://': only etcd://, discov://, discovery:// are resolved"],
          ['etcd://127.0.0.1:2379', "no service after 'etcd://127.0.0.1:2379'"],
          ['etcd://127.0.0.1:2379/busi.rpc', "no method after 'etcd://127.0.0.1:2379/busi.rpc'"],
          ['discovery:////busi.Busi/TransOut', 'empty service name'],
        ] as const
      ).map(
        ([url, problem]) =>
          ['Submit', saga(gidFor('bad'), { Steps: steps(url) }), urlProblem('Steps[0].action', problem, url)] as [
            string,
            Record<string, unknown>,
            string,
          ],
      ),
      [
        'Prepare',
        {
          Gid: gidFor('bad'),
          TransType: 'msg',
          Steps: JSON.stringify([{ action: busi.url('TransOut') }]),
          BinPayloads: [busiReq(1)],
          QueryPrepared: 'nowhere',
        },
        urlProblem('QueryPrepared', "no '/' found", 'nowhere'),
      ],
      [
        'Abort',
        { Gid: 'bad-grpc-no-such-gid', TransType: 'tcc' },
        "Gid: no transaction with gid 'bad-grpc-no-such-gid'",
      ],
      // RegisterBranch
      ['RegisterBranch', { Gid: tcc, TransType: 'tcc' }, 'BranchID: required'],
      ['RegisterBranch', { Gid: tcc, TransType: 'saga', BranchID: '01' }, 'TransType: unknow trans type: saga'],
      ['RegisterBranch', { Gid: tcc, TransType: 'xa', BranchID: '01' }, 'Data.url: required for an xa branch'],
      [
        'RegisterBranch',
        { Gid: tcc, TransType: 'tcc', BranchID: '01', Data: { confirm: 'ftp://x' } },
        urlProblem(
          'Data.confirm',
          "unknown scheme 'ftp://': only etcd://, discov://, discovery:// are resolved",
          'ftp://x',
        ),
      ],
      [
        'RegisterBranch',
        { Gid: tcc, TransType: 'tcc', BranchID: '01', Data: { cancel: 'localhost/x' } },
        urlProblem('Data.cancel', "'/x' is not a method path /package.Service/Method", 'localhost/x'),
      ],
    ];
    for (const [method, req, expected] of cases) {
      const e = await dtm.error(method, req);
      const what = `${method} ${JSON.stringify(req).slice(0, 200)}: ${e.code} ${e.details}`;
      assert.equal(e.code, GrpcStatus.INVALID_ARGUMENT, what);
      if (typeof expected === 'string') assert.equal(e.details, expected, what);
      else assert.match(e.details, expected, what);
      if (typeof req.Gid === 'string' && req.Gid !== tcc) assert.equal(await dtx.status(req.Gid), '', what);
      const logged = lines.find((l) => l.msg === 'grpc call failed' && l.error === e.details);
      assert.ok(logged, `a log line for ${what}`);
      assert.equal(logged.level, 'warn');
      assert.equal(logged.code, 'InvalidArgument');
    }
    assert.deepEqual(await dtx.branchStatuses(tcc), [], 'no branch was registered');
    await dtm.call('Abort', { Gid: tcc, TransType: 'tcc' }); // leave nothing for the cron tests below
  });

  it('a malformed protobuf message gets INVALID_ARGUMENT on every method, with a log line', async () => {
    const garbage = [
      Buffer.from([0x0a, 0xff]), // a length that never ends
      Buffer.from([0x0a, 0x05, 0x61]), // field 1: 5 bytes announced, 1 sent
      Buffer.from([0x3a, 0x05, 0x61]), // field 7 likewise
      Buffer.from([0x7b]), // field 15: a group started, never closed
      Buffer.from([0x7f, 0x00]), // field 15 with wire type 7, which does not exist
      Buffer.from([0xff, 0xff, 0xff]),
    ];
    for (const m of [
      'NewGid',
      'Submit',
      'Prepare',
      'Abort',
      'RegisterBranch',
      'PrepareWorkflow',
      'Subscribe',
      'Unsubscribe',
      'DeleteTopic',
    ]) {
      for (const bytes of garbage) {
        const e = await dtm.raw(`/dtmgimp.Dtm/${m}`, bytes).then(
          () => undefined,
          (err: { code: number; details: string }) => err,
        );
        assert.ok(e, `${m} ${bytes.toString('hex')} was accepted`);
        assert.equal(e.code, GrpcStatus.INVALID_ARGUMENT, `${m}: ${e.details}`);
        assert.match(e.details, new RegExp(`^malformed ${m} request message: `));
      }
      assert.ok(
        lines.some(
          (l) => l.msg === 'grpc call failed' && l.method === `/dtmgimp.Dtm/${m}` && l.code === 'InvalidArgument',
        ),
        `logged for ${m}`,
      );
    }
  });

  it('an unknown method or service gets UNIMPLEMENTED, with a log line', async () => {
    for (const path of ['/dtmgimp.Dtm/Nope', '/dtmgimp.Other/Submit', '/busi.Busi/TransOut']) {
      const e = await dtm.raw(path, Buffer.alloc(0)).then(
        () => undefined,
        (err: { code: number; details: string }) => err,
      );
      assert.equal(e?.code, GrpcStatus.UNIMPLEMENTED, path);
      assert.equal(e.details, `The server does not implement the method ${path}`);
      assert.ok(
        lines.some((l) => l.method === path && l.code === 'Unimplemented' && l.level === 'warn'),
        path,
      );
    }
  });

  it('an unresolvable discovery target is accepted, retried with backoff and logged, never a crash', async () => {
    const gid = gidFor('bad-grpc-unresolvable');
    const url = 'etcd://127.0.0.1:2379/busi.rpc/busi.Busi/TransOut';
    const e = await dtm.error('Submit', saga(gid, { Steps: steps(url), TransOptions: { WaitResult: true } }));
    assert.equal(e.code, GrpcStatus.FAILED_PRECONDITION, e.details); // still submitted: ONGOING
    assert.equal(await dtx.status(gid), 'submitted');
    const warn = lines.find((l) => l.msg === 'branch call failed, will retry' && l.gid === gid);
    assert.ok(warn, 'the failed call is logged');
    assert.match(
      String(warn.error),
      /^cannot resolve 'etcd:\/\/127.0.0.1:2379\/busi.rpc': no live instance of 'busi.rpc'/,
    );
    const interval0 = (await dtx.query(gid)).transaction.next_cron_interval as number;
    await dtx.cronFor(gid);
    assert.equal(await dtx.status(gid), 'submitted');
    assert.equal((await dtx.query(gid)).transaction.next_cron_interval, interval0 * 2, 'backed off');
    assert.deepEqual(await dtx.branchStatuses(gid), ['prepared', 'prepared', 'prepared', 'prepared']);
  });

  it('an unreachable host is a retried error (Unavailable)', async () => {
    const gid = gidFor('bad-grpc-unreachable');
    await dtm.error(
      'Submit',
      saga(gid, { Steps: steps('127.0.0.1:1/busi.Busi/TransOut'), TransOptions: { WaitResult: true } }),
    );
    assert.equal(await dtx.status(gid), 'submitted');
    const warn = lines.find((l) => l.msg === 'branch call failed, will retry' && l.gid === gid);
    assert.match(String(warn?.error), /^rpc error: code = Unavailable desc = /);
  });

  it('a flood of malformed messages does not stop a saga in flight; the server keeps serving', async () => {
    const gid = gidFor('bad-grpc-survivor');
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    busi.onCall = async (c) => {
      if (c.gid === gid && c.name === 'TransIn') await held;
    };
    const submitted = dtm.call('Submit', saga(gid, { TransOptions: { WaitResult: true } }));
    try {
      const flood = Array.from({ length: 200 }, (_, i) =>
        dtm.raw(i % 2 ? '/dtmgimp.Dtm/Submit' : '/dtmgimp.Dtm/Nope', Buffer.from([0x0a, 0xff])).then(
          () => -1,
          (err: { code: number }) => err.code,
        ),
      );
      const codes = await Promise.all(flood);
      assert.ok(codes.every((c) => c === GrpcStatus.INVALID_ARGUMENT || c === GrpcStatus.UNIMPLEMENTED));
    } finally {
      release();
    }
    await submitted;
    assert.equal(await dtx.status(gid), 'succeed');
    assert.equal((await call('GET', `${dtx.base}/api/ping`)).status, 200);
    const after = gidFor('bad-grpc-after');
    await dtm.call('Submit', saga(after, { TransOptions: { WaitResult: true } }));
    assert.equal(await dtx.status(after), 'succeed');
  });
});

describe('gRPC message size against HttpBodyLimit 65536', () => {
  const LIMIT = 65536;
  let dtx: TestDtx;
  let busi: GrpcBusi;
  let dtm: DtmGrpcClient;
  let lines: LogLine[];
  before(async () => {
    const c = capture();
    lines = c.lines;
    dtx = await startTestDtx({ HttpBodyLimit: LIMIT }, { log: c.log });
    busi = await new GrpcBusi().start();
    dtm = new DtmGrpcClient(dtx.grpc);
  });
  after(async () => {
    dtm.close();
    await dtx.stop();
    await busi.stop();
  });

  /** A Submit message of exactly `size` bytes: a 1-step wait_result saga padded by its payload. */
  function submitOfSize(gid: string, size: number): { msg: Buffer; payload: Buffer } {
    const head = Buffer.concat([
      lenField(1, gid),
      lenField(2, 'saga'),
      lenField(3, Buffer.from([0x08, 0x01])), // TransOptions { WaitResult: true }
      lenField(7, JSON.stringify([{ action: busi.url('TransOut'), compensate: busi.url('TransOutRevert') }])),
    ]);
    for (let n = size - head.length - 2; n > 0; n--) {
      const payload = Buffer.alloc(n, 0x61);
      const msg = Buffer.concat([head, lenField(5, payload)]);
      if (msg.length === size) return { msg, payload };
    }
    throw new Error(`cannot build ${size} bytes`);
  }

  it('a message of exactly the limit is served; one byte more gets RESOURCE_EXHAUSTED and a log line', async () => {
    const exact = gidFor('grpc-size-exact');
    const ok = submitOfSize(exact, LIMIT);
    assert.equal(ok.msg.length, LIMIT);
    await dtm.raw('/dtmgimp.Dtm/Submit', ok.msg);
    assert.equal(await dtx.status(exact), 'succeed');
    assert.ok(busi.calls.find((c) => c.gid === exact)?.body.equals(ok.payload), 'the branch got the payload');

    const over = gidFor('grpc-size-over');
    const e = await dtm.raw('/dtmgimp.Dtm/Submit', submitOfSize(over, LIMIT + 1).msg).then(
      () => undefined,
      (err: { code: number; details: string }) => err,
    );
    assert.equal(e?.code, GrpcStatus.RESOURCE_EXHAUSTED);
    assert.match(e.details, new RegExp(`larger than max \\(${LIMIT + 1} vs ${LIMIT}\\)`));
    assert.equal(await dtx.status(over), '');
    const logged = lines.find((l) => l.code === 'ResourceExhausted');
    assert.ok(logged, 'logged');
    assert.equal(logged.method, '/dtmgimp.Dtm/Submit');
    assert.equal(logged.level, 'warn');
  });

  it('a 1 MiB message is refused and the server keeps serving', async () => {
    const gid = gidFor('grpc-size-big');
    const e = await dtm
      .call('Submit', {
        Gid: gid,
        TransType: 'saga',
        Steps: JSON.stringify([{ action: busi.url('TransOut') }]),
        BinPayloads: [Buffer.alloc(1 << 20)],
      })
      .then(
        () => undefined,
        (err: { code: number }) => err,
      );
    assert.equal(e?.code, GrpcStatus.RESOURCE_EXHAUSTED);
    const after = gidFor('grpc-size-after');
    await dtm.call('Submit', {
      Gid: after,
      TransType: 'saga',
      Steps: JSON.stringify([{ action: busi.url('TransOut'), compensate: busi.url('TransOutRevert') }]),
      BinPayloads: [busiReq(1)],
      TransOptions: { WaitResult: true },
    });
    assert.equal(await dtx.status(after), 'succeed');
  });
});

describe('discovery targets through a TargetResolver', () => {
  let dtx: TestDtx;
  let busi: GrpcBusi;
  let dtm: DtmGrpcClient;
  const asked: string[] = [];
  let failNext = 0;
  before(async () => {
    busi = await new GrpcBusi().start();
    // an in-process resolver standing in for etcd: every service lives at the busi
    const resolver: TargetResolver = {
      async resolve(target) {
        asked.push(target);
        if (failNext > 0) {
          failNext--;
          throw new Error('no live instance of the service yet');
        }
        return busi.address;
      },
    };
    dtx = await startTestDtx({}, { resolver });
    dtm = new DtmGrpcClient(dtx.grpc);
  });
  after(async () => {
    dtm.close();
    await dtx.stop();
    await busi.stop();
  });

  it('go-zero (etcd://, discov://) and kratos (discovery:///) URLs split into target and method', async () => {
    const gid = gidFor('grpc-discovery');
    await dtm.call('Submit', {
      Gid: gid,
      TransType: 'saga',
      Steps: JSON.stringify([
        {
          action: 'discov://127.0.0.1:2379/busi.rpc/busi.Busi/TransOut',
          compensate: 'etcd://127.0.0.1:2379,127.0.0.2:2379/busi.rpc/busi.Busi/TransOutRevert',
        },
        { action: 'discovery:///busi/busi.Busi/TransIn', compensate: 'discovery:///busi/busi.Busi/TransInRevert' },
      ]),
      BinPayloads: [busiReq(1), busiReq(2)],
      TransOptions: { WaitResult: true },
    });
    assert.equal(await dtx.status(gid), 'succeed');
    assert.deepEqual(busi.callsOf(gid), ['TransOut action', 'TransIn action']);
    assert.deepEqual(asked.slice(-2), ['discov://127.0.0.1:2379/busi.rpc', 'discovery:///busi']);
  });

  it('a query of the URL stays with the target; a resolver failure is retried by the cron', async () => {
    const gid = gidFor('grpc-discovery-retry');
    failNext = 1;
    const e = await dtm.error('Submit', {
      Gid: gid,
      TransType: 'saga',
      Steps: JSON.stringify([{ action: 'etcd://127.0.0.1:2379/busi.rpc/busi.Busi/TransOut?user=u&password=p' }]),
      BinPayloads: [busiReq(1)],
      TransOptions: { WaitResult: true },
    });
    assert.equal(e.code, GrpcStatus.FAILED_PRECONDITION, e.details);
    assert.equal(await dtx.status(gid), 'submitted');
    await dtx.cronFor(gid);
    assert.equal(await dtx.status(gid), 'succeed');
    assert.deepEqual(asked.slice(-2), [
      'etcd://127.0.0.1:2379/busi.rpc?user=u&password=p',
      'etcd://127.0.0.1:2379/busi.rpc?user=u&password=p',
    ]);
  });
});

describe('the configured Limits.* hold over gRPC too', () => {
  let dtx: TestDtx;
  let dtm: DtmGrpcClient;
  before(async () => {
    dtx = await startTestDtx({ Limits: { MaxSteps: 1, MaxBranchHeaders: 1 } });
    dtm = new DtmGrpcClient(dtx.grpc);
  });
  after(async () => {
    dtm.close();
    await dtx.stop();
  });

  it('more steps or branch headers than configured are refused naming the limit, and nothing is stored', async () => {
    const gid = gidFor('grpc-limits');
    const url = '127.0.0.1:1/busi.Busi/TransOut';
    const twoSteps = JSON.stringify([{ action: url }, { action: url }]);
    const e1 = await dtm.error('Submit', { Gid: gid, TransType: 'saga', Steps: twoSteps, BinPayloads: [] });
    assert.equal(e1.code, GrpcStatus.INVALID_ARGUMENT, e1.details);
    assert.match(e1.details, /Limits\.MaxSteps \(1\)/);
    const e2 = await dtm.error('Submit', {
      Gid: gid,
      TransType: 'saga',
      Steps: JSON.stringify([{ action: url }]),
      BinPayloads: [busiReq(1)],
      TransOptions: { BranchHeaders: { a: '1', b: '2' } },
    });
    assert.equal(e2.code, GrpcStatus.INVALID_ARGUMENT, e2.details);
    assert.match(e2.details, /Limits\.MaxBranchHeaders \(1\)/);
    assert.equal(await dtx.status(gid), '');
  });
});
