#!/usr/bin/env bash
# The main job on the embedded default (CPU, generated data, W&B offline, local launcher):
# set up, run the paper's Table 1 sweep (runs already finished are skipped) and print the table.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup.sh"
cd "$ROOT"
exec ablate sweep branches "$@"
