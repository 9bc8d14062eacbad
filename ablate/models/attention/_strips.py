"""Helpers shared by the strip-pooling kinds of timm's coord_attn.py (``ca_simple``, ``ela``, ``strip``).

Knob checks (one-line ``ConfigError`` naming the value and the allowed ones) and the pair of
1-D depthwise convs that ELA and Strip attention run along each strip.
"""

from __future__ import annotations

import torch
from torch import nn

from ablate.errors import ConfigError
from ablate.models.attention._common import check_positive

ACTS = ("hswish", "relu", "relu6", "silu", "gelu", "sigmoid")
GATES = ("sigmoid", "hsigmoid")


def check_flag(name: str, value) -> bool:
    """``value`` if it is a bool (YAML true/false); else a one-line ``ConfigError``."""
    if not isinstance(value, bool):
        raise ConfigError(f"invalid {name} {value!r}; allowed: false, true")
    return value


def check_odd_kernel(kernel_size) -> int:
    """``kernel_size`` if it is an odd integer > 0 (an even one would change the strip's length)."""
    check_positive("kernel_size", kernel_size)
    if kernel_size % 2 == 0:
        raise ConfigError(f"invalid kernel_size {kernel_size}; allowed: an odd integer > 0")
    return int(kernel_size)


def strip_convs(channels: int, kernel_size: int, bias: bool) -> tuple[nn.Conv2d, nn.Conv2d]:
    """Depthwise (k, 1) conv along H for the (N,C,H,1) strip and (1, k) along W for the (N,C,1,W)
    strip, zero-padded to keep the length (timm's ``conv_h`` / ``conv_w``)."""
    pad = kernel_size // 2
    conv_h = nn.Conv2d(channels, channels, (kernel_size, 1), padding=(pad, 0), groups=channels, bias=bias)
    conv_w = nn.Conv2d(channels, channels, (1, kernel_size), padding=(0, pad), groups=channels, bias=bias)
    return conv_h, conv_w


class SummedStripGate(nn.Module):
    """Base of the kinds that gate ``x`` by one map made from both strips (``gate_map``):
    ``x * gate`` (plus ``x`` with ``skip``), its MAdds and its channel-mean attention map."""

    skip: bool = False
    map_title = "gate"

    def gate_map(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - every kind defines it
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x * self.gate_map(x)
        return out + x if self.skip else out

    @staticmethod
    def gating_madds(shape) -> int:
        """Element-wise multiplies of ``x * gate``: C*H*W (the add of the strips is no multiply)."""
        return int(shape[1] * shape[2] * shape[3])

    def spatial_map(self, x: torch.Tensor) -> torch.Tensor:
        """The gating (N, H, W) applied to ``x``, averaged over channels."""
        return self.gate_map(x).mean(1)
