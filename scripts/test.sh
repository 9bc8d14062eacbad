#!/usr/bin/env bash
# Set up and run the whole test suite. Services the tests use (SLURM, PostgreSQL, LaTeX,
# Chromium) are installed and started by scripts/services/all.sh when we are root; tests that
# need one that could not start skip with the reason.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
EXTRAS="${EXTRAS:-dev,cluster}" source "$ROOT/scripts/setup.sh"
cd "$ROOT"
if [ -x scripts/services/all.sh ] && [ "$(id -u)" = 0 ] && [ "${ABLATE_SERVICES:-1}" = 1 ]; then
  bash scripts/services/all.sh up || echo "[test] some services did not start; their tests will skip"
  trap 'bash scripts/services/all.sh down >/dev/null 2>&1 || true' EXIT
fi
set +e
# Two pytest-xdist workers: half the suite's time is spent waiting (on subprocesses, SLURM, the
# kill -9 tests' pauses), so two keep both cores busy; every test uses its own tmp dirs, ports,
# study names and SLURM jobs. ABLATE_TEST_WORKERS=0 runs in one process;
# arguments after ours win (`bash scripts/test.sh -n 0 tests/test_x.py`).
python -m pytest -n "${ABLATE_TEST_WORKERS:-2}" "$@"
rc=$?
set -e
[ "$rc" = 5 ] && { echo "[test] pytest collected no tests" >&2; exit 1; }
exit "$rc"
