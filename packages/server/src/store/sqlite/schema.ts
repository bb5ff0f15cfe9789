/**
 * The SQLite schema: DTM's three tables (trans_global, trans_branch_op, kv) with the same column
 * names, times as epoch milliseconds, and payloads as BLOBs without a size cap.
 * Versioned through PRAGMA user_version; each entry of MIGRATIONS moves the schema one version up.
 */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE IF NOT EXISTS trans_global (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    gid TEXT NOT NULL UNIQUE,
    trans_type TEXT NOT NULL,
    status TEXT NOT NULL,
    query_prepared TEXT NOT NULL DEFAULT '',
    protocol TEXT NOT NULL DEFAULT '',
    create_time INTEGER,
    update_time INTEGER,
    finish_time INTEGER,
    rollback_time INTEGER,
    options TEXT NOT NULL DEFAULT '',
    custom_data TEXT NOT NULL DEFAULT '',
    next_cron_interval INTEGER,
    next_cron_time INTEGER,
    owner TEXT NOT NULL DEFAULT '',
    ext_data TEXT NOT NULL DEFAULT '',
    result TEXT NOT NULL DEFAULT '',
    rollback_reason TEXT NOT NULL DEFAULT ''
  );
  CREATE INDEX IF NOT EXISTS trans_global_due ON trans_global(next_cron_time)
    WHERE status IN ('prepared', 'submitted', 'aborting');
  CREATE INDEX IF NOT EXISTS trans_global_owner ON trans_global(owner);
  CREATE TABLE IF NOT EXISTS trans_branch_op (
    id INTEGER PRIMARY KEY,
    gid TEXT NOT NULL,
    url TEXT NOT NULL DEFAULT '',
    bin_data BLOB,
    branch_id TEXT NOT NULL,
    op TEXT NOT NULL,
    status TEXT NOT NULL,
    finish_time INTEGER,
    rollback_time INTEGER,
    create_time INTEGER,
    update_time INTEGER,
    UNIQUE (gid, branch_id, op)
  );
  CREATE TABLE IF NOT EXISTS kv (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    cat TEXT NOT NULL,
    k TEXT NOT NULL,
    v TEXT,
    version INTEGER DEFAULT 1,
    create_time INTEGER,
    update_time INTEGER,
    UNIQUE (cat, k)
  );
  `,
  // 2: retention finds finished transactions by age without scanning (deleting their branches uses the unique
  // index of trans_branch_op, whose prefix is the transaction: gid up to version 4, trans_id since 5)
  `
  CREATE INDEX IF NOT EXISTS trans_global_finished ON trans_global(update_time)
    WHERE status IN ('succeed', 'failed');
  `,
  // 3: attempt history (per branch: attempts and the last one's time, result and error; per transaction:
  // failed attempts in a row, the last error, whether its one stuck alert was sent)
  `
  ALTER TABLE trans_global ADD COLUMN failed_attempts INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE trans_global ADD COLUMN last_error TEXT NOT NULL DEFAULT '';
  ALTER TABLE trans_global ADD COLUMN stuck_alerted INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE trans_branch_op ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE trans_branch_op ADD COLUMN last_attempt_time INTEGER;
  ALTER TABLE trans_branch_op ADD COLUMN last_result TEXT NOT NULL DEFAULT '';
  ALTER TABLE trans_branch_op ADD COLUMN last_error TEXT NOT NULL DEFAULT '';
  `,
  // 4: no query reads trans_global by owner (the lease writes it, the admin shows it), so its index only cost a
  // page written to the WAL on every new transaction and every lease: 13 pages a 2-step saga, now 12
  `
  DROP INDEX IF EXISTS trans_global_owner;
  `,
  // 5: branch rows are keyed by their transaction's row id, not its gid. Gids are random (newGid is a UUID), so the
  // unique (gid, branch_id, op) index took every new transaction's branches into a random leaf page: one more page
  // written to the WAL per transaction, and in a batch one per transaction instead of one shared page. The row id
  // grows with each new transaction, so (trans_id, branch_id, op) is written at its right edge. Rows whose
  // transaction is gone (none are written so) are not carried over: nothing could read them.
  `
  CREATE TABLE trans_branch_op_v5 (
    id INTEGER PRIMARY KEY,
    trans_id INTEGER NOT NULL,
    gid TEXT NOT NULL,
    url TEXT NOT NULL DEFAULT '',
    bin_data BLOB,
    branch_id TEXT NOT NULL,
    op TEXT NOT NULL,
    status TEXT NOT NULL,
    finish_time INTEGER,
    rollback_time INTEGER,
    create_time INTEGER,
    update_time INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_attempt_time INTEGER,
    last_result TEXT NOT NULL DEFAULT '',
    last_error TEXT NOT NULL DEFAULT '',
    UNIQUE (trans_id, branch_id, op)
  );
  INSERT INTO trans_branch_op_v5 (id, trans_id, gid, url, bin_data, branch_id, op, status, finish_time, rollback_time,
    create_time, update_time, attempts, last_attempt_time, last_result, last_error)
    SELECT b.id, g.id, b.gid, b.url, b.bin_data, b.branch_id, b.op, b.status, b.finish_time, b.rollback_time,
      b.create_time, b.update_time, b.attempts, b.last_attempt_time, b.last_result, b.last_error
    FROM trans_branch_op b JOIN trans_global g ON g.gid = b.gid;
  DROP TABLE trans_branch_op;
  ALTER TABLE trans_branch_op_v5 RENAME TO trans_branch_op;
  `,
];
