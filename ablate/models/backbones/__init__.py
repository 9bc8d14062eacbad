"""Backbones: one module per network, each registering its builders with ``register_backbone``.

The backbone registry (``ablate.models.registry.BACKBONES``) imports every module of this
package on first use, so a new backbone is one new file here (plus ``conf/model/<name>.yaml``);
its blocks can come from ``blocks.py`` and its stage loop from ``_common.build_stages``. The
names below are re-exports for ``from ablate.models.backbones import ...``, not a registration list.
"""

from ablate.models.backbones.blocks import InvertedResidual, SandglassBlock
from ablate.models.backbones.efficientnet import EfficientNet
from ablate.models.backbones.mobilenetv2 import MobileNetV2
from ablate.models.backbones.mobilenext import MobileNeXt

__all__ = ["EfficientNet", "InvertedResidual", "MobileNeXt", "MobileNetV2", "SandglassBlock"]
