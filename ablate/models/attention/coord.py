"""Coordinate Attention (Hou, Zhou & Feng, CVPR 2021, https://arxiv.org/abs/2103.02907).

``ca`` follows the official code (houqb/CoordAttention ``coordatt.py``): pool each channel
along W to (H, 1) and along H to (1, W), concatenate the two strips along the spatial dim, ONE
shared 1x1 conv C->mid (bias on), BN, h-swish, split, 1x1 ``conv_h`` / ``conv_w`` mid->C,
sigmoid, ``out = x * a_w * a_h`` (no residual); mid = max(8, C // 32).

Deliberate deviations (none change the official defaults' math):
- pooling is a mean over one dim instead of ``AdaptiveAvgPool2d``: same values, input-size
  agnostic, ONNX-friendly (a known pain point on the official repo);
- the 1x1 convs on the strips are computed as matrix products on (N, H + W, C) strips (same
  weights, same state_dict, same BN statistics: a 1x1 conv is a matrix product and BN over
  (N, mid, H + W, 1) is BN over (N * (H + W), mid, 1, 1)); a 1x1 conv on an (N, C, L, 1)
  tensor costs far more than its multiply-adds on CPU;
- broadcasting instead of ``.expand``, and the strip pools and the gate ``x * a_w * a_h`` as
  fused autograd functions (``fused.py``: same values and gradients, fewer full-size passes;
  plain expressions under ``torch.compile``, which fuses them itself);
- ablation knobs ``branches`` (hw/h/w; a single branch builds no weights for the other
  direction), ``pool``, ``act``, ``gate``, ``norm``, ``shared_transform``.

``ca_timm`` is timm's ``CoordAttn`` (timm/layers/coord_attn.py) math: mid =
make_divisible(C / 16 * 2/3, 8, round_limit=0), conv biases off, optional skip add.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ablate.errors import ConfigError, check_choice
from ablate.models.attention._common import mid_channels as _mid
from ablate.models.attention.fused import (
    coord_gate, is_channels_last, strip_layout, strip_means, strips_of, sum_over_h, sum_over_w,
)
from ablate.models.layers import ELEMENTWISE_LAYERS, LayerSpec, get_act_layer, get_norm_layer
from ablate.models.registry import register_attention

BRANCHES = ("hw", "h", "w")
POOLS = ("avg", "max", "avgmax")
CA_ACTS = ("hswish", "relu", "relu6", "silu", "gelu", "sigmoid")
GATES = ("sigmoid", "hsigmoid")


def _strip_pool(x: torch.Tensor, dim: int, pool: str) -> torch.Tensor:
    """Pool over one spatial dim keeping it as size 1 (dim=3 -> (N,C,H,1); dim=2 -> (N,C,1,W))."""
    if pool == "avg":
        return x.mean(dim, keepdim=True)
    if pool == "max":
        return x.amax(dim, keepdim=True)
    # timm adaptive_avgmax_pool convention: the mean of both.
    return 0.5 * (x.mean(dim, keepdim=True) + x.amax(dim, keepdim=True))


@register_attention("ca")
class CoordAttention(nn.Module):
    """Coordinate Attention, official math by default.

    Submodules (state_dict keys): ``conv1``, ``bn1``, ``act``, ``conv_h``, ``conv_w``, ``gate``;
    with ``shared_transform=False`` and both branches: ``conv1_h``, ``bn1_h``, ``conv1_w``, ``bn1_w``.

    Args:
        channels: input = output channels.
        reduction: r in mid = max(min_mid, C // r) (32: coordatt.py ``reduction=32``).
        mid_channels: explicit bottleneck width; overrides ``reduction``.
        min_mid: floor of mid (8: coordatt.py ``max(8, inp // reduction)``).
        divisor: round mid to a multiple of this (1: no rounding in coordatt.py).
        act: transform activation (hswish: coordatt.py ``h_swish``); one of hswish, relu, relu6, silu, gelu, sigmoid.
        gate: gating function (sigmoid: coordatt.py); sigmoid or hsigmoid.
        norm: norm after the shared conv (bn: coordatt.py ``bn1``); bn or none.
        bias: conv biases (True: coordatt.py uses nn.Conv2d defaults).
        branches: hw (official), h only (``x * a_h``) or w only (``x * a_w``).
        pool: strip pooling, avg (official), max or avgmax (mean of both).
        shared_transform: one 1x1 conv+norm for both strips (True, official) or one per direction.
    """

    def __init__(
        self,
        channels: int,
        *,
        reduction: int = 32,
        mid_channels: Optional[int] = None,
        min_mid: int = 8,
        divisor: int = 1,
        act: LayerSpec = "hswish",
        gate: LayerSpec = "sigmoid",
        norm: LayerSpec = "bn",
        bias: bool = True,
        branches: str = "hw",
        pool: str = "avg",
        shared_transform: bool = True,
    ):
        super().__init__()
        check_choice("branches", branches, sorted(BRANCHES))
        check_choice("pool", pool, sorted(POOLS))
        if not isinstance(shared_transform, bool):
            raise ConfigError(f"invalid shared_transform {shared_transform!r}; allowed: false, true")
        act_cls = get_act_layer(act, CA_ACTS if isinstance(act, str) else None)
        gate_cls = get_act_layer(gate, GATES if isinstance(gate, str) else None, what="gate")
        norm_cls = get_norm_layer(norm)
        mid = _mid(channels, reduction, min_mid, divisor, override=mid_channels)
        self.branches, self.pool = branches, pool
        # A single branch has one strip, so "shared" vs "separate" is the same module: conv1/bn1.
        self.shared = shared_transform or branches != "hw"
        if self.shared:
            self.conv1 = nn.Conv2d(channels, mid, 1, bias=bias)
            self.bn1 = norm_cls(mid)
        else:
            self.conv1_h = nn.Conv2d(channels, mid, 1, bias=bias)
            self.bn1_h = norm_cls(mid)
            self.conv1_w = nn.Conv2d(channels, mid, 1, bias=bias)
            self.bn1_w = norm_cls(mid)
        self.act = act_cls()
        if "h" in branches:
            self.conv_h = nn.Conv2d(mid, channels, 1, bias=bias)
        if "w" in branches:
            self.conv_w = nn.Conv2d(mid, channels, 1, bias=bias)
        self.gate = gate_cls()
        # The strip path (matrix products on (N, L, C) strips) needs layers that act element-wise
        # (and a BatchNorm or none); any other class gets the 1x1 convs on (N, C, L, 1) strips.
        self._strip_path = (act_cls in ELEMENTWISE_LAYERS and gate_cls in ELEMENTWISE_LAYERS
                            and norm_cls in (nn.BatchNorm2d, nn.Identity))

    def _transform(self, y: torch.Tensor, suffix: str = "") -> torch.Tensor:
        conv, bn = getattr(self, "conv1" + suffix), getattr(self, "bn1" + suffix)
        return self.act(bn(conv(y)))

    def _transform_strips(self, s: torch.Tensor, suffix: str = "") -> torch.Tensor:
        """conv1 + bn1 + act on strip rows (R, C) -> (R, mid), as a matrix product."""
        conv, bn = getattr(self, "conv1" + suffix), getattr(self, "bn1" + suffix)
        y = F.linear(s, conv.weight.flatten(1), conv.bias)
        return self.act(bn(y.view(*y.shape, 1, 1))).view(y.shape)

    def _gate_strips(self, y: torch.Tensor, conv: nn.Conv2d, length: int, n: int, dim: int,
                     channels_last: bool) -> torch.Tensor:
        """gate(conv(y)) on strip rows (length * N, mid), returned as (N, C, length, 1) (dim=3)
        or (N, C, 1, length) (dim=2), laid out for the gate's loops over x (``strip_layout``)."""
        a = self.gate(F.linear(y, conv.weight.flatten(1), conv.bias))
        return strip_layout(a.view(length, n, -1), dim, channels_last)

    def _gates(self, x: torch.Tensor, link: bool = False):
        """(a_h (N,C,H,1) or None, a_w (N,C,1,W) or None): the gates of the branches this module has.

        With ``link``, a third item: the strip pools' autograd node for ``coord_gate`` (or None).
        """
        if not self._strip_path:
            gates = self._gates_conv(x)
            return (*gates, None) if link else gates
        # Strips as rows (H + W, N, C) -> ((H + W) * N, C): every 1x1 conv is one matrix product.
        n, c, h, w = x.shape
        cl, pools = is_channels_last(x), None
        if self.branches == "h":
            z = sum_over_w(x, 1.0 / w) if self.pool == "avg" else _strip_pool(x, 3, self.pool)[..., 0]
            y = self._transform_strips(z.permute(2, 0, 1).reshape(h * n, c))
            gates = self._gate_strips(y, self.conv_h, h, n, 3, cl), None
        elif self.branches == "w":
            z = sum_over_h(x, 1.0 / h) if self.pool == "avg" else _strip_pool(x, 2, self.pool)[:, :, 0]
            y = self._transform_strips(z.permute(2, 0, 1).reshape(w * n, c))
            gates = None, self._gate_strips(y, self.conv_w, w, n, 2, cl)
        else:
            if self.pool == "avg" and not torch.compiler.is_compiling():
                s = strip_means(x)  # both strip means in one autograd node (fused.py)
                pools = s.grad_fn
            else:
                s = strips_of(x, _strip_pool(x, 3, self.pool)[..., 0], _strip_pool(x, 2, self.pool)[:, :, 0])
            s = s.view((h + w) * n, c)
            if self.shared:
                y_h, y_w = self._transform_strips(s).split([h * n, w * n])
            else:
                y_h, y_w = self._transform_strips(s[: h * n], "_h"), self._transform_strips(s[h * n:], "_w")
            gates = self._gate_strips(y_h, self.conv_h, h, n, 3, cl), self._gate_strips(y_w, self.conv_w, w, n, 2, cl)
        return (*gates, pools) if link else gates

    def _gates_conv(self, x: torch.Tensor) -> tuple[Optional[torch.Tensor], Optional[torch.Tensor]]:
        """``_gates`` with the 1x1 convs on (N, C, L, 1) strips, for layers the strip path cannot take."""
        h, w = x.shape[2], x.shape[3]
        if self.branches == "h":
            return self.gate(self.conv_h(self._transform(_strip_pool(x, 3, self.pool)))), None
        if self.branches == "w":
            return None, self.gate(self.conv_w(self._transform(_strip_pool(x, 2, self.pool))))
        x_h, x_w = _strip_pool(x, 3, self.pool), _strip_pool(x, 2, self.pool)
        x_w = x_w.transpose(2, 3)  # (N, C, H, 1) and (N, C, W, 1)
        if self.shared:
            y_h, y_w = torch.split(self._transform(torch.cat([x_h, x_w], dim=2)), [h, w], dim=2)
        else:
            y_h, y_w = self._transform(x_h, "_h"), self._transform(x_w, "_w")
        a_h = self.gate(self.conv_h(y_h))  # (N, C, H, 1)
        a_w = self.gate(self.conv_w(y_w.transpose(2, 3)))  # (N, C, 1, W)
        return a_h, a_w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a_h, a_w, pools = self._gates(x, link=True)
        if a_w is None:
            return x * a_h
        if a_h is None:
            return x * a_w
        if torch.compiler.is_compiling():
            return x * a_w * a_h  # Inductor fuses the plain expression
        return coord_gate(x, a_h, a_w, pools)  # x * a_w * a_h without the full-size intermediate

    def gating_madds(self, shape) -> int:
        """Element-wise multiplies: 2*C*H*W for ``x * a_w * a_h``, C*H*W with one branch."""
        return int(len(self.branches) * shape[1] * shape[2] * shape[3])

    map_title = "a_h × a_w"

    def strip_gates(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(a_h (N,C,H,1), a_w (N,C,1,W)) that ``forward`` multiplies ``x`` by; a branch this module
        does not have is all ones (``x * a_h`` is ``x * a_h * 1``)."""
        a_h, a_w = self._gates(x)
        n, c, h, w = x.shape
        return (a_h if a_h is not None else x.new_ones(n, c, h, 1),
                a_w if a_w is not None else x.new_ones(n, c, 1, w))

    def spatial_map(self, x: torch.Tensor) -> torch.Tensor:
        """The spatial gating (N, H, W) applied to ``x``, averaged over channels: mean_c(a_h * a_w)."""
        a_h, a_w = self.strip_gates(x)
        return (a_h * a_w).mean(1)

    def map_parts(self, x: torch.Tensor) -> dict:
        """The pieces of the map for a figure: ``a_h`` (N,C,H,1) and ``a_w`` (N,C,1,W)."""
        a_h, a_w = self.strip_gates(x)
        return {"a_h": a_h, "a_w": a_w}


@register_attention("ca_timm")
class CoordAttentionTimm(CoordAttention):
    """timm's ``CoordAttn`` math (timm/layers/coord_attn.py), offered as its own kind.

    Args:
        channels: input = output channels.
        reduction: r in mid = make_divisible(C / r * se_factor, divisor) (16: timm ``rd_ratio=1/16``).
        mid_channels: explicit bottleneck width; overrides ``reduction`` (timm ``rd_channels``).
        min_mid: floor of mid (8: timm's make_divisible ``min_value`` = divisor).
        divisor: rounding of mid (8: timm ``rd_divisor``); timm rounds with ``round_limit=0``.
        se_factor: extra scale of mid (2/3: timm, "keeps params similar to SE").
        act: transform activation (hswish: timm ``nn.Hardswish``).
        gate: gating function (sigmoid: timm).
        norm: norm after the shared conv (bn: timm).
        bias: conv biases (False: timm).
        skip: add the input to the output (False: timm ``has_skip``).
    """

    def __init__(
        self,
        channels: int,
        *,
        reduction: int = 16,
        mid_channels: Optional[int] = None,
        min_mid: int = 8,
        divisor: int = 8,
        se_factor: float = 2 / 3,
        act: LayerSpec = "hswish",
        gate: LayerSpec = "sigmoid",
        norm: LayerSpec = "bn",
        bias: bool = False,
        skip: bool = False,
    ):
        mid = _mid(channels, reduction, min_mid, divisor, override=mid_channels, scale=se_factor, round_limit=0.0)
        super().__init__(channels, mid_channels=mid, act=act, gate=gate, norm=norm, bias=bias)
        self.skip = bool(skip)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = super().forward(x)
        return out + x if self.skip else out
