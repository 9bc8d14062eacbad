#!/usr/bin/env bash
# The GPU check, one command: bash bench/gpu.sh
#
# On a CUDA machine it prints
#   - the speed ratios of the CPU benches, measured on the GPU: CA block vs SE block and CA step
#     vs plain step (bench/attention_speed.py --device cuda when it takes a device, else
#     bench/gpu_check.py's own CUDA version of the same ratios), and ablate vs the bare loop
#     (bench/bare_loop.py --device cuda, epoch times; skipped if it takes no --device);
#   - training images/s of MobileNetV2-1.0 at 224 with bf16 autocast, channels_last and
#     torch.compile each on and off (bench/gpu_check.py);
# and exits non-zero if CUDA results differ from CPU beyond tolerance (bench/gpu_check.py's
# parity section: blocks, the full net, bf16, and `ablate train` on both devices) or a bench fails.
#
# Without CUDA it runs what it can on the CPU and says what it skipped (the CUDA parts).
# ABLATE_GPU_QUICK=1: toy sizes and one round everywhere, to check that the script runs (the
# numbers then mean nothing); ABLATE_GPU_COMPILE=0 leaves out the compiled variants;
# PYTHON picks the interpreter (default .venv/bin/python, else python3).
# Expect ~5-10 min on an H200 (most of it compiling); no GPU setting is changed.
set -uo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
QUICK=${ABLATE_GPU_QUICK:-0}
[ "$QUICK" = "0" ] && QUICK=""
status=0

has_cuda=$("$PY" -c "import torch; print(int(torch.cuda.is_available()))") || { echo "gpu.sh: cannot import torch with $PY" >&2; exit 2; }
takes_device() {  # does bench script $1 take --device?
    [ -f "$1" ] && "$PY" "$1" --help 2>/dev/null | grep -q -- "--device"
}
run() {  # run a step; remember a failure, keep going
    echo "+ $*"
    "$@" || { echo "gpu.sh: failed (exit $?): $*" >&2; status=1; }
}

echo "== bench/gpu.sh: $(uname -n), CUDA $( [ "$has_cuda" = 1 ] && echo yes || echo no )${QUICK:+, quick}"
if [ "$has_cuda" = 1 ]; then
    "$PY" -c "import torch; p = torch.cuda.get_device_properties(0); print(f'{p.name}, {p.total_memory / 2**30:.0f} GiB, torch {torch.__version__}, CUDA {torch.version.cuda}')"
    command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,driver_version,clocks.sm,temperature.gpu --format=csv,noheader
fi

compile_flag=()
[ "${ABLATE_GPU_COMPILE:-1}" = "0" ] && compile_flag=(--no-compile)
quick_flag=()
[ -n "$QUICK" ] && quick_flag=(--quick)

# 1. CA vs SE block, CA vs plain step
if [ "$has_cuda" = 1 ] && takes_device bench/attention_speed.py; then
    run "$PY" bench/attention_speed.py --device cuda ${QUICK:+--rounds 1}
    sections=throughput,parity
else
    sections=ratios,throughput,parity  # gpu_check.py's own ratios (on the CPU when there is no CUDA)
fi

# 2. images/s (CUDA) and 3. parity with the CPU (CUDA): gpu_check.py's exit status says if they agree
run "$PY" bench/gpu_check.py --sections "$sections" "${quick_flag[@]}" "${compile_flag[@]}"

# 4. ablate vs the bare loop, epoch times on the GPU
if [ "$has_cuda" = 1 ]; then
    if takes_device bench/bare_loop.py; then
        run "$PY" bench/bare_loop.py --device cuda --skip-overhead ${QUICK:+--rounds 1}
    else
        echo "ablate vs bare loop: skipped (bench/bare_loop.py is missing or takes no --device)"
    fi
else
    echo "ablate vs bare loop on CUDA: skipped (no CUDA device; bench/bare_loop.py measures the CPU case)"
fi

if [ "$status" = 0 ]; then echo "== gpu.sh: done"; else echo "== gpu.sh: FAILED (see above)"; fi
exit "$status"
