"""Squeeze-and-Excitation (Hu, Shen & Sun, CVPR 2018, https://arxiv.org/abs/1709.01507).

Global average pool -> 1x1 conv C->mid -> act -> 1x1 conv mid->C -> gate; ``out = x * gate``.

Defaults are the CA paper's SE baseline (Hou et al. 2021, Table "+SE": 3.89M params on
MobileNetV2-1.0), as the CA authors built it in houqb/ssdlite-pytorch-mobilenext
``se_mbv2.py`` (``SEM``): placed in CA's slot on the expanded channels, ``mip = inp // 24``,
ReLU6, conv biases on. ``reduction=24`` gives 3,890,136 params for MobileNetV2-1.0 (the
paper's 3.89M); the SE paper's r=16 would give ~4.08M. Deviation: ``min_mid=8``, the same floor
as CA's ``max(8, C // r)``, so that a small net's SE baseline is not a 1-4 channel bottleneck
beside CA's 8 (a fair comparison; on MobileNetV2-1.0 it adds 1.9k params to se_mbv2.py's count).
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ablate.models.attention._common import mid_channels as _mid
from ablate.models.layers import LayerSpec, get_act_layer, get_norm_layer
from ablate.models.registry import register_attention


@register_attention("se")
class SqueezeExcite(nn.Module):
    """SE block; submodules ``fc1``, ``bn``, ``act``, ``fc2``, ``gate`` (state_dict keys).

    Args:
        channels: input = output channels.
        reduction: r in mid = max(min_mid, C // r) (24: CA paper's SE baseline, se_mbv2.py).
        mid_channels: explicit bottleneck width; overrides ``reduction``.
        min_mid: floor of mid (8: CA's floor; se_mbv2.py has none).
        divisor: round mid to a multiple of this (1: none, as se_mbv2.py).
        act: bottleneck activation (relu6: se_mbv2.py; the SE paper uses relu).
        gate: gating function (sigmoid: SE paper and se_mbv2.py).
        norm: norm after ``fc1`` (none: SE paper; ``bn`` as timm's SEModule option).
        bias: conv biases (True: se_mbv2.py).
    """

    def __init__(
        self,
        channels: int,
        *,
        reduction: int = 24,
        mid_channels: Optional[int] = None,
        min_mid: int = 8,
        divisor: int = 1,
        act: LayerSpec = "relu6",
        gate: LayerSpec = "sigmoid",
        norm: LayerSpec = "none",
        bias: bool = True,
    ):
        super().__init__()
        mid = _mid(channels, reduction, min_mid, divisor, override=mid_channels)
        self.fc1 = nn.Conv2d(channels, mid, 1, bias=bias)
        self.bn = get_norm_layer(norm)(mid)
        self.act = get_act_layer(act)()
        self.fc2 = nn.Conv2d(mid, channels, 1, bias=bias)
        self.gate = get_act_layer(gate, ("sigmoid", "hsigmoid"), what="gate")()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        return x * self.gate(self.fc2(self.act(self.bn(self.fc1(s)))))

    @staticmethod
    def gating_madds(shape) -> int:
        """Element-wise multiplies of ``x * gate``: C*H*W per sample (docs/design.md, counting like the paper)."""
        return int(shape[1] * shape[2] * shape[3])

    map_title = None

    def spatial_map(self, x: torch.Tensor) -> None:
        """SE gates channels only (one weight per channel): it has no spatial map."""
        return None
