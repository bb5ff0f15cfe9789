package compat

import (
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
)

// db is the branch services' database dtx_compat on MariaDB. The barrier table is DTM's default,
// dtm_barrier.barrier, used by dtmcli unchanged.
var db *sql.DB

// The barrier DDL of DTM (sqls/dtmcli.barrier.mysql.sql, spec §9.1), minus its `drop table`.
var barrierDDL = []string{
	"CREATE DATABASE IF NOT EXISTS dtm_barrier /*!40100 DEFAULT CHARACTER SET utf8mb4 */",
	`CREATE TABLE IF NOT EXISTS dtm_barrier.barrier(
  id bigint(22) PRIMARY KEY AUTO_INCREMENT,
  trans_type varchar(45) default '',
  gid varchar(128) default '',
  branch_id varchar(128) default '',
  op varchar(45) default '',
  barrier_id varchar(45) default '',
  reason varchar(45) default '' comment 'the branch type who insert this record',
  create_time datetime DEFAULT now(),
  update_time datetime DEFAULT now(),
  key(create_time),
  key(update_time),
  UNIQUE key(gid, branch_id, op, barrier_id)
)`,
}

// One row per account; every test creates its own accounts (named after its gid), so runs never collide.
// trading_balance is what TCC tries freeze (negative) or promise (positive) until confirm or cancel.
var busiDDL = []string{
	"CREATE DATABASE IF NOT EXISTS dtx_compat /*!40100 DEFAULT CHARACTER SET utf8mb4 */",
	`CREATE TABLE IF NOT EXISTS dtx_compat.account(
  name varchar(160) PRIMARY KEY,
  balance decimal(12,2) NOT NULL DEFAULT 0,
  trading_balance decimal(12,2) NOT NULL DEFAULT 0,
  update_time datetime DEFAULT now()
)`,
}

func setupDB() error {
	// DTX_COMPAT_MYSQL: a go-sql-driver DSN without database, e.g. user:pass@tcp(host:port)/
	dsn := envOr("DTX_COMPAT_MYSQL", "dtx:dtx@tcp(127.0.0.1:3306)/")
	admin, err := sql.Open("mysql", dsn+"?timeout=5s&readTimeout=30s&writeTimeout=30s")
	if err != nil {
		return err
	}
	defer admin.Close()
	if err := admin.Ping(); err != nil {
		return fmt.Errorf("cannot use MariaDB with %q (%v): start it with `bash scripts/services.sh`, or set DTX_COMPAT_MYSQL", dsn, err)
	}
	for _, s := range append(append([]string{}, barrierDDL...), busiDDL...) {
		if _, err := admin.Exec(s); err != nil {
			return fmt.Errorf("creating the compat tables: %v\n%s", err, s)
		}
	}
	db, err = sql.Open("mysql", dsn+"dtx_compat?timeout=5s&readTimeout=30s&writeTimeout=30s")
	if err != nil {
		return err
	}
	db.SetMaxOpenConns(20)
	db.SetConnMaxLifetime(time.Minute)
	return db.Ping()
}

func closeDB() {
	if db != nil {
		db.Close()
	}
}

// accounts of one test: out pays, in receives.
type accounts struct{ out, in string }

// newAccounts creates the two accounts of a test, each with balance 100.
func newAccounts(t *testing.T, gid string) accounts {
	t.Helper()
	a := accounts{out: gid + "/out", in: gid + "/in"}
	for _, n := range []string{a.out, a.in} {
		if _, err := db.Exec("INSERT INTO account(name, balance) VALUES(?, 100)", n); err != nil {
			t.Fatalf("creating account %s: %v", n, err)
		}
	}
	return a
}

type balance struct{ balance, trading float64 }

func readBalance(t *testing.T, name string) balance {
	t.Helper()
	var b balance
	if err := db.QueryRow("SELECT balance, trading_balance FROM account WHERE name = ?", name).Scan(&b.balance, &b.trading); err != nil {
		t.Fatalf("reading account %s: %v", name, err)
	}
	return b
}

// assertBalances checks both balances, and that no TCC amount is left frozen.
func (a accounts) assertBalances(t *testing.T, out, in float64) {
	t.Helper()
	got := []balance{readBalance(t, a.out), readBalance(t, a.in)}
	want := []balance{{out, 0}, {in, 0}}
	if got[0] != want[0] || got[1] != want[1] {
		t.Errorf("balances (balance, trading) out=%v in=%v, want out=%v in=%v", got[0], got[1], want[0], want[1])
	}
}

// barrierRows lists the barrier rows of a gid as "branch_id/op/barrier_id reason=<reason>", in id order.
func barrierRows(t *testing.T, gid string) []string {
	t.Helper()
	rows, err := db.Query("SELECT branch_id, op, barrier_id, reason FROM dtm_barrier.barrier WHERE gid = ? ORDER BY id", gid)
	if err != nil {
		t.Fatalf("reading barrier rows: %v", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var b, op, id, reason string
		if err := rows.Scan(&b, &op, &id, &reason); err != nil {
			t.Fatalf("reading barrier rows: %v", err)
		}
		out = append(out, fmt.Sprintf("%s/%s/%s reason=%s", b, op, id, reason))
	}
	return out
}

// assertBarrier compares the barrier rows of gid with want, as sets (concurrent branches may insert in any order).
func assertBarrier(t *testing.T, gid string, want ...string) {
	t.Helper()
	got := barrierRows(t, gid)
	seen := map[string]int{}
	for _, g := range got {
		seen[g]++
	}
	for _, w := range want {
		seen[w]--
	}
	for _, n := range seen {
		if n != 0 {
			t.Errorf("barrier rows of %s:\n  got  %s\n  want %s", gid, strings.Join(got, "; "), strings.Join(want, "; "))
			return
		}
	}
}
