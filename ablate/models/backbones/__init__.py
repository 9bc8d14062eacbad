"""Backbones; importing this package registers them."""

from ablate.models.backbones.mobilenetv2 import InvertedResidual, MobileNetV2
from ablate.models.backbones.mobilenext import MobileNeXt, SandglassBlock
from ablate.models.backbones.efficientnet import EfficientNet

__all__ = ["EfficientNet", "InvertedResidual", "MobileNeXt", "MobileNetV2", "SandglassBlock"]
