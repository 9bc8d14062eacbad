"""Simplified Coordinate Attention: timm's ``SimpleCoordAttn`` (timm/layers/coord_attn.py).

Strip-pool each channel to (N, C, H) and (N, C, W), treat every row / column as a token of C
features, ONE shared linear C->mid (bias on) + SiLU, then linear ``fc_h`` / ``fc_w`` mid->C
(no norm anywhere), and gate the SUM of the two strips: ``out = x * gate(l_h + l_w)``
(``l_h`` (N,C,H,1) and ``l_w`` (N,C,1,W) broadcast to (N,C,H,W)), optionally ``+ x``.

It differs from CA (``ca``/``ca_timm``) in three places: linear layers on strips instead of
1x1 convs, no BatchNorm, and additive pre-gating (one gate over ``l_h + l_w``) instead of the
product of two gates. mid = make_divisible(C / 4 * 2/3, 8, round_limit=0) as timm
(``rd_ratio=0.25``, ``se_factor=2/3``, ``rd_divisor=8``).

Submodule names are timm's (``fc1``, ``act``, ``fc_h``, ``fc_w``, ``gate``), so a state dict
loads into either.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ablate.errors import ConfigError
from ablate.models.attention._common import mid_channels as _mid
from ablate.models.attention._strips import ACTS, GATES, check_flag, SummedStripGate
from ablate.models.layers import LayerSpec, get_act_layer
from ablate.models.registry import register_attention


@register_attention("ca_simple")
class SimpleCoordAttention(SummedStripGate):
    """timm's ``SimpleCoordAttn`` math (``out = x * gate(fc_h(s_h) + fc_w(s_w))``).

    Args:
        channels: input = output channels.
        reduction: r in mid = make_divisible(C / r * se_factor, divisor) (4: timm ``rd_ratio=0.25``).
        mid_channels: explicit bottleneck width; overrides ``reduction`` (timm ``rd_channels``).
        min_mid: floor of mid (8: timm's make_divisible ``min_value`` = divisor).
        divisor: rounding of mid (8: timm ``rd_divisor``); rounded with ``round_limit=0`` as timm.
        se_factor: extra scale of mid (2/3: timm).
        act: activation after ``fc1`` (silu: timm ``nn.SiLU``); hswish, relu, relu6, silu, gelu or sigmoid.
        gate: gating function (sigmoid: timm); sigmoid or hsigmoid.
        bias: linear biases (True: timm).
        skip: add the input to the output (False: timm ``has_skip``).
    """

    def __init__(
        self,
        channels: int,
        *,
        reduction: int = 4,
        mid_channels: Optional[int] = None,
        min_mid: int = 8,
        divisor: int = 8,
        se_factor: float = 2 / 3,
        act: LayerSpec = "silu",
        gate: LayerSpec = "sigmoid",
        bias: bool = True,
        skip: bool = False,
    ):
        super().__init__()
        check_flag("bias", bias)
        self.skip = check_flag("skip", skip)
        act_cls = get_act_layer(act, ACTS if isinstance(act, str) else None)
        gate_cls = get_act_layer(gate, GATES if isinstance(gate, str) else None, what="gate")
        if isinstance(se_factor, bool) or not isinstance(se_factor, (int, float)) or se_factor <= 0:
            raise ConfigError(f"invalid se_factor {se_factor!r}; allowed: a number > 0")
        mid = _mid(channels, reduction, min_mid, divisor, override=mid_channels, scale=se_factor, round_limit=0.0)
        self.fc1 = nn.Linear(channels, mid, bias=bias)
        self.act = act_cls()
        self.fc_h = nn.Linear(mid, channels, bias=bias)
        self.fc_w = nn.Linear(mid, channels, bias=bias)
        self.gate = gate_cls()

    def logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(l_h (N,C,H,1), l_w (N,C,1,W)): the two strips' pre-gate outputs that ``forward`` adds."""
        y_h = self.act(self.fc1(x.mean(3).transpose(1, 2)))  # (N, H, mid): one token per row
        y_w = self.act(self.fc1(x.mean(2).transpose(1, 2)))  # (N, W, mid): one token per column
        return self.fc_h(y_h).transpose(1, 2).unsqueeze(3), self.fc_w(y_w).transpose(1, 2).unsqueeze(2)

    def gate_map(self, x: torch.Tensor) -> torch.Tensor:
        """The gate (N, C, H, W) that ``forward`` multiplies ``x`` by."""
        l_h, l_w = self.logits(x)
        return self.gate(l_h + l_w)

    map_title = "gate(l_h + l_w)"
