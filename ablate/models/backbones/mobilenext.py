"""MobileNeXt (Zhou et al., ECCV 2020, "Rethinking Bottleneck Structure for Efficient Mobile
Network Design") with an attention slot in every sandglass block.

Layers follow the official code (yitu-opensource/MobileNeXt ``codebase/models/mnext.py``,
``SGBlock`` / ``MXNet``): stem 3x3 s2 (32), the ``# t, c, n, s`` table below, no last 1x1 conv
(the classifier reads the 1280-channel last block), classifier dropout 0.2. A sandglass block is
dw3x3-BN-ReLU6 -> 1x1 reduce (linear) -> 1x1 expand-BN-ReLU6 -> dw3x3(stride)-BN (linear), with
these official special cases:
- t == 2 (first stage): full block, no residual;
- the first block of a stage (inp != oup, not "keep_3x3"): no first depthwise; with stride 1
  also no last depthwise (two 1x1s only);
- ``keep_3x3`` (a single-block stride-1 stage): full block, no residual;
- hidden = inp // t, raised to make_divisible(ceil(oup / 6), 16) when smaller than oup / 6;
- width: channels make_divisible(c * w, 8), the 1280 stage stays 1280 below width 1.

CA placement (CA paper Fig. 4b and the CA README tip): after the first depthwise 3x3, i.e. on the
``inp`` channels before the 1x1 reduction; a block without a first depthwise holds it at the
same point (before the reduction). ``stem="small"``: stem stride 1 and stage 2 (c=192) stride 1.
"""

from __future__ import annotations

import math
from typing import Callable, Optional

import torch
from torch import nn

from ablate.models.backbones._common import ConvBNAct, classifier, init_weights
from ablate.models.insert import check_width_channels, select_stages
from ablate.models.layers import check_choice, make_divisible
from ablate.models.registry import register_backbone

POSITIONS_SG = ("after_depthwise", "after_expand", "post_add")

MNEXT_CFG = [
    # t, c, n, s
    [2, 96, 1, 2],
    [6, 144, 1, 1],
    [6, 192, 3, 2],
    [6, 288, 3, 2],
    [6, 384, 4, 1],
    [6, 576, 4, 2],
    [6, 960, 3, 1],
    [6, 1280, 1, 1],
]


class SandglassBlock(nn.Module):
    """MobileNeXt sandglass block (``dw1``, ``reduce``, ``expand``, ``dw2``), owning ``self.attn``.

    Args:
        inp, oup: input/output channels.
        stride: stride of the last depthwise (1 or 2).
        expand_ratio: t; the bottleneck is inp // t (see module docstring).
        keep_3x3: official flag for single-block stride-1 stages (full block, no residual).
        attn_layer: ``channels -> nn.Module`` factory, or None.
        position: ``after_depthwise`` (official CA: before the 1x1 reduction), ``after_expand``
            (after the 1x1 expansion, before the last depthwise) or ``post_add`` (block output).
    """

    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int, keep_3x3: bool = False,
                 attn_layer: Optional[Callable[..., nn.Module]] = None, position: str = "after_depthwise"):
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"invalid stride {stride!r}; allowed: 1, 2")
        check_choice("position for mobilenext", position, POSITIONS_SG)
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
        self.attn = attn_layer(self.attn_channels) if attn_layer is not None else nn.Identity()
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


class MobileNeXt(nn.Module):
    """MobileNeXt with attention slots in every sandglass block (``stages`` selects stages).

    Args: as ``MobileNetV2`` (num_classes, width, attn_layer, position, stages, stem, dropout,
    in_chans); dropout defaults to 0.2 (official mnext.py).
    """

    def __init__(self, num_classes: int = 1000, width: float = 1.0, attn_layer=None,
                 position: str = "after_depthwise", stages=None, stem: str = "imagenet", dropout: float = 0.2,
                 in_chans: int = 3):
        super().__init__()
        check_choice("stem", stem, ("imagenet", "small"))
        check_choice("position for mobilenext", position, POSITIONS_SG)
        chosen = select_stages(stages, len(MNEXT_CFG))
        for i, (_, c, _, _) in enumerate(MNEXT_CFG):
            check_width_channels(c, width, i, "mobilenext")
        inp = make_divisible(32 * width, 8)
        layers: list[nn.Module] = [ConvBNAct(in_chans, inp, 3, 2 if stem == "imagenet" else 1)]
        index = 0
        for si, (t, c, n, s) in enumerate(MNEXT_CFG):
            oup = 1280 if c == 1280 and width < 1 else make_divisible(c * width, 8)
            if stem == "small" and si == 2:
                s = 1
            for i in range(n):
                block = SandglassBlock(inp, oup, s if i == 0 else 1, t, i == 0 and n == 1 and s == 1,
                                       attn_layer if si in chosen else None, position)
                block.block_index, block.stage_index = index, si
                layers.append(block)
                inp, index = oup, index + 1
        self.features = nn.Sequential(*layers)
        self.classifier = classifier(inp, num_classes, dropout)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x).mean((2, 3)), 1))


@register_backbone("mobilenext", positions=POSITIONS_SG, default_position="after_depthwise")
def mobilenext(*, num_classes=1000, width=1.0, attn_layer=None, position="after_depthwise", stages=None,
               stem="imagenet", in_chans=3, dropout=0.2) -> MobileNeXt:
    """MobileNeXt-1.0 (CA paper: 3.5M / 300M; +CA 4.09M / 330M) with attention after the first depthwise."""
    return MobileNeXt(num_classes, width, attn_layer, position, stages, stem, dropout, in_chans)
