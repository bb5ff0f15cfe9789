/**
 * Branch handlers over HTTP: the outcome mapping ({@link branchOutcome}) as DTM reads it, and the Fastify and
 * Express adapters on real servers (127.0.0.1, port 0) called with undici.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { classifyHttpReply } from '@dtx/protocol';
import Database from 'better-sqlite3';
import express from 'express';
import Fastify from 'fastify';
import { request } from 'undici';
import type { BranchHandler } from '../src/adapters/branch-context.js';
import { branchOutcome, SUCCESS_BODY, toSafeJson } from '../src/adapters/branch-outcome.js';
import { expressBranch } from '../src/adapters/express.js';
import { allowEmptyJsonBody, fastifyBranch } from '../src/adapters/fastify.js';
import type { BranchLogger } from '../src/adapters/logger.js';
import { queryPreparedHandler } from '../src/adapters/query-prepared-handler.js';
import type { BarrierDb } from '../src/barrier/barrier-db.js';
import { BranchBarrier } from '../src/barrier/branch-barrier.js';
import { BranchInfoError } from '../src/barrier/branch-info.js';
import { ensureBarrierTable } from '../src/barrier/ddl.js';
import { sqliteBarrierDb } from '../src/barrier/sqlite.js';
import { DuplicatedError, FailureError, OngoingError } from '../src/errors.js';

// ---------------------------------------------------------------------------------------------------------------
// branchOutcome, without a server

describe('branchOutcome', () => {
  const cases: [string, Parameters<typeof branchOutcome>[0], number, string, string][] = [
    ['undefined', { ok: true, value: undefined }, 200, SUCCESS_BODY, 'SUCCESS'],
    ['a value', { ok: true, value: { id: 7, name: 'x' } }, 200, '{"id":7,"name":"x"}', 'SUCCESS'],
    ['null', { ok: true, value: null }, 200, 'null', 'SUCCESS'],
    ['a function', { ok: true, value: () => 1 }, 200, SUCCESS_BODY, 'SUCCESS'],
    [
      'FailureError',
      { ok: false, error: new FailureError('no stock') },
      409,
      '{"error":"no stock FAILURE"}',
      'FAILURE',
    ],
    [
      'FailureError with the suffix',
      { ok: false, error: new FailureError('no stock FAILURE') },
      409,
      '{"error":"no stock FAILURE"}',
      'FAILURE',
    ],
    [
      'FailureError without a message',
      { ok: false, error: new FailureError('') },
      409,
      '{"error":"FAILURE"}',
      'FAILURE',
    ],
    ['OngoingError', { ok: false, error: new OngoingError('wait') }, 425, '{"error":"wait ONGOING"}', 'ONGOING'],
    [
      'OngoingError with the suffix',
      { ok: false, error: new OngoingError('wait ONGOING') },
      425,
      '{"error":"wait ONGOING"}',
      'ONGOING',
    ],
    ['DuplicatedError', { ok: false, error: new DuplicatedError('dup') }, 200, SUCCESS_BODY, 'SUCCESS'],
    ['Error', { ok: false, error: new Error('boom') }, 500, '{"error":"boom"}', 'ERROR'],
    ['a thrown string', { ok: false, error: 'oops' }, 500, '{"error":"oops"}', 'ERROR'],
    ['BranchInfoError', { ok: false, error: new BranchInfoError('gid', 'the query string') }, 500, '', 'ERROR'],
  ];
  for (const [name, settlement, status, body, result] of cases) {
    test(`${name} → ${status}`, () => {
      const out = branchOutcome(settlement);
      assert.equal(out.status, status);
      if (body !== '') assert.equal(out.body, body);
      assert.equal(out.result, result);
      assert.equal(classifyHttpReply(out.status, out.body), result, 'DTM reads the reply as intended');
    });
  }

  test('the words FAILURE and ONGOING never change how DTM reads a reply, and JSON decodes them unchanged', () => {
    const value = {
      note: 'FAILURE and ONGOING',
      list: ['ONGOING', 'xFAILUREx'],
      FAILURE: 1,
      nested: { '\\': '\\FAILURE' },
    };
    const settlements: [Parameters<typeof branchOutcome>[0], string][] = [
      [{ ok: true, value }, 'SUCCESS'],
      [{ ok: true, value: 'FAILURE' }, 'SUCCESS'],
      [{ ok: false, error: new Error('insert FAILURE while ONGOING') }, 'ERROR'],
      [{ ok: false, error: new FailureError('refused: ONGOING audit') }, 'FAILURE'],
      [{ ok: false, error: new OngoingError('after FAILURE of x') }, 'ONGOING'],
    ];
    for (const [settlement, result] of settlements) {
      const out = branchOutcome(settlement);
      assert.equal(out.result, result);
      assert.equal(classifyHttpReply(out.status, out.body), result, out.body);
    }
    const ok = branchOutcome({ ok: true, value });
    assert.ok(!ok.body.includes('FAILURE') && !ok.body.includes('ONGOING'), ok.body);
    assert.deepEqual(JSON.parse(ok.body), value);
    const failed = branchOutcome({ ok: false, error: new Error('insert FAILURE while ONGOING') });
    assert.deepEqual(JSON.parse(failed.body), { error: 'insert FAILURE while ONGOING' });
    assert.equal(toSafeJson(undefined), undefined);
  });

  test('a value that is not JSON becomes a 500', () => {
    const out = branchOutcome({ ok: true, value: { n: 1n } });
    assert.equal(out.status, 500);
    assert.match(JSON.parse(out.body).error, /cannot be sent as JSON/);
    assert.equal(out.result, 'ERROR');
  });
});

// ---------------------------------------------------------------------------------------------------------------
// The adapters on real servers

interface Route {
  method: 'GET' | 'POST';
  path: string;
  handler: BranchHandler;
}

interface Server {
  url: string;
  close(): Promise<void>;
}

interface Framework {
  name: string;
  start(routes: Route[], logger: BranchLogger): Promise<Server>;
}

const frameworks: Framework[] = [
  {
    name: 'fastify',
    async start(routes, logger) {
      const app = Fastify();
      allowEmptyJsonBody(app);
      for (const r of routes)
        app.route({ method: r.method, url: r.path, handler: fastifyBranch(r.handler, { logger }) });
      // The same route on an instance without allowEmptyJsonBody, to show why it exists.
      await app.register(async (strict) => {
        strict.removeContentTypeParser('application/json');
        strict.addContentTypeParser(
          'application/json',
          { parseAs: 'string' },
          strict.getDefaultJsonParser('error', 'error'),
        );
        strict.post(
          '/strict/echo',
          fastifyBranch((ctx) => ({ body: ctx.body ?? null }), { logger }),
        );
      });
      await app.listen({ host: '127.0.0.1', port: 0 });
      const { port } = app.server.address() as AddressInfo;
      return { url: `http://127.0.0.1:${port}`, close: () => app.close() };
    },
  },
  {
    name: 'express',
    async start(routes, logger) {
      const app = express();
      // Half of the routes behind express.json(), half reading the body themselves.
      app.use('/parsed', express.json());
      for (const r of routes) {
        const handler = expressBranch(r.handler, { logger });
        const method = r.method === 'GET' ? 'get' : 'post';
        app[method](r.path, handler);
        app[method](`/parsed${r.path}`, handler);
      }
      const server = app.listen(0, '127.0.0.1');
      await new Promise<void>((resolve, reject) => server.once('listening', resolve).once('error', reject));
      const { port } = server.address() as AddressInfo;
      return {
        url: `http://127.0.0.1:${port}`,
        close: () =>
          new Promise<void>((resolve, reject) => {
            server.closeAllConnections();
            server.close((err) => (err ? reject(err) : resolve()));
          }),
      };
    },
  },
];

function branchQuery(info: { gid: string; trans_type: string; branch_id: string; op: string }): string {
  return new URLSearchParams(info).toString();
}

for (const fw of frameworks) {
  describe(`${fw.name} adapter`, () => {
    let server: Server;
    let dir: string;
    let conn: Database.Database;
    let db: BarrierDb<Database.Database>;
    const logged: { message: string; error: unknown }[] = [];
    const seen: { barrierId: string }[] = [];

    before(async () => {
      dir = mkdtempSync(join(tmpdir(), `dtx-adapters-${fw.name}-`));
      conn = new Database(join(dir, 'busi.db'));
      db = sqliteBarrierDb(conn);
      await ensureBarrierTable(db);
      conn.exec('CREATE TABLE busi (account TEXT PRIMARY KEY, balance INTEGER NOT NULL)');
      const credit = (account: string, amount: number) => (tx: Database.Database) => {
        tx.prepare(
          'INSERT INTO busi (account, balance) VALUES (?, ?) ON CONFLICT (account) DO UPDATE SET balance = balance + excluded.balance',
        ).run(account, amount);
      };
      const routes: Route[] = [
        { method: 'POST', path: '/value', handler: () => ({ id: 7, words: 'FAILURE ONGOING' }) },
        { method: 'POST', path: '/undefined', handler: async () => undefined },
        {
          method: 'POST',
          path: '/failure',
          handler: async () => {
            throw new FailureError('no stock');
          },
        },
        {
          method: 'POST',
          path: '/failure-suffixed',
          handler: async () => {
            throw new FailureError('no stock FAILURE');
          },
        },
        {
          method: 'POST',
          path: '/ongoing',
          handler: async () => {
            throw new OngoingError('not yet');
          },
        },
        {
          method: 'POST',
          path: '/duplicated',
          handler: async () => {
            throw new DuplicatedError('already rolled back');
          },
        },
        {
          method: 'POST',
          path: '/error',
          handler: async () => {
            throw new Error('database FAILURE, please retry');
          },
        },
        {
          method: 'POST',
          path: '/echo',
          handler: (ctx) => ({ body: ctx.body ?? null, tenant: ctx.headers['x-tenant'] ?? null }),
        },
        { method: 'POST', path: '/info', handler: (ctx) => ctx.branchInfo },
        {
          method: 'POST',
          path: '/transfer',
          handler: async (ctx) => {
            const { account, amount } = ctx.body as { account: string; amount: number };
            const sign = ctx.barrier.op === 'compensate' ? -1 : 1;
            const outcomes = [
              await ctx.barrier.call(db, credit(account, sign * amount)),
              await ctx.barrier.call(db, credit(`${account}-fee`, sign)),
            ];
            seen.push({ barrierId: ctx.barrier.barrierId });
            return { outcomes };
          },
        },
        {
          method: 'POST',
          path: '/msg',
          handler: async (ctx) => {
            const { account } = ctx.body as { account: string };
            await ctx.barrier.call(db, credit(account, 1));
          },
        },
        { method: 'GET', path: '/query-prepared', handler: queryPreparedHandler(db) },
      ];
      server = await fw.start(routes, { error: (message, error) => logged.push({ message, error }) });
    });

    after(async () => {
      await server?.close();
      conn?.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    const prefixes = fw.name === 'express' ? ['', '/parsed'] : [''];

    async function call(
      path: string,
      options: { body?: unknown; query?: string; headers?: Record<string, string> } = {},
    ) {
      const hasBody = options.body !== undefined;
      const res = await request(`${server.url}${path}${options.query ? `?${options.query}` : ''}`, {
        method: path.endsWith('query-prepared') ? 'GET' : 'POST',
        headers: { 'content-type': 'application/json', ...options.headers },
        ...(hasBody ? { body: typeof options.body === 'string' ? options.body : JSON.stringify(options.body) } : {}),
      });
      const text = await res.body.text();
      return {
        status: res.statusCode,
        body: text,
        type: String(res.headers['content-type']),
        dtm: classifyHttpReply(res.statusCode, text),
      };
    }

    const info = () => ({ gid: randomUUID(), trans_type: 'saga', branch_id: '01', op: 'action' });

    test('each outcome maps to the status and body DTM expects', async () => {
      for (const prefix of prefixes) {
        const query = branchQuery(info());
        const expectations: [string, number, string, string][] = [
          ['/value', 200, '{"id":7,"words":"\\u0046AILURE \\u004fNGOING"}', 'SUCCESS'],
          ['/undefined', 200, SUCCESS_BODY, 'SUCCESS'],
          ['/failure', 409, '{"error":"no stock FAILURE"}', 'FAILURE'],
          ['/failure-suffixed', 409, '{"error":"no stock FAILURE"}', 'FAILURE'],
          ['/ongoing', 425, '{"error":"not yet ONGOING"}', 'ONGOING'],
          ['/duplicated', 200, SUCCESS_BODY, 'SUCCESS'],
          ['/error', 500, '{"error":"database \\u0046AILURE, please retry"}', 'ERROR'],
        ];
        for (const [path, status, body, dtm] of expectations) {
          const res = await call(`${prefix}${path}`, { query, body: { a: 1 } });
          assert.deepEqual(
            { status: res.status, body: res.body, dtm: res.dtm },
            { status, body, dtm },
            `${prefix}${path}`,
          );
          assert.match(res.type, /^application\/json/);
        }
        const value = await call(`${prefix}/value`, { query, body: {} });
        assert.deepEqual(JSON.parse(value.body), { id: 7, words: 'FAILURE ONGOING' });
      }
    });

    test('a 500 is logged with the error and the branch', async () => {
      const before = logged.length;
      const branch = info();
      await call('/error', { query: branchQuery(branch), body: {} });
      assert.equal(logged.length, before + 1);
      const entry = logged.at(-1)!;
      assert.ok(entry.error instanceof Error && entry.error.message === 'database FAILURE, please retry');
      assert.match(entry.message, new RegExp(`gid=${branch.gid}`));
      assert.match(entry.message, /\/error/);
    });

    test('the handler gets the JSON body, the headers and the branch info', async () => {
      for (const prefix of prefixes) {
        const branch = info();
        const echo = await call(`${prefix}/echo`, {
          query: branchQuery(branch),
          body: { amount: 30, note: 'é' },
          headers: { 'x-tenant': 'acme' },
        });
        assert.deepEqual(JSON.parse(echo.body), { body: { amount: 30, note: 'é' }, tenant: 'acme' });
        const got = await call(`${prefix}/info`, { query: `${branchQuery(branch)}&dtm=http%3A%2F%2Fdtm`, body: {} });
        assert.equal(got.status, 200);
        assert.deepEqual(JSON.parse(got.body), branch);
      }
    });

    test('an empty body (a GET back-check, an XA phase 2 POST) is undefined', async () => {
      for (const prefix of prefixes) {
        const res = await call(`${prefix}/echo`, { query: branchQuery(info()) });
        assert.deepEqual(
          { status: res.status, body: JSON.parse(res.body) },
          { status: 200, body: { body: null, tenant: null } },
        );
      }
      if (fw.name === 'fastify') {
        // Without allowEmptyJsonBody, Fastify itself refuses the request, before the handler runs.
        const strict = await call('/strict/echo', { query: branchQuery(info()) });
        assert.equal(strict.status, 400);
        assert.equal(strict.dtm, 'ERROR');
      }
    });

    test('a body that is not JSON is refused before the handler runs', async () => {
      const res = await call('/echo', { query: branchQuery(info()), body: '{"amount":' });
      assert.notEqual(res.status, 200);
      assert.equal(res.dtm, 'ERROR');
    });

    test('a missing branch info field is a 500 naming the field', async () => {
      for (const field of ['gid', 'trans_type', 'branch_id', 'op'] as const) {
        const branch: Record<string, string> = info();
        delete branch[field];
        for (const path of ['/transfer', '/info']) {
          const res = await call(path, {
            query: new URLSearchParams(branch).toString(),
            body: { account: 'a', amount: 1 },
          });
          assert.equal(res.status, 500, path);
          assert.match(
            JSON.parse(res.body).error,
            new RegExp(`missing branch info field "${field}" in the query string`),
          );
          assert.equal(res.dtm, 'ERROR');
        }
      }
      // A handler that does not use the branch info does not need it.
      assert.equal((await call('/undefined')).status, 200);
    });

    test('ctx.barrier comes from the query string and guards the business (saga action, repeat, compensate)', async () => {
      const account = randomUUID();
      const gid = randomUUID();
      const q = (op: string) => branchQuery({ gid, trans_type: 'saga', branch_id: '01', op });
      const balance = (a: string) =>
        (conn.prepare('SELECT balance FROM busi WHERE account = ?').get(a) as { balance: number } | undefined)
          ?.balance ?? 0;
      const seenBefore = seen.length;
      const first = await call('/transfer', { query: q('action'), body: { account, amount: 30 } });
      assert.deepEqual(JSON.parse(first.body), { outcomes: ['executed', 'executed'] });
      assert.equal(seen[seenBefore]?.barrierId, '02');
      const again = await call('/transfer', { query: q('action'), body: { account, amount: 30 } });
      assert.deepEqual(JSON.parse(again.body), { outcomes: ['duplicate', 'duplicate'] });
      assert.deepEqual([balance(account), balance(`${account}-fee`)], [30, 1]);
      const undo = await call('/transfer', { query: q('compensate'), body: { account, amount: 30 } });
      assert.deepEqual(JSON.parse(undo.body), { outcomes: ['executed', 'executed'] });
      assert.deepEqual([balance(account), balance(`${account}-fee`)], [0, 0]);

      const early = branchQuery({ gid: randomUUID(), trans_type: 'saga', branch_id: '01', op: 'compensate' });
      const nullComp = await call('/transfer', { query: early, body: { account, amount: 5 } });
      assert.deepEqual(JSON.parse(nullComp.body), { outcomes: ['null-compensation', 'null-compensation'] });
      assert.equal(balance(account), 0);
      const rows = conn
        .prepare('SELECT op, barrier_id, reason FROM barrier WHERE gid = ? ORDER BY barrier_id, op')
        .all(gid);
      assert.deepEqual(rows, [
        { op: 'action', barrier_id: '01', reason: 'action' },
        { op: 'compensate', barrier_id: '01', reason: 'compensate' },
        { op: 'action', barrier_id: '02', reason: 'action' },
        { op: 'compensate', barrier_id: '02', reason: 'compensate' },
      ]);
    });

    test('queryPreparedHandler answers the msg back-check; a msg call after it is DUPLICATED, which is a 200', async () => {
      const account = randomUUID();
      const msgQuery = (gid: string) => branchQuery({ gid, trans_type: 'msg', branch_id: '00', op: 'msg' });
      const committed = randomUUID();
      assert.equal((await call('/msg', { query: msgQuery(committed), body: { account } })).status, 200);
      const ok = await call('/query-prepared', { query: msgQuery(committed) });
      assert.deepEqual(
        { status: ok.status, body: ok.body, dtm: ok.dtm },
        { status: 200, body: SUCCESS_BODY, dtm: 'SUCCESS' },
      );

      const abandoned = randomUUID();
      const rolledBack = await call('/query-prepared', { query: msgQuery(abandoned) });
      assert.equal(rolledBack.status, 409);
      assert.equal(rolledBack.dtm, 'FAILURE');
      assert.match(JSON.parse(rolledBack.body).error, / FAILURE$/);
      const late = await call('/msg', { query: msgQuery(abandoned), body: { account } });
      assert.deepEqual({ status: late.status, body: late.body }, { status: 200, body: SUCCESS_BODY });
      assert.equal(
        (conn.prepare('SELECT balance FROM busi WHERE account = ?').get(account) as { balance: number }).balance,
        1,
        'only the committed msg credited',
      );
      await assert.rejects(
        new BranchBarrier({ gid: abandoned, trans_type: 'msg', branch_id: '00', op: 'msg' }).call(db, () => {}),
        DuplicatedError,
      );
    });
  });
}
