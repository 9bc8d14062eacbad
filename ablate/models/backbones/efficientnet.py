"""EfficientNet-B0 (Tan & Le, ICML 2019) whose SE slot in every MBConv is the attention slot.

Layers follow torchvision ``efficientnet.py`` (``_efficientnet_conf("efficientnet_b0")``) and
timm ``efficientnet_b0``: stem 3x3 s2 (32) BN SiLU, the MBConv table below, head 1x1 to 1280
BN SiLU, dropout 0.2, stochastic depth 0.2 increasing linearly over the blocks. The MBConv is
``blocks.InvertedResidual`` (shared with MobileNetV2) with SiLU and 3x3/5x5 depthwise kernels.

``attention="se"`` is plain EfficientNet-B0: SE sits after the depthwise conv in EVERY block
(t=1 included), its bottleneck is ``max(1, block_input // 4)`` (se_ratio 0.25 of the block
INPUT channels, not of the expanded ones) and its activation SiLU. These are this backbone's
defaults for ``se`` (``attn_defaults``; the width is ``FromSlot(se_mid_channels)``, computed from
the slot's ``in_channels``; see ``registry.AttentionFactory``); a caller's non-default
``reduction`` or ``mid_channels`` switches back to the usual rule on the slot's channels. ``attention="ca"`` is
the CA paper's EfficientNet-B0 variant: CA (its own defaults) replaces SE in the same slot.
Weight init is ablate's shared loop (torchvision inits the Linear uniformly; counts unaffected).
``stem="small"``: stem stride 1 and stage 1 (c=24) stride 1.
"""

from __future__ import annotations

import torch
from torch import nn

from ablate.errors import check_choice
from ablate.models.backbones._common import (
    ConvBNAct, StageRow, build_stages, check_drop_path, classifier, init_weights, plan_stages, stem_conv,
)
from ablate.models.backbones.blocks import POSITIONS_IR, InvertedResidual
from ablate.models.layers import make_divisible
from ablate.models.registry import register_backbone
from ablate.models.slot import FromSlot, Slot

EFFNET_B0_CFG = [
    # t, k, c, n, s
    [1, 3, 16, 1, 1],
    [6, 3, 24, 2, 2],
    [6, 5, 40, 2, 2],
    [6, 3, 80, 3, 2],
    [6, 5, 112, 3, 1],
    [6, 5, 192, 4, 2],
    [6, 3, 320, 1, 1],
]
SE_RATIO = 0.25  # of the block input channels (EfficientNet paper / torchvision squeeze = in // 4)


def se_mid_channels(slot: Slot) -> int:
    """EfficientNet's SE bottleneck: ``max(1, block_input * SE_RATIO)`` (torchvision ``squeeze_channels``)."""
    return max(1, int(slot.in_channels * SE_RATIO))


class EfficientNet(nn.Module):
    """EfficientNet-B0 with an attention slot in every MBConv block.

    Args:
        num_classes: classifier outputs.
        width: width multiplier (channels ``make_divisible(c * width, 8)``; B0 is 1.0).
        attn_layer: attention factory (``for_slot(slot)``, e.g. an ``AttentionFactory``, or any ``channels -> nn.Module``).
        position: attention position in the block (after_depthwise = the SE slot).
        stages: stages that get attention: None/"all", list of stage indices, "last:k".
        stem: imagenet (stem stride 2) or small (32x32: stem and stage 1 stride 1).
        dropout: classifier dropout (0.2: torchvision/timm efficientnet_b0).
        drop_path: final stochastic-depth rate, linear over the blocks (0.2: torchvision).
        in_chans: input image channels.
    """

    def __init__(self, num_classes: int = 1000, width: float = 1.0, attn_layer=None,
                 position: str = "after_depthwise", stages=None, stem: str = "imagenet",
                 dropout: float = 0.2, drop_path: float = 0.2, in_chans: int = 3):
        super().__init__()
        check_choice("stem", stem, ("imagenet", "small"))
        check_choice("position for efficientnet_b0", position, sorted(POSITIONS_IR))
        check_drop_path(drop_path)
        plan = plan_stages([StageRow(t, c, n, s, k) for t, k, c, n, s in EFFNET_B0_CFG], name="efficientnet_b0",
                           width=width, stem=stem, stages=stages, small_stride1=1)
        inp = make_divisible(32 * width, 8)
        layers: list[nn.Module] = [stem_conv(in_chans, inp, stem, act=nn.SiLU)]
        total = sum(st.repeats for st in plan)
        blocks, inp = build_stages(plan, inp, attn_layer, lambda a: InvertedResidual(
            a.inp, a.oup, a.stride, a.stage.expand_ratio, a.attn_layer, position, kernel_size=a.stage.kernel_size,
            act_layer=nn.SiLU, drop_path=drop_path * a.index / total))
        layers += blocks
        last = make_divisible(1280 * max(1.0, width), 8)
        layers.append(ConvBNAct(inp, last, 1, act=nn.SiLU))
        self.features = nn.Sequential(*layers)
        self.classifier = classifier(last, num_classes, dropout)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x).mean((2, 3)), 1))


@register_backbone("efficientnet_b0", positions=POSITIONS_IR, default_position="after_depthwise",
                   attn_defaults={"se": {"act": "silu", "mid_channels": FromSlot(se_mid_channels)}})
def efficientnet_b0(*, num_classes=1000, width=1.0, attn_layer=None, position="after_depthwise", stages=None,
                    stem="imagenet", in_chans=3, dropout=0.2, drop_path=0.2) -> EfficientNet:
    """EfficientNet-B0; ``attention="se"`` is the original network (5.29M params)."""
    return EfficientNet(num_classes, width, attn_layer, position, stages, stem, dropout, drop_path, in_chans)
