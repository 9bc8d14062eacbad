"""Layers by name: one resolver for activations, gates and norms, and the single ``make_divisible``.

Names map to native torch classes (``nn.Hardswish`` equals the official CA ``h_swish``,
``x * relu6(x + 3) / 6``; ``nn.Hardsigmoid`` equals its ``h_sigmoid``). Classes pass through.
"""

from __future__ import annotations

from typing import Callable, Optional, Type, Union

from torch import nn

from ablate.errors import ConfigError, allowed, check_choice

LayerSpec = Union[str, Type[nn.Module], Callable[..., nn.Module]]

_ACTS: dict[str, Type[nn.Module]] = {
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "hswish": nn.Hardswish,
    "hsigmoid": nn.Hardsigmoid,
    "silu": nn.SiLU,
    "gelu": nn.GELU,
    "sigmoid": nn.Sigmoid,
    "identity": nn.Identity,
}

# "none" is nn.Identity, whose constructor accepts and ignores num_features.
_NORMS: dict[str, Type[nn.Module]] = {
    "bn": nn.BatchNorm2d,
    "none": nn.Identity,
}


def _resolve(what: str, table: dict, spec: LayerSpec, choices: Optional[tuple] = None):
    if isinstance(spec, str):
        check_choice(what, spec, sorted(choices if choices is not None else table))
        return table[spec]
    if callable(spec):
        return spec
    raise ConfigError(f"unknown {what} {spec!r}; allowed: {allowed(sorted(choices or table))} or an nn.Module class")


def get_act_layer(
    name_or_cls: LayerSpec, choices: Optional[tuple] = None, what: str = "act"
) -> Type[nn.Module]:
    """Resolve an activation/gate name to its torch class; classes pass through.

    Args:
        name_or_cls: one of relu, relu6, hswish, hsigmoid, silu, gelu, sigmoid, identity, or a class.
        choices: optionally restrict the allowed names (a module's own whitelist).
        what: the knob's name in error messages ("act", "gate").
    """
    return _resolve(what, _ACTS, name_or_cls, choices)


def get_norm_layer(name_or_cls: LayerSpec) -> Type[nn.Module]:
    """Resolve a norm name (bn, none) to a class taking ``num_features``; classes pass through."""
    return _resolve("norm", _NORMS, name_or_cls)


ACT_NAMES = tuple(sorted(_ACTS))
# The named activation/gate classes: each acts element-wise, so it gives the same values on any
# layout of its input (CoordAttention's strip path relies on it).
ELEMENTWISE_LAYERS = frozenset(_ACTS.values())
NORM_NAMES = tuple(sorted(_NORMS))


def make_divisible(v: float, divisor: int = 8, min_value: Optional[int] = None, round_limit: float = 0.9) -> int:
    """Round ``v`` to the nearest multiple of ``divisor``, never below ``min_value``.

    The TF-slim / torchvision ``_make_divisible`` rule (also in the official CA ``mbv2_ca.py``):
    rounding down may not remove more than 10% (``round_limit=0.9``); timm's CoordAttn passes
    ``round_limit=0`` (never bump up).
    """
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < round_limit * v:
        new_v += divisor
    return int(new_v)
