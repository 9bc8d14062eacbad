#!/usr/bin/env bash
# Private PostgreSQL instance for tests (Optuna RDB storage).
#
#   scripts/services/postgres.sh up|down|status
#
# Data, socket and log live in a state dir (default /tmp/ablate-pg, env ABLATE_PG_DIR),
# owned by the postgres user; the server listens on 127.0.0.1:${ABLATE_PG_PORT:-55432}.
# `up` creates database `ablate` owned by user `ablate` (password `ablate`) and prints
#   postgresql://ablate:ablate@127.0.0.1:55432/ablate
set -euo pipefail
SVC_NAME=postgres
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

D=${ABLATE_PG_DIR:-/tmp/ablate-pg}
PORT=${ABLATE_PG_PORT:-55432}
WAIT=${ABLATE_PG_WAIT:-60}
DATA=$D/data
URL="postgresql://ablate:ablate@127.0.0.1:$PORT/ablate"

pg_bindir() {
  local d
  if command -v pg_config >/dev/null 2>&1 && [[ -x $(pg_config --bindir)/initdb ]]; then
    pg_config --bindir; return 0
  fi
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [[ -x $d/initdb && -x $d/pg_ctl && -x $d/postgres ]] && { echo "$d"; return 0; }
  done
  return 1
}

# the most telling line of the server log (last FATAL/PANIC/ERROR), for error messages
pg_log_reason() {
  local line
  line=$(grep -hE 'FATAL|PANIC|ERROR' "$D/postgres.log" 2>/dev/null | tail -n1)
  [[ -n $line ]] || line=$(tail -n1 "$D/pg_ctl.log" 2>/dev/null)
  echo "${line:-no log} (log: $D/postgres.log)"
}

as_pg() { runuser -u postgres -- "$@"; }
psql_su() { as_pg "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$D" -p "$PORT" -U postgres -d postgres "$@"; }
running() { [[ -f $DATA/PG_VERSION ]] && as_pg "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

cmd_up() {
  need_root
  local t0=$SECONDS
  if BIN=$(pg_bindir); then
    log "postgresql present ($BIN); skipping install"
  else
    apt_install postgresql
    BIN=$(pg_bindir) || die "postgresql installed but initdb/pg_ctl not found under /usr/lib/postgresql"
  fi
  id postgres >/dev/null 2>&1 || die "no 'postgres' system user (package install incomplete?)"
  install -d -o postgres -g postgres -m 0700 "$D"
  chown postgres:postgres "$D"
  if [[ ! -f $DATA/PG_VERSION ]]; then
    log "initdb $DATA"
    as_pg "$BIN/initdb" -D "$DATA" -U postgres -E UTF8 --locale=C.UTF-8 \
      --auth-local=trust --auth-host=scram-sha-256 >"$D/initdb.log" 2>&1 \
      || as_pg "$BIN/initdb" -D "$DATA" -U postgres -E UTF8 --no-locale \
        --auth-local=trust --auth-host=scram-sha-256 >"$D/initdb.log" 2>&1 \
      || die "initdb failed: $(tail -n1 "$D/initdb.log")"
  fi
  if running; then
    log "postgres already running"
  else
    need_free_port "$PORT" postgres ABLATE_PG_PORT
    log "starting postgres on 127.0.0.1:$PORT (socket dir $D)"
    as_pg "$BIN/pg_ctl" -D "$DATA" -l "$D/postgres.log" -w -t "$WAIT" \
      -o "-p $PORT -k $D -c listen_addresses=127.0.0.1" start </dev/null >"$D/pg_ctl.log" 2>&1 \
      || die "pg_ctl start failed: $(pg_log_reason)"
  fi
  wait_until "$WAIT" "postgres ready" as_pg "$BIN/pg_isready" -q -h "$D" -p "$PORT" \
    || die "postgres not ready on port $PORT after ${WAIT}s"
  psql_su <<'SQL' || die "could not create role/database ablate"
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ablate') THEN
    CREATE ROLE ablate LOGIN PASSWORD 'ablate';
  ELSE
    ALTER ROLE ablate LOGIN PASSWORD 'ablate';
  END IF;
END $$;
SQL
  if [[ -z $(psql_su -tA -c "SELECT 1 FROM pg_database WHERE datname = 'ablate'") ]]; then
    psql_su -c "CREATE DATABASE ablate OWNER ablate" || die "CREATE DATABASE ablate failed"
  fi
  PGPASSWORD=ablate as_pg "$BIN/psql" -X -q -h 127.0.0.1 -p "$PORT" -U ablate -d ablate -tA -c 'SELECT 1' >/dev/null \
    || die "cannot log in as ablate over TCP 127.0.0.1:$PORT"
  log "up in $((SECONDS - t0)) s"
  echo "$URL"
}

cmd_down() {
  if [[ -f $DATA/PG_VERSION ]] && BIN=$(pg_bindir) && running; then
    log "stopping postgres ($DATA)"
    as_pg "$BIN/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >/dev/null || die "pg_ctl stop failed"
  else
    log "postgres not running"
  fi
}

cmd_status() {
  if BIN=$(pg_bindir) && running; then
    echo "postgres up (data $DATA, port $PORT)"
    echo "$URL"
  else
    echo "postgres down"; return 3
  fi
}

case ${1:-} in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
