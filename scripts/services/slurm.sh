#!/usr/bin/env bash
# Single-node SLURM cluster on localhost, with accounting (slurmdbd + MariaDB), for tests.
#
#   scripts/services/slurm.sh up|down|status
#
# Everything lives in a state dir (default /tmp/ablate-slurm, env ABLATE_SLURM_DIR):
# slurm.conf, slurmdbd.conf, a private munged (own socket), a private MariaDB (127.0.0.1),
# state/spool dirs, pid files and logs. Only /etc/munge/munge.key is shared with the system.
# `up` prints the environment a client needs, e.g. `export SLURM_CONF=/tmp/ablate-slurm/slurm.conf`.
#
# Env: ABLATE_SLURM_DIR, ABLATE_SLURM_CTLD_PORT (6817), ABLATE_SLURMD_PORT (6818),
#      ABLATE_SLURMDBD_PORT (6819), ABLATE_SLURM_DB_PORT (53306, MariaDB on 127.0.0.1),
#      ABLATE_SLURM_CPUS (8), ABLATE_SLURM_WAIT (60, seconds to wait for each daemon).
set -euo pipefail
SVC_NAME=slurm
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

S=${ABLATE_SLURM_DIR:-/tmp/ablate-slurm}
CTLD_PORT=${ABLATE_SLURM_CTLD_PORT:-6817}
SLURMD_PORT=${ABLATE_SLURMD_PORT:-6818}
DBD_PORT=${ABLATE_SLURMDBD_PORT:-6819}
DB_PORT=${ABLATE_SLURM_DB_PORT:-53306}
CPUS=${ABLATE_SLURM_CPUS:-8}
WAIT=${ABLATE_SLURM_WAIT:-60}
CLUSTER=ablate
DB_NAME=slurm_acct_db
DB_USER=slurm
DB_PASS=ablate-slurmdb

MUNGE_DIR=$S/munge
MUNGE_SOCK=$MUNGE_DIR/munge.socket
MUNGE_KEY=/etc/munge/munge.key
DB_DIR=$S/mysql
DB_SOCK=$DB_DIR/mysqld.sock
LOG=$S/log
export SLURM_CONF=$S/slurm.conf

PID_MUNGED=$MUNGE_DIR/munged.pid
PID_DB=$DB_DIR/mariadbd.pid
PID_DBD=$S/slurmdbd.pid
PID_CTLD=$S/slurmctld.pid
PID_SLURMD=$S/slurmd.pid

find_bin() { # first existing executable among the arguments
  local b
  for b in "$@"; do
    if [[ -x $b ]]; then echo "$b"; return 0; fi
    if command -v "$b" >/dev/null 2>&1; then command -v "$b"; return 0; fi
  done
  return 1
}

binaries_present() {
  find_bin /usr/sbin/slurmctld && find_bin /usr/sbin/slurmd && find_bin /usr/sbin/slurmdbd \
    && find_bin sinfo && find_bin sacctmgr && find_bin sbatch && find_bin /usr/sbin/munged \
    && find_bin munge && find_bin /usr/sbin/mariadbd /usr/sbin/mysqld \
    && find_bin mariadb-install-db mysql_install_db && find_bin mariadb mysql
}

install_pkgs() {
  if binaries_present >/dev/null 2>&1; then
    log "slurm, munge, slurmdbd and mariadb binaries present; skipping install"
    return 0
  fi
  apt_install slurm-wlm munge mariadb-server slurmdbd
  binaries_present >/dev/null || die "packages installed but a slurm/munge/mariadb binary is still missing"
}

munge_ok() { munge -n -S "$MUNGE_SOCK" 2>/dev/null | unmunge -S "$MUNGE_SOCK" >/dev/null 2>&1; }
db_ok()    { "$MARIADB_ADMIN" --no-defaults -S "$DB_SOCK" -u root ping; }
dbd_ok()   { sacctmgr -n -P show cluster format=cluster; }
ctld_ok()  { scontrol ping | grep -q 'is UP'; }
no_jobs_left() { [[ -z $(squeue -h -o %A -t PENDING,RUNNING,COMPLETING,CONFIGURING 2>/dev/null) ]]; }
node_idle() { [[ $(sinfo -h -N -n localhost -o %t 2>/dev/null | head -n1) =~ ^(idle|mix|alloc) ]]; }

start_munge() {
  if [[ ! -s $MUNGE_KEY ]]; then
    log "creating munge key $MUNGE_KEY"
    mkdir -p /etc/munge
    if command -v mungekey >/dev/null; then
      mungekey --create --keyfile="$MUNGE_KEY" --force
    else
      dd if=/dev/urandom of="$MUNGE_KEY" bs=1 count=1024 status=none
    fi
  fi
  chown munge:munge /etc/munge "$MUNGE_KEY"
  chmod 0700 /etc/munge
  chmod 0400 "$MUNGE_KEY"
  if pid_alive "$PID_MUNGED" && munge_ok; then log "munged already running"; return 0; fi
  install -d -o munge -g munge -m 0755 "$MUNGE_DIR"
  chmod 0755 "$MUNGE_DIR"
  rm -f "$MUNGE_SOCK" "$MUNGE_SOCK.lock"
  log "starting munged (socket $MUNGE_SOCK)"
  runuser -u munge -- /usr/sbin/munged --socket="$MUNGE_SOCK" --pid-file="$PID_MUNGED" \
    --log-file="$MUNGE_DIR/munged.log" --seed-file="$MUNGE_DIR/munged.seed" \
    --key-file="$MUNGE_KEY" </dev/null >"$LOG/munged.start.log" 2>&1 \
    || die "munged failed to start: $(tail -n1 "$LOG/munged.start.log")"
  wait_until "$WAIT" munged munge_ok \
    || die "munged not answering on $MUNGE_SOCK after ${WAIT}s (see $MUNGE_DIR/munged.log)"
}

start_mariadb() {
  if pid_alive "$PID_DB" && db_ok >/dev/null 2>&1; then log "mariadb already running"; else
    install -d -o mysql -g mysql -m 0750 "$DB_DIR"
    if [[ ! -d $DB_DIR/data/mysql ]]; then
      log "initialising MariaDB data dir $DB_DIR/data"
      "$MARIADB_INSTALL_DB" --no-defaults --user=mysql --datadir="$DB_DIR/data" \
        --auth-root-authentication-method=socket --skip-test-db >"$DB_DIR/install.log" 2>&1 \
        || die "mariadb-install-db failed (see $DB_DIR/install.log)"
    fi
    need_free_port "$DB_PORT" "MariaDB (slurm accounting)" ABLATE_SLURM_DB_PORT
    log "starting mariadbd (127.0.0.1:$DB_PORT)"
    rm -f "$DB_SOCK"
    setsid "$MARIADBD" --no-defaults --user=mysql --datadir="$DB_DIR/data" \
      --socket="$DB_SOCK" --port="$DB_PORT" --bind-address=127.0.0.1 --skip-name-resolve \
      --pid-file="$PID_DB" --log-error="$DB_DIR/error.log" \
      --innodb-buffer-pool-size=128M --innodb-lock-wait-timeout=900 --innodb-log-file-size=64M \
      </dev/null >>"$DB_DIR/stdout.log" 2>&1 &
    wait_until "$WAIT" mariadb db_ok \
      || die "MariaDB not up after ${WAIT}s: $(tail -n1 "$DB_DIR/error.log" 2>/dev/null)"
  fi
  "$MARIADB" --no-defaults -S "$DB_SOCK" -u root <<SQL || die "could not create $DB_NAME / user $DB_USER in MariaDB"
CREATE DATABASE IF NOT EXISTS $DB_NAME;
CREATE USER IF NOT EXISTS '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASS';
CREATE USER IF NOT EXISTS '$DB_USER'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
GRANT ALL PRIVILEGES ON $DB_NAME.* TO '$DB_USER'@'localhost';
GRANT ALL PRIVILEGES ON $DB_NAME.* TO '$DB_USER'@'127.0.0.1';
FLUSH PRIVILEGES;
SQL
}

write_configs() {
  install -d -m 0755 "$S" "$LOG" "$S/state" "$S/spool"
  cat >"$S/slurmdbd.conf.new" <<CONF
# generated by scripts/services/slurm.sh
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCK
DbdHost=localhost
DbdPort=$DBD_PORT
SlurmUser=root
PidFile=$PID_DBD
LogFile=$LOG/slurmdbd.log
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=$DB_USER
StoragePass=$DB_PASS
StorageLoc=$DB_NAME
CONF
  chmod 0600 "$S/slurmdbd.conf.new"
  mv -f "$S/slurmdbd.conf.new" "$S/slurmdbd.conf"
  cat >"$S/slurm.conf.new" <<CONF
# generated by scripts/services/slurm.sh: one node (localhost), partition debug
ClusterName=$CLUSTER
SlurmctldHost=localhost
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCK
CryptoType=crypto/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1,bf_interval=1,sched_min_interval=0
SlurmdParameters=config_overrides
ReturnToService=2
InactiveLimit=0
KillWait=5
MinJobAge=300
StateSaveLocation=$S/state
SlurmdSpoolDir=$S/spool
SlurmctldPidFile=$PID_CTLD
SlurmdPidFile=$PID_SLURMD
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=$DBD_PORT
# for connections to slurmdbd, Slurm takes the munge socket from AccountingStoragePass
AccountingStoragePass=$MUNGE_SOCK
JobCompType=jobcomp/none
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=16000 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
  mv -f "$S/slurm.conf.new" "$S/slurm.conf"
}

start_slurmdbd() {
  if pid_alive "$PID_DBD" && dbd_ok >/dev/null 2>&1; then log "slurmdbd already running"; else
    need_free_port "$DBD_PORT" slurmdbd ABLATE_SLURMDBD_PORT
    log "starting slurmdbd (port $DBD_PORT)"
    /usr/sbin/slurmdbd </dev/null >"$LOG/slurmdbd.start.log" 2>&1 \
      || die "slurmdbd failed to start: $(tail -n1 "$LOG/slurmdbd.start.log")"
    wait_until "$WAIT" slurmdbd dbd_ok \
      || die "slurmdbd not answering after ${WAIT}s: $(tail -n1 "$LOG/slurmdbd.log" 2>/dev/null)"
  fi
  if ! sacctmgr -n -P show cluster format=cluster | grep -qx "$CLUSTER"; then
    log "registering cluster $CLUSTER with sacctmgr"
    sacctmgr -i add cluster "$CLUSTER" >&2 || die "sacctmgr add cluster $CLUSTER failed"
  fi
}

start_slurmctld() {
  if pid_alive "$PID_CTLD" && ctld_ok >/dev/null 2>&1; then log "slurmctld already running"; return 0; fi
  need_free_port "$CTLD_PORT" slurmctld ABLATE_SLURM_CTLD_PORT
  log "starting slurmctld -i (port $CTLD_PORT)"
  /usr/sbin/slurmctld -i </dev/null >"$LOG/slurmctld.start.log" 2>&1 \
    || die "slurmctld failed to start: $(tail -n1 "$LOG/slurmctld.start.log")"
  wait_until "$WAIT" slurmctld ctld_ok \
    || die "slurmctld not answering after ${WAIT}s: $(tail -n1 "$LOG/slurmctld.log" 2>/dev/null)"
}

start_slurmd() {
  if pid_alive "$PID_SLURMD"; then log "slurmd already running"; else
    need_free_port "$SLURMD_PORT" slurmd ABLATE_SLURMD_PORT
    log "starting slurmd -N localhost (port $SLURMD_PORT)"
    /usr/sbin/slurmd -N localhost </dev/null >"$LOG/slurmd.start.log" 2>&1 \
      || die "slurmd failed to start: $(tail -n1 "$LOG/slurmd.start.log")"
  fi
  wait_until "$WAIT" "node idle" node_idle \
    || die "node localhost not idle after ${WAIT}s (sinfo state: $(sinfo -h -N -n localhost -o %t 2>&1 | head -n1); see $LOG/slurmd.log)"
}

resolve_bins() {
  MARIADBD=$(find_bin /usr/sbin/mariadbd /usr/sbin/mysqld)
  MARIADB=$(find_bin mariadb mysql)
  MARIADB_ADMIN=$(find_bin mariadb-admin mysqladmin)
  MARIADB_INSTALL_DB=$(find_bin mariadb-install-db mysql_install_db)
}

cmd_up() {
  need_root
  local t0=$SECONDS
  install_pkgs
  resolve_bins
  write_configs
  start_munge
  start_mariadb
  start_slurmdbd
  start_slurmctld
  start_slurmd
  log "cluster $CLUSTER up in $((SECONDS - t0)) s: node localhost idle, partition debug"
  echo "export SLURM_CONF=$SLURM_CONF"
}

# Kill leftover slurmstepd processes of THIS cluster (their environment holds our SLURM_CONF).
kill_our_stepds() {
  local pid
  for pid in $(pgrep -x slurmstepd 2>/dev/null || true); do
    if tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx "SLURM_CONF=$SLURM_CONF"; then
      log "killing leftover slurmstepd pid $pid"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
}

cmd_down() {
  if [[ -e $SLURM_CONF ]] && pid_alive "$PID_CTLD"; then
    local jobs
    jobs=$(squeue -h -o %A 2>/dev/null || true)
    if [[ -n $jobs ]]; then
      log "cancelling jobs: $(echo $jobs)"
      # shellcheck disable=SC2086
      scancel $jobs 2>/dev/null || true
      wait_until 15 "jobs gone" no_jobs_left || log "jobs still listed after 15 s; stopping anyway"
    fi
  fi
  # slurmd and slurmctld together, then slurmdbd (slurmctld flushes accounting to it on
  # exit), then MariaDB and munged together.
  stop_pidfiles 30 slurmd="$PID_SLURMD" slurmctld="$PID_CTLD"
  kill_our_stepds
  stop_pidfiles 30 slurmdbd="$PID_DBD"
  stop_pidfiles 60 mariadbd="$PID_DB" munged="$PID_MUNGED"
  log "down (state kept in $S; rm -rf it for a clean slate)"
}

cmd_status() {
  local rc=0 name f
  for name in munged:$PID_MUNGED mariadbd:$PID_DB slurmdbd:$PID_DBD slurmctld:$PID_CTLD slurmd:$PID_SLURMD; do
    f=${name#*:}
    if pid_alive "$f"; then
      printf '%-10s up   (pid %s)\n' "${name%%:*}" "$(tr -dc '0-9' <"$f")"
    else
      printf '%-10s down\n' "${name%%:*}"; rc=3
    fi
  done
  if ((rc == 0)); then
    sinfo 2>&1 || rc=3
    echo "export SLURM_CONF=$SLURM_CONF"
  fi
  return $rc
}

case ${1:-} in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
