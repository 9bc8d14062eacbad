"""The blocks of the backbones, each with one attention slot (``self.attn``).

A block that can hold attention owns ``attn`` (``nn.Identity`` when empty), ``block_index``,
``stage_index`` (set by ``_common.build_stages``), ``attn_position`` and ``attn_channels``
(``insert.insertion_plan`` reads them), and fills its slot with ``fill_slot(attn_layer, Slot(...))``:
the factory sees the slot's channels and the block's input and output channels.

- ``InvertedResidual``: MobileNetV2's block, and EfficientNet's MBConv (SiLU, 3x3/5x5, drop path).
- ``SandglassBlock``: MobileNeXt's sandglass block.
"""

from __future__ import annotations

import math
from typing import Callable, Optional, Type

import torch
from torch import nn

from ablate.errors import ConfigError, check_choice
from ablate.models.backbones._common import AttnLayer, ConvBNAct, DropPath
from ablate.models.layers import make_divisible
from ablate.models.slot import Slot, fill_slot

POSITIONS_IR = ("after_expand", "after_depthwise", "after_project", "post_add")
POSITIONS_SG = ("after_depthwise", "after_expand", "post_add")


def _check_stride(stride: int) -> None:
    if stride not in (1, 2):
        raise ConfigError(f"invalid stride {stride!r}; allowed: 1, 2")


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand (``expand``) -> 3x3 depthwise (``dw``) -> 1x1 linear (``project``).

    Always owns ``self.attn`` (``nn.Identity`` when off), applied at ``position``:
    ``after_expand``, ``after_depthwise`` (official CA), ``after_project`` or ``post_add``
    (on the block output, after the residual add when there is one).

    Args:
        inp, oup: input/output channels.
        stride: depthwise stride (1 or 2).
        expand_ratio: t; hidden = round(inp * t), no expansion conv when t == 1.
        attn_layer: attention factory (``for_slot(slot)``, or ``channels -> nn.Module``), or None.
        position: one of ``POSITIONS_IR``.
        kernel_size: depthwise kernel (3; EfficientNet also 5).
        act_layer: activation class (ReLU6; EfficientNet SiLU).
        drop_path: stochastic-depth rate on the residual branch (0; EfficientNet > 0).
    """

    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: float,
                 attn_layer: AttnLayer = None, position: str = "after_depthwise", *,
                 kernel_size: int = 3, act_layer: Type[nn.Module] = nn.ReLU6, drop_path: float = 0.0):
        super().__init__()
        _check_stride(stride)
        check_choice("position", position, sorted(POSITIONS_IR))
        hidden = int(round(inp * expand_ratio))
        self.use_res = stride == 1 and inp == oup
        self.expand = ConvBNAct(inp, hidden, 1, act=act_layer) if expand_ratio != 1 else nn.Identity()  # pw
        self.dw = ConvBNAct(hidden, hidden, kernel_size, stride, groups=hidden, act=act_layer)  # dw
        self.project = ConvBNAct(hidden, oup, 1, act=None)  # pw-linear
        self.drop_path = DropPath(drop_path) if self.use_res and drop_path > 0 else nn.Identity()
        self.attn_position = position
        self.attn_channels = hidden if position in ("after_expand", "after_depthwise") else oup
        self.attn = fill_slot(attn_layer, Slot(self.attn_channels, inp, oup, position))
        self.block_index = self.stage_index = -1  # set by the net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pos = self.attn_position
        y = self.expand(x)
        y = self.attn(y) if pos == "after_expand" else y
        y = self.dw(y)
        y = self.attn(y) if pos == "after_depthwise" else y
        y = self.project(y)
        y = self.attn(y) if pos == "after_project" else y
        y = x + self.drop_path(y) if self.use_res else y
        return self.attn(y) if pos == "post_add" else y


class SandglassBlock(nn.Module):
    """MobileNeXt sandglass block (``dw1``, ``reduce``, ``expand``, ``dw2``), owning ``self.attn``.

    Args:
        inp, oup: input/output channels.
        stride: stride of the last depthwise (1 or 2).
        expand_ratio: t; the bottleneck is inp // t (see ``mobilenext.py``).
        keep_3x3: official flag for single-block stride-1 stages (full block, no residual).
        attn_layer: attention factory (``for_slot(slot)``, or ``channels -> nn.Module``), or None.
        position: ``after_depthwise`` (official CA: before the 1x1 reduction), ``after_expand``
            (after the 1x1 expansion, before the last depthwise) or ``post_add`` (block output).
    """

    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int, keep_3x3: bool = False,
                 attn_layer: Optional[Callable[..., nn.Module]] = None, position: str = "after_depthwise"):
        super().__init__()
        _check_stride(stride)
        check_choice("position for mobilenext", position, sorted(POSITIONS_SG))
        hidden = inp // expand_ratio
        if hidden < oup / 6.0:
            hidden = make_divisible(math.ceil(oup / 6.0), 16)
        transition = inp != oup and not keep_3x3 and expand_ratio != 2
        has_dw1 = not transition
        has_dw2 = not (transition and stride == 1)
        self.use_res = not transition and not keep_3x3 and expand_ratio != 2 and stride == 1
        self.dw1 = ConvBNAct(inp, inp, 3, 1, groups=inp) if has_dw1 else nn.Identity()  # dw
        self.reduce = ConvBNAct(inp, hidden, 1, act=None)  # pw-linear
        self.expand = ConvBNAct(hidden, oup, 1)  # pw
        self.dw2 = ConvBNAct(oup, oup, 3, stride, groups=oup, act=None) if has_dw2 else nn.Identity()  # dw-linear
        self.attn_position = position
        self.attn_channels = inp if position == "after_depthwise" else oup
        self.attn = fill_slot(attn_layer, Slot(self.attn_channels, inp, oup, position))
        self.block_index = self.stage_index = -1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pos = self.attn_position
        y = self.dw1(x)
        y = self.attn(y) if pos == "after_depthwise" else y
        y = self.expand(self.reduce(y))
        y = self.attn(y) if pos == "after_expand" else y
        y = self.dw2(y)
        y = x + y if self.use_res else y
        return self.attn(y) if pos == "post_add" else y
