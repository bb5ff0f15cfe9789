-- The sub-transaction barrier table of dtx for MySQL and MariaDB, compatible with DTM's dtm_barrier.barrier.
-- Idempotent: safe to run again. The same statements are applied by `ensureBarrierTable(mysqlBarrierDb(pool))`
-- from @dtx/client, which also accepts another table name.

CREATE DATABASE IF NOT EXISTS dtm_barrier DEFAULT CHARACTER SET utf8mb4;

CREATE TABLE IF NOT EXISTS dtm_barrier.barrier (
  id bigint(22) PRIMARY KEY AUTO_INCREMENT,
  trans_type varchar(45) DEFAULT '',
  gid varchar(128) DEFAULT '',
  branch_id varchar(128) DEFAULT '',
  op varchar(45) DEFAULT '',
  barrier_id varchar(45) DEFAULT '',
  reason varchar(45) DEFAULT '' COMMENT 'the op of the branch that inserted this row',
  create_time datetime DEFAULT now(),
  update_time datetime DEFAULT now(),
  KEY (create_time),
  KEY (update_time),
  UNIQUE KEY uniq_barrier (gid, branch_id, op, barrier_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
