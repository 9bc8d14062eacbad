"""The CUDA check (``bench/gpu.sh`` runs it): ratios, images/s, and CUDA results against CPU.

    .venv/bin/python bench/gpu_check.py [--device cuda] [--rounds 5] [--quick]
        [--sections ratios,throughput,parity] [--no-compile]

Sections (each on ``--device``; default cuda when there is one, else cpu):

- ``ratios``: what Coordinate Attention costs, as ``bench/attention_speed.py`` defines it: one
  block forward + backward (batch 32, MobileNetV2-1.0's expanded channels at its stages, 224 px
  input, channels_last), CA against SE summed over the stages; and one training step of
  MobileNetV2-1.0 at 32 px (small stem, batch 128, SGD + Nesterov, channels_last), CA against
  the plain net. ``gpu.sh`` runs this only when ``attention_speed.py`` takes no ``--device``.
- ``throughput``: training images/s of MobileNetV2-1.0 at 224 (batch 128, SGD), for each of
  bf16 autocast off/on x channels_last off/on, eager and ``torch.compile``\\d (compile time
  excluded: it happens in the warm-up steps). CUDA only unless ``--device cpu`` is given.
- ``parity``: the same computation on CUDA and on CPU (fp32, TF32 off): the CA, SE and CBAM
  blocks' outputs and gradients (NCHW and channels_last), MobileNetV2-1.0 + CA's logits and
  every parameter's gradient, and bf16-autocast logits against fp32; then ``ablate train`` of
  the main job's recipe, shortened, once per device, whose loss and top-1 must agree. Each
  check prints its error and tolerance; any failure makes the exit status 1. Needs CUDA.

Timings: interleaved rounds (every contender once per round, in turn), medians of per-round
ratios; CUDA work is timed between ``torch.cuda.synchronize()`` calls. ``--quick`` (or
``ABLATE_GPU_QUICK=1``) shrinks every size and round count to check that the script runs
(numbers then mean nothing).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ablate.models import create_attention, create_model  # noqa: E402

STAGE_SHAPES = [(144, 56, 56), (192, 28, 28), (384, 14, 14), (960, 7, 7)]
# Relative L2 error allowed between CUDA and CPU: fp32 differs only in summation order.
FP32_TOL = 1e-3
BF16_TOL = 5e-2     # bf16 autocast (8-bit mantissa) against fp32
RUN_LOSS_TOL = 0.02  # relative, final-epoch train/val loss of the shortened recipe
RUN_TOP1_TOL = 2.0   # points of val top-1 (1,000 images: 20 of them)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved(fns: dict[str, Callable[[], None]], rounds: int, device: torch.device,
                warmup: int = 1) -> dict[str, list[float]]:
    """Seconds of each callable per round (synchronized on CUDA), the callables in turn."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for r in range(warmup + rounds):
        for k, f in fns.items():
            sync(device)
            t0 = time.perf_counter()
            f()
            sync(device)
            if r >= warmup:
                times[k].append(time.perf_counter() - t0)
    return times


def ratio(times: dict[str, list[float]], a: str, b: str) -> float:
    return statistics.median(x / y for x, y in zip(times[a], times[b]))


# --- ratios -----------------------------------------------------------------------------------
def bench_ratios(device: torch.device, rounds: int, quick: bool) -> None:
    batch, shapes = (2, STAGE_SHAPES[-2:]) if quick else (32, STAGE_SHAPES)
    reps = 1 if quick else (20 if device.type == "cuda" else 3)  # calls per timing: a CUDA block takes ~0.1 ms
    cl = torch.channels_last
    sums = {"ca": 0.0, "se": 0.0}
    print(f"\n[ratios] {device}: one block fwd+bwd, batch {batch}, channels_last, ms (median of {rounds} rounds)")
    for c, h, w in shapes:
        torch.manual_seed(0)
        x = torch.randn(batch, c, h, w, device=device).contiguous(memory_format=cl).requires_grad_()
        g = torch.randn(batch, c, h, w, device=device).contiguous(memory_format=cl)
        mods = {k: create_attention(k, c).to(device).to(memory_format=cl) for k in ("ca", "se")}

        def step(m: nn.Module) -> Callable[[], None]:
            def f() -> None:
                for _ in range(reps):
                    x.grad = None
                    m(x).backward(g)
            return f

        t = interleaved({k: step(m) for k, m in mods.items()}, rounds, device)
        for k in sums:
            sums[k] += statistics.median(t[k]) * 1000 / reps
        print(f"  {c}x{h}x{w}: ca {statistics.median(t['ca']) * 1000 / reps:.3f}  "
              f"se {statistics.median(t['se']) * 1000 / reps:.3f}  ca/se {ratio(t, 'ca', 'se'):.2f}")
    print(f"CA block / SE block (summed over the stages): {sums['ca'] / sums['se']:.2f}")
    n, width = (2, 0.5) if quick else (128, 1.0)
    x = torch.randn(n, 3, 32, 32, device=device).contiguous(memory_format=cl)
    y = torch.randint(0, 10, (n,), device=device)

    def train_step(att: str) -> Callable[[], None]:
        torch.manual_seed(0)
        model = create_model("mobilenet_v2", num_classes=10, stem="small", width=width,
                             attention=att).to(device).to(memory_format=cl)
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=4e-5)
        crit = nn.CrossEntropyLoss()

        def f() -> None:
            for _ in range(steps):
                loss = crit(model(x), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        return f

    steps = 1 if quick else (10 if device.type == "cuda" else 1)
    t = interleaved({k: train_step(k) for k in ("none", "ca")}, rounds, device)
    print(f"MobileNetV2-1.0 32 px, batch {n}: plain {statistics.median(t['none']) * 1000 / steps:.2f} ms, "
          f"ca {statistics.median(t['ca']) * 1000 / steps:.2f} ms a step")
    print(f"CA step / plain step: {ratio(t, 'ca', 'none'):.2f}")


# --- throughput -------------------------------------------------------------------------------
def bench_throughput(device: torch.device, rounds: int, quick: bool, compile_too: bool) -> None:
    batch, size, steps, warmup = (2, 32, 1, 1) if quick else (128, 224, 20, 5)
    variants = [(amp, cl, comp) for comp in ((False, True) if compile_too else (False,))
                for amp in (False, True) for cl in (False, True)]
    fns, names = {}, {}
    for amp, cl, comp in variants:
        name = f"bf16 {'on ' if amp else 'off'}  channels_last {'on ' if cl else 'off'}  compile {'on' if comp else 'off'}"
        fns[name] = _train_steps(device, batch, size, steps, amp, cl, comp, warmup)
        names[name] = (amp, cl, comp)
    print(f"\n[throughput] {device}: MobileNetV2-1.0 at {size} px, batch {batch}, SGD, training images/s "
          f"({steps} steps a round, median of {rounds} rounds; warm-up and compile excluded)")
    t = interleaved(fns, rounds, device, warmup=0)
    base = statistics.median(t[next(iter(t))])
    for name, ts in t.items():
        print(f"  {name}: {steps * batch / statistics.median(ts):9.1f} images/s  (x{base / statistics.median(ts):.2f})")


def _train_steps(device, batch, size, steps, amp, cl, comp, warmup) -> Callable[[], None]:
    torch.manual_seed(0)
    model = create_model("mobilenet_v2", num_classes=1000, attention="none").to(device)
    fmt = torch.channels_last if cl else torch.contiguous_format
    model = model.to(memory_format=fmt)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=4e-5)
    crit = nn.CrossEntropyLoss()
    fwd = torch.compile(model) if comp else model
    x = torch.randn(batch, 3, size, size, device=device).contiguous(memory_format=fmt)
    y = torch.randint(0, 1000, (batch,), device=device)

    def one() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            loss = crit(fwd(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(warmup):  # compiles here (the first call of a compiled model)
        one()
    sync(device)

    def f() -> None:
        for _ in range(steps):
            one()
    return f


# --- parity -----------------------------------------------------------------------------------
class Parity:
    """Collects CUDA-vs-CPU checks: each a relative L2 error against a tolerance."""

    def __init__(self) -> None:
        self.failed: list[str] = []

    def check(self, what: str, cpu: torch.Tensor, cuda: torch.Tensor, tol: float) -> None:
        self.worst(what, {"": (cpu, cuda)}, tol)

    def worst(self, what: str, pairs: dict[str, tuple[torch.Tensor, torch.Tensor]], tol: float) -> None:
        """One line for a group of (cpu, cuda) tensors: the largest error, naming its tensor."""
        errs = {name: _rel_error(a, b) for name, (a, b) in pairs.items()}
        name = max(errs, key=errs.get)
        err = errs[name]
        ok = err <= tol
        shown = f"{what} ({len(pairs)} tensors, worst: {name})" if len(pairs) > 1 else what
        print(f"  {'ok  ' if ok else 'FAIL'} {shown}: relative error {err:.2e} (tolerance {tol:.0e})")
        if not ok:
            self.failed.append(what)


def _rel_error(cpu: torch.Tensor, cuda: torch.Tensor) -> float:
    """||cpu - cuda|| / ||cpu||; inf for another shape or a non-finite value."""
    a, b = cpu.detach().double().cpu(), cuda.detach().double().cpu()
    if a.shape != b.shape or not bool(torch.isfinite(b).all()):
        return float("inf")
    return ((a - b).norm() / a.norm().clamp_min(1e-30)).item()


def _grads_of(m: nn.Module, x: torch.Tensor, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict]:
    x = x.detach().clone().requires_grad_()
    out = m(x)
    out.backward(g)
    return out, x.grad, {n: p.grad for n, p in m.named_parameters() if p.grad is not None}


def parity(cuda: torch.device, quick: bool) -> list[str]:
    """The checks of ``cuda`` (any device: ``cpu`` checks the checks) against the CPU; returns the failed ones."""
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 on both sides: only summation order differs
    torch.backends.cudnn.allow_tf32 = False
    p = Parity()
    print(f"\n[parity] {cuda} against cpu (fp32, TF32 off; relative L2 error)")
    batch = 2 if quick else 8
    for kind in ("ca", "se", "cbam"):
        for fmt_name, fmt in (("nchw", torch.contiguous_format), ("channels_last", torch.channels_last)):
            for c, h, w in STAGE_SHAPES[-2:] if quick else STAGE_SHAPES:
                torch.manual_seed(0)
                m = create_attention(kind, c).eval()
                x = torch.randn(batch, c, h, w).contiguous(memory_format=fmt)
                g = torch.randn(batch, c, h, w).contiguous(memory_format=fmt)
                ref = _grads_of(m.to(memory_format=fmt), x, g)
                m_dev = create_attention(kind, c).eval()
                m_dev.load_state_dict(m.state_dict())
                got = _grads_of(m_dev.to(cuda).to(memory_format=fmt), x.to(cuda), g.to(cuda))
                pairs = {"output": (ref[0], got[0]), "input grad": (ref[1], got[1]),
                         **{f"grad {n}": (ref[2][n], got[2].get(n, torch.empty(0))) for n in ref[2]}}
                p.worst(f"{kind} {fmt_name} {c}x{h}x{w} output and gradients", pairs, FP32_TOL)
    size = 64 if quick else 224
    torch.manual_seed(0)
    net = create_model("mobilenet_v2", num_classes=1000, attention="ca").eval()  # eval: no dropout, fixed BN
    x = torch.randn(2, 3, size, size)
    g = torch.randn(2, 1000)
    ref_out, _, ref_grads = _grads_of(net, x, g)
    net_dev = create_model("mobilenet_v2", num_classes=1000, attention="ca").eval()
    net_dev.load_state_dict(net.state_dict())
    net_dev = net_dev.to(cuda).to(memory_format=torch.channels_last)
    out, _, grads = _grads_of(net_dev, x.to(cuda).contiguous(memory_format=torch.channels_last), g.to(cuda))
    p.check(f"MobileNetV2-1.0 + CA {size} px logits (channels_last on {cuda.type})", ref_out, out, FP32_TOL)
    p.worst("MobileNetV2-1.0 + CA every parameter's grad",
            {n: (ref_grads[n], grads.get(n, torch.empty(0))) for n in ref_grads}, FP32_TOL)
    with torch.no_grad(), torch.autocast(cuda.type, dtype=torch.bfloat16):
        low = net_dev(x.to(cuda).contiguous(memory_format=torch.channels_last))
    p.check(f"MobileNetV2-1.0 + CA logits, bf16 autocast on {cuda.type} against fp32 on CPU", ref_out, low.float(), BF16_TOL)
    _run_parity(p, quick, cuda.type)
    return p.failed


def _run_parity(p: Parity, quick: bool, target: str) -> None:
    """``ablate train`` (the recipe, shortened) once on each device: loss and top-1 agree."""
    n_train, n_val, epochs = (256, 128, 1) if quick else (1024, 1000, 2)
    common = ["attention=ca", "trainer.threads=1", "tracking=disabled", f"data.n_train={n_train}",
              f"data.n_val={n_val}", f"trainer.epochs={epochs}", "trainer.latency_repeats=1"]
    recs = {}
    for side, dev in (("cpu", "cpu"), ("cuda", target)):
        with tempfile.TemporaryDirectory(prefix=f"ablate-gpu-check-{dev}-") as home:
            env = {**os.environ, "ABLATE_HOME": home, "ABLATE_PROJECT": str(ROOT), "WANDB_MODE": "disabled"}
            out = subprocess.run([sys.executable, "-m", "ablate", "train", *common, f"trainer.device={dev}"],
                                 env=env, capture_output=True, text=True, cwd=home)
            results = list(Path(home, "outputs", "runs").glob("*/result.json"))
            if out.returncode != 0 or len(results) != 1:
                print(f"  FAIL ablate train on {dev}: exit {out.returncode}\n{out.stderr[-2000:]}")
                p.failed.append(f"ablate train on {dev}")
                return
            recs[side] = json.loads(results[0].read_text())
    a, b = recs["cpu"], recs["cuda"]
    print(f"  ablate train ({epochs} epochs of {n_train} images): cpu loss {a['loss']:.4f} top-1 {a['top1']:.2f}, "
          f"cuda loss {b['loss']:.4f} top-1 {b['top1']:.2f}")
    loss_err = abs(a["loss"] - b["loss"]) / max(abs(a["loss"]), 1e-12)
    ok = loss_err <= RUN_LOSS_TOL and abs(a["top1"] - b["top1"]) <= RUN_TOP1_TOL and b["status"] == "completed"
    print(f"  {'ok  ' if ok else 'FAIL'} ablate train cuda vs cpu: loss relative error {loss_err:.2e} "
          f"(tolerance {RUN_LOSS_TOL}), top-1 {abs(a['top1'] - b['top1']):.2f} points (tolerance {RUN_TOP1_TOL})")
    if not ok:
        p.failed.append("ablate train cuda vs cpu")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default=None, help="cuda (default when available) or cpu")
    p.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 5; 1 with --quick)")
    p.add_argument("--quick", action="store_true", default=os.environ.get("ABLATE_GPU_QUICK", "0") not in ("", "0"),
                   help="toy sizes and one round: checks that everything runs (also ABLATE_GPU_QUICK=1)")
    p.add_argument("--sections", default="ratios,throughput,parity")
    p.add_argument("--no-compile", action="store_true", help="throughput without the torch.compile variants")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--parity-device", default="cuda",
                   help="the device checked against the CPU (cpu: a self-check of the checks, for machines without CUDA)")
    args = p.parse_args()
    sections = [s for s in args.sections.split(",") if s]
    unknown = [s for s in sections if s not in ("ratios", "throughput", "parity")]
    if unknown:
        p.error(f"unknown section {unknown[0]!r}; allowed: ratios, throughput, parity")
    has_cuda = torch.cuda.is_available()
    device = torch.device(args.device or ("cuda" if has_cuda else "cpu"))
    if device.type == "cuda" and not has_cuda:
        p.error("--device cuda but CUDA is not available")
    if args.threads:
        torch.set_num_threads(args.threads)
    rounds = args.rounds or (1 if args.quick else 5)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"torch {torch.__version__}, device {device} ({name}), {rounds} rounds{', quick' if args.quick else ''}")
    failed: list[str] = []
    if "ratios" in sections:
        bench_ratios(device, rounds, args.quick)
    if "throughput" in sections:
        if device.type == "cuda" or args.device == "cpu":
            compile_too = not args.no_compile and not (args.quick and device.type == "cpu")
            bench_throughput(device, rounds, args.quick, compile_too)
        else:
            print("\n[throughput] skipped: no CUDA device (--device cpu measures it on the CPU)")
    if "parity" in sections:
        if args.parity_device == "cpu" or has_cuda:
            failed = parity(torch.device(args.parity_device), args.quick)
        else:
            print("\n[parity] skipped: no CUDA device")
    if failed:
        print(f"\nCUDA differs from CPU beyond tolerance in {len(failed)} check(s): {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
