# shellcheck shell=bash
# Shared helpers for scripts/services/*.sh (sourced, not executed).

SVC_NAME="${SVC_NAME:-$(basename "${BASH_SOURCE[1]:-$0}")}"

# Close every inherited file descriptor above 2 (except bash's own 255): the daemons started
# below would otherwise keep a caller's pipes open (e.g. all.sh's `2> >(tee ...)` or a CI
# step's output pipe), and the caller would hang waiting for EOF.
close_inherited_fds() {
  local p fd
  for p in /proc/$$/fd/*; do
    fd=${p##*/}
    if [[ $fd =~ ^[0-9]+$ ]] && ((fd > 2 && fd != 255)); then
      eval "exec $fd>&-" 2>/dev/null || true
    fi
  done
}
close_inherited_fds

log()  { printf '[%s] %s\n' "$SVC_NAME" "$*" >&2; }
# die prints ONE line "ERROR: <reason>" on stderr; all.sh uses that line as the skip reason.
die()  { printf '[%s] ERROR: %s\n' "$SVC_NAME" "$*" >&2; exit 1; }

need_root() {
  [[ $(id -u) -eq 0 ]] || die "must run as root (installs packages and starts daemons)"
}

# pid_alive PIDFILE -> 0 if the pid in PIDFILE is a live process
pid_alive() {
  local f=$1 pid
  [[ -s $f ]] || return 1
  pid=$(tr -dc '0-9' <"$f")
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null
}

# stop_pidfiles TIMEOUT_S NAME=PIDFILE...: SIGTERM all of them at once, wait up to TIMEOUT_S
# for every one to exit, then SIGKILL the stragglers. Stale pid files are removed.
stop_pidfiles() {
  local timeout=$1; shift
  local spec name f pid i alive
  local -a pids=()
  for spec in "$@"; do
    name=${spec%%=*}; f=${spec#*=}
    if pid_alive "$f"; then
      pid=$(tr -dc '0-9' <"$f")
      log "stopping $name (pid $pid)"
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
    fi
    rm -f "$f"
  done
  ((${#pids[@]})) || return 0
  for ((i = 0; i < timeout * 10; i++)); do
    alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    ((alive)) || return 0
    sleep 0.1
  done
  for pid in "${pids[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      log "pid $pid ignored SIGTERM for ${timeout}s, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  sleep 0.5
}

# port_in_use PORT -> 0 if something accepts TCP connections on 127.0.0.1:PORT
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# need_free_port PORT WHAT ENVVAR: die with a clear reason if PORT is taken
need_free_port() {
  if port_in_use "$1"; then
    die "port $1 for $2 is already in use by another process (set $3 to another port)"
  fi
}

# wait_until TIMEOUT_S DESCRIPTION CMD...: poll CMD every 0.5 s.
wait_until() {
  local timeout=$1 what=$2; shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.5
  done
}

APT_STAMP=${ABLATE_SERVICES_STATE:-/tmp/ablate-services}/.apt-updated

apt_update_once() {
  if [[ -e $APT_STAMP ]]; then return 0; fi
  log "apt-get update"
  apt-get -o DPkg::Lock::Timeout=600 update -qq >&2 || return 1
  mkdir -p "$(dirname "$APT_STAMP")" && touch "$APT_STAMP"
}

# apt_install PKG...: install with no recommends; runs `apt-get update` first if the
# package lists are empty, or once more if the install fails (stale lists).
apt_install() {
  command -v apt-get >/dev/null || die "apt-get not found: install $* by hand"
  export DEBIAN_FRONTEND=noninteractive
  if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
    apt_update_once || die "apt-get update failed"
  fi
  local t0=$SECONDS
  log "apt-get install $*"
  if ! apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "$@" >&2; then
    rm -f "$APT_STAMP"
    apt_update_once || die "apt-get update failed"
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "$@" >&2 \
      || die "apt-get install $* failed"
  fi
  log "installed $* in $((SECONDS - t0)) s"
}

# json_str STRING -> JSON string literal (no external tools needed)
json_str() {
  local s=$1
  s=${s//\\/\\\\}; s=${s//\"/\\\"}
  s=${s//$'\n'/\\n}; s=${s//$'\r'/\\r}; s=${s//$'\t'/\\t}
  printf '"%s"' "$s"
}
