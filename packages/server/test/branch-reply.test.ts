import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { type BranchCall, MAX_MESSAGE, MAX_REPLY_READ } from '../src/branch/caller.js';
import { HttpBranchCaller } from '../src/branch/http-caller.js';
import { JsonRpcBranchCaller } from '../src/branch/json-rpc-caller.js';
import type { TransGlobal } from '../src/core/model.js';
import { branchCallOf, callerTrans } from './support/branch-call.js';
import { waitFor } from './support/poll.js';

// How the HTTP and JSON-RPC branch callers read a reply (undici's dispatch with a handler of their own): the
// status and body of every shape of reply, the cut of a long one, a branch that dribbles past its timeout, and a
// connection the branch closes. One real HTTP server on loopback plays every branch.

const trans = (opts: Record<string, unknown> = {}): TransGlobal => callerTrans('g-reply', opts);
const callOf = (url: string, o: { payload?: string; timeoutMs?: number } = {}): BranchCall =>
  branchCallOf('g-reply', url, o);
const until = (what: string, ok: () => boolean, ms = 5000): Promise<boolean> => waitFor(what, ok, ms);

describe('branch replies over HTTP and JSON-RPC', () => {
  let server: Server;
  let base: string;
  const sockets = new Set<Socket>();
  /** Sockets whose connection closed, by the server's count. */
  let closed = 0;
  const routes = new Map<string, (req: IncomingMessage, res: ServerResponse, body: string) => void>();

  before(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const path = (req.url ?? '').split('?')[0]!;
        const route = routes.get(path);
        if (route) route(req, res, Buffer.concat(chunks).toString());
        else res.writeHead(404).end('no route');
      });
    });
    server.on('connection', (s: Socket) => {
      sockets.add(s);
      s.on('close', () => {
        sockets.delete(s);
        closed++;
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('a body with content-length, a chunked body and an empty one are read whole, with the request as sent', async () => {
    let seen: { method?: string; url?: string; body?: string; ct?: string } = {};
    routes.set('/fixed', (req, res, body) => {
      seen = { method: req.method, url: req.url, body, ct: req.headers['content-type'] };
      res.end('{"dtm_result":"SUCCESS"}');
    });
    routes.set('/chunked', (_req, res) => {
      res.write('{"dtm_result":');
      setImmediate(() => res.end('"FAILURE"}'));
    });
    routes.set('/empty', (req, res) => {
      seen = { method: req.method };
      res.end();
    });
    const caller = new HttpBranchCaller();
    try {
      const a = await caller.call(callOf(`${base}/fixed?x=1`));
      assert.deepEqual(a, { result: 'SUCCESS', message: '{"dtm_result":"SUCCESS"}' });
      assert.equal(seen.method, 'POST');
      assert.equal(seen.url, '/fixed?x=1&gid=g-reply&trans_type=saga&branch_id=01&op=action');
      assert.equal(seen.body, '{"a":1}');
      assert.equal(seen.ct, 'application/json');
      const b = await caller.call(callOf(`${base}/chunked`));
      assert.deepEqual(b, { result: 'FAILURE', message: '{"dtm_result":"FAILURE"}' });
      const c = await caller.call(callOf(`${base}/empty`, { payload: '' }));
      assert.deepEqual(c, { result: 'SUCCESS', message: '' });
      assert.equal(seen.method, 'GET', 'a saga branch without a payload is a GET');
    } finally {
      await caller.close();
    }
  });

  it('headers: content-type alone on a plain call; branch_headers and the trace context only on their own calls', async () => {
    const seen: { url?: string; headers: IncomingMessage['headers'] }[] = [];
    routes.set('/', (req, res) => {
      seen.push({ url: req.url, headers: req.headers });
      res.end('{"dtm_result":"SUCCESS"}');
    });
    const caller = new HttpBranchCaller();
    const extra = (h: IncomingMessage['headers']) =>
      Object.keys(h)
        .filter((k) => !['host', 'connection', 'content-length', 'content-type'].includes(k))
        .sort();
    try {
      await caller.call(callOf(base)); // no path: the query goes on '/'
      const rich = callOf(`${base}?x=1`);
      rich.trans = { ...trans(), opts: { branch_headers: { 'x-tenant': 't1' } } } as unknown as TransGlobal;
      rich.trace = { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' };
      await caller.call(rich);
      await caller.call(callOf(base));
      assert.equal(seen.length, 3);
      assert.equal(seen[0]!.url, '/?gid=g-reply&trans_type=saga&branch_id=01&op=action');
      assert.equal(seen[1]!.url, '/?x=1&gid=g-reply&trans_type=saga&branch_id=01&op=action');
      for (const s of seen) assert.equal(s.headers['content-type'], 'application/json');
      assert.deepEqual(extra(seen[0]!.headers), []);
      assert.deepEqual(extra(seen[1]!.headers), ['traceparent', 'x-tenant']);
      assert.equal(seen[1]!.headers['x-tenant'], 't1');
      assert.deepEqual(extra(seen[2]!.headers), [], 'a call after one with extra headers sends none of them');
    } finally {
      await caller.close();
    }
  });

  it('the status decides: 409 is FAILURE, 425 ONGOING, 500 an ERROR that names the status and the body', async () => {
    routes.set('/status', (req, res) => {
      const code = Number(new URL(req.url ?? '', base).searchParams.get('code'));
      res.writeHead(code).end(`status ${code}`);
    });
    const caller = new HttpBranchCaller();
    try {
      assert.equal((await caller.call(callOf(`${base}/status?code=409`))).result, 'FAILURE');
      assert.equal((await caller.call(callOf(`${base}/status?code=425`))).result, 'ONGOING');
      assert.deepEqual(await caller.call(callOf(`${base}/status?code=500`)), {
        result: 'ERROR',
        message: 'http status 500: status 500',
      });
    } finally {
      await caller.close();
    }
  });

  it('a reply longer than MAX_REPLY_READ is cut there, its connection dropped, and the next call works', async () => {
    // far more than the socket buffers of both ends hold: the branch can only finish if the caller reads it all
    const total = 256 * MAX_REPLY_READ;
    let written = 0;
    let writtenAtClose: number | undefined;
    routes.set('/long', (_req, res) => {
      res.writeHead(200, { 'content-length': String(total) });
      const piece = Buffer.alloc(64 * 1024, 'x');
      res.on('close', () => {
        writtenAtClose = written;
      });
      const pump = (): void => {
        while (written < total && !res.destroyed) {
          written += piece.length;
          if (!res.write(piece)) {
            res.once('drain', pump);
            return;
          }
        }
        res.end();
      };
      pump();
    });
    routes.set('/ok', (_req, res) => res.end('ok'));
    const caller = new HttpBranchCaller();
    try {
      const closedBefore = closed;
      const out = await caller.call(callOf(`${base}/long`));
      assert.equal(out.result, 'SUCCESS');
      assert.equal(out.message.length, MAX_MESSAGE, 'the message keeps MAX_MESSAGE of it');
      assert.match(out.message, /^x+$/);
      await until('the long reply connection to close', () => closed > closedBefore && writtenAtClose !== undefined);
      assert.ok(
        writtenAtClose! < total,
        `the caller hung up before the whole reply (${writtenAtClose} of ${total} bytes)`,
      );
      assert.deepEqual(await caller.call(callOf(`${base}/ok`)), { result: 'SUCCESS', message: 'ok' });
    } finally {
      await caller.close();
    }
  });

  it('a reply still dribbling in after its timeout is cut: an ERROR marked as a timeout', async () => {
    let timer: NodeJS.Timeout | undefined;
    /** Bytes written when the connection closed; undefined while it is open. */
    let writtenAtClose: number | undefined;
    routes.set('/dribble', (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      // a byte every 20 ms: no gap reaches the 300 ms body timeout, the whole reply would take 4 s
      let n = 0;
      res.on('close', () => {
        writtenAtClose = n;
        clearInterval(timer);
      });
      timer = setInterval(() => {
        if (n >= 200) {
          clearInterval(timer);
          res.end();
          return;
        }
        n++;
        res.write('.');
      }, 20);
    });
    const caller = new HttpBranchCaller();
    try {
      const out = await caller.call(callOf(`${base}/dribble`, { timeoutMs: 300 }));
      assert.equal(out.result, 'ERROR');
      assert.equal(out.timeout, true);
      assert.match(out.message, /longer than its timeout of 300 ms/);
      await until('the dribbling connection to close', () => writtenAtClose !== undefined);
      assert.ok(writtenAtClose! < 200, `the caller hung up before the whole reply (${writtenAtClose} of 200 bytes)`);
    } finally {
      clearInterval(timer);
      await caller.close();
    }
  });

  it('no reply headers within the timeout: an ERROR marked as a timeout; a reset connection: a plain ERROR', async () => {
    const held: ServerResponse[] = [];
    routes.set('/silent', (_req, res) => held.push(res));
    routes.set('/reset', (req) => req.socket.destroy());
    const caller = new HttpBranchCaller();
    try {
      const silent = await caller.call(callOf(`${base}/silent`, { timeoutMs: 200 }));
      assert.equal(silent.result, 'ERROR');
      assert.equal(silent.timeout, true);
      const reset = await caller.call(callOf(`${base}/reset`));
      assert.equal(reset.result, 'ERROR');
      assert.equal(reset.timeout, undefined);
      assert.match(reset.message, /socket|closed|reset/i);
    } finally {
      for (const r of held) r.destroy();
      await caller.close();
    }
  });

  it('concurrent calls on one caller each get their own reply', async () => {
    routes.set('/echo', (req, res) => res.end(new URL(req.url ?? '', base).searchParams.get('n')));
    const caller = new HttpBranchCaller();
    try {
      const outs = await Promise.all(Array.from({ length: 64 }, (_, i) => caller.call(callOf(`${base}/echo?n=${i}`))));
      assert.deepEqual(
        outs.map((o) => o.message),
        Array.from({ length: 64 }, (_, i) => String(i)),
      );
    } finally {
      await caller.close();
    }
  });

  it('JSON-RPC: the result and the error object are read from the reply, a long one is cut', async () => {
    routes.set('/rpc', (_req, res, body) => {
      const req = JSON.parse(body) as { id: string; method: string; params: { gid: string } };
      res.setHeader('content-type', 'application/json');
      if (req.method === 'fail')
        res.end(JSON.stringify({ jsonrpc: '2.0', id: req.id, error: { code: -32901, message: 'no' } }));
      else if (req.method === 'long')
        res.end(JSON.stringify({ jsonrpc: '2.0', id: req.id, result: 'y'.repeat(MAX_REPLY_READ * 2) }));
      else res.end(JSON.stringify({ jsonrpc: '2.0', id: req.id, result: { gid: req.params.gid } }));
    });
    const caller = new JsonRpcBranchCaller();
    try {
      const ok = await caller.call(callOf(`${base}/rpc?method=ok`));
      assert.equal(ok.result, 'SUCCESS');
      assert.match(ok.message, /g-reply/);
      const failed = await caller.call(callOf(`${base}/rpc?method=fail`));
      assert.equal(failed.result, 'FAILURE');
      // the cut body is no longer JSON, which reads as a success (DTM's rule for a reply that is not JSON-RPC);
      // the message keeps MAX_MESSAGE of it
      const long = await caller.call(callOf(`${base}/rpc?method=long`));
      assert.equal(long.result, 'SUCCESS');
      assert.equal(long.message.length, MAX_MESSAGE);
    } finally {
      await caller.close();
    }
  });
});
