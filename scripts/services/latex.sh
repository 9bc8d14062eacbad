#!/usr/bin/env bash
# Make pdflatex (+ booktabs, xcolor, colortbl) and pdftoppm available.
#   scripts/services/latex.sh [up|status]      (up is the default; there is no daemon)
set -euo pipefail
SVC_NAME=latex
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

check() {
  command -v pdflatex >/dev/null && command -v pdftoppm >/dev/null \
    && command -v kpsewhich >/dev/null && [[ -n $(kpsewhich booktabs.sty) ]]
}

case ${1:-up} in
  up)
    if check; then
      log "pdflatex, booktabs and pdftoppm present; nothing to install"
    else
      need_root
      apt_install texlive-latex-base texlive-latex-recommended poppler-utils
      check || die "installed texlive/poppler but pdflatex, booktabs.sty or pdftoppm is still missing"
    fi
    log "$(pdflatex --version | head -n1); pdftoppm $(pdftoppm -v 2>&1 | head -n1 | awk '{print $3}')"
    ;;
  status|down)
    if check; then echo "latex available: $(command -v pdflatex)"; else echo "latex missing"; [[ $1 == down ]] || exit 3; fi ;;
  *) echo "usage: $0 [up|status]" >&2; exit 2 ;;
esac
