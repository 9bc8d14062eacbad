"""Benchmark: forward+backward time of ablate's attention blocks, as ratios to references.

    .venv/bin/python bench/attention_speed.py [--device cpu|cuda] [--threads 2] [--repeats 30]

References: a line-by-line re-statement of the published CA block (``AdaptiveAvgPool2d``
strips, permute + cat, ``h_swish`` built from ReLU6, permute back, two 1x1 convs), and an SE
block of the same bottleneck. Reported per shape (MobileNetV2 stage sizes at 224 and a
CIFAR-size one): ms per fwd+bwd for ablate's ``ca``, the reference CA, ablate's ``se``, and the
ratios ablate-CA / reference-CA (should be <= ~1: the same math, no extra work) and CA / SE
(the price of coordinate attention).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ablate.models import create_attention  # noqa: E402


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


def time_fwd_bwd(m: nn.Module, x: torch.Tensor, repeats: int) -> float:
    """Median ms of one forward + backward pass (warm-up excluded)."""
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    times = []
    for i in range(repeats + 5):
        x.grad = None
        sync()
        t0 = time.perf_counter()
        m(x).sum().backward()
        sync()
        if i >= 5:
            times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--batch", type=int, default=32)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dev = torch.device(args.device)
    # (C, H, W): MobileNetV2 expanded channels at its stages (224 input), and a CIFAR-size map.
    shapes = [(144, 56, 56), (192, 28, 28), (384, 14, 14), (960, 7, 7), (96, 16, 16)]
    print(f"device={dev} threads={args.threads} batch={args.batch} repeats={args.repeats}")
    print(f"{'C x H x W':>14} {'ablate ca':>10} {'ref ca':>8} {'ablate se':>10} {'ca/ref':>7} {'ca/se':>6}")
    for c, h, w in shapes:
        x = torch.randn(args.batch, c, h, w, device=dev, requires_grad=True)
        ours, ref = create_attention("ca", c).to(dev), ReferenceCA(c).to(dev)
        ref.load_state_dict({k: v for k, v in ours.state_dict().items() if k in ref.state_dict()}, strict=False)
        torch.testing.assert_close(ours(x), ref(x), rtol=1e-4, atol=1e-5)  # same math, same weights
        se = create_attention("se", c).to(dev)
        t_ca, t_ref, t_se = (time_fwd_bwd(m, x, args.repeats) for m in (ours, ref, se))
        print(f"{f'{c}x{h}x{w}':>14} {t_ca:10.2f} {t_ref:8.2f} {t_se:10.2f} {t_ca / t_ref:7.2f} {t_ca / t_se:6.2f}")


if __name__ == "__main__":
    main()
