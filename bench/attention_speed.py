"""Benchmark: what Coordinate Attention costs, as ratios, for the three speed goals in one run.

    flock /tmp/ablate-bench.lock .venv/bin/python bench/attention_speed.py [--threads 2] [--rounds 7]
        [--sections blocks,tiny,mbv2] [--formats nchw,nhwc] [--batch 32] [--device cpu|cuda]

Everything is timed in interleaved rounds (each round runs every contender once, in turn).
Times are the best round of each contender (other processes only ever add time) and ratios are
ratios of those; each goal line also gives the median of per-round ratios, and the CPU-time
ratio (this process's CPU seconds: time spent waiting for a core is not counted; with 1 thread
the steadiest figure on a loaded machine). Several threads on a machine whose cores are busy
pay for every parallel region's wait for a descheduled thread: run it when the load average is
below 1. With ``--device cuda`` every section runs on the GPU, each timing between two
synchronizations.

1. ``blocks``: one attention block, forward + backward, batch 32, at MobileNetV2's stage shapes
   (expanded channels at 224 px) in NCHW and channels_last. Contenders: ablate's ``ca``; the
   published CA block restated line by line (``ReferenceCA``: ``AdaptiveAvgPool2d`` strips,
   permute + cat, h_swish from ReLU6, two 1x1 convs), checked equal to ablate's on every shape;
   and SE at its best plain implementation, the fastest per shape of: ablate's ``se``
   (``x.mean((2, 3))``, two 1x1 convs), the se_mbv2.py / torchvision form
   (``nn.AdaptiveAvgPool2d(1)``, two 1x1 convs) and the two convs as matrix products on the
   pooled (N, C) (``se mm``); SE's autograd ``x * s`` has no cheaper plain form. Goal: CA / SE
   <= 1.3, summed over the stage shapes.
2. ``tiny``: one epoch of the main job's recipe (``mobilenet_v2_tiny`` on the alignment task,
   3,000 images, batch 64, AdamW, label smoothing, channels_last, 1 thread as the branches
   sweep runs it): the loader, forward, backward and optimiser step of every batch, then the
   1,000-image validation pass. Goal: CA epoch / plain epoch <= 1.3 (SE and CBAM beside it).
3. ``mbv2``: one training step of MobileNetV2-1.0 at 32 px (the CIFAR experiment's net: small
   stem, 10 classes, batch 128, SGD with Nesterov momentum, channels_last). Goal: CA step /
   plain step <= 1.10. Beside it, the floor any CA implementation has here: the same net with
   every CA block replaced by ``TrafficFloor``, which makes only the memory passes every CA
   must make (no pooling maths, no strip MLP, no gate values).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ablate.models import create_attention, create_model  # noqa: E402

# (C, H, W): the expanded channels MobileNetV2-1.0 gates at its stages (224 px input)
STAGE_SHAPES = [(144, 56, 56), (192, 28, 28), (384, 14, 14), (960, 7, 7)]
FORMATS = {"nchw": torch.contiguous_format, "nhwc": torch.channels_last}
GOALS = {"blocks": 1.30, "tiny": 1.30, "mbv2": 1.10}
DEV = torch.device("cpu")


def SYNC() -> None:
    if DEV.type == "cuda":
        torch.cuda.synchronize(DEV)


class ReferenceCA(nn.Module):
    """The published CA block, restated from the paper's reference code (the math, not a copy)."""

    def __init__(self, c: int, reduction: int = 32) -> None:
        super().__init__()
        mip = max(8, c // reduction)
        self.pool_h, self.pool_w = nn.AdaptiveAvgPool2d((None, 1)), nn.AdaptiveAvgPool2d((1, None))
        self.conv1, self.bn1 = nn.Conv2d(c, mip, 1), nn.BatchNorm2d(mip)
        self.relu6 = nn.ReLU6()
        self.conv_h, self.conv_w = nn.Conv2d(mip, c, 1), nn.Conv2d(mip, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        x_h, x_w = self.pool_h(x), self.pool_w(x).permute(0, 1, 3, 2)
        y = self.bn1(self.conv1(torch.cat([x_h, x_w], dim=2)))
        y = y * self.relu6(y + 3) / 6  # h_swish
        x_h, x_w = torch.split(y, [h, w], dim=2)
        a_h, a_w = self.conv_h(x_h).sigmoid(), self.conv_w(x_w.permute(0, 1, 3, 2)).sigmoid()
        return x * a_w * a_h


class LinearSE(nn.Module):
    """SE with its two 1x1 convs as matrix products on the pooled (N, C) (ablate's ``se`` weights)."""

    def __init__(self, se: nn.Module) -> None:
        super().__init__()
        self.se = se

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.se
        y = F.linear(x.mean((2, 3)), s.fc1.weight.flatten(1), s.fc1.bias)
        y = s.act(s.bn(y.view(*y.shape, 1, 1))).flatten(1)
        return x * s.gate(F.linear(y, s.fc2.weight.flatten(1), s.fc2.bias)).view(*x.shape[:2], 1, 1)


class _Passes(torch.autograd.Function):
    """The memory traffic no CA can avoid, and nothing else: forward, one read of x (both strip
    means) and the gated output (read x, write a new tensor: x is its ReLU6's saved output);
    backward, one read of the gradient and x (both strip-gradient sums) and the input gradient
    (read the gradient, write it in place)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        x.sum()
        return x * 0.5

    @staticmethod
    def backward(ctx, g: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        torch.dot(_flat(g), _flat(x))
        return g.mul_(0.5)


def _flat(t: torch.Tensor) -> torch.Tensor:
    """``t``'s elements as a 1-D view in memory order (no copy, NCHW or channels_last)."""
    return t.permute(0, 2, 3, 1).reshape(-1) if t.dim() == 4 and not t.is_contiguous() else t.reshape(-1)


class TrafficFloor(nn.Module):
    """Stands in for a CA block: what a perfectly fused CA kernel would still cost (a lower bound)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _Passes.apply(x)


def with_traffic_floor(model: nn.Module) -> nn.Module:
    """``model`` with every CA block replaced by ``TrafficFloor``."""
    from ablate.models.attention import CoordAttention

    for mod in list(model.modules()):
        for name, child in list(mod.named_children()):
            if isinstance(child, CoordAttention):
                setattr(mod, name, TrafficFloor())
    return model


class ConvSE(nn.Module):
    """SE as se_mbv2.py and torchvision write it (``nn.AdaptiveAvgPool2d(1)``, two 1x1 convs), ablate's ``se`` weights."""

    def __init__(self, se: nn.Module) -> None:
        super().__init__()
        self.se, self.pool = se, nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.se
        return x * s.gate(s.fc2(s.act(s.bn(s.fc1(self.pool(x))))))


def interleaved(fns: dict[str, Callable[[], None]], rounds: int, warmup: int = 1) -> dict[str, list[float]]:
    """Seconds of each callable per round, the callables run in turn within each round.

    Also ``cpu:<name>``: this process's CPU seconds for the same calls (steadier than wall time
    when other processes compete for the cores: time spent waiting for a core is not counted).
    """
    times: dict[str, list[float]] = {k: [] for k in fns}
    times.update({f"cpu:{k}": [] for k in fns})
    for r in range(warmup + rounds):
        for k, f in fns.items():
            SYNC()
            t0, c0 = time.perf_counter(), time.process_time()
            f()
            SYNC()
            if r >= warmup:
                times[k].append(time.perf_counter() - t0)
                times[f"cpu:{k}"].append(time.process_time() - c0)
    return times


def ratio(times: dict[str, list[float]], a: str, b: str) -> float:
    """time(a) / time(b), each the best of its rounds: on a shared machine other processes only
    ever add time, so the least-disturbed round of each is the closest to its own cost."""
    return min(times[a]) / min(times[b])


def round_ratio(times: dict[str, list[float]], a: str, b: str) -> float:
    """Median over rounds of time(a) / time(b) from the same round (robust to slow drifts)."""
    return statistics.median(x / y for x, y in zip(times[a], times[b]))


def ms(ts: list[float]) -> float:
    """Best of the rounds, in milliseconds."""
    return min(ts) * 1000


def verdict(r: float, goal: float, rounds: float | None = None, cpu: float | None = None) -> str:
    extra = [f"median of per-round ratios {rounds:.2f}" if rounds is not None else "",
             f"CPU time {cpu:.2f}" if cpu is not None else ""]
    extra = "; ".join(e for e in extra if e)
    return f"{r:.2f} (goal <= {goal:.2f}: {'met' if r <= goal else 'MISSED'})" + (f"   [{extra}]" if extra else "")


def bench_blocks(args, fmt_names: list[str]) -> None:
    print(f"\n[blocks] one block fwd+bwd, batch {args.batch}, {where(args)}, ms (best of {args.rounds} rounds)")
    print(f"{'format':>6} {'C x H x W':>11} {'ca':>8} {'ref ca':>8} {'se':>8} {'se conv':>8} {'se mm':>8} {'ca/ref':>7} {'ca/se':>6}")
    for name in fmt_names:
        fmt = FORMATS[name]
        sums = {"ca": 0.0, "ref": 0.0, "se": 0.0, "cpu:ca": 0.0, "cpu:se": 0.0}
        for c, h, w in STAGE_SHAPES:
            torch.manual_seed(0)
            x = torch.randn(args.batch, c, h, w, device=DEV).contiguous(memory_format=fmt).requires_grad_()
            g = torch.randn(args.batch, c, h, w, device=DEV).contiguous(memory_format=fmt)
            ca, ref = create_attention("ca", c), ReferenceCA(c)
            ref.load_state_dict(ca.state_dict())
            se = create_attention("se", c)
            mods = {"ca": ca, "ref": ref, "se": se, "se_conv": ConvSE(se), "se_mm": LinearSE(se)}
            for m in mods.values():
                m.to(DEV, memory_format=fmt)
            with torch.no_grad():  # same math, same weights
                torch.testing.assert_close(ca(x), ref(x), rtol=1e-4, atol=1e-5)

            def step(m: nn.Module) -> Callable[[], None]:
                def f() -> None:
                    x.grad = None
                    m(x).backward(g)
                return f

            t = interleaved({k: step(m) for k, m in mods.items()}, args.rounds)
            best = min(("se", "se_conv", "se_mm"), key=lambda k: ms(t[k]))  # SE's best plain form here
            t["se_best"], t["cpu:se_best"] = t[best], t[f"cpu:{best}"]
            for k, key in (("ca", "ca"), ("ref", "ref"), ("se", "se_best"), ("cpu:ca", "cpu:ca"), ("cpu:se", "cpu:se_best")):
                sums[k] += ms(t[key])
            print(f"{name:>6} {f'{c}x{h}x{w}':>11} {ms(t['ca']):8.2f} {ms(t['ref']):8.2f} {ms(t['se']):8.2f} "
                  f"{ms(t['se_conv']):8.2f} {ms(t['se_mm']):8.2f} {ratio(t, 'ca', 'ref'):7.2f} {ratio(t, 'ca', 'se_best'):6.2f}")
        print(f"{name:>6} {'sum':>11} {sums['ca']:8.2f} {sums['ref']:8.2f} {sums['se']:8.2f} {'':>8} {'':>8} "
              f"{sums['ca'] / sums['ref']:7.2f} {sums['ca'] / sums['se']:6.2f}")
        print(f"goal 1 [{name}] CA / SE summed over the stage shapes: "
              f"{verdict(sums['ca'] / sums['se'], GOALS['blocks'], cpu=sums['cpu:ca'] / sums['cpu:se'])}")


def bench_tiny(args) -> None:
    from ablate.data import load_dataset, make_loader

    if DEV.type == "cpu":
        torch.set_num_threads(1)
    bundle = load_dataset("alignment", root=None, seed=0)  # the recipe's data (conf/data/alignment.yaml)
    loader_kw = dict(batch_size=64, seed=0, mean=bundle.mean, std=bundle.std, pad=2, hflip=True)
    train = make_loader(bundle.train, shuffle=True, augment=True, **loader_kw)
    val = make_loader(bundle.val, shuffle=False, augment=False, **loader_kw)
    cl = torch.channels_last

    def epoch_fn(att: str) -> Callable[[], None]:
        torch.manual_seed(0)
        model = create_model("mobilenet_v2_tiny", num_classes=bundle.num_classes, in_chans=bundle.in_chans,
                             attention=att).to(DEV, memory_format=cl)
        opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=5e-4)
        crit = nn.CrossEntropyLoss(label_smoothing=0.1)
        state = {"epoch": 0}

        def f() -> None:
            model.train()
            train.set_epoch(state["epoch"])
            state["epoch"] += 1
            for x, y in train:
                x, y = x.to(DEV, non_blocking=True), y.to(DEV, non_blocking=True)
                loss = crit(model(x.contiguous(memory_format=cl)), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                loss.item()
            model.eval()
            with torch.no_grad():
                for x, y in val:
                    x, y = x.to(DEV, non_blocking=True), y.to(DEV, non_blocking=True)
                    model(x.contiguous(memory_format=cl)).argmax(1).eq(y).sum().item()
        return f

    kinds = ["none", "se", "cbam", "ca"]
    t = interleaved({k: epoch_fn(k) for k in kinds}, args.rounds)
    torch.set_num_threads(args.threads)
    print(f"\n[tiny] one epoch of the main job's recipe (mobilenet_v2_tiny, 3k images, "
          f"{'1 thread' if DEV.type == 'cpu' else DEV}), ms (best of {args.rounds} rounds)")
    print("  " + "  ".join(f"{k} {ms(t[k]):.0f}" for k in kinds)
          + f"   se/plain {ratio(t, 'se', 'none'):.2f}  cbam/plain {ratio(t, 'cbam', 'none'):.2f}")
    print(f"goal 2 CA epoch / plain epoch: {verdict(ratio(t, 'ca', 'none'), GOALS['tiny'], round_ratio(t, 'ca', 'none'), ratio(t, 'cpu:ca', 'cpu:none'))}")


def bench_mbv2(args) -> None:
    cl = torch.channels_last
    x = torch.randn(128, 3, 32, 32, device=DEV).contiguous(memory_format=cl)
    y = torch.randint(0, 10, (128,), device=DEV)

    def step_fn(att: str) -> Callable[[], None]:
        torch.manual_seed(0)
        model = create_model("mobilenet_v2", num_classes=10, stem="small",
                             attention="ca" if att == "floor" else att).to(DEV, memory_format=cl)
        if att == "floor":
            model = with_traffic_floor(model)
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=4e-5)
        crit = nn.CrossEntropyLoss()

        def f() -> None:
            loss = crit(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss.item()
        return f

    kinds = ["none", "se", "ca", "floor"]
    t = interleaved({k: step_fn(k) for k in kinds}, args.rounds)
    print(f"\n[mbv2] one training step, MobileNetV2-1.0, 32 px (small stem), batch 128, {where(args)}, "
          f"ms (best of {args.rounds} rounds)")
    print("  " + "  ".join(f"{k} {ms(t[k]):.0f}" for k in kinds) + f"   se/plain {ratio(t, 'se', 'none'):.2f}")
    print(f"goal 3 CA step / plain step: {verdict(ratio(t, 'ca', 'none'), GOALS['mbv2'], round_ratio(t, 'ca', 'none'), ratio(t, 'cpu:ca', 'cpu:none'))}")
    print(f"  floor of any CA here (TrafficFloor: only the passes a CA must make) / plain step: "
          f"{ratio(t, 'floor', 'none'):.2f}   [median of per-round ratios {round_ratio(t, 'floor', 'none'):.2f}; "
          f"CPU time {ratio(t, 'cpu:floor', 'cpu:none'):.2f}]")


def where(args) -> str:
    return f"{args.threads} threads" if DEV.type == "cpu" else str(DEV)


def main() -> None:
    global DEV
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2, help="torch threads for blocks and mbv2 (tiny uses 1, as its recipe)")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--batch", type=int, default=32, help="batch of the blocks section")
    p.add_argument("--sections", default="blocks,tiny,mbv2")
    p.add_argument("--formats", default="nchw,nhwc", help="memory formats of the blocks section")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:i]")
    args = p.parse_args()
    try:
        DEV = torch.device(args.device)
    except RuntimeError:
        p.error(f"invalid --device {args.device!r}; allowed: cpu, cuda, cuda:N")
    if DEV.type == "cuda" and not torch.cuda.is_available():
        p.error(f"invalid --device {args.device!r}; allowed: cpu (CUDA is not available)")
    sections = args.sections.split(",")
    formats = args.formats.split(",")
    for bad in [s for s in sections if s not in GOALS] + [f for f in formats if f not in FORMATS]:
        p.error(f"unknown section or format {bad!r}; allowed: {', '.join([*GOALS, *FORMATS])}")
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # as ablate.train.engine.fit
    print(f"torch {torch.__version__}, {where(args)}, {args.rounds} interleaved rounds, "
          f"load average {os.getloadavg()[0]:.1f}")
    if "blocks" in sections:
        bench_blocks(args, formats)
    if "tiny" in sections:
        bench_tiny(args)
    if "mbv2" in sections:
        bench_mbv2(args)
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
