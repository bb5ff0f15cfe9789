/** The barrier without a database server: branch info, barrier ids, table names, and the shipped DDL files. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { BranchBarrier, formatBarrierId, originOpOf } from '../src/barrier/branch-barrier.js';
import { BranchInfoError, branchInfoFromMetadata, branchInfoFromQuery } from '../src/barrier/branch-info.js';
import { barrierDdl, DEFAULT_BARRIER_TABLE, defaultBarrierTable, ensureBarrierTable } from '../src/barrier/ddl.js';
import { BARRIER_SQL_FILES, isMissingTableError } from '../src/barrier/missing-table-error.js';
import { mysqlBarrierDb } from '../src/barrier/mysql.js';
import { postgresBarrierDb } from '../src/barrier/postgres.js';
import { sqliteBarrierDb } from '../src/barrier/sqlite.js';
import { parseTableName } from '../src/barrier/table-name.js';

const INFO = { trans_type: 'saga', gid: 'g1', branch_id: '01', op: 'action' };

test('a barrier is built from a BranchInfo, a query string or dtm-* metadata', () => {
  for (const b of [
    new BranchBarrier(INFO),
    BranchBarrier.fromQuery({ ...INFO, dtm: 'http://dtm', extra: ['x'] }),
    BranchBarrier.fromQuery({ trans_type: ['saga', 'tcc'], gid: ['g1'], branch_id: '01', op: 'action' }),
    BranchBarrier.fromMetadata({
      'dtm-trans_type': 'saga',
      'DTM-GID': 'g1',
      'dtm-branch_id': ['01'],
      'dtm-op': 'action',
    }),
    BranchBarrier.fromMetadata({
      'dtm-trans_type': Buffer.from('saga'),
      'dtm-gid': 'g1',
      'dtm-branch_id': '01',
      'dtm-op': 'action',
    }),
  ]) {
    assert.deepEqual({ trans_type: b.trans_type, gid: b.gid, branch_id: b.branch_id, op: b.op }, INFO);
    assert.equal(b.barrierId, '00');
  }
});

test('a missing or empty branch info field is an error that names it', () => {
  for (const field of ['trans_type', 'gid', 'branch_id', 'op'] as const) {
    const missing = { ...INFO, [field]: undefined };
    const empty = { ...INFO, [field]: '' };
    const named = (where: RegExp) => (err: unknown) =>
      err instanceof BranchInfoError &&
      err.field === field &&
      err.message.includes(`"${field}"`) &&
      where.test(err.message);
    assert.throws(() => new BranchBarrier(missing), named(/branch info/));
    assert.throws(() => new BranchBarrier(empty), named(/branch info/));
    assert.throws(() => BranchBarrier.fromQuery(missing), named(/query string/));
    assert.throws(() => branchInfoFromQuery(empty), named(/query string/));
    const metadata = Object.fromEntries(Object.entries(missing).map(([k, v]) => [`dtm-${k}`, v]));
    assert.throws(() => BranchBarrier.fromMetadata(metadata), named(/dtm-\* metadata/));
  }
  assert.throws(
    () => branchInfoFromMetadata(INFO),
    (err) => err instanceof BranchInfoError && err.field === 'trans_type',
  );
});

test('barrier ids count the guarded calls of one request, two digits', () => {
  assert.deepEqual([1, 2, 9, 10, 99, 100].map(formatBarrierId), ['01', '02', '09', '10', '99', '100']);
});

test('SQL and Redis guarded calls of one request share one barrier id counter, as in DTM', async () => {
  const db = new Database(':memory:');
  const sqlite = sqliteBarrierDb(db);
  await ensureBarrierTable(sqlite);
  const b = new BranchBarrier({ trans_type: 'saga', gid: 'g-shared', branch_id: '01', op: 'action' });
  assert.equal(b.barrierId, '00');
  await b.call(sqlite, async () => {});
  assert.equal(b.nextBarrierId(), '02', 'the next guarded call (a Redis one, say) takes 02');
  await b.call(sqlite, async () => {});
  assert.deepEqual(db.prepare("SELECT barrier_id FROM barrier WHERE gid = 'g-shared' ORDER BY barrier_id").all(), [
    { barrier_id: '01' },
    { barrier_id: '03' },
  ]);
  db.close();
});

test('compensating ops map to their forward op', () => {
  assert.equal(originOpOf('cancel'), 'try');
  assert.equal(originOpOf('compensate'), 'action');
  assert.equal(originOpOf('rollback'), 'action');
  for (const op of ['action', 'try', 'confirm', 'commit', 'msg', 'business']) assert.equal(originOpOf(op), undefined);
});

test('table names are one or two plain identifiers', () => {
  assert.deepEqual(parseTableName('dtm_barrier.barrier'), {
    schema: 'dtm_barrier',
    name: 'barrier',
    qualified: 'dtm_barrier.barrier',
  });
  assert.deepEqual(parseTableName('barrier'), { schema: undefined, name: 'barrier', qualified: 'barrier' });
  for (const bad of ['', 'a.b.c', 'barrier; drop table x', '"x"', 'a-b', '1abc', 'a.']) {
    assert.throws(() => parseTableName(bad), /invalid barrier table name/, bad);
  }
  const fake = {} as never;
  assert.throws(() => sqliteBarrierDb(fake, { table: 'x y' }), /invalid barrier table name/);
  assert.throws(() => postgresBarrierDb(fake, { table: 'x y' }), /invalid barrier table name/);
  assert.throws(() => mysqlBarrierDb(fake, { table: 'x y' }), /invalid barrier table name/);
  assert.equal(postgresBarrierDb(fake).table, DEFAULT_BARRIER_TABLE);
  assert.equal(mysqlBarrierDb(fake).table, DEFAULT_BARRIER_TABLE);
  assert.equal(sqliteBarrierDb(fake).table, 'barrier');
});

/** The statements of a .sql file: comments dropped, whitespace collapsed. */
function statementsOf(sql: string): string[] {
  return sql
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('--'))
    .join('\n')
    .split(';')
    .map((s) => s.replace(/\s+/g, ' ').replace(/\( /g, '(').replace(/ \)/g, ')').trim())
    .filter((s) => s !== '');
}

test('the shipped .sql files are exactly what ensureBarrierTable applies for the default table', () => {
  for (const dialect of ['sqlite', 'postgres', 'mysql'] as const) {
    const file = new URL(`../../${BARRIER_SQL_FILES[dialect]}`, import.meta.url);
    const shipped = statementsOf(readFileSync(file, 'utf8'));
    const generated = statementsOf(barrierDdl(dialect).join(';\n'));
    assert.deepEqual(generated, shipped, dialect);
    assert.ok(
      shipped.every((s) => /^CREATE (SCHEMA|SEQUENCE|TABLE|INDEX|DATABASE) IF NOT EXISTS /.test(s)),
      dialect,
    );
    assert.equal(barrierDdl(dialect).length, barrierDdl(dialect, defaultBarrierTable(dialect)).length);
  }
});

test('barrierDdl follows a custom table name', () => {
  assert.match(barrierDdl('postgres', 'app.my_barrier').join('\n'), /CREATE SCHEMA IF NOT EXISTS app\n/);
  assert.match(barrierDdl('postgres', 'app.my_barrier').join('\n'), /nextval\('app\.my_barrier_seq'\)/);
  assert.match(barrierDdl('postgres', 'my_barrier')[0]!, /^CREATE SEQUENCE IF NOT EXISTS my_barrier_seq$/);
  assert.match(barrierDdl('mysql', 'app.my_barrier')[0]!, /^CREATE DATABASE IF NOT EXISTS app /);
  assert.match(barrierDdl('mysql', 'my_barrier')[0]!, /^CREATE TABLE IF NOT EXISTS my_barrier /);
  assert.throws(() => barrierDdl('sqlite', 'x;y'), /invalid barrier table name/);
});

test('SQLite: ensureBarrierTable works for an attached database, twice', async () => {
  const conn = new Database(':memory:');
  try {
    conn.exec("ATTACH DATABASE ':memory:' AS dtm_barrier");
    const db = sqliteBarrierDb(conn, { table: 'dtm_barrier.barrier' });
    await ensureBarrierTable(db);
    await ensureBarrierTable(db);
    const b = new BranchBarrier(INFO);
    assert.equal(await b.call(db, () => {}), 'executed');
    assert.equal(await new BranchBarrier(INFO).call(db, () => {}), 'duplicate');
    const indexes = conn
      .prepare(
        "SELECT name FROM dtm_barrier.sqlite_master WHERE type = 'index' AND name LIKE 'barrier_%' ORDER BY name",
      )
      .all();
    assert.deepEqual(indexes, [{ name: 'barrier_create_time' }, { name: 'barrier_update_time' }]);
  } finally {
    conn.close();
  }
});

test('SQLite: the business handle is the Database inside the transaction, and sync business code works', async () => {
  const conn = new Database(':memory:');
  try {
    const db = sqliteBarrierDb(conn);
    await ensureBarrierTable(db);
    conn.exec('CREATE TABLE t (v INTEGER)');
    let inside = false;
    await new BranchBarrier(INFO).call(db, (tx) => {
      inside = tx === conn && conn.inTransaction;
      tx.prepare('INSERT INTO t (v) VALUES (1)').run();
    });
    assert.equal(inside, true);
    assert.equal(conn.inTransaction, false);
    assert.deepEqual(conn.prepare('SELECT v FROM t').all(), [{ v: 1 }]);
  } finally {
    conn.close();
  }
});

test('SQLite: a connection left inside a transaction is refused with a clear error', async () => {
  const conn = new Database(':memory:');
  try {
    const db = sqliteBarrierDb(conn);
    await ensureBarrierTable(db);
    conn.exec('BEGIN');
    await assert.rejects(
      new BranchBarrier(INFO).call(db, () => {}),
      /already inside a transaction/,
    );
    conn.exec('ROLLBACK');
    assert.equal(await new BranchBarrier(INFO).call(db, () => {}), 'executed');
  } finally {
    conn.close();
  }
});

test('missing-table errors are recognised per dialect, and nothing else is', () => {
  assert.equal(isMissingTableError('sqlite', new Error('no such table: barrier')), true);
  assert.equal(isMissingTableError('sqlite', new Error('no such column: x')), false);
  assert.equal(isMissingTableError('postgres', Object.assign(new Error('x'), { code: '42P01' })), true);
  assert.equal(isMissingTableError('postgres', Object.assign(new Error('x'), { code: '3F000' })), true);
  assert.equal(isMissingTableError('postgres', Object.assign(new Error('x'), { code: '23505' })), false);
  assert.equal(isMissingTableError('mysql', Object.assign(new Error('x'), { errno: 1146 })), true);
  assert.equal(isMissingTableError('mysql', Object.assign(new Error('x'), { errno: 1049 })), true);
  assert.equal(isMissingTableError('mysql', Object.assign(new Error('x'), { errno: 1062 })), false);
  assert.equal(isMissingTableError('mysql', null), false);
});
