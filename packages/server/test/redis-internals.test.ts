/**
 * What the Redis store's batching relies on in ioredis beyond calling commands, pinned on the real server of
 * scripts/services.sh (DTX_REDIS_URL), so that an ioredis upgrade that changes it fails here rather than slowing
 * production: redis-store.ts corks the socket at `client.stream` at the first command of an event-loop turn and
 * uncorks it at setImmediate, which coalesces the turn's commands into one write only if ioredis writes a command
 * to that socket synchronously, when it is called.
 */
import assert from 'node:assert/strict';
import { Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createRedisClient, type RedisClient } from '../src/store/redis/connect.js';

const url = new URL(process.env.DTX_REDIS_URL ?? 'redis://127.0.0.1:6379');

describe('ioredis internals the Redis store relies on', () => {
  let client: RedisClient;
  before(async () => {
    client = createRedisClient({ host: url.hostname, port: Number(url.port || 6379) });
    await client.ping();
  });
  after(() => client.disconnect());

  it('a connected client keeps the socket it writes to at client.stream, corkable', () => {
    assert.ok(!('nodes' in client && typeof client.nodes === 'function' && 'slots' in client), 'a standalone client');
    const stream = (client as unknown as { stream?: unknown }).stream;
    assert.ok(
      stream instanceof Socket,
      'ioredis no longer keeps its socket at client.stream: fix hold() in redis-store.ts',
    );
    assert.equal(stream.writableCorked, 0);
  });

  it('commands called while the socket is corked are buffered on it, in the same turn, and answered after uncork', async () => {
    const stream = (client as unknown as { stream: Socket }).stream;
    const before = stream.writableLength;
    stream.cork();
    const pending = Array.from({ length: 5 }, (_, i) => client.echo(`pin-${i}`));
    // written synchronously into the corked socket: held there, not yet on the wire
    const held = stream.writableLength - before;
    assert.equal(stream.writableCorked, 1);
    assert.ok(
      held >= 5 * '*2\r\n$4\r\nECHO\r\n$5\r\npin-0\r\n'.length,
      `the 5 commands are held in the socket (${held} bytes)`,
    );
    stream.uncork();
    assert.deepEqual(await Promise.all(pending), ['pin-0', 'pin-1', 'pin-2', 'pin-3', 'pin-4']);
    assert.equal(stream.writableLength, 0);
  });
});
