/**
 * The PostgreSQL store on the server of scripts/services.sh (DTX_PG_URL): the Store conformance suite in a
 * schema of its own, then what only this backend has to show — versioned migrations (also two instances
 * opening at once), reset, the group commit with failures isolated, an existing DTM database upgraded in
 * place, millisecond times, a missing database created.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { PostgresStore } from '../src/store/postgres/postgres-store.js';
import { dropSqlStoreData } from '../src/store/sql/drop-store-data.js';
import { type SqlStoreOptions, sqlOptionsFromUrl } from '../src/store/sql/sql-options.js';
import { sqlStoreBehaviour } from './sql-store-behaviour.js';
import { assertSameBytes, at, makeBranch, makeTrans, storeConformance } from './store-conformance.js';

const BASE: SqlStoreOptions = {
  ...sqlOptionsFromUrl(process.env.DTX_PG_URL ?? 'postgres://dtx:dtx@127.0.0.1:5432/dtx_test'),
  retryIntervalMs: 0, // a test fails at once when the server is down
};
const tag = `${process.pid}_${Date.now().toString(36)}`;
const schemas: string[] = [];
/** A schema name of this run, dropped at the end. */
function schemaName(what: string): string {
  const s = `dtx_pgtest_${what}_${tag}`;
  schemas.push(s);
  return s;
}

async function admin<T>(fn: (c: pg.Client) => Promise<T>, database = BASE.database): Promise<T> {
  const c = new pg.Client({ host: BASE.host, port: BASE.port, user: BASE.user, password: BASE.password, database });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

after(async () => {
  for (const s of schemas) await dropSqlStoreData('postgres', { ...BASE, schema: s });
});

const conformanceSchema = schemaName('conf');
storeConformance('postgres', async () => {
  const store = await PostgresStore.open({ ...BASE, schema: conformanceSchema });
  await store.pool.query(
    `TRUNCATE ${pg.escapeIdentifier(conformanceSchema)}.trans_global, ${pg.escapeIdentifier(conformanceSchema)}.trans_branch_op, ${pg.escapeIdentifier(conformanceSchema)}.kv`,
  );
  return store;
});

describe('PostgresStore: schema migrations', () => {
  it('creates the schema, records each version once, and a second open is a no-op', async () => {
    const schema = schemaName('mig');
    const first = await PostgresStore.open({ ...BASE, schema });
    await first.saveNew(makeTrans('kept'), [makeBranch('kept', '01', 'action')]);
    await first.close();
    const second = await PostgresStore.open({ ...BASE, schema });
    try {
      assert.equal((await second.findTrans('kept'))?.gid, 'kept', 'opening again keeps the data');
      const { rows } = await second.pool.query(
        `SELECT version, name FROM ${pg.escapeIdentifier(schema)}.dtx_migrations ORDER BY version`,
      );
      assert.deepEqual(
        rows.map((r) => r.version),
        [1, 2, 3],
      );
    } finally {
      await second.close();
    }
  });

  it('instances opening a fresh schema at the same time migrate it once, without errors', async () => {
    const schema = schemaName('race');
    const stores = await Promise.all(Array.from({ length: 4 }, () => PostgresStore.open({ ...BASE, schema })));
    try {
      const { rows } = await stores[0]!.pool.query(
        `SELECT version, count(*)::int AS n FROM ${pg.escapeIdentifier(schema)}.dtx_migrations GROUP BY version ORDER BY version`,
      );
      assert.deepEqual(rows, [
        { version: 1, n: 1 },
        { version: 2, n: 1 },
        { version: 3, n: 1 },
      ]);
      // all of them work on the same tables
      await Promise.all(stores.map((s, i) => s.saveNew(makeTrans(`race-${i}`), [])));
      assert.equal((await stores[0]!.scanTrans({ position: '', limit: 10 })).trans.length, 4);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });

  it('three instances opening a database that does not exist yet all succeed (repeated rounds)', async () => {
    // concurrent CREATE DATABASE of one name: PostgreSQL lets one win and fails the others with 42P04 or with a
    // unique violation of its catalog, depending on the timing; several rounds make both orders likely
    for (let round = 0; round < 6; round++) {
      const database = `dtx_pgtest_dbrace_${tag}_${round}`;
      try {
        const opened = await Promise.allSettled(
          Array.from({ length: 3 }, () => PostgresStore.open({ ...BASE, database, schema: 'dtx' })),
        );
        const stores = opened.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
        try {
          assert.deepEqual(
            opened.map((o) => (o.status === 'fulfilled' ? 'ok' : String(o.reason))),
            ['ok', 'ok', 'ok'],
            `round ${round}`,
          );
          await Promise.all(stores.map((s, i) => s.saveNew(makeTrans(`db-race-${i}`), [])));
          assert.equal((await stores[0]!.scanTrans({ position: '', limit: 10 })).trans.length, 3);
        } finally {
          await Promise.all(stores.map((s) => s.close()));
        }
      } finally {
        await admin(
          (c) => c.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(database)} WITH (FORCE)`),
          'postgres',
        );
      }
    }
  });

  it('`reset` drops the data and recreates the tables; without it the data stays', async () => {
    const schema = schemaName('reset');
    let store = await PostgresStore.open({ ...BASE, schema });
    await store.saveNew(makeTrans('r1'), [makeBranch('r1', '01', 'action')]);
    await store.createKV('topics', 'r1', '[]', at(1));
    await store.close();
    store = await PostgresStore.open({ ...BASE, schema, reset: true });
    try {
      assert.equal(await store.findTrans('r1'), undefined);
      assert.deepEqual(await store.findBranches('r1'), []);
      assert.deepEqual(await store.findKV('', ''), []);
      await store.saveNew(makeTrans('r1'), [makeBranch('r1', '01', 'action')]);
      assert.equal((await store.findBranches('r1')).length, 1, 'usable after the reset');
    } finally {
      await store.close();
    }
  });

  it('creates Store.Db when it does not exist', async () => {
    const database = `dtx_pgtest_db_${tag}`;
    const store = await PostgresStore.open({ ...BASE, database, schema: 'dtx' });
    try {
      await store.saveNew(makeTrans('in-new-db'), []);
      assert.equal((await store.findTrans('in-new-db'))?.gid, 'in-new-db');
    } finally {
      await store.close();
      await admin((c) => c.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(database)}`), 'postgres');
    }
  });
});

describe('PostgresStore: an existing DTM database', () => {
  // DTM's sqls/dtmsvr.storage.postgres.sql as DTM ships it: whole-second times, varchar(1024) payload columns.
  const dtmDdl = (s: string) => `
    CREATE SCHEMA ${s};
    CREATE SEQUENCE ${s}.trans_global_seq;
    CREATE TABLE ${s}.trans_global (
      id bigint NOT NULL DEFAULT NEXTVAL('${s}.trans_global_seq'),
      gid varchar(128) NOT NULL, trans_type varchar(45) not null, status varchar(45) NOT NULL,
      query_prepared varchar(1024) NOT NULL, protocol varchar(45) not null,
      create_time timestamp(0) with time zone DEFAULT NULL, update_time timestamp(0) with time zone DEFAULT NULL,
      finish_time timestamp(0) with time zone DEFAULT NULL, rollback_time timestamp(0) with time zone DEFAULT NULL,
      options varchar(1024) DEFAULT '', custom_data varchar(1024) DEFAULT '', next_cron_interval int default null,
      next_cron_time timestamp(0) with time zone default null, owner varchar(128) not null default '',
      ext_data text, result varchar(1024) DEFAULT '', rollback_reason varchar(1024) DEFAULT '',
      PRIMARY KEY (id), CONSTRAINT gid UNIQUE (gid));
    create index owner on ${s}.trans_global(owner);
    create index status_next_cron_time on ${s}.trans_global (status, next_cron_time);
    CREATE SEQUENCE ${s}.trans_branch_op_seq;
    CREATE TABLE ${s}.trans_branch_op (
      id bigint NOT NULL DEFAULT NEXTVAL('${s}.trans_branch_op_seq'),
      gid varchar(128) NOT NULL, url varchar(1024) NOT NULL, data TEXT, bin_data bytea,
      branch_id VARCHAR(128) NOT NULL, op varchar(45) NOT NULL, status varchar(45) NOT NULL,
      finish_time timestamp(0) with time zone DEFAULT NULL, rollback_time timestamp(0) with time zone DEFAULT NULL,
      create_time timestamp(0) with time zone DEFAULT NULL, update_time timestamp(0) with time zone DEFAULT NULL,
      PRIMARY KEY (id), CONSTRAINT gid_branch_uniq UNIQUE (gid, branch_id, op));
    CREATE SEQUENCE ${s}.kv_seq;
    CREATE TABLE ${s}.kv (
      id bigint NOT NULL DEFAULT NEXTVAL('${s}.kv_seq'), cat varchar(45) NOT NULL, k varchar(128) NOT NULL,
      v TEXT, version bigint default 1,
      create_time timestamp(0) with time zone DEFAULT NULL, update_time timestamp(0) with time zone DEFAULT NULL,
      PRIMARY KEY (id), CONSTRAINT uniq_k UNIQUE (cat, k));`;

  it('is migrated in place: rows DTM wrote stay readable, and big payloads fit afterwards', async () => {
    const schema = schemaName('dtm');
    const s = pg.escapeIdentifier(schema);
    await admin(async (c) => {
      await c.query(dtmDdl(s));
      // rows as DTM writes them (times in the server's zone, whole seconds; NULLs where DTM leaves them)
      await c.query(`INSERT INTO ${s}.trans_global (gid, trans_type, status, query_prepared, protocol, create_time,
          update_time, options, custom_data, next_cron_interval, next_cron_time, owner, ext_data, result, rollback_reason)
        VALUES ('dtm-gid', 'saga', 'submitted', '', 'http', '2026-01-01 08:00:00+08', '2026-01-01 08:00:05+08',
          '{"wait_result":true,"concurrent":false}', '', 10, '2026-01-01 08:00:15+08', '', NULL, '', '')`);
      await c.query(`INSERT INTO ${s}.trans_branch_op (gid, url, bin_data, branch_id, op, status, create_time, update_time)
        VALUES ('dtm-gid', 'http://busi/TransOutRevert', '\\x7b7d', '01', 'compensate', 'prepared', '2026-01-01 00:00:00Z', '2026-01-01 00:00:00Z'),
               ('dtm-gid', 'http://busi/TransOut', '\\x7b22616d6f756e74223a33307d', '01', 'action', 'succeed', '2026-01-01 00:00:00Z', '2026-01-01 00:00:03Z')`);
      await c.query(`INSERT INTO ${s}.kv (cat, k, v, version, create_time, update_time)
        VALUES ('topics', 'orders', '[{"url":"http://a","remark":""}]', 3, '2026-01-01 00:00:00Z', '2026-01-01 00:00:00Z')`);
    });
    const store = await PostgresStore.open({ ...BASE, schema });
    try {
      const t = await store.findTrans('dtm-gid');
      assert.ok(t);
      assert.equal(t.status, 'submitted');
      assert.equal(t.createTime, at(0));
      assert.equal(t.updateTime, at(5));
      assert.equal(t.nextCronTime, at(15));
      assert.equal(t.extData, '', 'NULL ext_data reads as empty');
      assert.equal(t.opts.wait_result, true);
      const branches = await store.findBranches('dtm-gid');
      assert.deepEqual(
        branches.map((b) => `${b.branchId}/${b.op}/${b.status}/${Buffer.from(b.binData).toString()}`),
        ['01/compensate/prepared/{}', '01/action/succeed/{"amount":30}'],
      );
      const [kv] = await store.findKV('topics', 'orders');
      assert.equal(kv?.version, 3);
      // the columns were widened
      const { rows } = await store.pool.query(
        `SELECT table_name, column_name, data_type, datetime_precision FROM information_schema.columns
         WHERE table_schema = $1 ORDER BY table_name, column_name`,
        [schema],
      );
      const type = (table: string, col: string) => rows.find((r) => r.table_name === table && r.column_name === col);
      for (const col of ['query_prepared', 'options', 'custom_data', 'ext_data', 'result', 'rollback_reason']) {
        assert.equal(type('trans_global', col)?.data_type, 'text', `trans_global.${col}`);
      }
      assert.equal(type('trans_branch_op', 'bin_data')?.data_type, 'bytea');
      assert.equal(type('trans_global', 'next_cron_time')?.datetime_precision, 3);
      // the store drives the old transaction on: CAS, branch writes, a lease
      // the attempt history columns (version 3) read as "no attempt yet" on DTM's rows, and take writes
      assert.deepEqual([t.failedAttempts, t.lastError, t.stuckAlerted], [0, '', false]);
      assert.deepEqual(
        branches.map((b) => [b.attempts, b.lastResult, b.lastError, b.lastAttemptTime]),
        [
          [0, '', '', undefined],
          [0, '', '', undefined],
        ],
      );
      const failed = { ...branches[0]!, attempts: 1, lastAttemptTime: at(16), lastResult: 'ERROR', lastError: 'down' };
      const attempt = { nextCronTime: at(15), nextCronInterval: 20, failedAttempts: 1, lastError: 'down' };
      await store.recordFailedAttempt('dtm-gid', 'submitted', failed, attempt, at(16));
      assert.equal((await store.findTrans('dtm-gid'))?.failedAttempts, 1);
      assert.equal((await store.findBranches('dtm-gid'))[0]?.lastError, 'down');
      assert.equal(await store.claimStuckAlert('dtm-gid', 'submitted'), true);
      await store.updateBranches('dtm-gid', 'submitted', [{ ...branches[0]!, status: 'succeed', updateTime: at(20) }]);
      const leased = await store.lockDue(at(16), at(30), 'me', 10, at(16));
      assert.deepEqual(
        leased.map((x) => x.gid),
        ['dtm-gid'],
      );
      await store.changeStatus('dtm-gid', 'submitted', 'succeed', { finishTime: at(21) }, at(21));
      // and new transactions may carry what DTM's columns could not hold
      const big = randomBytes(5 * 1024 * 1024);
      const custom = 'c'.repeat(100_000);
      await store.saveNew(makeTrans('after-upgrade', { customData: custom, rollbackReason: 'r'.repeat(5000) }), [
        makeBranch('after-upgrade', '01', 'action', { binData: big, url: `http://busi/${'u'.repeat(3000)}` }),
      ]);
      assert.equal((await store.findTrans('after-upgrade'))?.customData, custom);
      assertSameBytes((await store.findBranches('after-upgrade'))[0]!.binData, big, '5 MiB after the upgrade');
    } finally {
      await store.close();
    }
  });
});

describe('PostgresStore: behaviour of this backend', () => {
  let schema: string;
  before(() => {
    schema = schemaName('gc');
  });
  const open = () => PostgresStore.open({ ...BASE, schema });

  sqlStoreBehaviour(open);
});
