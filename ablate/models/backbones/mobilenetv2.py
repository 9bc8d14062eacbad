"""MobileNetV2 (Sandler et al., CVPR 2018) with an attention slot in every inverted residual.

torchvision style (torchvision/models/mobilenetv2.py): one net class and its builders; the block,
``InvertedResidual``, is in ``blocks.py`` (re-exported here).
Follows the official CA code (houqb/CoordAttention ``mbv2_ca.py``): attention after the
depthwise 3x3-BN-ReLU6 and before the linear projection, in every block whose expand_ratio != 1
(16 blocks), classifier dropout 0.1 (torchvision uses 0.2), channels ``make_divisible(c * w, 8)``,
last conv ``1280`` unless width > 1 (``make_divisible(1280 * max(1, w), 8)``).

``stem="small"`` (32x32 inputs, as common CIFAR ports such as kuangliu/pytorch-cifar do): the
first conv has stride 1 and so does the second stage (t=6, c=24), so a 32x32 input ends at 4x4
instead of 1x1.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ablate.errors import check_choice
from ablate.models.backbones._common import (
    AttnLayer, ConvBNAct, StageRow, build_stages, classifier, init_weights, plan_stages, stem_conv,
)
from ablate.models.backbones.blocks import POSITIONS_IR, InvertedResidual
from ablate.models.layers import make_divisible
from ablate.models.registry import register_backbone

__all__ = ["InvertedResidual", "MBV2_CFG", "MobileNetV2", "TINY_CFG", "mobilenet_v2", "mobilenet_v2_tiny"]

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


class MobileNetV2(nn.Module):
    """MobileNetV2 with attention slots (official rule: every block with expand_ratio != 1).

    Args:
        num_classes: classifier outputs.
        width: width multiplier (channels ``make_divisible(c * width, 8)``).
        attn_layer: attention factory for the slots (``slot.fill_slot``; None: none).
        position: attention position inside the block (see ``blocks.InvertedResidual``).
        stages: stages that get attention (``_common.select_stages``): None/"all", list, "last:k".
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
        check_choice(f"position for {name}", position, sorted(POSITIONS_IR))
        plan = plan_stages([StageRow(*row) for row in cfg], name=name, width=width, stem=stem, stages=stages,
                           small_stride1=1, eligible=lambda row: row.t != 1)  # mbv2_ca.py: CA only where t != 1
        inp = make_divisible(stem_channels * width, 8)
        layers: list[nn.Module] = [stem_conv(in_chans, inp, stem)]
        blocks, inp = build_stages(plan, inp, attn_layer, lambda a: InvertedResidual(
            a.inp, a.oup, a.stride, a.stage.expand_ratio, a.attn_layer, position))
        layers += blocks
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
