"""Pieces shared by the backbones: the stage table and the one stage builder, stage selection and
width checks, conv-BN-act, stochastic depth, the weight-init loop, the classifier head.

Every backbone is a stage table (rows ``t, c, n, s`` and a depthwise kernel ``k``) turned into
blocks the same way: ``plan_stages`` resolves the table for a width, stem and stage selection
(``Stage`` rows), and ``build_stages`` walks it (for each stage, for each block: build the block,
with the attention factory or without it, and number it ``block_index`` / ``stage_index``). A
backbone only says how one block is built (``make_block(BlockArgs) -> nn.Module``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, NamedTuple, Optional, Sequence, Type, Union

from torch import nn

from ablate.errors import ConfigError
from ablate.models.layers import make_divisible

StagesSpec = Union[None, str, int, Sequence[int]]
AttnLayer = Optional[Callable[..., nn.Module]]


class StageRow(NamedTuple):
    """One row of a stage table: expand ratio t, channels c (width 1), blocks n, first stride s, kernel k."""

    t: float
    c: int
    n: int
    s: int
    k: int = 3


@dataclass(frozen=True)
class Stage:
    """A stage table row resolved for one network (width, stem and ``stages`` applied)."""

    index: int
    expand_ratio: float
    channels: int  # output channels of its blocks
    repeats: int
    stride: int  # of its first block
    kernel_size: int
    attention: bool  # whether its blocks get the attention factory


@dataclass(frozen=True)
class BlockArgs:
    """What ``make_block`` gets for one block."""

    inp: int
    oup: int
    stride: int
    stage: Stage
    index: int  # block index in the network
    first: bool  # first block of its stage
    attn_layer: AttnLayer  # None where the stage has no attention


def select_stages(stages: StagesSpec, num_stages: int) -> frozenset:
    """Resolve a stages spec to a set of stage indices.

    ``None`` or ``"all"``: every stage; ``"last:k"``: the last k stages; an int or a list of ints:
    those stages (0-based rows of the backbone's stage table; negatives count from the end).
    """
    allowed_msg = f"allowed: 'all', 'last:k' (1 <= k <= {num_stages}), or indices in [0, {num_stages - 1}]"
    if stages is None or stages == "all":
        return frozenset(range(num_stages))
    if isinstance(stages, str):
        head, _, k = stages.partition(":")
        if head == "last" and k.isdigit() and 1 <= int(k) <= num_stages:
            return frozenset(range(num_stages - int(k), num_stages))
        raise ConfigError(f"unknown stages {stages!r}; {allowed_msg}")
    items = [stages] if isinstance(stages, int) else list(stages)
    out = set()
    for s in items:
        if isinstance(s, bool) or not isinstance(s, int) or not -num_stages <= s < num_stages:
            raise ConfigError(f"unknown stage {s!r} in stages {stages!r}; {allowed_msg}")
        out.add(s % num_stages)
    return frozenset(out)


def check_width_channels(c: int, width: float, stage: int, name: str) -> None:
    """Raise if ``width`` scales a stage of ``c`` channels below one channel (before rounding)."""
    if c * width < 1:
        raise ConfigError(
            f"invalid width {width!r}: stage {stage} of {name} ({c} channels) rounds to zero channels; "
            f"allowed: width >= {1 / c:.4g}"
        )


def plan_stages(rows: Sequence[StageRow], *, name: str, width: float, stem: str, stages: StagesSpec,
                small_stride1: int, channels: Optional[Callable[[int], int]] = None,
                eligible: Callable[[StageRow], bool] = lambda row: True) -> list:
    """The ``Stage`` list of a network.

    Args:
        rows: the stage table.
        name: model name for error messages.
        width: width multiplier; ``channels(c)`` defaults to ``make_divisible(c * width, 8)``.
        stem: ``small`` sets stage ``small_stride1``'s stride to 1 (32x32 inputs).
        stages: which stages get attention (``select_stages``), among the ``eligible`` rows.
    """
    chosen = select_stages(stages, len(rows))
    for i, row in enumerate(rows):
        check_width_channels(row.c, width, i, name)
    channels = channels or (lambda c: make_divisible(c * width, 8))
    return [Stage(si, row.t, channels(row.c), row.n, 1 if stem == "small" and si == small_stride1 else row.s,
                  row.k, si in chosen and eligible(row))
            for si, row in enumerate(rows)]


def build_stages(stages: Sequence[Stage], inp: int, attn_layer: AttnLayer,
                 make_block: Callable[[BlockArgs], nn.Module]) -> tuple:
    """Every block of every stage, numbered; returns (blocks, output channels of the last one)."""
    blocks: list = []
    index = 0
    for st in stages:
        for i in range(st.repeats):
            block = make_block(BlockArgs(inp, st.channels, st.stride if i == 0 else 1, st, index, i == 0,
                                         attn_layer if st.attention else None))
            block.block_index, block.stage_index = index, st.index
            blocks.append(block)
            inp, index = st.channels, index + 1
    return blocks, inp


class ConvBNAct(nn.Sequential):
    """Conv2d (no bias) -> BatchNorm2d -> activation (``None``: no activation, a linear conv)."""

    def __init__(self, inp: int, oup: int, kernel_size: int = 3, stride: int = 1, groups: int = 1,
                 act: Optional[Type[nn.Module]] = nn.ReLU6):
        layers = [nn.Conv2d(inp, oup, kernel_size, stride, (kernel_size - 1) // 2, groups=groups, bias=False),
                  nn.BatchNorm2d(oup)]
        if act is not None:
            layers.append(act(inplace=True))
        super().__init__(*layers)


def stem_conv(in_chans: int, oup: int, stem: str, act: Type[nn.Module] = nn.ReLU6) -> ConvBNAct:
    """The first 3x3 conv: stride 2 (``imagenet``) or 1 (``small``, 32x32 inputs)."""
    return ConvBNAct(in_chans, oup, 3, 2 if stem == "imagenet" else 1, act=act)


class DropPath(nn.Module):
    """Stochastic depth on a residual branch (Huang et al. 2016; torchvision ``StochasticDepth`` "row" mode)."""

    def __init__(self, p: float):
        super().__init__()
        check_drop_path(p)
        self.p = p

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        keep = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(1.0 - self.p)
        return x * keep / (1.0 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def check_drop_path(p: float) -> None:
    if not 0.0 <= p < 1.0:
        raise ConfigError(f"invalid drop_path {p!r}; allowed: 0 <= drop_path < 1")


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
        raise ConfigError(f"invalid dropout {dropout!r}; allowed: 0 <= dropout < 1")
    return nn.Sequential(nn.Dropout(dropout), nn.Linear(in_features, num_classes))
