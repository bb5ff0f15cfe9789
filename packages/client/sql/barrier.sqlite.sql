-- The sub-transaction barrier table of dtx for SQLite. Idempotent: safe to run again.
-- SQLite has no schemas (except ATTACHed databases), so the table is called `barrier` in the main database.
-- The same statements are applied by `ensureBarrierTable(sqliteBarrierDb(db))` from @dtx/client, which also
-- accepts another table name, e.g. `dtm_barrier.barrier` after `ATTACH DATABASE '...' AS dtm_barrier`.

CREATE TABLE IF NOT EXISTS barrier (
  id integer PRIMARY KEY AUTOINCREMENT,
  trans_type varchar(45) DEFAULT '',
  gid varchar(128) DEFAULT '',
  branch_id varchar(128) DEFAULT '',
  op varchar(45) DEFAULT '',
  barrier_id varchar(45) DEFAULT '',
  reason varchar(45) DEFAULT '',
  create_time datetime DEFAULT CURRENT_TIMESTAMP,
  update_time datetime DEFAULT CURRENT_TIMESTAMP,
  CONSTRAINT uniq_barrier UNIQUE (gid, branch_id, op, barrier_id)
);

CREATE INDEX IF NOT EXISTS barrier_create_time ON barrier (create_time);

CREATE INDEX IF NOT EXISTS barrier_update_time ON barrier (update_time);
