"""Pieces shared by the backbones: conv-BN-act, the weight-init loop, the classifier head."""

from __future__ import annotations

import math
from typing import Optional, Type

from torch import nn

POSITIONS_IR = ("after_expand", "after_depthwise", "after_project", "post_add")


class ConvBNAct(nn.Sequential):
    """Conv2d (no bias) -> BatchNorm2d -> activation (``None``: no activation, a linear conv)."""

    def __init__(self, inp: int, oup: int, kernel_size: int = 3, stride: int = 1, groups: int = 1,
                 act: Optional[Type[nn.Module]] = nn.ReLU6):
        layers = [nn.Conv2d(inp, oup, kernel_size, stride, (kernel_size - 1) // 2, groups=groups, bias=False),
                  nn.BatchNorm2d(oup)]
        if act is not None:
            layers.append(act(inplace=True))
        super().__init__(*layers)


class DropPath(nn.Module):
    """Stochastic depth on a residual branch (Huang et al. 2016; torchvision ``StochasticDepth`` "row" mode)."""

    def __init__(self, p: float):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"invalid drop_path {p!r}; allowed: 0 <= drop_path < 1")
        self.p = p

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        keep = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(1.0 - self.p)
        return x * keep / (1.0 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def init_weights(model: nn.Module) -> None:
    """The official CA ``_initialize_weights`` loop (mbv2_ca.py), over EVERY module, attention included.

    Conv: normal(0, sqrt(2 / (k*k*out))) (= kaiming fan_out, torchvision), bias 0; BN: 1, 0;
    Linear: normal(0, 0.01), bias 0.
    """
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / n))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01)
            nn.init.zeros_(m.bias)


def classifier(in_features: int, num_classes: int, dropout: float) -> nn.Sequential:
    """Dropout -> Linear, the torchvision/official head."""
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"invalid dropout {dropout!r}; allowed: 0 <= dropout < 1")
    return nn.Sequential(nn.Dropout(dropout), nn.Linear(in_features, num_classes))
