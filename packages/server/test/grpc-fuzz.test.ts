/**
 * Random and mutated protobuf messages to every method of `dtmgimp.Dtm`, sent as raw bytes to a real `dtx serve`
 * process: every call gets a status (each has a deadline), none is INTERNAL, a string field that is not UTF-8 is
 * INVALID_ARGUMENT, and at the end the process is still running, logged no stray exception and answers a valid
 * call. The run is seeded (DTX_FUZZ_SEED repeats one) and bounded in messages and time.
 *
 * The seeds carry no URL, so no mutation can make the coordinator call anywhere.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DTM_GRPC_SERVICE, DTMGIMP_PROTO, GrpcStatus, grpcCodeName, PROTO_LOADER_OPTIONS } from '@dtx/protocol';
import { Client, credentials, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { DtxProcess, freePort } from './support/dtx.js';
import { call } from './support/http.js';
import { seededRandom } from './support/random.js';

const SEED = Number(process.env.DTX_FUZZ_SEED ?? 20261202) >>> 0;
/** Upper bounds of one run: messages, and seconds spent sending them. */
const MAX_MESSAGES = 6000;
const BUDGET_MS = 20_000;
/** A call without a status by then counts as a hang. */
const CALL_DEADLINE_MS = 10_000;
const WORKERS = 8;

function varint(n: number | bigint): number[] {
  const out: number[] = [];
  let v = BigInt(n);
  while (v > 0x7fn) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return out;
}
const tag = (field: number, wireType: number) => varint(field * 8 + wireType);
const lenField = (field: number, bytes: Uint8Array | number[]) =>
  Buffer.from([...tag(field, 2), ...varint(bytes.length), ...bytes]);

/** Byte sequences that are not UTF-8: a lone surrogate, overlong forms, stray and missing continuations, > U+10FFFF. */
const INVALID_UTF8: number[][] = [
  [0xed, 0xa0, 0x80],
  [0xed, 0xbf, 0xbf],
  [0xc0, 0x80],
  [0xe0, 0x80, 0xaf],
  [0x80],
  [0xbf, 0x41],
  [0xff],
  [0xfe],
  [0xe2, 0x82],
  [0xf0, 0x9f, 0x98],
  [0xf4, 0x90, 0x80, 0x80],
  [0xf8, 0x88, 0x80, 0x80, 0x80],
];

type TypeName = 'Empty' | 'DtmRequest' | 'DtmBranchRequest' | 'DtmTopicRequest';

/** Request type of every method (as in dtmgimp.proto). */
const METHODS: Record<string, TypeName> = {
  NewGid: 'Empty',
  Submit: 'DtmRequest',
  Prepare: 'DtmRequest',
  Abort: 'DtmRequest',
  RegisterBranch: 'DtmBranchRequest',
  PrepareWorkflow: 'DtmRequest',
  Subscribe: 'DtmTopicRequest',
  Unsubscribe: 'DtmTopicRequest',
  DeleteTopic: 'DtmTopicRequest',
};

/**
 * Where a string can be put in each type: a top-level string field, or a map field (a key or a value of an entry),
 * possibly inside a message field (TransOptions.BranchHeaders).
 */
interface StringSlot {
  path: number[];
  map?: 'key' | 'value';
}
const STRING_SLOTS: Record<TypeName, StringSlot[]> = {
  Empty: [],
  DtmRequest: [
    { path: [1] },
    { path: [2] },
    { path: [4] },
    { path: [6] },
    { path: [7] },
    { path: [9] },
    { path: [8], map: 'key' },
    { path: [8], map: 'value' },
    { path: [3, 5], map: 'key' },
    { path: [3, 5], map: 'value' },
  ],
  DtmBranchRequest: [
    { path: [1] },
    { path: [2] },
    { path: [3] },
    { path: [4] },
    { path: [5], map: 'key' },
    { path: [5], map: 'value' },
  ],
  DtmTopicRequest: [{ path: [1] }, { path: [2] }, { path: [3] }],
};

/** Known fields and their wire types (0 varint, 2 length-delimited), for wrong-wire-type mutations. */
const KNOWN_FIELDS: Record<TypeName, [number, number][]> = {
  Empty: [],
  DtmRequest: [
    [1, 2],
    [2, 2],
    [3, 2],
    [4, 2],
    [5, 2],
    [6, 2],
    [7, 2],
    [8, 2],
    [9, 2],
  ],
  DtmBranchRequest: [
    [1, 2],
    [2, 2],
    [3, 2],
    [4, 2],
    [5, 2],
    [6, 2],
  ],
  DtmTopicRequest: [
    [1, 2],
    [2, 2],
    [3, 2],
  ],
};

/** A string slot filled with `bytes`, as a field to append to a message of its type. */
function stringAt(slot: StringSlot, bytes: number[]): Buffer {
  let inner: Buffer;
  const last = slot.path[slot.path.length - 1] as number;
  if (slot.map) {
    const entry =
      slot.map === 'key'
        ? Buffer.concat([lenField(1, bytes), lenField(2, [0x76])])
        : Buffer.concat([lenField(1, [0x6b]), lenField(2, bytes)]);
    inner = lenField(last, entry);
  } else {
    inner = lenField(last, bytes);
  }
  for (let i = slot.path.length - 2; i >= 0; i--) inner = lenField(slot.path[i] as number, inner);
  return inner;
}

interface Case {
  method: string;
  kind: string;
  bytes: Buffer;
  /** The status it must get, when the mutation decides it. */
  expect?: number;
}

describe('gRPC fuzz against dtx serve', () => {
  let dir: string;
  let dtx: DtxProcess;
  let grpcPort: number;
  let client: Client;
  const seeds: Record<TypeName, Buffer[]> = { Empty: [], DtmRequest: [], DtmBranchRequest: [], DtmTopicRequest: [] };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dtx-grpc-fuzz-'));
    grpcPort = await freePort();
    dtx = new DtxProcess(await freePort(), {
      STORE_DRIVER: 'sqlite',
      STORE_SQLITE_PATH: join(dir, 'dtx.sqlite'),
      GRPC_PORT: String(grpcPort),
      // the cron stays idle: nothing accepted here is ever driven further
      TRANS_CRON_INTERVAL: '3600',
      RETRY_INTERVAL: '600',
      TIMEOUT_TO_FAIL: '600',
      LOG_LEVEL: 'error',
    });
    await dtx.start();
    client = new Client(`127.0.0.1:${grpcPort}`, credentials.createInsecure());

    const svc = loadSync(DTMGIMP_PROTO, PROTO_LOADER_OPTIONS)[DTM_GRPC_SERVICE] as Record<
      string,
      { requestSerialize(v: object): Buffer }
    >;
    const enc = (method: string, v: object) =>
      (svc[method] as { requestSerialize(v: object): Buffer }).requestSerialize(v);
    seeds.Empty.push(enc('NewGid', {}));
    const trans = (gid: string, type: string, extra: object = {}) =>
      enc('Submit', { Gid: gid, TransType: type, Steps: 'null', ...extra });
    seeds.DtmRequest.push(
      trans('fuzz-saga', 'saga'),
      trans('fuzz-msg', 'msg', { CustomedData: '{"delay":0}' }),
      trans('fuzz-tcc', 'tcc', {
        TransOptions: {
          WaitResult: true,
          TimeoutToFail: 30,
          RetryInterval: 15,
          RetryLimit: 3,
          RequestTimeout: 5,
          BranchHeaders: { 'x-a': 'b' },
        },
        ReqExtra: { k: 'v' },
        RollbackReason: 'fuzz',
      }),
      trans('fuzz-xa', 'xa', { BinPayloads: [Buffer.from('payload')] }),
    );
    seeds.DtmBranchRequest.push(
      enc('RegisterBranch', {
        Gid: 'fuzz-tcc',
        TransType: 'tcc',
        BranchID: '01',
        Op: 'try',
        Data: {},
        BusiPayload: Buffer.from('{}'),
      }),
      enc('RegisterBranch', { Gid: 'fuzz-xa', TransType: 'xa', BranchID: '01', Data: { op: 'action' } }),
    );
    seeds.DtmTopicRequest.push(enc('Subscribe', { Topic: 'fuzz-topic', URL: 'fuzz-subscriber', Remark: 'é ✓' }));
  });
  after(async () => {
    client?.close();
    await dtx?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** One raw call: its status code and text (OK: 0). */
  function send(method: string, bytes: Buffer): Promise<{ code: number; details: string }> {
    const id = (b: Buffer) => b;
    return new Promise((resolve) => {
      client.makeUnaryRequest(
        `/dtmgimp.Dtm/${method}`,
        id,
        id,
        bytes,
        { deadline: Date.now() + CALL_DEADLINE_MS },
        (err: ServiceError | null) =>
          resolve(err ? { code: err.code, details: err.details } : { code: 0, details: '' }),
      );
    });
  }

  function assertAlive(): void {
    const p = dtx.proc;
    assert.ok(
      p && p.exitCode === null && p.signalCode === null,
      `dtx exited (${p?.exitCode} ${p?.signalCode}): ${dtx.output}`,
    );
    assert.doesNotMatch(dtx.output, /uncaught exception|unhandled promise rejection/, 'a stray exception was logged');
  }

  it('a Prepare whose TransType is a lone surrogate in UTF-8 gets INVALID_ARGUMENT naming it, and dtx keeps serving', async () => {
    const r = await send('Prepare', Buffer.from([0x0a, 0x01, 0x67, 0x12, 0x03, 0xed, 0xa0, 0x80]));
    assert.equal(r.code, GrpcStatus.INVALID_ARGUMENT, `${grpcCodeName(r.code)}: ${r.details}`);
    assert.match(r.details, /TransType: not valid UTF-8/);
    const ok = await send('NewGid', Buffer.alloc(0));
    assert.equal(ok.code, GrpcStatus.OK, ok.details);
    assertAlive();
  });

  it('every string field with invalid UTF-8 gets INVALID_ARGUMENT naming the field, on every method', async () => {
    for (const [method, type] of Object.entries(METHODS)) {
      for (const slot of STRING_SLOTS[type]) {
        for (const bad of INVALID_UTF8) {
          const seed = seeds[type][0] as Buffer;
          const r = await send(method, Buffer.concat([seed, stringAt(slot, [0x61, ...bad, 0x62])]));
          assert.equal(r.code, GrpcStatus.INVALID_ARGUMENT, `${method} ${JSON.stringify(slot)} ${bad}: ${r.details}`);
          assert.match(r.details, /not valid UTF-8/, `${method} ${JSON.stringify(slot)}`);
        }
      }
    }
    assertAlive();
  });

  it(
    `random and mutated messages to every method all get a status, none INTERNAL, and dtx keeps serving (seed ${SEED})`,
    { timeout: 120_000 },
    async (t) => {
      t.diagnostic(`seed ${SEED}: DTX_FUZZ_SEED=${SEED} repeats this run`);
      const rnd = seededRandom(SEED);
      const int = (n: number) => Math.floor(rnd() * n);
      const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)] as T;
      const randomBytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));
      const methods = Object.keys(METHODS);

      const generate = (): Case => {
        const method = pick(methods);
        const type = METHODS[method] as TypeName;
        const seed = pick(seeds[type]);
        const strings = STRING_SLOTS[type];
        const known = KNOWN_FIELDS[type];
        switch (int(9)) {
          case 0:
            return { method, kind: 'random', bytes: randomBytes(int(4) === 0 ? int(512) : int(48)) };
          case 1: {
            const b = Buffer.from(seed);
            for (let i = 1 + int(4); i > 0 && b.length > 0; i--) {
              const at = int(b.length);
              b[at] = (b[at] as number) ^ (1 << int(8));
            }
            return { method, kind: 'bit flips', bytes: b };
          }
          case 2:
            return { method, kind: 'truncation', bytes: seed.subarray(0, int(seed.length + 1)) };
          case 3: {
            const at = int(seed.length + 1);
            return {
              method,
              kind: 'inserted bytes',
              bytes: Buffer.concat([seed.subarray(0, at), randomBytes(1 + int(8)), seed.subarray(at)]),
            };
          }
          case 4: {
            if (strings.length === 0) return { method, kind: 'random', bytes: randomBytes(int(48)) };
            const bad = pick(INVALID_UTF8);
            const text = [...randomBytes(int(4))].map((x) => x & 0x7f);
            const field = stringAt(pick(strings), [...text, ...bad, ...text]);
            return {
              method,
              kind: 'invalid UTF-8',
              bytes: Buffer.concat(int(2) === 0 ? [seed, field] : [field, seed]),
              expect: GrpcStatus.INVALID_ARGUMENT,
            };
          }
          case 5: {
            const field = 1 + int(12);
            const forms = [
              Buffer.from([...tag(field, 0), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), // 2^64 - 1
              Buffer.from([...tag(field, 0), ...Array(10).fill(0xff), 0x01]), // 11 bytes: too long
              Buffer.from([...tag(field, 2), ...varint(2n ** 35n + BigInt(int(1000))), 0x61]), // a huge length
              Buffer.from([...varint(2n ** 40n + BigInt(field * 8)), 0x00]), // a field number past 2^29
              Buffer.from([...tag(field, 0), 0xff, 0xff]), // a varint cut short
            ];
            return { method, kind: 'huge varint', bytes: Buffer.concat([seed, pick(forms)]) };
          }
          case 6: {
            if (known.length === 0) return { method, kind: 'random', bytes: randomBytes(int(48)) };
            const [field, wireType] = pick(known);
            const others = [0, 1, 2, 5].filter((w) => w !== wireType);
            const w = pick(others);
            const value =
              w === 0 ? varint(int(1e6)) : w === 1 ? [...randomBytes(8)] : w === 5 ? [...randomBytes(4)] : [1, 0x61];
            return {
              method,
              kind: 'wrong wire type',
              bytes: Buffer.concat([seed, Buffer.from([...tag(field, w), ...value])]),
              expect: GrpcStatus.INVALID_ARGUMENT,
            };
          }
          case 7:
            return {
              method,
              kind: 'another type',
              bytes: Buffer.concat([
                pick(seeds[pick(Object.keys(seeds) as TypeName[])]),
                int(2) === 0 ? seed : Buffer.alloc(0),
              ]),
            };
          default: {
            // groups: an unknown field's start and end group, nested, balanced or not
            const depth = int(3) === 0 ? 40 + int(40) : 1 + int(6);
            const f = 20 + int(10);
            const open = Array.from({ length: depth }, () => tag(f, 3)).flat();
            const close = int(3) === 0 ? [] : Array.from({ length: depth }, () => tag(f, 4)).flat();
            return { method, kind: 'groups', bytes: Buffer.concat([seed, Buffer.from([...open, ...close])]) };
          }
        }
      };

      const counts = new Map<string, number>();
      const failures: string[] = [];
      const started = Date.now();
      let sent = 0;
      const worker = async () => {
        while (sent < MAX_MESSAGES && Date.now() - started < BUDGET_MS && failures.length === 0) {
          sent++;
          const c = generate();
          const r = await send(c.method, c.bytes);
          const name = grpcCodeName(r.code);
          counts.set(`${c.kind} → ${name}`, (counts.get(`${c.kind} → ${name}`) ?? 0) + 1);
          const what = `${c.method} (${c.kind}) ${c.bytes.toString('hex').slice(0, 400)}: ${name} ${r.details}`;
          if (
            r.code === GrpcStatus.INTERNAL ||
            r.code === GrpcStatus.UNAVAILABLE ||
            r.code === GrpcStatus.DEADLINE_EXCEEDED ||
            r.code === GrpcStatus.CANCELLED
          ) {
            failures.push(what);
          } else if (c.expect !== undefined && r.code !== c.expect) {
            failures.push(`expected ${grpcCodeName(c.expect)}: ${what}`);
          }
        }
      };
      await Promise.all(Array.from({ length: WORKERS }, worker));
      t.diagnostic(`${sent} messages in ${Date.now() - started} ms`);
      t.diagnostic(
        [...counts]
          .sort()
          .map(([k, n]) => `${k}: ${n}`)
          .join('; '),
      );
      assert.deepEqual(failures, [], `seed ${SEED}`);

      assertAlive();
      const ok = await send('NewGid', Buffer.alloc(0));
      assert.equal(ok.code, GrpcStatus.OK, ok.details);
      assert.equal((await call('GET', `http://127.0.0.1:${dtx.port}/api/ping`)).status, 200);
      assertAlive();
    },
  );
});
