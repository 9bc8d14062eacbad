#!/usr/bin/env bash
# Make Debian's headless-capable chromium available (for HTML report screenshots).
#   scripts/services/chromium.sh [up|status]   (up is the default; there is no daemon)
# Use: chromium --headless --no-sandbox --disable-gpu --screenshot=OUT.png --window-size=W,H FILE.html
set -euo pipefail
SVC_NAME=chromium
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

find_chromium() { command -v chromium || command -v chromium-browser || command -v google-chrome; }

case ${1:-up} in
  up)
    if bin=$(find_chromium); then
      log "$bin present; nothing to install"
    else
      need_root
      apt_install chromium
      bin=$(find_chromium) || die "installed chromium but no chromium binary on PATH"
    fi
    log "$("$bin" --version 2>/dev/null | head -n1)"
    ;;
  status|down)
    if bin=$(find_chromium); then echo "chromium available: $bin"; else echo "chromium missing"; [[ $1 == down ]] || exit 3; fi ;;
  *) echo "usage: $0 [up|status]" >&2; exit 2 ;;
esac
