/**
 * What the PostgreSQL group commit relies on in pg beyond its documented API, pinned on the real server of
 * scripts/services.sh (DTX_PG_URL), so that a pg upgrade that changes it fails here rather than slowing (or
 * breaking) production: the socket at `client.connection.stream` that pg-batch.ts corks around a batch, and a
 * pipelined client (`pipeline: true`) putting every statement of a batch on that socket before the first
 * answer.
 */
import assert from 'node:assert/strict';
import { Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { corked, pgSocket } from '../src/store/postgres/pg-batch.js';
import { sqlOptionsFromUrl } from '../src/store/sql/sql-options.js';

const o = sqlOptionsFromUrl(process.env.DTX_PG_URL ?? 'postgres://dtx:dtx@127.0.0.1:5432/dtx_test');
const conn: pg.PoolConfig = { host: o.host, port: o.port, user: o.user, password: o.password, database: o.database };

describe('pg internals the PostgreSQL group commit relies on', () => {
  let pool: pg.Pool;
  before(() => {
    pool = new pg.Pool(conn);
  });
  after(() => pool.end());

  it('a pooled client keeps its socket at connection.stream, corkable', async () => {
    const client = await pool.connect();
    try {
      const socket = pgSocket(client);
      assert.ok(socket, 'pg no longer keeps the socket at client.connection.stream: fix pgSocket in pg-batch.ts');
      assert.ok(socket instanceof Socket, 'connection.stream is not the net.Socket pg writes to');
      assert.equal(socket.writableCorked, 0);
    } finally {
      client.release();
    }
  });

  it('a pipelined client writes a whole batch to that socket, held until it is uncorked, and answers each statement', async () => {
    const piped = new pg.Pool({ ...conn, pipeline: true, max: 1 });
    const client = await piped.connect();
    try {
      const socket = pgSocket(client) as unknown as Socket;
      const q = (i: number) => client.query({ name: 'dtx_pin', text: 'SELECT $1::int AS i', values: [i] });
      // warm: the named statement is parsed once, so the next sends are of one size each
      await q(0);
      const queued = (n: number) => {
        let pending!: Promise<pg.QueryResult>[];
        let buffered = 0;
        corked(client, () => {
          const at = socket.writableLength;
          pending = Array.from({ length: n }, (_, i) => q(i + 1));
          assert.ok(socket.writableCorked > 0, 'the socket is corked while the batch is queued');
          buffered = socket.writableLength - at;
        });
        assert.equal(socket.writableCorked, 0, 'corked() leaves the socket uncorked');
        return { pending, buffered };
      };
      const one = queued(1);
      await Promise.all(one.pending);
      assert.ok(one.buffered > 0, 'a query written while corked is held in the socket buffer, not sent');
      const five = queued(5);
      // not pipelined, pg would hold the four later statements back until the first was answered
      assert.equal(five.buffered, 5 * one.buffered, 'all five statements are on the socket before any answer');
      const rows = (await Promise.all(five.pending)).map((r) => r.rows[0]?.i);
      assert.deepEqual(rows, [1, 2, 3, 4, 5]);
    } finally {
      client.release();
      await piped.end();
    }
  });
});
