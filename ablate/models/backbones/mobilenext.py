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
The block, ``SandglassBlock``, is in ``blocks.py`` (re-exported here).
"""

from __future__ import annotations

import torch
from torch import nn

from ablate.errors import check_choice
from ablate.models.backbones._common import StageRow, build_stages, classifier, init_weights, plan_stages, stem_conv
from ablate.models.backbones.blocks import POSITIONS_SG, SandglassBlock
from ablate.models.layers import make_divisible
from ablate.models.registry import register_backbone

__all__ = ["MNEXT_CFG", "MobileNeXt", "POSITIONS_SG", "SandglassBlock", "mobilenext"]

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
        check_choice("position for mobilenext", position, sorted(POSITIONS_SG))
        plan = plan_stages([StageRow(*row) for row in MNEXT_CFG], name="mobilenext", width=width, stem=stem,
                           stages=stages, small_stride1=2,
                           channels=lambda c: 1280 if c == 1280 and width < 1 else make_divisible(c * width, 8))
        inp = make_divisible(32 * width, 8)
        layers: list[nn.Module] = [stem_conv(in_chans, inp, stem)]
        blocks, inp = build_stages(plan, inp, attn_layer, lambda a: SandglassBlock(
            a.inp, a.oup, a.stride, a.stage.expand_ratio, a.first and a.stage.repeats == 1 and a.stage.stride == 1,
            a.attn_layer, position))
        layers += blocks
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
