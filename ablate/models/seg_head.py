"""DeepLabV3 on the registered backbones (Chen et al. 2017, "Rethinking Atrous Convolution").

``create_segmenter(name, num_classes=..., attention=..., output_stride=16)`` builds the
classification network of ``name`` (``create_model``: any attention, any knob), keeps its
``features`` (the stem, every block, the last 1x1 conv) as ``backbone`` and replaces the
classifier by an ASPP head:

- output stride: the backbone's stride-2 convolutions beyond ``output_stride`` become stride 1
  and every later k x k convolution of the backbone is dilated instead (torchvision's
  ``replace_stride_with_dilation``, block by block: the conv that loses its stride keeps the
  dilation before the doubling, later ones get the doubled one), so the receptive field is the
  classification net's and the feature map is input / ``output_stride`` (rounded up at each
  stride, as the convs do on odd sizes). Convolutions inside attention modules (CBAM's 7x7
  spatial gate) are left as they are: they see the feature map, whatever its stride. A backbone
  whose natural stride is already at or below ``output_stride`` is left unchanged.
- ASPP: a 1x1 branch, three 3x3 atrous branches at rates (6, 12, 18) for output stride 16
  ((12, 24, 36) at 8, scaled as DeepLab does for other strides), and an image-pooling branch,
  each conv-BN-ReLU with ``head_channels`` channels (``head_rates`` sets other rates: the
  embedded task uses small ones so that the head cannot span the canvas by itself); concatenated, projected by 1x1 conv-BN-ReLU
  (dropout ``dropout``), then 3x3 conv-BN-ReLU and the 1x1 classifier; logits are upsampled
  bilinearly to the input size (``align_corners=False``).

Parameter names: ``backbone.*`` are the classification net's ``features.*`` (that is what
``init_from`` loads), ``head.*`` the DeepLab head.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ablate.errors import ConfigError
from ablate.models.registry import ATTENTION, create_model

OUTPUT_STRIDES = (4, 8, 16, 32)
BASE_RATES = (6, 12, 18)  # at output stride 16


def aspp_rates(output_stride: int) -> tuple[int, ...]:
    """ASPP's atrous rates for ``output_stride``: (6, 12, 18) at 16, doubled at 8, halved at 32."""
    return tuple(max(1, r * 16 // output_stride) for r in BASE_RATES)


def _attention_convs(module: nn.Module) -> set[int]:
    """ids of the convolutions inside attention modules (left undilated)."""
    classes = tuple(c for c in (ATTENTION.get(k) for k in ATTENTION.names()) if c is not nn.Identity)
    out: set[int] = set()
    for m in module.modules():
        if isinstance(m, classes):
            out.update(id(c) for c in m.modules() if isinstance(c, nn.Conv2d))
    return out


def dilate_to_stride(features: nn.Module, output_stride: int) -> int:
    """Turn the stride-2 convs of ``features`` beyond ``output_stride`` into dilation, in place;
    returns the resulting output stride (the natural one when it is already at or below)."""
    skip = _attention_convs(features)
    stride, dilation = 1, 1
    for conv in features.modules():
        if not isinstance(conv, nn.Conv2d) or id(conv) in skip:
            continue
        k = conv.kernel_size[0]
        if conv.stride[0] == 2:
            if stride * 2 > output_stride:
                conv.stride = (1, 1)
                conv.dilation = (dilation, dilation)
                conv.padding = (dilation * (k - 1) // 2,) * 2
                dilation *= 2
                continue
            stride *= 2
        if k > 1 and dilation > 1:
            conv.dilation = (dilation, dilation)
            conv.padding = (dilation * (k - 1) // 2,) * 2
    return stride


def _cbr(inp: int, oup: int, k: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(inp, oup, k, padding=dilation * (k - 1) // 2, dilation=dilation, bias=False),
                         nn.BatchNorm2d(oup), nn.ReLU(inplace=True))


class ASPPPooling(nn.Module):
    """Image-level features: global mean, 1x1 conv-BN-ReLU, broadcast back to the map's size."""

    def __init__(self, inp: int, oup: int):
        super().__init__()
        self.conv = _cbr(inp, oup)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # BatchNorm on a 1x1 map of a batch of one has no variance: evaluate it with running stats.
        return self.conv(x.mean((2, 3), keepdim=True)).expand(-1, -1, *x.shape[2:])


class DeepLabHead(nn.Module):
    """ASPP (1x1, three atrous 3x3, image pooling) -> 1x1 projection -> 3x3 -> classifier."""

    def __init__(self, inp: int, num_classes: int, channels: int, rates: tuple[int, ...], dropout: float):
        super().__init__()
        self.branches = nn.ModuleList([_cbr(inp, channels)] + [_cbr(inp, channels, 3, r) for r in rates]
                                      + [ASPPPooling(inp, channels)])
        self.project = nn.Sequential(_cbr(channels * (len(rates) + 2), channels), nn.Dropout(dropout))
        self.conv = _cbr(channels, channels, 3)
        self.classifier = nn.Conv2d(channels, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.project(torch.cat([b(x) for b in self.branches], dim=1))
        return self.classifier(self.conv(x))


class DeepLabV3(nn.Module):
    """``backbone`` (a classification net's ``features``) + ``DeepLabHead``; logits N,K,H,W at the input size."""

    def __init__(self, backbone: nn.Module, channels: int, num_classes: int, output_stride: int,
                 head_channels: int, dropout: float, rates: Optional[tuple[int, ...]] = None):
        super().__init__()
        self.backbone = backbone
        self.output_stride = dilate_to_stride(backbone, output_stride)
        self.head = DeepLabHead(channels, num_classes, head_channels, tuple(rates or aspp_rates(output_stride)), dropout)
        for m in self.head.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[2:]
        return F.interpolate(self.head(self.backbone(x)), size=size, mode="bilinear", align_corners=False)


def check_head(output_stride, head_channels, dropout, rates=None) -> None:
    """The head's options, one line each."""
    if output_stride not in OUTPUT_STRIDES or isinstance(output_stride, bool):
        raise ConfigError(f"task.output_stride={output_stride!r}; allowed: {', '.join(map(str, OUTPUT_STRIDES))}")
    if isinstance(head_channels, bool) or not isinstance(head_channels, int) or head_channels < 1:
        raise ConfigError(f"task.head_channels={head_channels!r}; allowed: an integer >= 1 (DeepLabV3: 256)")
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ConfigError(f"task.head_dropout={dropout!r}; allowed: a number in [0, 1)")
    if rates is not None and (not isinstance(rates, (list, tuple)) or not rates
                              or any(isinstance(r, bool) or not isinstance(r, int) or r < 1 for r in rates)):
        raise ConfigError(f"task.head_rates={rates!r}; allowed: null (DeepLab's for the output stride) or a list of integers >= 1")


def create_segmenter(name: str, *, num_classes: int, output_stride: int = 16, head_channels: int = 256,
                     head_dropout: float = 0.1, head_rates: Optional[list] = None, **model_kwargs) -> DeepLabV3:
    """DeepLabV3 on backbone ``name`` (``create_model``'s arguments: attention, width, stem, ...)."""
    check_head(output_stride, head_channels, head_dropout, head_rates)
    net = create_model(name, num_classes=num_classes, **model_kwargs)
    features: Optional[nn.Module] = getattr(net, "features", None)
    if features is None:
        raise ConfigError(f"model {name!r} has no 'features' to segment with; allowed: a backbone with features")
    # the last BatchNorm of the features normalises their output channels (the last 1x1 conv's)
    channels = next(m for m in reversed(list(features.modules())) if isinstance(m, nn.BatchNorm2d)).num_features
    return DeepLabV3(features, channels, num_classes, output_stride, head_channels, head_dropout,
                     None if head_rates is None else tuple(head_rates))
