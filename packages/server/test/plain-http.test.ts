import assert from 'node:assert/strict';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import { type BranchCall, MAX_REPLY_READ } from '../src/branch/caller.js';
import { HttpBranchCaller } from '../src/branch/http-caller.js';
import { JsonRpcBranchCaller } from '../src/branch/json-rpc-caller.js';
import { MAX_REPLY_HEADERS, PlainHttpPool } from '../src/branch/plain-http.js';
import type { TransGlobal } from '../src/core/model.js';
import { branchCallOf, callerTrans } from './support/branch-call.js';
import { waitFor } from './support/poll.js';
import { seededRandom } from './support/random.js';

// dtx's own HTTP/1.1 client for plain branch calls (plain-http.ts), against a raw TCP server on loopback that
// writes replies byte for byte as each test scripts them: framings, cut-up replies, broken ones, and the life of
// a keep-alive connection. (branch-reply.test.ts and url-policy.test.ts run the same caller against node's HTTP
// server and the branch-URL policy.)

/** One request as the raw server read it. */
interface Seen {
  conn: number;
  head: string;
  body: string;
}

type Reply = (socket: Socket, req: Seen) => void;

const trans = (opts: Record<string, unknown> = {}): TransGlobal => callerTrans('g-plain', opts);
const callOf = (url: string, o: { payload?: string; timeoutMs?: number } = {}): BranchCall =>
  branchCallOf('g-plain', url, o);
const until = (what: string, ok: () => boolean, ms = 5000): Promise<boolean> => waitFor(what, ok, ms);

const OK = 'HTTP/1.1 200 OK\r\ncontent-length: 24\r\n\r\n{"dtm_result":"SUCCESS"}';

describe('plain HTTP branch calls (dtx client)', () => {
  let server: Server;
  let base: string;
  const seen: Seen[] = [];
  const sockets = new Set<Socket>();
  let connections = 0;
  /** What the server answers to the n-th request (0-based) since the script was set; the last entry repeats. */
  let script: Reply[] = [];
  let scriptFrom = 0;
  /** The numbers of the connections that have closed. */
  const closedConns = new Set<number>();
  const answer = (...replies: Reply[]): void => {
    script = replies;
    scriptFrom = seen.length;
  };

  before(async () => {
    server = createServer((socket) => {
      const conn = ++connections;
      sockets.add(socket);
      socket.on('close', () => {
        sockets.delete(socket);
        closedConns.add(conn);
      });
      socket.on('error', () => {});
      let buf = Buffer.alloc(0);
      socket.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        for (;;) {
          const end = buf.indexOf('\r\n\r\n');
          if (end === -1) return;
          const head = buf.toString('latin1', 0, end);
          const m = /\r\ncontent-length: (\d+)/i.exec(head);
          const len = m ? Number(m[1]) : 0;
          if (buf.length < end + 4 + len) return;
          const req = { conn, head, body: buf.toString('utf8', end + 4, end + 4 + len) };
          buf = buf.subarray(end + 4 + len);
          const reply = script[Math.max(0, Math.min(seen.length - scriptFrom, script.length - 1))]!;
          seen.push(req);
          reply(socket, req);
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  beforeEach(() => {
    seen.length = 0;
    for (const s of sockets) s.destroy();
    sockets.clear(); // their close events come later; what the tests count starts empty
    answer((s) => s.write(OK));
  });

  after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('writes the request as DTM branches expect it, and keeps the connection for the next call', async () => {
    const caller = new HttpBranchCaller();
    try {
      const before = connections;
      assert.deepEqual(await caller.call(callOf(`${base}/api/TransOut?x=1`)), {
        result: 'SUCCESS',
        message: '{"dtm_result":"SUCCESS"}',
      });
      assert.equal((await caller.call(callOf(`${base}/api/TransIn`, { payload: '' }))).result, 'SUCCESS');
      assert.equal(connections - before, 1, 'the second call reused the connection');
      const [post, get] = seen;
      const port = new URL(base).port;
      assert.equal(
        post!.head,
        `POST /api/TransOut?x=1&gid=g-plain&trans_type=saga&branch_id=01&op=action HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\ncontent-type: application/json\r\ncontent-length: 7`,
      );
      assert.equal(post!.body, '{"a":1}');
      assert.match(get!.head, /^GET \/api\/TransIn\?gid=g-plain&trans_type=saga&branch_id=01&op=action HTTP\/1\.1\r\n/);
      assert.doesNotMatch(get!.head, /content-length/i, 'a GET has no body');
    } finally {
      await caller.close();
    }
  });

  it('reads every framing: chunked (cut anywhere), interim 1xx, 204, to the close, and HTTP/1.0', async () => {
    const body = '{"dtm_result":"FAILURE","msg":"é"}';
    const chunked = `HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5;ext=1\r\n${body.slice(0, 5)}\r\n${Buffer.byteLength(body.slice(5)).toString(16)}\r\n${body.slice(5)}\r\n0\r\nx-trailer: t\r\n\r\n`;
    const bytes = Buffer.from(chunked);
    const caller = new HttpBranchCaller();
    try {
      // the chunked reply one byte at a time: every state of the parser sees a cut
      answer((s) => {
        let i = 0;
        const next = (): void => {
          if (i >= bytes.length) return;
          s.write(bytes.subarray(i, i + 1));
          i++;
          setImmediate(next);
        };
        next();
      });
      assert.deepEqual(await caller.call(callOf(`${base}/a`)), { result: 'FAILURE', message: body });
      answer((s) => s.write(`HTTP/1.1 100 Continue\r\n\r\n${OK}`));
      assert.equal((await caller.call(callOf(`${base}/b`))).message, '{"dtm_result":"SUCCESS"}');
      answer((s) => s.write('HTTP/1.1 204 No Content\r\n\r\n'));
      // a 204 is no 200, so an ERROR by DTM's rule; what matters here is that it was read without a body
      assert.deepEqual(await caller.call(callOf(`${base}/c`)), { result: 'ERROR', message: 'http status 204: ' });
      assert.equal(new Set(seen.map((r) => r.conn)).size, 1, 'all of these kept one connection');
      answer((s) => s.end('HTTP/1.1 200 OK\r\n\r\nto the end'));
      assert.deepEqual(await caller.call(callOf(`${base}/d`)), { result: 'SUCCESS', message: 'to the end' });
      answer((s) => s.write('HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok'));
      assert.equal((await caller.call(callOf(`${base}/e`))).message, 'ok');
      answer((s) => s.write(OK));
      assert.equal((await caller.call(callOf(`${base}/f`))).result, 'SUCCESS');
      const conns = seen.map((r) => r.conn);
      assert.notEqual(conns[4], conns[3], 'a reply read to the close took its connection with it');
      assert.notEqual(conns[5], conns[4], 'an HTTP/1.0 reply ends its connection');
    } finally {
      await caller.close();
    }
  });

  it('a reply that is no HTTP/1.1 is an ERROR naming the problem, and the connection is not used again', async () => {
    const caller = new HttpBranchCaller();
    const cases: [string, RegExp][] = [
      ['SMTP ready\r\n\r\n', /bad status line/],
      ['HTTP/1.1 2000 OK\r\n\r\n', /bad status line/],
      ['HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nok', /conflicting content-length/],
      ['HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n', /bad content-length/],
      ['HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n', /bad chunk size/],
      ['HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nokXY', /bad chunk end/],
      ['HTTP/1.1 101 Switching Protocols\r\n\r\n', /switched protocols/],
      [`HTTP/1.1 200 OK\r\nx-big: ${'a'.repeat(MAX_REPLY_HEADERS)}\r\n\r\n`, /reply headers too long/],
    ];
    try {
      for (const [reply, problem] of cases) {
        seen.length = 0;
        answer((s) => s.write(reply));
        const out = await caller.call(callOf(`${base}/bad`));
        assert.equal(out.result, 'ERROR', reply.slice(0, 40));
        assert.match(out.message, problem);
        answer((s) => s.write(OK));
        assert.equal((await caller.call(callOf(`${base}/next`))).result, 'SUCCESS');
        assert.notEqual(seen[1]!.conn, seen[0]!.conn, `a new connection after: ${reply.slice(0, 40)}`);
      }
    } finally {
      await caller.close();
    }
  });

  it('bytes past the reply, or on an idle connection, retire that connection; the calls go on', async () => {
    const caller = new HttpBranchCaller();
    try {
      answer((s) => s.write(`${OK}HTTP/1.1 200 OK\r\n`));
      assert.equal((await caller.call(callOf(`${base}/a`))).result, 'SUCCESS');
      answer(
        (s) => {
          s.write(OK);
          setTimeout(() => s.write('unasked'), 20);
        },
        (s) => s.write(OK),
      );
      assert.equal((await caller.call(callOf(`${base}/b`))).result, 'SUCCESS');
      const unasked = seen[seen.length - 1]!.conn;
      await until('the connection that got unasked bytes to close', () => closedConns.has(unasked));
      assert.equal((await caller.call(callOf(`${base}/c`))).result, 'SUCCESS');
      const conns = seen.map((r) => r.conn);
      assert.equal(new Set(conns).size, 3, `each call on its own connection (${conns.join(', ')})`);
    } finally {
      await caller.close();
    }
  });

  it('a pooled connection the server closed is not used; one closed as the request crossed is sent once more', async () => {
    const caller = new HttpBranchCaller();
    try {
      answer((s) => s.end(OK.replace('200 OK\r\n', '200 OK\r\nkeep-alive: timeout=5\r\n')));
      assert.equal((await caller.call(callOf(`${base}/a`))).result, 'SUCCESS');
      await until('the server to have closed the connection', () => sockets.size === 0);
      answer((s) => s.write(OK));
      assert.equal((await caller.call(callOf(`${base}/b`))).result, 'SUCCESS', 'the closed one was not used');
      // the server takes the next request on the kept connection and closes it unanswered: the close and the
      // request crossed; the caller sends it again on a new connection
      seen.length = 0;
      answer(
        (s) => s.destroy(),
        (s) => s.write(OK),
      );
      assert.deepEqual(await caller.call(callOf(`${base}/c`)), {
        result: 'SUCCESS',
        message: '{"dtm_result":"SUCCESS"}',
      });
      assert.equal(seen.length, 2);
      assert.notEqual(seen[1]!.conn, seen[0]!.conn);
      // on a new connection the same close is the branch's answer: an ERROR, not sent again
      for (const s of sockets) s.destroy();
      await until('no connection left', () => sockets.size === 0);
      seen.length = 0;
      answer((s) => s.destroy());
      const out = await caller.call(callOf(`${base}/d`));
      assert.equal(out.result, 'ERROR');
      assert.match(out.message, /other side closed|ECONNRESET/);
      assert.equal(seen.length, 1, 'a fresh connection closed unanswered is not sent again');
    } finally {
      await caller.close();
    }
  });

  it('an idle connection is closed by the caller before the keep-alive timeout the server announced', async () => {
    const caller = new HttpBranchCaller();
    try {
      answer((s) => s.write(OK.replace('200 OK\r\n', '200 OK\r\nkeep-alive: timeout=2\r\n')));
      assert.equal((await caller.call(callOf(`${base}/a`))).result, 'SUCCESS');
      assert.equal(sockets.size, 1, 'kept open after the reply');
      // 2 s announced, so given up after 1 s: the caller closes it, not the server (which never does here)
      await until('the caller to close the idle connection', () => sockets.size === 0, 10_000);
      answer((s) => s.write(OK));
      assert.equal((await caller.call(callOf(`${base}/b`))).result, 'SUCCESS');
      assert.notEqual(seen[1]!.conn, seen[0]!.conn);
    } finally {
      await caller.close();
    }
  });

  it('a reply of MAX_REPLY_READ bytes or more is cut there; a half-sent reply past its timeout is a timeout', async () => {
    const caller = new HttpBranchCaller();
    try {
      answer((s) => {
        s.write(`HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n`);
        const piece = 'y'.repeat(64 * 1024);
        for (let i = 0; i < 8; i++) s.write(`${piece.length.toString(16)}\r\n${piece}\r\n`);
      });
      assert.ok(8 * 64 * 1024 > MAX_REPLY_READ, 'the reply is longer than what is read of it');
      const pool = new PlainHttpPool();
      try {
        const long = await pool.request({ origin: base, path: '/long', method: 'GET', headers: {}, body: null }, 3000);
        assert.equal(long.statusCode, 200);
        assert.equal(long.body.length, MAX_REPLY_READ);
        assert.match(long.body, /^y+$/);
      } finally {
        pool.close();
      }
      answer((s) => s.write('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{"dtm'));
      const slow = await caller.call(callOf(`${base}/slow`, { timeoutMs: 200 }));
      assert.equal(slow.result, 'ERROR');
      assert.equal(slow.timeout, true);
      assert.match(slow.message, /longer than its timeout of 200 ms/);
    } finally {
      await caller.close();
    }
  });

  it("a transaction's own headers are sent as given; one that routes the request (Host) goes through undici", async () => {
    const caller = new HttpBranchCaller();
    try {
      const call = callOf(`${base}/h`);
      call.trans = trans({ branch_headers: { Authorization: 'Bearer t1', 'x-tenant': 'acme' } });
      assert.equal((await caller.call(call)).result, 'SUCCESS');
      const first = seen[0]!;
      assert.match(first.head, /\r\nAuthorization: Bearer t1\r\n/, 'the name as the transaction wrote it');
      assert.match(first.head, /\r\nx-tenant: acme\r\n/);
      assert.match(first.head, new RegExp(`\r\nhost: 127\\.0\\.0\\.1:${new URL(base).port}\r\n`));
      const routed = callOf(`${base}/h`);
      routed.trans = trans({ branch_headers: { Host: 'branch.internal' } });
      assert.equal((await caller.call(routed)).result, 'SUCCESS');
      const second = seen[1]!;
      assert.match(second.head, /\r\nhost: branch\.internal\r\n/i, "undici sends the transaction's Host");
      assert.doesNotMatch(second.head, /host: 127\.0\.0\.1/i);
      assert.notEqual(second.conn, first.conn, 'undici has connections of its own');
      assert.equal(PlainHttpPool.canSend({ Authorization: 'x' }), true);
      for (const name of ['Host', 'content-length', 'Connection', 'Transfer-Encoding', 'expect']) {
        assert.equal(PlainHttpPool.canSend({ [name]: '1' }), false, name);
      }
    } finally {
      await caller.close();
    }
  });

  it('JSON-RPC branches over plain http take this client too (undici would add a Connection header)', async () => {
    const rpc = new JsonRpcBranchCaller();
    const http = new HttpBranchCaller();
    try {
      answer((s) => s.write('HTTP/1.1 200 OK\r\ncontent-length: 36\r\n\r\n{"jsonrpc":"2.0","id":"1","result":1}'));
      const out = await rpc.call(callOf(`${base}/rpc?method=TransOut`));
      assert.equal(out.result, 'SUCCESS');
      assert.match(seen[0]!.head, /^POST \/rpc\?method=TransOut HTTP\/1\.1\r\n/);
      assert.match(seen[0]!.body, /"method":"TransOut"/);
      assert.doesNotMatch(seen[0]!.head, /\r\nconnection:/i);
      // the same server through undici (a Host of the transaction's own), for contrast
      const routed = callOf(`${base}/h`);
      routed.trans = trans({ branch_headers: { Host: 'branch.internal' } });
      await http.call(routed);
      assert.match(seen[1]!.head, /\r\nconnection: keep-alive/i);
    } finally {
      await rpc.close();
      await http.close();
    }
  });

  it('a trace header with a line break goes through undici, which refuses it: no header is injected', async () => {
    const caller = new HttpBranchCaller();
    try {
      const call = callOf(`${base}/t`);
      call.trace = {
        traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
        tracestate: 'a=1\r\nx-evil: 1',
      };
      const out = await caller.call(call);
      assert.equal(out.result, 'ERROR');
      assert.equal(seen.length, 0, 'nothing was sent');
      assert.equal(PlainHttpPool.canSend({ tracestate: 'a=1\r\nx-evil: 1' }), false);
      assert.equal(PlainHttpPool.canSend({ 'bad name': 'v' }), false);
      assert.equal(PlainHttpPool.canSend({ traceparent: 'ok', tracestate: 'a=1,b=2' }), true);
    } finally {
      await caller.close();
    }
  });

  it('fuzz: mangled replies end each call (an outcome or an ERROR) and never the next one', async () => {
    const seed = Number(process.env.DTX_FUZZ_SEED ?? 20261208) >>> 0;
    const r = seededRandom(seed);
    const valid = [
      OK,
      'HTTP/1.1 409 Conflict\r\ncontent-length: 24\r\n\r\n{"dtm_result":"FAILURE"}',
      'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n4\r\n{"dt\r\n14\r\nm_result":"SUCCESS"}\r\n0\r\n\r\n',
      'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 425 Too Early\r\n\r\n',
    ].map((t) => Buffer.from(t));
    const caller = new HttpBranchCaller();
    try {
      for (let i = 0; i < 300; i++) {
        const b = Buffer.from(valid[Math.floor(r() * valid.length)]!);
        const edits = 1 + Math.floor(r() * 4);
        let bytes: Buffer = b;
        for (let e = 0; e < edits; e++) {
          const at = Math.floor(r() * bytes.length);
          const kind = r();
          if (kind < 0.4) bytes[at] = Math.floor(r() * 256);
          else if (kind < 0.6) bytes = bytes.subarray(0, at);
          else if (kind < 0.8)
            bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at, at + 8), bytes.subarray(at)]);
          else bytes = Buffer.concat([bytes.subarray(0, at), Buffer.from('\r\n'), bytes.subarray(at)]);
        }
        const cut = Math.floor(r() * (bytes.length + 1));
        // the mangled reply in two writes, then the server closes: every call has an end without a timer
        answer((s) => {
          s.write(bytes.subarray(0, cut));
          setImmediate(() => s.end(bytes.subarray(cut)));
        });
        const out = await caller.call(callOf(`${base}/f${i}`, { timeoutMs: 2000 }));
        assert.ok(['SUCCESS', 'FAILURE', 'ONGOING', 'ERROR'].includes(out.result), `case ${i} (seed ${seed})`);
        assert.equal(out.timeout, undefined, `case ${i} (seed ${seed}) ended by the close, not the timer`);
        answer((s) => s.write(OK));
        assert.equal((await caller.call(callOf(`${base}/ok${i}`))).result, 'SUCCESS', `after case ${i} (seed ${seed})`);
      }
    } finally {
      await caller.close();
    }
  });

  it('a path with a space or a line break is refused before any connection', async () => {
    const pool = new PlainHttpPool();
    try {
      const before = connections;
      await assert.rejects(
        pool.request({ origin: base, path: '/a b', method: 'GET', headers: {}, body: null }, 1000),
        /invalid request path/,
      );
      await assert.rejects(
        pool.request({ origin: base, path: '/a\r\nx: 1', method: 'GET', headers: {}, body: null }, 1000),
        /invalid request path/,
      );
      assert.equal(connections, before);
    } finally {
      pool.close();
    }
  });
});
