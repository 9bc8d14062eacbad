"""Backbones; importing this package registers them."""

from ablate.models.backbones.mobilenetv2 import InvertedResidual, MobileNetV2

__all__ = ["InvertedResidual", "MobileNetV2"]
