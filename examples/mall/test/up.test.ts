/**
 * `npm run mall` (main.js up) as a newcomer runs it, but on free ports, a database and etcd keys of its own: the
 * shipped yaml files of etc/ are copied with those values changed. It must start dtx and the eight services as
 * processes, see each one up, and (with --check) stop them all and exit 0.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { RowDataPacket } from 'mysql2/promise';
import { mysqlPool } from '../src/common/mysql-dsn.js';
import { SERVICE_NAMES } from '../src/services.js';
import { writePrivateEtc } from './support/private-etc.js';

const ETC = new URL('../../etc/', import.meta.url).pathname;
const MAIN = new URL('../src/main.js', import.meta.url).pathname;

test('up --check starts dtx and the eight services from etc/*.yaml, sees each one up, and stops them', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mall-up-'));
  const database = `mall_up_${process.pid}`;
  const { dsn } = await writePrivateEtc(dir, database);
  t.after(async () => {
    rmSync(dir, { recursive: true, force: true });
    const db = mysqlPool(dsn, { database: undefined });
    await db.query(`DROP DATABASE IF EXISTS \`${database}\``);
    await db.end();
  });

  const child = spawn(process.execPath, [MAIN, 'up', '--etc', dir, '--check'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  assert.equal(code, 0, out);
  for (const name of SERVICE_NAMES) {
    assert.match(out, new RegExp(`\\[mall\\] ${name} is up`), out);
  }
  assert.match(out, /\[mall\] dtx is up/);
  assert.match(out, /\[mall\] check passed/);
  const db = mysqlPool(dsn);
  const [tables] = await db.query<RowDataPacket[]>('SHOW TABLES');
  await db.end();
  assert.deepEqual(tables.map((r) => Object.values(r)[0]).sort(), ['order', 'pay', 'product', 'user']);
});

test('up fails with advice when a config is broken', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mall-up-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (const file of readdirSync(ETC)) writeFileSync(join(dir, file), readFileSync(join(ETC, file)));
  writeFileSync(join(dir, 'order-api.yaml'), 'Name: Order\nPort: eighty\n');
  const child = spawn(process.execPath, [MAIN, 'up', '--etc', dir, '--check'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  assert.equal(code, 1);
  assert.match(out, /Port: expected a non-negative number, got "eighty"/);
});
