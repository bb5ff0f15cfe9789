/**
 * The MySQL / MariaDB store on the server of scripts/services.sh (DTX_MYSQL_URL): the Store conformance suite
 * in a database of its own, then what only this backend has to show — versioned migrations (also instances
 * opening at once), reset, the group commit with failures isolated, a payload too big for a text batch, an
 * existing DTM database upgraded in place, millisecond times, exact (case-sensitive) keys.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { DEADLOCK_ATTEMPTS, shortTransaction } from '../src/store/mysql/my-batch.js';
import { mysqlSessionSetup, writerMayReadCommitted } from '../src/store/mysql/mysql-dialect.js';
import { MysqlStore } from '../src/store/mysql/mysql-store.js';
import { dropSqlStoreData } from '../src/store/sql/drop-store-data.js';
import { type SqlStoreOptions, sqlOptionsFromUrl } from '../src/store/sql/sql-options.js';
import { sqlStoreBehaviour } from './sql-store-behaviour.js';
import {
  assertSameBytes,
  at,
  makeBranch,
  makeTrans,
  NON_UTF8,
  outcome,
  storeConformance,
} from './store-conformance.js';

const SERVER: SqlStoreOptions = {
  ...sqlOptionsFromUrl(process.env.DTX_MYSQL_URL ?? 'mysql://dtx:dtx@127.0.0.1:3306/dtx_test'),
  retryIntervalMs: 0, // a test fails at once when the server is down
};
const tag = `${process.pid}_${Date.now().toString(36)}`;
const databases: string[] = [];
/** Options for a database of this run, dropped at the end. */
function inDatabase(what: string): SqlStoreOptions {
  const database = `dtx_mytest_${what}_${tag}`;
  databases.push(database);
  return { ...SERVER, database };
}

/** Runs `fn` on each connection the store's group commit takes from its pool, before the batch uses it. */
function onWriterConnections(store: MysqlStore, fn: (c: mysql.PoolConnection) => Promise<void>): void {
  const executor = (store as unknown as { d: { executor: { acquire(): Promise<mysql.PoolConnection> } } }).d.executor;
  const acquire = executor.acquire.bind(executor);
  executor.acquire = async () => {
    const c = await acquire();
    await fn(c);
    return c;
  };
}

async function admin<T>(fn: (c: mysql.Connection) => Promise<T>, database?: string): Promise<T> {
  const c = await mysql.createConnection({
    host: SERVER.host,
    port: SERVER.port,
    user: SERVER.user,
    password: SERVER.password,
    multipleStatements: true,
    ...(database ? { database } : {}),
  });
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

after(async () => {
  for (const database of databases) await dropSqlStoreData('mysql', { ...SERVER, database });
});

const conformance = inDatabase('conf');
storeConformance('mysql', async () => {
  const store = await MysqlStore.open(conformance);
  await store.pool.query('TRUNCATE trans_global; TRUNCATE trans_branch_op; TRUNCATE kv');
  return store;
});

describe('MysqlStore: the session of the group commit', () => {
  it('runs at READ COMMITTED unless the server writes a statement-based binary log', () => {
    assert.equal(writerMayReadCommitted(0, 'STATEMENT'), true, 'no binary log');
    assert.equal(writerMayReadCommitted(1, 'MIXED'), true);
    assert.equal(writerMayReadCommitted(1, 'ROW'), true);
    assert.equal(writerMayReadCommitted(1, 'STATEMENT'), false);
    assert.match(mysqlSessionSetup(true, true), /; SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED$/);
    assert.doesNotMatch(mysqlSessionSetup(true, false), /ISOLATION/);
    assert.doesNotMatch(mysqlSessionSetup(false, true), /ISOLATION|innodb_lock_wait_timeout/, 'the read pool');
  });

  it("the store's writing connections are at READ COMMITTED on the test server (binary log off or not statement-based)", async () => {
    const store = await MysqlStore.open(inDatabase('iso'));
    try {
      const levels: string[] = [];
      onWriterConnections(store, async (c) => {
        // tx_isolation on MariaDB, transaction_isolation on MySQL 8
        const [r] = (await c.query(
          "SHOW SESSION VARIABLES WHERE Variable_name IN ('tx_isolation', 'transaction_isolation')",
        )) as unknown as [{ Value: string }[]];
        levels.push(r[0]!.Value);
      });
      await store.saveNew(makeTrans('iso-1'), []);
      assert.deepEqual(levels, ['READ-COMMITTED']);
    } finally {
      await store.close();
    }
  });
});

describe('MysqlStore: schema migrations', () => {
  it('creates the database, records each version once, and a second open is a no-op', async () => {
    const o = inDatabase('mig');
    const first = await MysqlStore.open(o);
    await first.saveNew(makeTrans('kept'), [makeBranch('kept', '01', 'action')]);
    await first.close();
    const second = await MysqlStore.open(o);
    try {
      assert.equal((await second.findTrans('kept'))?.gid, 'kept', 'opening again keeps the data');
      const [rows] = (await second.pool.query('SELECT version FROM dtx_migrations ORDER BY version')) as [
        { version: number }[],
        unknown,
      ];
      assert.deepEqual(
        rows.map((r) => r.version),
        [1, 2, 3],
      );
    } finally {
      await second.close();
    }
  });

  it('instances opening a fresh database at the same time migrate it once, without errors', async () => {
    const o = inDatabase('race');
    const stores = await Promise.all(Array.from({ length: 4 }, () => MysqlStore.open(o)));
    try {
      const [rows] = (await stores[0]!.pool.query(
        'SELECT version, COUNT(*) AS n FROM dtx_migrations GROUP BY version ORDER BY version',
      )) as [{ version: number; n: number }[], unknown];
      assert.deepEqual(
        rows.map((r) => [r.version, Number(r.n)]),
        [
          [1, 1],
          [2, 1],
          [3, 1],
        ],
      );
      await Promise.all(stores.map((s, i) => s.saveNew(makeTrans(`race-${i}`), [])));
      assert.equal((await stores[0]!.scanTrans({ position: '', limit: 10 })).trans.length, 4);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });

  it('three instances opening a database that does not exist yet all succeed (repeated rounds)', async () => {
    for (let round = 0; round < 6; round++) {
      const o = inDatabase(`dbrace${round}`);
      const opened = await Promise.allSettled(Array.from({ length: 3 }, () => MysqlStore.open(o)));
      const stores = opened.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
      try {
        assert.deepEqual(
          opened.map((r) => (r.status === 'fulfilled' ? 'ok' : String(r.reason))),
          ['ok', 'ok', 'ok'],
          `round ${round}`,
        );
        const [rows] = (await stores[0]!.pool.query(
          'SELECT version, COUNT(*) AS n FROM dtx_migrations GROUP BY version ORDER BY version',
        )) as [{ version: number; n: number }[], unknown];
        assert.deepEqual(
          rows.map((r) => [Number(r.version), Number(r.n)]),
          [
            [1, 1],
            [2, 1],
            [3, 1],
          ],
        );
        await Promise.all(stores.map((s, i) => s.saveNew(makeTrans(`db-race-${i}`), [])));
        assert.equal((await stores[0]!.scanTrans({ position: '', limit: 10 })).trans.length, 3);
      } finally {
        await Promise.all(stores.map((s) => s.close()));
        await admin((c) => c.query(`DROP DATABASE IF EXISTS ${mysql.escapeId(o.database)}`));
      }
    }
  });

  it('`reset` drops the data and recreates the tables; without it the data stays', async () => {
    const o = inDatabase('reset');
    let store = await MysqlStore.open(o);
    await store.saveNew(makeTrans('r1'), [makeBranch('r1', '01', 'action')]);
    await store.createKV('topics', 'r1', '[]', at(1));
    await store.close();
    store = await MysqlStore.open({ ...o, reset: true });
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
});

describe('MysqlStore: an existing DTM database', () => {
  // DTM's sqls/dtmsvr.storage.mysql.sql as DTM ships it: DATETIME (seconds), BLOB (64 KiB), varchar(1024).
  const dtmDdl = `
    CREATE TABLE trans_global (
      id bigint(22) NOT NULL AUTO_INCREMENT, gid varchar(128) NOT NULL, trans_type varchar(45) not null,
      status varchar(12) NOT NULL, query_prepared varchar(1024) NOT NULL, protocol varchar(45) not null,
      create_time datetime DEFAULT NULL, update_time datetime DEFAULT NULL, finish_time datetime DEFAULT NULL,
      rollback_time datetime DEFAULT NULL, options varchar(1024) DEFAULT 'options for transaction like: TimeoutToFail, RequestTimeout',
      custom_data varchar(1024) DEFAULT '', next_cron_interval int(11) default null, next_cron_time datetime default null,
      owner varchar(128) not null default '', ext_data TEXT, result varchar(1024) DEFAULT '',
      rollback_reason varchar(1024) DEFAULT '',
      PRIMARY KEY (id), UNIQUE KEY gid (gid), key owner(owner), key status_next_cron_time (status, next_cron_time)
    ) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
    CREATE TABLE trans_branch_op (
      id bigint(22) NOT NULL AUTO_INCREMENT, gid varchar(128) NOT NULL, url varchar(1024) NOT NULL, data TEXT,
      bin_data BLOB, branch_id VARCHAR(128) NOT NULL, op varchar(45) NOT NULL, status varchar(45) NOT NULL,
      finish_time datetime DEFAULT NULL, rollback_time datetime DEFAULT NULL, create_time datetime DEFAULT NULL,
      update_time datetime DEFAULT NULL,
      PRIMARY KEY (id), UNIQUE KEY gid_uniq (gid, branch_id, op)
    ) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
    CREATE TABLE kv (
      id bigint(22) NOT NULL AUTO_INCREMENT, cat varchar(45) NOT NULL, k varchar(128) NOT NULL, v TEXT,
      version bigint(22) default 1, create_time datetime default NULL, update_time datetime DEFAULT NULL,
      PRIMARY KEY (id), UNIQUE key uniq_k(cat, k)
    ) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;`;

  it('is migrated in place: rows DTM wrote stay readable, and big payloads fit afterwards', async () => {
    const o = inDatabase('dtm');
    await admin((c) => c.query(`CREATE DATABASE ${mysql.escapeId(o.database)} CHARACTER SET utf8mb4`));
    await admin(async (c) => {
      await c.query(dtmDdl);
      await c.query(`INSERT INTO trans_global (gid, trans_type, status, query_prepared, protocol, create_time,
          update_time, options, custom_data, next_cron_interval, next_cron_time, owner, ext_data, result, rollback_reason)
        VALUES ('dtm-gid', 'saga', 'submitted', '', 'http', '2026-01-01 00:00:00', '2026-01-01 00:00:05',
          '{"wait_result":true,"concurrent":false}', '', 10, '2026-01-01 00:00:15', '', NULL, '', '')`);
      await c.query(`INSERT INTO trans_branch_op (gid, url, bin_data, branch_id, op, status, create_time, update_time)
        VALUES ('dtm-gid', 'http://busi/TransOutRevert', '{}', '01', 'compensate', 'prepared', '2026-01-01 00:00:00', '2026-01-01 00:00:00'),
               ('dtm-gid', 'http://busi/TransOut', '{"amount":30}', '01', 'action', 'succeed', '2026-01-01 00:00:00', '2026-01-01 00:00:03')`);
      await c.query(`INSERT INTO kv (cat, k, v, version, create_time, update_time)
        VALUES ('topics', 'orders', '[{"url":"http://a","remark":""}]', 3, '2026-01-01 00:00:00', '2026-01-01 00:00:00')`);
    }, o.database);
    const store = await MysqlStore.open(o);
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
      const [cols] = (await store.pool.query(
        `SELECT table_name AS t, column_name AS c, data_type AS d, datetime_precision AS p, collation_name AS coll
         FROM information_schema.columns WHERE table_schema = DATABASE()`,
      )) as [{ t: string; c: string; d: string; p: number | null; coll: string | null }[], unknown];
      const col = (t: string, c: string) => cols.find((r) => r.t === t && r.c === c);
      for (const c of ['query_prepared', 'options', 'custom_data', 'ext_data', 'result', 'rollback_reason']) {
        assert.equal(col('trans_global', c)?.d, 'longtext', `trans_global.${c}`);
      }
      assert.equal(col('trans_branch_op', 'bin_data')?.d, 'longblob');
      assert.equal(col('trans_global', 'next_cron_time')?.p, 3);
      assert.equal(col('trans_global', 'gid')?.coll, 'utf8mb4_bin');
      // the store drives the old transaction on
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

describe('MysqlStore: behaviour of this backend', () => {
  let o: SqlStoreOptions;
  before(() => {
    o = inDatabase('gc');
  });
  const open = () => MysqlStore.open(o);
  sqlStoreBehaviour(open);

  it('a payload too big for a text batch is written alone, next to grouped small writes', async () => {
    const store = await open();
    try {
      // 9 MiB: as hex text it would exceed MariaDB's 16 MiB max_allowed_packet; it goes as a binary parameter
      const big = randomBytes(9 * 1024 * 1024);
      big.set(NON_UTF8, 77);
      const results = await Promise.all([
        outcome(store.saveNew(makeTrans('small-a'), [makeBranch('small-a', '01', 'action')])),
        outcome(store.saveNew(makeTrans('huge'), [makeBranch('huge', '01', 'action', { binData: big })])),
        outcome(store.saveNew(makeTrans('small-b'), [makeBranch('small-b', '01', 'action')])),
      ]);
      assert.deepEqual(results, ['ok', 'ok', 'ok']);
      assertSameBytes((await store.findBranches('huge'))[0]!.binData, big, '9 MiB');
      assert.equal((await store.findBranches('small-b')).length, 1);
    } finally {
      await store.close();
    }
  });

  it('a short transaction (the lease, retention) chosen as a deadlock victim is run again; other errors are not', async () => {
    const store = await open();
    const pool = store.pool;
    const other = await pool.getConnection();
    try {
      await pool.query('CREATE TABLE IF NOT EXISTS dl_probe (id INT PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB');
      await pool.query('DELETE FROM dl_probe');
      await pool.query(
        `INSERT INTO dl_probe VALUES ${Array.from({ length: 20 }, (_, i) => `(${i + 1}, 0)`).join(',')}`,
      );
      // the other transaction changed rows 2..20, so InnoDB rolls back the lighter of the two: ours
      await other.query('START TRANSACTION');
      await other.query('UPDATE dl_probe SET v = v + 1 WHERE id >= 2');
      let runs = 0;
      let otherDone: Promise<unknown> | undefined;
      const v = await shortTransaction(pool, async (c) => {
        runs++;
        await c.query('SELECT v FROM dl_probe WHERE id = 1 FOR UPDATE');
        if (runs === 1) {
          const [[me]] = (await c.query('SELECT CONNECTION_ID() AS id')) as unknown as [[{ id: number }]];
          const waiting = c.query('SELECT v FROM dl_probe WHERE id = 2 FOR UPDATE'); // waits for the other
          // how the wait ended, if it did before the cycle below (the message then says what the query got and what
          // InnoDB showed of both transactions)
          let settled: string | undefined;
          waiting.then(
            () => {
              settled = 'returned rows';
            },
            (err: unknown) => {
              settled = `failed: ${err instanceof Error ? err.message : String(err)}`;
            },
          );
          const deadline = Date.now() + 10_000;
          for (;;) {
            const [w] = (await pool.query(
              "SELECT COUNT(*) AS n FROM information_schema.INNODB_TRX WHERE trx_mysql_thread_id = ? AND trx_state = 'LOCK WAIT'",
              [me.id],
            )) as unknown as [[{ n: number }]];
            if (Number(w[0].n) > 0) break;
            if (settled !== undefined || Date.now() >= deadline) {
              const [trx] = await pool.query(
                'SELECT trx_mysql_thread_id, trx_state, trx_rows_locked, trx_isolation_level FROM information_schema.INNODB_TRX',
              );
              assert.fail(
                `our transaction (thread ${me.id}) never waited for the row the other holds; its query ${settled ?? 'is still running'}; INNODB_TRX: ${JSON.stringify(trx)}`,
              );
            }
            // InnoDB refreshes what INNODB_TRX shows only when nobody read it for 0.1 s: polled more often, a first
            // read taken before the wait began would show RUNNING forever (MariaDB 10.11: never seen in 3 s at 5 or
            // 50 ms between reads, seen at the second read 150 ms apart)
            await new Promise((r) => setTimeout(r, 150));
          }
          // the other now wants row 1, which we hold: a cycle, and InnoDB picks a victim at once
          otherDone = other.query('SELECT v FROM dl_probe WHERE id = 1 FOR UPDATE').then(() => other.query('COMMIT'));
          await waiting;
        }
        const [rows] = (await c.query('SELECT v FROM dl_probe WHERE id = 2 FOR UPDATE')) as unknown as [
          { v: number }[],
        ];
        return rows[0]!.v;
      });
      await otherDone;
      assert.equal(runs, 2, 'run once more after the deadlock');
      assert.equal(v, 1, 'the second run sees what the other transaction committed');

      let plainRuns = 0;
      await assert.rejects(
        shortTransaction(pool, async (c) => {
          plainRuns++;
          await c.query('SELECT no_such_column FROM dl_probe');
        }),
        /no_such_column/,
      );
      assert.equal(plainRuns, 1, 'an error other than a deadlock is not retried');
      let victimRuns = 0;
      await assert.rejects(
        shortTransaction(pool, async () => {
          victimRuns++;
          throw Object.assign(new Error('Deadlock found when trying to get lock'), { errno: 1213 });
        }),
        /Deadlock found/,
      );
      assert.equal(victimRuns, DEADLOCK_ATTEMPTS, 'a victim every time gives up after DEADLOCK_ATTEMPTS runs');
    } finally {
      other.destroy();
      await pool.query('DROP TABLE IF EXISTS dl_probe');
      await store.close();
    }
  });

  it('a saveNew alone in its batch: a new gid commits at once, a taken one fails on the unique key without a replay', async () => {
    const store = await open();
    try {
      const s0 = { ...store.stats };
      await store.saveNew(makeTrans('alone', { customData: 'first' }), [makeBranch('alone', '01', 'action')]);
      assert.equal(store.stats.batches - s0.batches, 1);
      assert.equal(store.stats.replays - s0.replays, 0, 'no savepoint replay for a gid that is free');
      const dup = outcome(
        store.saveNew(makeTrans('alone', { customData: 'second' }), [
          makeBranch('alone', '01', 'action'),
          makeBranch('alone', '02', 'action'),
        ]),
      );
      assert.equal(await dup, 'UniqueConflict');
      // a lone write's duplicate (a prepared msg / tcc / xa being submitted) costs no savepoint replay either
      assert.equal(store.stats.replays - s0.replays, 0, 'no savepoint replay for a lone duplicate');
      assert.equal((await store.findTrans('alone'))?.customData, 'first', 'the duplicate changed nothing');
      assert.deepEqual(
        (await store.findBranches('alone')).map((b) => b.branchId),
        ['01'],
      );
      // a duplicate branch inside a lone saveNew fails it whole, and the store goes on: the next lone write commits
      const half = outcome(
        store.saveNew(makeTrans('alone-half'), [
          makeBranch('alone-half', '01', 'action'),
          makeBranch('alone-half', '01', 'action'),
        ]),
      );
      assert.equal(await half, 'UniqueConflict');
      assert.equal(await store.findTrans('alone-half'), undefined, 'the failed saveNew left no global row');
      await store.saveNew(makeTrans('alone-2'), []);
      assert.equal((await store.findTrans('alone-2'))?.status, 'submitted');
      assert.equal(store.stats.replays - s0.replays, 0);
    } finally {
      await store.close();
    }
  });

  it("a batch of new sagas is sent without a gid lookup; a taken gid, or a msg's submit, brings the lookup in, without a replay", async () => {
    const store = await open();
    // the text of every query the group commit sends, read from its connections
    const sent: string[] = [];
    onWriterConnections(store, async (c) => {
      const marked = c as unknown as { dtxSpied?: boolean; query: (...a: unknown[]) => unknown };
      if (marked.dtxSpied) return;
      const query = marked.query.bind(c);
      marked.query = (sql: unknown, ...rest: unknown[]) => {
        sent.push(typeof sql === 'string' ? sql : String((sql as { sql: string }).sql));
        return query(sql, ...rest);
      };
      marked.dtxSpied = true;
    });
    const lookups = () => sent.filter((q) => q.startsWith('SELECT gid FROM trans_global')).length;
    /** Writes issued in one tick, which the commit queue sends as one batch. */
    const oneBatch = async (writes: (() => Promise<unknown>)[]) => {
      const s0 = { ...store.stats };
      sent.length = 0;
      const settled = await Promise.all(writes.map((w) => outcome(w())));
      assert.equal(store.stats.batches - s0.batches, 1, 'one batch');
      assert.equal(store.stats.replays - s0.replays, 0, 'no savepoint replay');
      return settled;
    };
    try {
      await store.saveNew(makeTrans('lk-taken', { customData: 'first' }), [makeBranch('lk-taken', '01', 'action')]);
      const sagas = (...gids: string[]) =>
        gids.map((g) => () => store.saveNew(makeTrans(g), [makeBranch(g, '01', 'action')]));

      assert.deepEqual(await oneBatch(sagas('lk-a', 'lk-b', 'lk-c')), ['ok', 'ok', 'ok']);
      assert.equal(lookups(), 0, 'new sagas: no lookup');
      assert.equal(sent.length, 1, 'new sagas: one round trip');

      // their INSERTs merged: one multi-row INSERT a table, in the batch's one query; each caller is told the ids
      // its rows got, among the rows of other writes (sagas of 0 to 3 steps, and a write of another kind between)
      const made = ['lk-m0', 'lk-m1', 'lk-m2', 'lk-m3'].map((g, n) => ({
        t: makeTrans(g),
        bs: Array.from({ length: 2 * n }, (_, i) => makeBranch(g, String(i >> 1), i % 2 ? 'action' : 'compensate')),
      }));
      const [m0, m1, m2, m3] = made as [(typeof made)[0], (typeof made)[0], (typeof made)[0], (typeof made)[0]];
      const [ta] = await store.findBranches('lk-a');
      assert.deepEqual(
        await oneBatch([
          () => store.saveNew(m0.t, m0.bs),
          () => store.saveNew(m1.t, m1.bs),
          () => store.updateBranches('lk-a', 'submitted', [{ ...ta!, status: 'succeed' }]),
          () => store.saveNew(m2.t, m2.bs),
          () => store.saveNew(m3.t, m3.bs),
        ]),
        ['ok', 'ok', 'ok', 'ok', 'ok'],
      );
      assert.equal(sent.length, 1);
      assert.equal(sent[0]!.match(/INSERT INTO trans_global/g)?.length, 1, sent[0]);
      assert.equal(sent[0]!.match(/INSERT INTO trans_branch_op/g)?.length, 1, sent[0]);
      for (const { t, bs } of made) {
        const stored = await store.findTrans(t.gid);
        assert.ok(t.id !== undefined && t.id === stored?.id, `${t.gid}: reported ${t.id}, stored ${stored?.id}`);
        assert.deepEqual(
          bs.map((b) => `${b.id} ${b.branchId}/${b.op}`),
          (await store.findBranches(t.gid)).map((b) => `${b.id} ${b.branchId}/${b.op}`),
          t.gid,
        );
      }
      assert.equal((await store.findBranches('lk-a'))[0]?.status, 'succeed');

      // a taken gid and a gid twice in the batch: the batch hits the unique key, is rolled back, and goes again
      // with its gids looked up, so only those writes fail
      assert.deepEqual(await oneBatch(sagas('lk-d', 'lk-taken', 'lk-e', 'lk-e')), [
        'ok',
        'UniqueConflict',
        'ok',
        'UniqueConflict',
      ]);
      assert.equal(lookups(), 1);
      assert.deepEqual(
        sent.map((q) => q.split(/[\s;]/)[0]),
        ['START', 'ROLLBACK', 'SELECT', 'START'],
        'the failed batch, its rollback, the lookup, the batch without the taken gids',
      );
      assert.equal((await store.findTrans('lk-taken'))?.customData, 'first', 'the duplicate changed nothing');
      for (const g of ['lk-d', 'lk-e']) assert.equal((await store.findBranches(g)).length, 1, g);

      // the submit of a prepared msg is a saveNew of a gid that exists: its batch is looked up first
      await store.saveNew(makeTrans('lk-msg', { transType: 'msg', status: 'prepared' }), []);
      assert.deepEqual(
        await oneBatch([
          ...sagas('lk-f'),
          () => store.saveNew(makeTrans('lk-msg', { transType: 'msg' }), [makeBranch('lk-msg', '01', 'action')]),
        ]),
        ['ok', 'UniqueConflict'],
      );
      assert.deepEqual(
        sent.map((q) => q.split(/[\s;]/)[0]),
        ['SELECT', 'START'],
        'looked up first: no failed batch',
      );
      assert.equal((await store.findTrans('lk-msg'))?.status, 'prepared');
      assert.equal((await store.findBranches('lk-f')).length, 1);
    } finally {
      await store.close();
    }
  });

  it('branch writes wait for a status change in flight, even with sessions at READ COMMITTED, and then write nothing', async () => {
    const store = await open();
    // the group commit's connections at READ COMMITTED (their level unless the binary log is statement-based),
    // where INSERT … SELECT reads without a lock unless told to
    onWriterConnections(store, async (c) => {
      await c.query('SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED');
    });
    const other = await mysql.createConnection({
      host: SERVER.host,
      port: SERVER.port,
      user: SERVER.user,
      password: SERVER.password,
      database: o.database,
    });
    /**
     * Polls until the server runs a statement of the store naming `gid` (deadline 10 s): it can only be waiting for
     * the row lock (a write that read without the lock would have finished, and its outcome said so).
     */
    const reached = async (gid: string, settled: () => boolean) => {
      const until = Date.now() + 10_000;
      for (;;) {
        const [r] = (await other.query(
          'SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE id <> CONNECTION_ID() AND info LIKE ?',
          [`%${gid}%`],
        )) as [Record<string, unknown>[], unknown];
        if (Number(r[0]!.n) > 0) return;
        assert.ok(!settled(), `the write of ${gid} went ahead of the status change`);
        assert.ok(Date.now() < until, `no write of ${gid} reached the server`);
        await new Promise((resolve) => setImmediate(resolve));
      }
    };
    try {
      for (const how of ['insertBranches', 'updateBranches'] as const) {
        const gid = `rc-${how}`;
        await store.saveNew(makeTrans(gid, { transType: 'tcc', status: 'prepared' }), [
          makeBranch(gid, '01', 'confirm'),
        ]);
        const rows = await store.findBranches(gid);
        const before = rows.map((b) => `${b.branchId}/${b.op} ${b.status}`);
        // another instance moves the global and has not committed yet
        await other.query('START TRANSACTION');
        await other.query("UPDATE trans_global SET status = 'aborting' WHERE gid = ?", [gid]);
        const write = outcome(
          how === 'insertBranches'
            ? store.insertBranches(gid, 'prepared', [makeBranch(gid, '02', 'confirm'), makeBranch(gid, '02', 'cancel')])
            : store.updateBranches(gid, 'prepared', [{ ...rows[0]!, status: 'succeed' }]),
        );
        let settled = false;
        void write.then(() => {
          settled = true;
        });
        await reached(gid, () => settled);
        assert.equal(settled, false, `${how} went ahead of the status change`);
        await other.query('COMMIT');
        assert.equal(await write, 'NotFound', how);
        assert.deepEqual(
          (await store.findBranches(gid)).map((b) => `${b.branchId}/${b.op} ${b.status}`),
          before,
          `${how} wrote nothing`,
        );
      }
    } finally {
      await other.end();
      await store.close();
    }
  });

  it("a registered branch's batch, held open, does not hold up a new gid that sorts next to its global (no gap lock)", async () => {
    // a database of its own: the gap before 'gap-m' in the gid index must hold no other gid
    const og = inDatabase('gap');
    const store = await MysqlStore.open(og);
    const other = await mysql.createConnection({
      host: SERVER.host,
      port: SERVER.port,
      user: SERVER.user,
      password: SERVER.password,
      database: og.database,
    });
    try {
      await store.saveNew(makeTrans('gap-m'), [makeBranch('gap-m', '03', 'action')]);
      // the held batch's connection waits long for its lock; the next one gives up on a lock after 1 s, so a
      // write that had to wait for the held batch fails instead of going through once the held one gave up
      let lockWaitSeconds = 60;
      onWriterConnections(store, async (c) => {
        await c.query(`SET SESSION innodb_lock_wait_timeout = ${lockWaitSeconds}`);
      });
      // another session (REPEATABLE READ) locks the gap before gap-m's branch 03, so a registration of 04 and then
      // 02 has run its first INSERT … SELECT (which read gap-m's global row) and waits in its second: its batch
      // stays open
      await other.query('START TRANSACTION');
      await other.query("SELECT id FROM trans_branch_op WHERE gid = 'gap-m' AND branch_id = '02' FOR UPDATE");
      let heldDone = false;
      const registered = [makeBranch('gap-m', '04', 'action'), makeBranch('gap-m', '02', 'action')];
      const held = outcome(store.insertBranches('gap-m', 'submitted', registered)).finally(() => {
        heldDone = true;
      });
      for (const until = Date.now() + 10_000; ; ) {
        const [r] = (await other.query(
          'SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE id <> CONNECTION_ID() AND info LIKE ?',
          // the second registration's statement (the first's text holds '02' too, in its dates)
          ["%SELECT 'gap-m'%'02', 'action'%"],
        )) as [{ n: number }[], unknown];
        if (Number(r[0]!.n) > 0) break;
        assert.ok(!heldDone && Date.now() < until, 'the registration never reached the server and waited there');
        await new Promise((resolve) => setImmediate(resolve));
      }
      // a new transaction whose gid sorts just before gap-m, in the gap a next-key lock on gap-m's row would
      // cover: it commits while that batch is open (at REPEATABLE READ it waited for that lock)
      lockWaitSeconds = 1;
      assert.equal(await outcome(store.saveNew(makeTrans('gap-l'), [])), 'ok');
      assert.equal(heldDone, false, 'the registration was still held');
      await other.query('COMMIT');
      assert.equal(await held, 'ok');
      assert.deepEqual(
        (await store.findBranches('gap-m')).map((b) => `${b.branchId}/${b.op}`),
        ['03/action', '04/action', '02/action'],
      );
      assert.equal((await store.findTrans('gap-l'))?.status, 'submitted');
    } finally {
      await other.end();
      await store.close();
    }
  });

  it('gids, branch ids and KV keys compare exactly (case matters)', async () => {
    const store = await open();
    try {
      await store.saveNew(makeTrans('CaseGid'), [makeBranch('CaseGid', 'a', 'action')]);
      await store.saveNew(makeTrans('casegid'), []);
      await store.insertBranches('CaseGid', 'submitted', [makeBranch('CaseGid', 'A', 'action')]);
      assert.equal((await store.findBranches('CaseGid')).length, 2);
      assert.equal(await store.findTrans('CASEGID'), undefined);
      await store.createKV('topics', 'CaseK', 'x', at(1));
      await store.createKV('topics', 'casek', 'y', at(1));
      assert.equal((await store.findKV('topics', 'CaseK'))[0]?.v, 'x');
    } finally {
      await store.close();
    }
  });
});
