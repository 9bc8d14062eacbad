"""Efficient Local Attention (Xu & Wan 2024, https://arxiv.org/abs/2403.01123), timm's math.

timm's ``EfficientLocalAttn`` (timm/layers/coord_attn.py): strip-pool each channel to
(N, C, H, 1) and (N, C, 1, W) as CA does, then per direction a 1-D depthwise conv of size k
(7, zero-padded, no bias), GroupNorm with one group, SiLU and a sigmoid gate;
``out = x * a_h * a_w``, optionally ``+ x``. Unlike CA there is no channel reduction and no
shared transform: each direction has its own conv and norm, and every channel only sees its
own strip (locally, k positions at a time).

Submodule names are timm's (``conv_h``, ``conv_w``, ``norm_h``, ``norm_w``, ``act``, ``gate``),
so a state dict loads into either.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ablate.errors import check_choice
from ablate.models.attention._strips import ACTS, GATES, check_flag, check_odd_kernel, strip_convs
from ablate.models.layers import LayerSpec, get_act_layer
from ablate.models.registry import register_attention

NORMS: dict[str, Callable[[int], nn.Module]] = {
    "gn1": lambda c: nn.GroupNorm(1, c),  # timm GroupNorm1: one group over (C, length), affine, eps 1e-5
    "bn": nn.BatchNorm2d,
    "none": nn.Identity,
}


def _norm_layer(norm: LayerSpec) -> Callable[[int], nn.Module]:
    if isinstance(norm, str) or not callable(norm):
        check_choice("norm", norm, sorted(NORMS))
        return NORMS[norm]
    return norm


@register_attention("ela")
class EfficientLocalAttention(nn.Module):
    """ELA as timm's ``EfficientLocalAttn``: ``x * gate(act(norm_h(conv_h(s_h)))) * gate(act(norm_w(conv_w(s_w))))``.

    Args:
        channels: input = output channels.
        kernel_size: size of the 1-D depthwise convs, odd (7: timm; the ELA paper uses 5 or 7).
        act: activation after the norm (silu: timm ``nn.SiLU``); hswish, relu, relu6, silu, gelu or sigmoid.
        gate: gating function (sigmoid: timm); sigmoid or hsigmoid.
        norm: norm after each conv (gn1: timm ``GroupNorm1``, GroupNorm with one group); gn1, bn or none.
        bias: conv biases (False: timm).
        skip: add the input to the output (False: timm ``has_skip``).
    """

    def __init__(
        self,
        channels: int,
        *,
        kernel_size: int = 7,
        act: LayerSpec = "silu",
        gate: LayerSpec = "sigmoid",
        norm: LayerSpec = "gn1",
        bias: bool = False,
        skip: bool = False,
    ):
        super().__init__()
        kernel_size = check_odd_kernel(kernel_size)
        check_flag("bias", bias)
        self.skip = check_flag("skip", skip)
        act_cls = get_act_layer(act, ACTS if isinstance(act, str) else None)
        gate_cls = get_act_layer(gate, GATES if isinstance(gate, str) else None, what="gate")
        norm_cls = _norm_layer(norm)
        self.conv_h, self.conv_w = strip_convs(channels, kernel_size, bias)
        self.norm_h, self.norm_w = norm_cls(channels), norm_cls(channels)
        self.act = act_cls()
        self.gate = gate_cls()

    def strip_gates(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(a_h (N,C,H,1), a_w (N,C,1,W)) that ``forward`` multiplies ``x`` by."""
        a_h = self.gate(self.act(self.norm_h(self.conv_h(x.mean(3, keepdim=True)))))
        a_w = self.gate(self.act(self.norm_w(self.conv_w(x.mean(2, keepdim=True)))))
        return a_h, a_w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a_h, a_w = self.strip_gates(x)
        out = x * a_h * a_w
        return out + x if self.skip else out

    @staticmethod
    def gating_madds(shape) -> int:
        """Element-wise multiplies of ``x * a_h * a_w``: 2*C*H*W, as CA."""
        return int(2 * shape[1] * shape[2] * shape[3])

    map_title = "a_h × a_w"

    def spatial_map(self, x: torch.Tensor) -> torch.Tensor:
        """The spatial gating (N, H, W) applied to ``x``, averaged over channels: mean_c(a_h * a_w)."""
        a_h, a_w = self.strip_gates(x)
        return (a_h * a_w).mean(1)

    def map_parts(self, x: torch.Tensor) -> dict:
        """The pieces of the map for a figure: ``a_h`` (N,C,H,1) and ``a_w`` (N,C,1,W)."""
        a_h, a_w = self.strip_gates(x)
        return {"a_h": a_h, "a_w": a_w}
