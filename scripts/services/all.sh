#!/usr/bin/env bash
# Bring up / tear down every external service the `service` tests use.
#
#   scripts/services/all.sh up|down|status
#
# Tolerant: a service that cannot be brought up gets a one-line reason on stderr and the
# rest go on. The outcome is written to ${ABLATE_SERVICES_STATE:-/tmp/ablate-services}/status.json:
#   {"slurm":    {"ok": true, "env": {"SLURM_CONF": "/tmp/ablate-slurm/slurm.conf"}},
#    "postgres": {"ok": true, "url": "postgresql://ablate:ablate@127.0.0.1:55432/ablate"},
#    "latex":    {"ok": true},
#    "chromium": {"ok": false, "reason": "..."}}
# tests/services/fixtures.py reads it and skips with the reason.
# Exit status is 0 even if some service failed, unless ABLATE_SERVICES_STRICT=1.
set -euo pipefail
SVC_NAME=all
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"

STATE=${ABLATE_SERVICES_STATE:-/tmp/ablate-services}
STATUS=$STATE/status.json
mkdir -p "$STATE"

declare -A ENTRY
FAILED=0

# run_step NAME ARGS...: runs scripts/services/NAME.sh ARGS; stdout -> $OUT, stderr shown and
# kept in $STATE/NAME.log; on failure sets $REASON to the script's "ERROR:" line.
run_step() {
  local name=$1; shift
  local t0=$SECONDS rc=0
  # stdout -> NAME.out; stderr shown live and kept in NAME.log (a pipeline, so tee has
  # finished writing the log when we read it)
  "$HERE/$name.sh" "$@" 2>&1 >"$STATE/$name.out" | tee "$STATE/$name.log" >&2 || rc=${PIPESTATUS[0]}
  OUT=$(cat "$STATE/$name.out")
  REASON=""
  if ((rc != 0)); then
    REASON=$(grep -h 'ERROR:' "$STATE/$name.log" | tail -n1 | sed 's/^.*ERROR: *//')
    [[ -n $REASON ]] || REASON=$(grep -v '^\s*$' "$STATE/$name.log" | tail -n1)
    REASON="$name.sh $* failed (exit $rc): ${REASON:-no output}"
    printf '[all] %s is not available: %s\n' "$name" "$REASON" >&2
    FAILED=1
  else
    log "$name $* done in $((SECONDS - t0)) s"
  fi
  return $rc
}

fail_entry() { ENTRY[$1]="{\"ok\": false, \"reason\": $(json_str "$2")}"; }

write_status() {
  local tmp=$STATUS.tmp.$$ first=1 k def='{"ok": false, "reason": "not attempted"}'
  {
    printf '{\n'
    for k in slurm postgres latex chromium; do
      ((first)) || printf ',\n'
      first=0
      printf '  "%s": %s' "$k" "${ENTRY[$k]:-$def}"
    done
    printf '\n}\n'
  } >"$tmp"
  mv -f "$tmp" "$STATUS"
  log "wrote $STATUS"
}

up() {
  local t0=$SECONDS line env="" sep=""
  if run_step slurm up; then
    while IFS= read -r line; do
      if [[ $line =~ ^export\ ([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]]; then
        env+="$sep\"${BASH_REMATCH[1]}\": $(json_str "${BASH_REMATCH[2]}")"; sep=", "
      fi
    done <<<"$OUT"
    ENTRY[slurm]="{\"ok\": true, \"env\": {$env}}"
  else
    fail_entry slurm "$REASON"
  fi
  if run_step postgres up; then
    ENTRY[postgres]="{\"ok\": true, \"url\": $(json_str "$(tail -n1 <<<"$OUT")")}"
  else
    fail_entry postgres "$REASON"
  fi
  if run_step latex up; then ENTRY[latex]='{"ok": true}'; else fail_entry latex "$REASON"; fi
  if run_step chromium up; then ENTRY[chromium]='{"ok": true}'; else fail_entry chromium "$REASON"; fi
  write_status
  log "all up in $((SECONDS - t0)) s"
  cat "$STATUS"
  if ((FAILED)) && [[ ${ABLATE_SERVICES_STRICT:-0} == 1 ]]; then exit 1; fi
}

down() {
  local t0=$SECONDS
  run_step slurm down || true
  run_step postgres down || true
  fail_entry slurm "SLURM is stopped (scripts/services/all.sh down); run scripts/services/all.sh up"
  fail_entry postgres "PostgreSQL is stopped (scripts/services/all.sh down); run scripts/services/all.sh up"
  if "$HERE/latex.sh" status >/dev/null 2>&1; then ENTRY[latex]='{"ok": true}'
  else fail_entry latex "pdflatex not installed; run scripts/services/latex.sh"; fi
  if "$HERE/chromium.sh" status >/dev/null 2>&1; then ENTRY[chromium]='{"ok": true}'
  else fail_entry chromium "chromium not installed; run scripts/services/chromium.sh"; fi
  write_status
  log "all down in $((SECONDS - t0)) s"
  if ((FAILED)) && [[ ${ABLATE_SERVICES_STRICT:-0} == 1 ]]; then exit 1; fi
}

status() {
  local s
  for s in slurm postgres latex chromium; do
    echo "== $s"
    "$HERE/$s.sh" status || true
  done
  echo "== $STATUS"
  cat "$STATUS" 2>/dev/null || echo "(none)"
}

case ${1:-} in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
