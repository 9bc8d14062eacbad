"""Helpers shared by the attention modules: the one mid-channel rule and argument checks."""

from __future__ import annotations

from typing import Optional

from ablate.errors import ConfigError
from ablate.models.layers import make_divisible


def check_positive(name: str, value, integer: bool = True) -> None:
    """Raise a one-line ``ConfigError`` unless ``value`` is a positive int (or number)."""
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or value <= 0:
        what = "an integer" if integer else "a number"
        raise ConfigError(f"invalid {name} {value!r}; allowed: {what} > 0")


def mid_channels(
    channels: int,
    reduction: float,
    min_mid: int = 1,
    divisor: int = 1,
    override: Optional[int] = None,
    scale: float = 1.0,
    round_limit: float = 0.9,
) -> int:
    """Bottleneck width of an attention transform.

    ``divisor == 1`` is the official CA rule ``max(min_mid, channels // reduction)``
    (houqb/CoordAttention ``coordatt.py``: ``mip = max(8, inp // reduction)``). ``divisor > 1`` is
    timm's ``make_divisible(channels * scale / reduction, divisor, min_mid, round_limit)``.
    ``override`` (a module's ``mid_channels``) wins when given.
    """
    if override is not None:
        check_positive("mid_channels", override)
        return int(override)
    check_positive("reduction", reduction, integer=False)
    check_positive("min_mid", min_mid)
    check_positive("divisor", divisor)
    if divisor == 1 and scale == 1.0:
        return max(min_mid, int(channels // reduction))
    return make_divisible(channels * scale / reduction, divisor, min_value=min_mid, round_limit=round_limit)
