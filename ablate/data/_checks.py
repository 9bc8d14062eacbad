"""One-line argument checks shared by the dataset builders and the loader.

Every message names the owner (dataset or function), the key, the bad value and what is
allowed, on one line, so a failed sweep trial's ``result.json`` says exactly what was wrong.
Checks run before any file is read or any image generated.
"""
from __future__ import annotations

import numbers
from typing import Any, Sequence

from ablate.errors import ConfigError

# Files an image folder's scan reads (and that mark a directory as a user's images).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def check_int(owner: str, key: str, value: Any, lo: int, hi: int | None = None) -> int:
    """Return ``value`` as int if it is an integer in ``[lo, hi]``; else raise ValueError."""
    # bool is an int subclass; `n_train: true` in a yaml is a typo, not 1.
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if ok and value >= lo and (hi is None or value <= hi):
        return int(value)
    allowed = f"an integer in [{lo}, {hi}]" if hi is not None else f"an integer >= {lo}"
    raise ConfigError(f"{owner}: {key}={value!r} is not allowed; expected {allowed}")


def check_optional_int(owner: str, key: str, value: Any, lo: int, hi: int | None = None) -> int | None:
    """Like :func:`check_int`, but ``None`` passes through (meaning "all" / "default")."""
    return None if value is None else check_int(owner, key, value, lo, hi)


def check_bool(owner: str, key: str, value: Any) -> bool:
    """Return ``value`` if it is a bool; else raise ValueError (no truthy strings)."""
    if isinstance(value, bool):
        return value
    raise ConfigError(f"{owner}: {key}={value!r} is not allowed; expected true or false")


def check_float(owner: str, key: str, value: Any, lo: float, hi: float) -> float:
    """Return ``value`` as float if it is a real number in ``[lo, hi]``; else raise ValueError."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok and lo <= value <= hi:
        return float(value)
    raise ConfigError(f"{owner}: {key}={value!r} is not allowed; expected a number in [{lo}, {hi}]")


def check_image_size(owner: str, value: Any, lo: int = 8, hi: int = 1024) -> tuple[int, int]:
    """An int or an (H, W) pair of ints in ``[lo, hi]``, returned as (H, W)."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value, value)
    if isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2:
        h, w = value
        good = all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and lo <= v <= hi
                   for v in (h, w))
        if good:
            return int(h), int(w)
    raise ConfigError(
        f"{owner}: image_size={value!r} is not allowed; expected an integer or [H, W] in [{lo}, {hi}]"
    )


def check_stats(owner: str, key: str, value: Any, channels: int | None, positive: bool) -> tuple[float, ...]:
    """Per-channel normalisation numbers: a sequence of ``channels`` finite floats (> 0 for std)."""
    bad = not isinstance(value, Sequence) or isinstance(value, str) or len(value) == 0
    if not bad:
        bad = not all(isinstance(v, numbers.Real) and not isinstance(v, bool) and v == v
                      and abs(v) != float("inf") and (v > 0 or not positive) for v in value)
    if not bad and channels is not None and len(value) != channels:
        bad = True
    if bad:
        what = "positive " if positive else ""
        n = f"{channels} " if channels is not None else ""
        raise ConfigError(f"{owner}: {key}={value!r} is not allowed; expected a list of {n}{what}finite numbers")
    return tuple(float(v) for v in value)
