"""EfficientNet-B0 (Tan & Le, ICML 2019) whose SE slot in every MBConv is the attention slot.

Layers follow torchvision ``efficientnet.py`` (``_efficientnet_conf("efficientnet_b0")``) and
timm ``efficientnet_b0``: stem 3x3 s2 (32) BN SiLU, the MBConv table below, head 1x1 to 1280
BN SiLU, dropout 0.2, stochastic depth 0.2 increasing linearly over the blocks. The MBConv is
``InvertedResidual`` (shared with MobileNetV2) with SiLU and 3x3/5x5 depthwise kernels.

``attention="se"`` is plain EfficientNet-B0: SE sits after the depthwise conv in EVERY block
(t=1 included), its bottleneck is ``max(1, block_input // 4)`` (se_ratio 0.25 of the block
INPUT channels, not of the expanded ones) and its activation SiLU. These are this backbone's
defaults for ``se`` (see ``registry.AttentionFactory``); a caller's non-default ``reduction`` or
``mid_channels`` switches back to the usual rule on the slot's channels. ``attention="ca"`` is
the CA paper's EfficientNet-B0 variant: CA (its own defaults) replaces SE in the same slot.
Weight init is ablate's shared loop (torchvision inits the Linear uniformly; counts unaffected).
``stem="small"``: stem stride 1 and stage 1 (c=24) stride 1.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from ablate.models.backbones._common import POSITIONS_IR, ConvBNAct, classifier, init_weights
from ablate.models.backbones.mobilenetv2 import InvertedResidual
from ablate.models.insert import check_width_channels, select_stages
from ablate.models.layers import check_choice, make_divisible
from ablate.models.registry import AttentionFactory, register_backbone

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


class EfficientNet(nn.Module):
    """EfficientNet-B0 with an attention slot in every MBConv block.

    Args:
        num_classes: classifier outputs.
        width: width multiplier (channels ``make_divisible(c * width, 8)``; B0 is 1.0).
        attn_layer: attention factory (an ``AttentionFactory`` or any ``channels -> nn.Module``).
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
        check_choice("position for efficientnet_b0", position, POSITIONS_IR)
        if not 0.0 <= drop_path < 1.0:
            raise ValueError(f"invalid drop_path {drop_path!r}; allowed: 0 <= drop_path < 1")
        chosen = select_stages(stages, len(EFFNET_B0_CFG))
        for i, (_, _, c, _, _) in enumerate(EFFNET_B0_CFG):
            check_width_channels(c, width, i, "efficientnet_b0")
        se_from_input = (isinstance(attn_layer, AttentionFactory) and attn_layer.kind == "se"
                         and not attn_layer.is_set("reduction", "mid_channels"))
        inp = make_divisible(32 * width, 8)
        layers: list[nn.Module] = [ConvBNAct(in_chans, inp, 3, 2 if stem == "imagenet" else 1, act=nn.SiLU)]
        total, index = sum(row[3] for row in EFFNET_B0_CFG), 0
        for si, (t, k, c, n, s) in enumerate(EFFNET_B0_CFG):
            oup = make_divisible(c * width, 8)
            if stem == "small" and si == 1:
                s = 1
            for i in range(n):
                attn = attn_layer if si in chosen else None
                if attn is not None and se_from_input:
                    attn = partial(attn, mid_channels=max(1, int(inp * SE_RATIO)))
                block = InvertedResidual(inp, oup, s if i == 0 else 1, t, attn, position, kernel_size=k,
                                         act_layer=nn.SiLU, drop_path=drop_path * index / total)
                block.block_index, block.stage_index = index, si
                layers.append(block)
                inp, index = oup, index + 1
        last = make_divisible(1280 * max(1.0, width), 8)
        layers.append(ConvBNAct(inp, last, 1, act=nn.SiLU))
        self.features = nn.Sequential(*layers)
        self.classifier = classifier(last, num_classes, dropout)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x).mean((2, 3)), 1))


@register_backbone("efficientnet_b0", positions=POSITIONS_IR, default_position="after_depthwise",
                   attn_defaults={"se": {"act": "silu"}})
def efficientnet_b0(*, num_classes=1000, width=1.0, attn_layer=None, position="after_depthwise", stages=None,
                    stem="imagenet", in_chans=3, dropout=0.2, drop_path=0.2) -> EfficientNet:
    """EfficientNet-B0; ``attention="se"`` is the original network (5.29M params)."""
    return EfficientNet(num_classes, width, attn_layer, position, stages, stem, dropout, drop_path, in_chans)
