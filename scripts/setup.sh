#!/usr/bin/env bash
# Create .venv if missing and install ablate into it (CPU torch first: a bare `torch`
# requirement would pull a multi-GB CUDA build). Idempotent; sourced by main.sh and test.sh.
# EXTRAS (default "dev") selects the optional dependency groups.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${ABLATE_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
EXTRAS="${EXTRAS:-dev}"
STAMP="$VENV/.ablate-installed"
if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating $VENV"
  "$PY" -m venv "$VENV"
fi
# Re-install when pyproject.toml or the extras changed since the last install.
want="$(sha256sum "$ROOT/pyproject.toml" | cut -c1-16) $EXTRAS"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$want" ]; then
  echo "[setup] installing torch==2.13.0 (CPU) and ablate[$EXTRAS]"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "torch==2.13.0" 2>&1 | grep -v "is ignored: it is neither" || true
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$ROOT[$EXTRAS]" 2>&1 | grep -v "is ignored: it is neither" || true
  "$VENV/bin/python" -c "import ablate, torch" || { echo "[setup] install failed" >&2; exit 1; }
  echo "$want" > "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
