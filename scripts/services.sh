#!/usr/bin/env bash
# Installs (apt) and starts the four servers dtx's integration tests talk to, without systemd:
# PostgreSQL 15, MariaDB 10.11, Redis 7.0 and etcd 3.4 (Debian bookworm packages), each bound to
# 127.0.0.1 with its own data dir and log under /var/lib/dtx-services/<name>/.
# Idempotent: a service that already answers is left alone; only missing packages are installed and
# only dead daemons are (re)started. Users/databases are (re)asserted on every run (cheap).
# Usage (as root): bash scripts/services.sh     -> prints one line per service, then the test env.
set -euo pipefail

BASE=/var/lib/dtx-services
TIMEOUT=${DTX_SERVICES_TIMEOUT:-60} # seconds to wait for each daemon to answer
HOST=127.0.0.1
PG_PORT=5432 MY_PORT=3306 REDIS_PORT=6379 ETCD_PORT=2379 ETCD_PEER_PORT=2380
DB_USER=dtx DB_PASS=dtx DB_NAME=dtx_test
PG_BIN=/usr/lib/postgresql/15/bin
# chromium (/usr/bin/chromium) is no service: the admin UI's browser test drives it headless
PACKAGES=(postgresql-15 mariadb-server redis-server etcd-server etcd-client chromium)

log() { printf '[services] %s\n' "$*" >&2; }
# fail <name> <logfile> <message>: explain, show where the log is and its tail, exit 1.
fail() {
  log "ERROR: $1: $3"
  if [[ -n $2 ]]; then
    log "log file: $2"
    [[ -f $2 ]] && tail -n 40 "$2" | sed 's/^/    /' >&2
  fi
  exit 1
}
# wait_until <cmd...>: poll every 0.5 s until cmd succeeds or TIMEOUT seconds pass.
wait_until() {
  local deadline=$((SECONDS + TIMEOUT))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.5
  done
}
# pid_alive <pidfile> <comm>: the pid in the file runs a process named <comm> (guards against pid
# reuse) that is not a zombie (a killed daemon can stay one a while if init is slow to reap it).
pid_alive() {
  local pid stat
  [[ -s $1 ]] || return 1
  pid=$(head -n 1 "$1")
  [[ $pid =~ ^[0-9]+$ && $(cat "/proc/$pid/comm" 2>/dev/null) == "$2" ]] || return 1
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  stat=${stat##*) } # fields after "(comm) ": the first one is the state
  [[ ${stat:0:1} != [ZX] ]]
}
# run_as <user> <cmd...>: run as a system user; exec-style (setpriv) so pids stay the daemon's own.
run_as() { setpriv --reuid="$1" --regid="$1" --init-groups -- "${@:2}"; }
# ensure <name> <log> <up-check> <start-fn> <pidfile> <comm>: start the service unless it answers.
ensure() {
  local name=$1 logf=$2 up=$3 start=$4 pidf=$5 comm=$6
  if "$up" >/dev/null 2>&1; then
    log "$name: already running"
    return
  fi
  if pid_alive "$pidf" "$comm"; then
    # e.g. a previous run's daemon still recovering: wait for it rather than start a second one.
    log "$name: pid $(head -n 1 "$pidf") is alive but not answering yet, waiting"
  else
    log "$name: starting"
    "$start" || fail "$name" "$logf" "could not be started"
  fi
  wait_until "$up" || fail "$name" "$logf" "not answering on $HOST after ${TIMEOUT}s"
}

[[ $EUID -eq 0 ]] || fail services "" "must run as root (installs packages, starts daemons as system users)"
cd / # the daemons run as other users: don't leave them in a cwd they cannot read
mkdir -p "$BASE"

# ---------------------------------------------------------------- packages
missing=()
for p in "${PACKAGES[@]}"; do
  [[ $(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null) == installed ]] || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing: ${missing[*]} (apt log: $BASE/apt.log)"
  # Debian's maintainer scripts start each service via invoke-rc.d on 127.0.0.1 with the default
  # data dirs, which would take our ports. A policy-rc.d that exits 101 forbids that; Docker images
  # usually ship one already, otherwise add one just for this install.
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\n# added by dtx scripts/services.sh during apt-get install\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt_opts=(-y -q -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
  # Update only when something must be installed (stale lists 404 on superseded security updates).
  apt-get "${apt_opts[@]}" update >>"$BASE/apt.log" 2>&1 || fail apt "$BASE/apt.log" "apt-get update failed"
  apt-get "${apt_opts[@]}" install --no-install-recommends "${missing[@]}" >>"$BASE/apt.log" 2>&1 ||
    fail apt "$BASE/apt.log" "apt-get install ${missing[*]} failed"
fi
for u in postgres mysql redis; do
  id -u "$u" >/dev/null 2>&1 || fail "$u" "" "system user $u missing although its package is installed"
done
ETCD_USER=etcd # created by etcd-server; fall back to root if a packaging variant does not
id -u "$ETCD_USER" >/dev/null 2>&1 || ETCD_USER=root

# ---------------------------------------------------------------- PostgreSQL 15
PG_DIR=$BASE/postgres PG_DATA=$BASE/postgres/data PG_LOG=$BASE/postgres/postgres.log
PG_SOCK=$BASE/postgres/run # own socket dir: /run/postgresql is not recreated without systemd
PG_MAX_PREPARED=64
pg_up() { "$PG_BIN/pg_isready" -q -h "$HOST" -p "$PG_PORT"; }
pg_start() {
  install -d -o postgres -g postgres -m 700 "$PG_DIR" "$PG_SOCK"
  touch "$PG_LOG" && chown postgres:postgres "$PG_LOG" # pg_ctl -l opens it as postgres
  if [[ ! -s $PG_DATA/PG_VERSION ]]; then
    rm -rf "$PG_DATA" # a half-initialised dir from an interrupted run: initdb wants it empty
    # peer auth on the socket (admin as OS user postgres), passwords (scram) over TCP.
    run_as postgres "$PG_BIN/initdb" -D "$PG_DATA" -U postgres -E UTF8 --locale=C.UTF-8 \
      --auth-local=peer --auth-host=scram-sha-256 >>"$PG_LOG" 2>&1 || return 1
    echo "include 'dtx.conf'" >>"$PG_DATA/postgresql.conf"
  fi
  # Rewritten every start so this script stays the source of truth. fsync/synchronous_commit are
  # the defaults, spelled out because DTM's durability guarantees rely on them.
  cat >"$PG_DATA/dtx.conf" <<EOF
listen_addresses = '$HOST'
port = $PG_PORT
unix_socket_directories = '$PG_SOCK'
max_connections = 200
fsync = on
synchronous_commit = on
full_page_writes = on
# XA branches (PREPARE TRANSACTION) need prepared-transaction slots; 0 (the default) disables them.
max_prepared_transactions = $PG_MAX_PREPARED
EOF
  chown postgres:postgres "$PG_DATA/dtx.conf"
  # Retry within the deadline: after a kill -9 of the postmaster its children take a moment to
  # exit, and until then the new postmaster refuses to start (shared memory still in use).
  local deadline=$((SECONDS + TIMEOUT))
  # shellcheck disable=SC2094 # pg_ctl -l only appends to the log, like our redirect
  until run_as postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -s -w -t "$TIMEOUT" start >>"$PG_LOG" 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 1
  done
}
ensure postgres "$PG_LOG" pg_up pg_start "$PG_DATA/postmaster.pid" postgres
[[ -S $PG_SOCK/.s.PGSQL.$PG_PORT ]] ||
  fail postgres "$PG_LOG" "$HOST:$PG_PORT answers but $PG_SOCK has no socket: another PostgreSQL owns the port"
# Test box only: dtx is a SUPERUSER (implies CREATEDB) so tests may create/drop databases,
# schemas and extensions freely. Never do this on a shared server.
run_as postgres "$PG_BIN/psql" -h "$PG_SOCK" -p "$PG_PORT" -d postgres -X -q -v ON_ERROR_STOP=1 >>"$PG_LOG" 2>&1 <<SQL ||
SELECT 'CREATE ROLE $DB_USER' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$DB_USER') \gexec
ALTER ROLE $DB_USER LOGIN SUPERUSER CREATEDB PASSWORD '$DB_PASS';
SELECT 'CREATE DATABASE $DB_NAME OWNER $DB_USER' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$DB_NAME') \gexec
SQL
  fail postgres "$PG_LOG" "could not create role $DB_USER / database $DB_NAME"
PG_URL="postgres://$DB_USER:$DB_PASS@$HOST:$PG_PORT/$DB_NAME"
pg_version=$("$PG_BIN/psql" "$PG_URL" -X -tA -c 'SHOW server_version') || fail postgres "$PG_LOG" "cannot log in with $PG_URL"
# A server started by an older version of this script runs without prepared-transaction slots, and
# that setting only changes on restart: restart it once so the XA tests find them.
if [[ $("$PG_BIN/psql" "$PG_URL" -X -tA -c 'SHOW max_prepared_transactions') != "$PG_MAX_PREPARED" ]]; then
  log "postgres: restarting to apply max_prepared_transactions = $PG_MAX_PREPARED"
  run_as postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" -s -w -t "$TIMEOUT" stop -m fast >>"$PG_LOG" 2>&1 ||
    fail postgres "$PG_LOG" "could not stop for restart"
  pg_start || fail postgres "$PG_LOG" "could not restart"
fi

# ---------------------------------------------------------------- MariaDB 10.11
MY_DIR=$BASE/mariadb MY_DATA=$BASE/mariadb/data MY_LOG=$BASE/mariadb/mariadb.log
MY_CNF=$BASE/mariadb/my.cnf MY_SOCK=$BASE/mariadb/mysqld.sock MY_PID=$BASE/mariadb/mariadbd.pid
# Ping our own instance through its socket as root (unix_socket auth). Over TCP a fresh server
# answers 1130 "host not allowed" (no 127.0.0.1 users yet), which mariadb-admin counts as down.
my_up() { mariadb-admin --no-defaults -S "$MY_SOCK" -u root --connect-timeout=2 ping; }
my_start() {
  install -d -o mysql -g mysql -m 750 "$MY_DIR"
  install -d -o mysql -g mysql -m 700 "$MY_DATA"
  # Own defaults file (not /etc/mysql/my.cnf) so Debian's config cannot move port/socket/datadir.
  cat >"$MY_CNF" <<EOF
[mysqld]
user = mysql
bind-address = $HOST
port = $MY_PORT
datadir = $MY_DATA
socket = $MY_SOCK
pid-file = $MY_PID
max_connections = 300
# durable commits: flush+fsync the redo log at every commit
innodb_flush_log_at_trx_commit = 1
# users are matched by IP (dtx@127.0.0.1) and socket (dtx@localhost); no DNS lookups
skip-name-resolve
# Debian's default charset (upstream 10.11 still defaults to latin1)
character-set-server = utf8mb4
collation-server = utf8mb4_general_ci
EOF
  if [[ ! -d $MY_DATA/mysql ]]; then
    # root@localhost authenticates by unix socket (OS user root) only, like Debian's own setup.
    mariadb-install-db --defaults-file="$MY_CNF" --user=mysql --skip-test-db \
      --auth-root-authentication-method=socket >>"$MY_LOG" 2>&1 || return 1
  fi
  # mariadbd drops to user=mysql itself; its stderr (the error log) goes to our log file.
  setsid /usr/sbin/mariadbd --defaults-file="$MY_CNF" </dev/null >>"$MY_LOG" 2>&1 &
}
# (If another MySQL/MariaDB holds port 3306, ours fails with "Address already in use" in the log.)
ensure mariadb "$MY_LOG" my_up my_start "$MY_PID" mariadbd
# ALL ON *.*: the tests and DTM create their own databases (dtm, dtm_barrier, dtx_test, ...).
mariadb --no-defaults -S "$MY_SOCK" -u root >>"$MY_LOG" 2>&1 <<SQL ||
CREATE USER IF NOT EXISTS '$DB_USER'@'$HOST' IDENTIFIED BY '$DB_PASS';
CREATE USER IF NOT EXISTS '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASS';
ALTER USER '$DB_USER'@'$HOST' IDENTIFIED BY '$DB_PASS';
ALTER USER '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASS';
GRANT ALL PRIVILEGES ON *.* TO '$DB_USER'@'$HOST';
GRANT ALL PRIVILEGES ON *.* TO '$DB_USER'@'localhost';
CREATE DATABASE IF NOT EXISTS $DB_NAME;
SQL
  fail mariadb "$MY_LOG" "could not create user $DB_USER / database $DB_NAME"
MY_URL="mysql://$DB_USER:$DB_PASS@$HOST:$MY_PORT/$DB_NAME"
my_version=$(mariadb --no-defaults -h "$HOST" -P "$MY_PORT" -u "$DB_USER" -p"$DB_PASS" -D "$DB_NAME" -NB -e 'SELECT VERSION()') ||
  fail mariadb "$MY_LOG" "cannot log in as $DB_USER to $DB_NAME over TCP"

# ---------------------------------------------------------------- Redis 7.0
R_DIR=$BASE/redis R_LOG=$BASE/redis/redis.log R_CONF=$BASE/redis/redis.conf R_PID=$BASE/redis/redis.pid
redis_up() { [[ $(redis-cli -h "$HOST" -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]; } # not -LOADING
redis_start() {
  install -d -o redis -g redis -m 750 "$R_DIR" "$R_DIR/data"
  touch "$R_LOG" && chown redis:redis "$R_LOG" # redis reopens its logfile as user redis
  cat >"$R_CONF" <<EOF
bind $HOST
port $REDIS_PORT
protected-mode yes
daemonize yes
pidfile $R_PID
logfile $R_LOG
dir $R_DIR/data
appendonly yes
appendfsync everysec
EOF
  chown redis:redis "$R_CONF"
  # daemonize forks after parsing the config; config errors land in the log via stderr.
  run_as redis redis-server "$R_CONF" </dev/null >>"$R_LOG" 2>&1
}
ensure redis "$R_LOG" redis_up redis_start "$R_PID" redis-server
redis_version=$(redis-cli -h "$HOST" -p "$REDIS_PORT" info server | tr -d '\r' | sed -n 's/^redis_version://p')

# ---------------------------------------------------------------- etcd 3.4
E_DIR=$BASE/etcd E_LOG=$BASE/etcd/etcd.log E_PID=$BASE/etcd/etcd.pid
E_URL=http://$HOST:$ETCD_PORT
etcd_up() { ETCDCTL_API=3 etcdctl --endpoints="$E_URL" --dial-timeout=2s --command-timeout=3s endpoint health; }
etcd_start() {
  install -d -o "$ETCD_USER" -g "$ETCD_USER" -m 750 "$E_DIR"
  install -d -o "$ETCD_USER" -g "$ETCD_USER" -m 700 "$E_DIR/data" # etcd warns unless 0700
  # Single-member cluster; the --initial-* flags are ignored once the data dir exists.
  # setsid+setpriv exec in place, so $! is etcd's own pid.
  setsid setpriv --reuid="$ETCD_USER" --regid="$ETCD_USER" --init-groups -- etcd \
    --name dtx --data-dir "$E_DIR/data" --logger zap \
    --listen-client-urls "$E_URL" --advertise-client-urls "$E_URL" \
    --listen-peer-urls "http://$HOST:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://$HOST:$ETCD_PEER_PORT" \
    --initial-cluster "dtx=http://$HOST:$ETCD_PEER_PORT" --initial-cluster-state new --initial-cluster-token dtx-test \
    </dev/null >>"$E_LOG" 2>&1 &
  echo $! >"$E_PID"
}
ensure etcd "$E_LOG" etcd_up etcd_start "$E_PID" etcd
etcd_version=$(curl -fsS --max-time 3 "$E_URL/version" 2>/dev/null | sed -n 's/.*"etcdserver":"\([^"]*\)".*/\1/p' || true)
[[ -n $etcd_version ]] || etcd_version=$(etcd --version | sed -n 's/^etcd Version: //p')

# ---------------------------------------------------------------- summary
printf '%-9s %-34s %s\n' \
  postgres "$pg_version" "$HOST:$PG_PORT  (db $DB_NAME, user $DB_USER; log $PG_LOG)" \
  mariadb "$my_version" "$HOST:$MY_PORT  (db $DB_NAME, user $DB_USER; log $MY_LOG)" \
  redis "$redis_version" "$HOST:$REDIS_PORT  (log $R_LOG)" \
  etcd "$etcd_version" "$E_URL  (peer $HOST:$ETCD_PEER_PORT; log $E_LOG)"
echo "# environment for the tests (these are also the defaults the test code uses):"
echo "export DTX_PG_URL=$PG_URL"
echo "export DTX_MYSQL_URL=$MY_URL"
echo "export DTX_REDIS_URL=redis://$HOST:$REDIS_PORT"
echo "export DTX_ETCD_ENDPOINT=$E_URL"
