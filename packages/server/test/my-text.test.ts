/**
 * my-text.ts, the MySQL text batch's statement renderer: the same text as the driver's `format` for every kind of
 * value the store writes, round-tripped byte for byte through the MariaDB of scripts/services.sh
 * (DTX_MYSQL_URL), and a refusal — never a guess — for SQL it cannot split or values that do not fit; and the
 * session setup every store connection runs, which makes sure the server reads those escapes as escapes.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { sqlText } from '../src/store/mysql/my-text.js';
import { mysqlSessionSetup } from '../src/store/mysql/mysql-dialect.js';
import { sqlOptionsFromUrl } from '../src/store/sql/sql-options.js';
import { NON_UTF8 } from './store-conformance.js';

const all256 = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
/** Values of every type the store's statements carry, with the characters an escaper has to get right. */
const VALUES: readonly unknown[] = [
  'plain',
  '',
  "it's",
  'back\\slash\\',
  '"double"',
  '\0nul\0',
  'line\nfeed\r\ttab\x1a',
  "'; DROP TABLE trans_global; --",
  'é ü 中文 🎉',
  '?',
  '??',
  0,
  -1,
  42,
  1.5,
  2 ** 53 - 1,
  null,
  undefined,
  Buffer.from(NON_UTF8),
  all256,
  Buffer.alloc(0),
];

describe('sqlText', () => {
  it('renders each value exactly as mysql.format does', () => {
    for (const v of VALUES) {
      const sql = 'SELECT ? AS v, ? AS w';
      assert.equal(sqlText(sql, [v, 'x']), mysql.format(sql, [v, 'x'] as never[]), `value ${String(v)}`);
    }
    const sql = `INSERT INTO t (a, b, c) VALUES ${VALUES.map(() => '(?, ?, ?)').join(', ')}`;
    const values = VALUES.flatMap((v, i) => [v, i, `row ${i}`]);
    assert.equal(sqlText(sql, values), mysql.format(sql, values as never[]));
    // the same SQL string again (split once, kept): still the same text
    assert.equal(sqlText(sql, values), mysql.format(sql, values as never[]));
  });

  it('leaves a placeholder inside a value alone', () => {
    assert.equal(sqlText('SELECT ?, ?', ['?', '??']), "SELECT '?', '??'");
  });

  it('refuses SQL where a ? might not be a placeholder', () => {
    for (const sql of [
      "SELECT '?' , ?",
      'SELECT "?", ?',
      'SELECT `a?`, ?',
      'SELECT ? -- ?',
      'SELECT ? # ?',
      'SELECT ? /* ? */',
      'SELECT ?? FROM t WHERE a = ?',
    ])
      assert.throws(() => sqlText(sql, [1, 2]), /not splittable/, sql);
  });

  it('refuses a value count that does not match the placeholders', () => {
    assert.throws(() => sqlText('SELECT ?, ?', [1]), /1 values for 2 placeholders/);
    assert.throws(() => sqlText('SELECT ?', [1, 2]), /2 values for 1 placeholders/);
    assert.throws(() => sqlText('SELECT 1', [1]), /1 values for 0 placeholders/);
    assert.equal(sqlText('SELECT 1', []), 'SELECT 1');
  });
});

describe('sqlText against MariaDB', () => {
  let conn: mysql.Connection;
  before(async () => {
    const o = sqlOptionsFromUrl(process.env.DTX_MYSQL_URL ?? 'mysql://dtx:dtx@127.0.0.1:3306/dtx_test');
    conn = await mysql.createConnection({ host: o.host, port: o.port, user: o.user, password: o.password });
  });
  after(() => conn.end());

  it('round-trips every value byte for byte', async () => {
    for (const v of VALUES) {
      const [rows] = (await conn.query(sqlText('SELECT ? AS v, ? IS NULL AS n', [v, v]))) as [
        Record<string, unknown>[],
        unknown,
      ];
      const got = rows[0]!;
      if (v === null || v === undefined) {
        assert.equal(Number(got.n), 1);
        continue;
      }
      assert.equal(Number(got.n), 0);
      if (Buffer.isBuffer(v)) assert.deepEqual(Buffer.from(got.v as Buffer), v, 'bytes');
      else if (typeof v === 'number') assert.equal(Number(got.v), v);
      else assert.equal(got.v, v);
    }
  });

  it("each store connection's session setup turns NO_BACKSLASH_ESCAPES off, autocommit on, and keeps the server's other modes", async () => {
    const mode = async () =>
      String(((await conn.query('SELECT @@SESSION.sql_mode AS m')) as [Record<string, unknown>[], unknown])[0][0]!.m);
    const attack = "\\'; SELECT 'injected"; // ends the literal early where a backslash is no escape
    const text = sqlText('SELECT ? AS v', [attack]);
    for (const start of [
      'NO_BACKSLASH_ESCAPES',
      'NO_BACKSLASH_ESCAPES,ONLY_FULL_GROUP_BY',
      'ONLY_FULL_GROUP_BY,NO_BACKSLASH_ESCAPES,NO_ZERO_DATE',
    ]) {
      await conn.query(`SET SESSION sql_mode = '${start}'`);
      // what the setup prevents: the escaped text read another way (here a second statement, or an error)
      const misread = await conn.query(text).then(
        ([r]) => JSON.stringify(r) !== JSON.stringify([{ v: attack }]),
        () => true,
      );
      assert.ok(misread, `with ${start} the driver's escapes are not escapes`);
      for (const groupCommit of [false, true]) {
        await conn.query(`SET SESSION sql_mode = '${start}', autocommit = 0`);
        await conn.query(mysqlSessionSetup(groupCommit));
        const modes = (await mode()).split(',');
        assert.ok(!modes.includes('NO_BACKSLASH_ESCAPES'), `${start} → ${modes}`);
        assert.ok(modes.includes('STRICT_ALL_TABLES'), `${start} → ${modes}`);
        for (const kept of start.split(',').filter((m) => m !== 'NO_BACKSLASH_ESCAPES'))
          assert.ok(modes.includes(kept), `${kept} kept: ${modes}`);
        const [[row]] = (await conn.query(
          'SELECT @@SESSION.time_zone AS tz, @@SESSION.innodb_lock_wait_timeout AS lw, @@SESSION.autocommit AS ac',
        )) as [Record<string, unknown>[], unknown];
        assert.equal(row!.tz, '+00:00');
        assert.equal(Number(row!.ac), 1, 'a lone group-commit statement must commit by itself');
        if (groupCommit) assert.equal(Number(row!.lw), 10);
        const [rows] = (await conn.query(text)) as [Record<string, unknown>[], unknown];
        assert.deepEqual(rows, [{ v: attack }]);
      }
    }
  });
});
