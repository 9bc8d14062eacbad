"""CBAM: Convolutional Block Attention Module (Woo et al., ECCV 2018, https://arxiv.org/abs/1807.06521).

Channel attention (shared MLP over avg- and max-pooled descriptors, summed, gated) followed by
spatial attention (7x7 conv over the channel-wise [max, mean] maps, BN, gated), as in the
authors' code (Jongchan/attention-module ``cbam.py``: ``ChannelPool`` = [max, mean], a 7x7
``BasicConv`` with BN and no bias). timm's ``cbam.py`` notes results are mixed.

Sizing follows the CA paper's +CBAM baseline (3.89M params on MobileNetV2-1.0, same as +SE):
the MLP uses the SE baseline's ``reduction=24`` on the expanded channels in CA's slot
(3,891,736 params with the floor min_mid=8; the spatial part adds 100 per block).
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ablate.errors import ConfigError
from ablate.models.attention._common import check_positive, mid_channels as _mid
from ablate.models.layers import LayerSpec, get_act_layer, get_norm_layer
from ablate.models.registry import register_attention


class ChannelAttn(nn.Module):
    """CBAM channel gate: ``x * gate(mlp(avg) + mlp(max))`` with one shared MLP (``fc1``, ``act``, ``fc2``)."""

    def __init__(self, channels: int, mid: int, act: LayerSpec, gate: LayerSpec, bias: bool):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, mid, 1, bias=bias)
        self.act = get_act_layer(act)()
        self.fc2 = nn.Conv2d(mid, channels, 1, bias=bias)
        self.gate = get_act_layer(gate, ("sigmoid", "hsigmoid"), what="gate")()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = self.fc2(self.act(self.fc1(x.mean((2, 3), keepdim=True))))
        # max_pool2d as the CBAM code: its gradient goes to one arg-max (amax splits it among
        # ties, common after ReLU6, and its backward costs ~2x here)
        mx = self.fc2(self.act(self.fc1(F.adaptive_max_pool2d(x, 1))))
        return x * self.gate(avg + mx)


class SpatialAttn(nn.Module):
    """CBAM spatial gate: ``x * gate(bn(conv_kxk([max_c(x), mean_c(x)])))``."""

    def __init__(self, kernel_size: int, norm: LayerSpec, gate: LayerSpec):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)
        self.bn = get_norm_layer(norm)(1)
        self.gate = get_act_layer(gate, ("sigmoid", "hsigmoid"), what="gate")()

    def gate_map(self, x: torch.Tensor) -> torch.Tensor:
        """The spatial gate (N, 1, H, W) that ``forward`` multiplies ``x`` by."""
        s = torch.cat([x.max(1, keepdim=True)[0], x.mean(1, keepdim=True)], dim=1)  # CBAM code ChannelPool
        return self.gate(self.bn(self.conv(s)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate_map(x)


@register_attention("cbam")
class CBAM(nn.Module):
    """CBAM = ``ChannelAttn`` then ``SpatialAttn`` (submodules ``channel``, ``spatial``).

    Args:
        channels: input = output channels.
        reduction: MLP r (24: sized like the CA paper's SE baseline, 3.89M on MBv2-1.0; CBAM paper 16).
        mid_channels: explicit MLP width; overrides ``reduction``.
        min_mid: floor of the MLP width (8: CA's and SE's floor, a fair baseline on small nets; the CBAM code has none).
        divisor: round the MLP width to a multiple of this (1: none).
        act: MLP activation (relu: CBAM code).
        gate: gating function of both gates (sigmoid: CBAM code).
        norm: norm after the spatial conv (bn: CBAM code ``BasicConv(bn=True)``).
        bias: MLP biases (True: CBAM code uses nn.Linear with bias).
        kernel_size: spatial conv size (7: CBAM paper Sec. 4.1).
    """

    def __init__(
        self,
        channels: int,
        *,
        reduction: int = 24,
        mid_channels: Optional[int] = None,
        min_mid: int = 8,
        divisor: int = 1,
        act: LayerSpec = "relu",
        gate: LayerSpec = "sigmoid",
        norm: LayerSpec = "bn",
        bias: bool = True,
        kernel_size: int = 7,
    ):
        super().__init__()
        check_positive("kernel_size", kernel_size)
        if kernel_size % 2 == 0:
            raise ConfigError(f"invalid kernel_size {kernel_size}; allowed: an odd integer > 0")
        mid = _mid(channels, reduction, min_mid, divisor, override=mid_channels)
        self.channel = ChannelAttn(channels, mid, act, gate, bias)
        self.spatial = SpatialAttn(kernel_size, norm, gate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spatial(self.channel(x))

    @staticmethod
    def gating_madds(shape) -> int:
        """Element-wise multiplies: channel gate C*H*W + spatial gate C*H*W."""
        return int(2 * shape[1] * shape[2] * shape[3])

    map_title = "spatial gate"

    def spatial_map(self, x: torch.Tensor) -> torch.Tensor:
        """The spatial gate (N, H, W) this module applies to its input ``x`` (after its channel gate)."""
        return self.spatial.gate_map(self.channel(x))[:, 0]
