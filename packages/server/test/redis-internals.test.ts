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
import { Command, type Redis } from 'ioredis';
import { createRedisClient, type RedisClient } from '../src/store/redis/connect.js';
import { EncodedCommand, encodeCommand, type RespArg } from '../src/store/redis/resp.js';

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

  it("a command encoded beforehand (EncodedCommand) is written, answered and resolved like ioredis' own", async () => {
    const r = client as Redis;
    const text = new EncodedCommand('echo', ['héllo ✓'], 'utf8');
    const bytes = new EncodedCommand('echo', [Buffer.from([0, 0xff, 0x0d, 0x0a])], null);
    r.sendCommand(text);
    r.sendCommand(bytes);
    assert.equal(await text.promise, 'héllo ✓');
    assert.deepEqual(await bytes.promise, Buffer.from([0, 0xff, 0x0d, 0x0a]));
    const sha = (await r.script('LOAD', 'return {ARGV[1], #ARGV[2], KEYS[1]}')) as string;
    const ev = new EncodedCommand('evalsha', [sha, 1, 'k', 'é', Buffer.alloc(300, 1)], 'utf8');
    r.sendCommand(ev);
    assert.deepEqual(await ev.promise, ['é', 300, 'k']);
    const missing = new EncodedCommand('evalsha', ['0'.repeat(40), 0], 'utf8');
    r.sendCommand(missing);
    await assert.rejects(missing.promise, /^ReplyError: NOSCRIPT/);
  });
});

describe('encodeCommand', () => {
  /** The bytes ioredis itself writes for the command. */
  const ioredisBytes = (name: string, args: RespArg[]): Buffer => {
    const w = new Command(
      name,
      args.map((a) => (a instanceof Uint8Array ? Buffer.from(a) : a)),
    ).toWritable({});
    return typeof w === 'string' ? Buffer.from(w, 'utf8') : w;
  };

  it('writes the bytes ioredis writes, for text, numbers and bytes of any length', () => {
    const pieces = ['', 'a', 'é', '✓', '𝄞', '\r\n', ':', '0'];
    let seed = 7;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let i = 0; i < 2000; i++) {
      const args: RespArg[] = [];
      for (let j = rand(14); j > 0; j--) {
        const kind = rand(3);
        if (kind === 0) args.push(Array.from({ length: rand(40) }, () => pieces[rand(pieces.length)]).join(''));
        else if (kind === 1) args.push(rand(3) === 0 ? rand(10) : rand(2 ** 31));
        else args.push(Buffer.from(Array.from({ length: rand(3) === 0 ? rand(20_000) : rand(12) }, () => rand(256))));
      }
      const name = rand(2) === 0 ? 'evalsha' : 'echo';
      assert.deepEqual(encodeCommand(name, args), ioredisBytes(name, args), `case ${i}`);
    }
  });

  it('counts the bytes of multi-byte text, not its characters', () => {
    assert.equal(encodeCommand('echo', ['é✓']).toString('utf8'), '*2\r\n$4\r\necho\r\n$5\r\né✓\r\n');
    assert.equal(encodeCommand('ping', []).toString('latin1'), '*1\r\n$4\r\nping\r\n');
  });
});
