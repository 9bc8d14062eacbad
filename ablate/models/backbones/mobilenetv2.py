"""MobileNetV2 (Sandler et al., CVPR 2018) with an attention slot in every inverted residual.

torchvision style (torchvision/models/mobilenetv2.py): one block class, one net class, builders.
Follows the official CA code (houqb/CoordAttention ``mbv2_ca.py``): attention after the
depthwise 3x3-BN-ReLU6 and before the linear projection, in every block whose expand_ratio != 1
(16 blocks), classifier dropout 0.1 (torchvision uses 0.2), channels ``make_divisible(c * w, 8)``,
last conv ``1280`` unless width > 1 (``make_divisible(1280 * max(1, w), 8)``).

``stem="small"`` (32x32 inputs, as common CIFAR ports such as kuangliu/pytorch-cifar do): the
first conv has stride 1 and so does the second stage (t=6, c=24), so a 32x32 input ends at 4x4
instead of 1x1.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence, Type

import torch
from torch import nn

from ablate.models.backbones._common import POSITIONS_IR, ConvBNAct, DropPath, classifier, init_weights
from ablate.models.insert import check_width_channels, select_stages
from ablate.models.layers import check_choice, make_divisible
from ablate.models.registry import register_backbone

AttnLayer = Optional[Callable[..., nn.Module]]

MBV2_CFG = [
    # t, c, n, s
    [1, 16, 1, 1],
    [6, 24, 2, 2],
    [6, 32, 3, 2],
    [6, 64, 4, 2],
    [6, 96, 3, 1],
    [6, 160, 3, 2],
    [6, 320, 1, 1],
]

# The small-scale recipe's net (not from any paper; docs/recipe.md): the paper's block, three of
# them, all at the stem's resolution (12x12 on the 24 px alignment task). Its receptive field is
# 15 px, so a plain net can relate two objects only when they are close, while CA's strip pools
# span a whole row and column in every block: the long-range context the paper argues for is
# what decides the task. 3 classes, 1 channel: 5,731 params plain, 8,275 with CA, 7,379 with SE.
TINY_CFG = [
    # t, c, n, s
    [1, 8, 1, 1],
    [4, 16, 2, 1],
]


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand (``expand``) -> 3x3 depthwise (``dw``) -> 1x1 linear (``project``).

    Always owns ``self.attn`` (``nn.Identity`` when off), applied at ``position``:
    ``after_expand``, ``after_depthwise`` (official CA), ``after_project`` or ``post_add``
    (on the block output, after the residual add when there is one).

    Args:
        inp, oup: input/output channels.
        stride: depthwise stride (1 or 2).
        expand_ratio: t; hidden = round(inp * t), no expansion conv when t == 1.
        attn_layer: ``channels -> nn.Module`` factory, or None for no attention.
        position: one of ``POSITIONS_IR``.
        kernel_size: depthwise kernel (3; EfficientNet also 5).
        act_layer: activation class (ReLU6; EfficientNet SiLU).
        drop_path: stochastic-depth rate on the residual branch (0; EfficientNet > 0).
    """

    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: float,
                 attn_layer: AttnLayer = None, position: str = "after_depthwise", *,
                 kernel_size: int = 3, act_layer: Type[nn.Module] = nn.ReLU6, drop_path: float = 0.0):
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"invalid stride {stride!r}; allowed: 1, 2")
        check_choice("position", position, POSITIONS_IR)
        hidden = int(round(inp * expand_ratio))
        self.use_res = stride == 1 and inp == oup
        self.expand = ConvBNAct(inp, hidden, 1, act=act_layer) if expand_ratio != 1 else nn.Identity()  # pw
        self.dw = ConvBNAct(hidden, hidden, kernel_size, stride, groups=hidden, act=act_layer)  # dw
        self.project = ConvBNAct(hidden, oup, 1, act=None)  # pw-linear
        self.drop_path = DropPath(drop_path) if self.use_res and drop_path > 0 else nn.Identity()
        self.attn_position = position
        self.attn_channels = hidden if position in ("after_expand", "after_depthwise") else oup
        self.attn = attn_layer(self.attn_channels) if attn_layer is not None else nn.Identity()
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


class MobileNetV2(nn.Module):
    """MobileNetV2 with attention slots (official rule: every block with expand_ratio != 1).

    Args:
        num_classes: classifier outputs.
        width: width multiplier (channels ``make_divisible(c * width, 8)``).
        attn_layer: ``channels -> nn.Module`` factory for the attention slots (None: none).
        position: attention position inside the block (see ``InvertedResidual``).
        stages: stages that get attention (``insert.select_stages``): None/"all", list, "last:k".
        stem: ``imagenet`` (first conv stride 2) or ``small`` (32x32: first conv and stage 1 stride 1).
        dropout: classifier dropout (0.1: official CA mbv2_ca.py; torchvision 0.2).
        cfg: the stage table (``# t, c, n, s``).
        stem_channels, last_channels: first and last conv widths at width 1.0.
        name: model name used in error messages.
        in_chans: input image channels (1 for the generated grayscale tasks).
    """

    def __init__(self, num_classes: int = 1000, width: float = 1.0, attn_layer: AttnLayer = None,
                 position: str = "after_depthwise", stages=None, stem: str = "imagenet", dropout: float = 0.1,
                 cfg: Sequence[Sequence] = MBV2_CFG, stem_channels: int = 32, last_channels: int = 1280,
                 name: str = "mobilenet_v2", in_chans: int = 3):
        super().__init__()
        check_choice("stem", stem, ("imagenet", "small"))
        check_choice(f"position for {name}", position, POSITIONS_IR)
        chosen = select_stages(stages, len(cfg))
        for i, (_, c, _, _) in enumerate(cfg):
            check_width_channels(c, width, i, name)
        inp = make_divisible(stem_channels * width, 8)
        layers: list[nn.Module] = [ConvBNAct(in_chans, inp, 3, 2 if stem == "imagenet" else 1)]
        index = 0
        for si, (t, c, n, s) in enumerate(cfg):
            oup = make_divisible(c * width, 8)
            if stem == "small" and si == 1:
                s = 1
            for i in range(n):
                use_attn = t != 1 and si in chosen  # mbv2_ca.py: CA only where expand_ratio != 1
                block = InvertedResidual(inp, oup, s if i == 0 else 1, t,
                                         attn_layer if use_attn else None, position)
                block.block_index, block.stage_index = index, si
                layers.append(block)
                inp, index = oup, index + 1
        self.last_channels = make_divisible(last_channels * max(1.0, width), 8)
        layers.append(ConvBNAct(inp, self.last_channels, 1))
        self.features = nn.Sequential(*layers)
        self.classifier = classifier(self.last_channels, num_classes, dropout)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        return self.classifier(torch.flatten(x.mean((2, 3)), 1))


@register_backbone("mobilenet_v2", positions=POSITIONS_IR, default_position="after_depthwise")
def mobilenet_v2(*, num_classes=1000, width=1.0, attn_layer=None, position="after_depthwise", stages=None,
                 stem="imagenet", in_chans=3, dropout=0.1) -> MobileNetV2:
    """MobileNetV2 (widths 1.0/0.75/0.5 in the CA paper) with attention in the official slots."""
    return MobileNetV2(num_classes, width, attn_layer, position, stages, stem, dropout, in_chans=in_chans)


@register_backbone("mobilenet_v2_tiny", positions=POSITIONS_IR, default_position="after_depthwise")
def mobilenet_v2_tiny(*, num_classes=1000, width=1.0, attn_layer=None, position="after_depthwise", stages=None,
                      stem="imagenet", in_chans=3, dropout=0.1) -> MobileNetV2:
    """A ~10k-parameter MobileNetV2 (``TINY_CFG``, stem 8, last conv 64) for fast CPU ablations."""
    return MobileNetV2(num_classes, width, attn_layer, position, stages, stem, dropout, cfg=TINY_CFG,
                       stem_channels=8, last_channels=64, name="mobilenet_v2_tiny", in_chans=in_chans)
