"""Registries for attention modules and backbones, and the one model factory.

One dict per kind (torchvision ``_api.register_model`` style: a duplicate name raises). Every bad
value is rejected with a one-line ``ValueError`` naming the value and the allowed ones *before*
any layer is built.

Knob precedence when a model is built (lowest first): the attention class defaults (the
paper's), per-slot defaults a block passes (e.g. EfficientNet's SE width from the block input),
the backbone's defaults for that kind (``register_backbone(attn_defaults=...)``, e.g.
EfficientNet-B0's SiLU SE), then the caller's knobs, except that a caller's knob equal to the
class default does not mask a backbone/slot default (see ``AttentionFactory``). ``None`` always
means "unset" and is dropped.
"""

from __future__ import annotations

import fnmatch
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Union

from torch import nn

from ablate.models.layers import allowed, check_choice

_ATTENTION: dict[str, type] = {}
_BACKBONES: dict[str, "BackboneEntry"] = {}

STEMS = ("imagenet", "small")
AttentionSpec = Union[str, Mapping[str, Any], None]


@dataclass(frozen=True)
class BackboneEntry:
    """A registered backbone: its builder and what the factory needs to validate a request."""

    name: str
    builder: Callable[..., nn.Module]
    positions: tuple
    default_position: str
    attn_defaults: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


def register_attention(name: str):
    """Class decorator adding an attention module under ``name``; a duplicate raises ValueError."""

    def deco(cls):
        if name in _ATTENTION:
            raise ValueError(f"attention kind {name!r} already registered; registered: {allowed(_ATTENTION)}")
        _ATTENTION[name] = cls
        return cls

    return deco


def register_backbone(
    name: str,
    *,
    positions: tuple = ("after_depthwise",),
    default_position: str = "after_depthwise",
    attn_defaults: Optional[Mapping[str, Mapping[str, Any]]] = None,
):
    """Decorator registering a backbone builder ``fn(*, num_classes, width, attn_layer, position, stages, stem, **kw)``.

    Args:
        name: registry name.
        positions: attention positions inside the block this backbone offers.
        default_position: the paper's/official slot, used when ``position=None``.
        attn_defaults: per attention kind, knob defaults for this backbone (override class defaults).
    """

    def deco(fn):
        if name in _BACKBONES:
            raise ValueError(f"model {name!r} already registered; registered: {allowed(_BACKBONES)}")
        if default_position not in positions:
            raise ValueError(f"default position {default_position!r} not in positions {positions}")
        _BACKBONES[name] = BackboneEntry(name, fn, tuple(positions), default_position, dict(attn_defaults or {}))
        return fn

    return deco


def _ensure_loaded() -> None:
    # Importing the packages runs their register_* decorators.
    import ablate.models.attention  # noqa: F401
    import ablate.models.backbones  # noqa: F401


def list_attention(pattern: str = "*") -> list[str]:
    """Sorted registered attention kinds (``none`` included), filtered by an fnmatch pattern."""
    _ensure_loaded()
    return sorted(n for n in _ATTENTION if fnmatch.fnmatch(n, pattern))


def list_models(pattern: str = "*") -> list[str]:
    """Sorted registered backbone names, filtered by an fnmatch pattern."""
    _ensure_loaded()
    return sorted(n for n in _BACKBONES if fnmatch.fnmatch(n, pattern))


def get_attention_cls(kind: str) -> type:
    """The class registered under ``kind`` (``nn.Identity`` for ``none``)."""
    _ensure_loaded()
    check_choice("attention kind", kind, _ATTENTION)
    return _ATTENTION[kind]


def get_backbone(name: str) -> BackboneEntry:
    """The registry entry of backbone ``name``."""
    _ensure_loaded()
    check_choice("model", name, _BACKBONES)
    return _BACKBONES[name]


def attention_kind_of(module: nn.Module) -> str:
    """Reverse lookup: the registered kind of an attention module instance (``none`` for Identity)."""
    _ensure_loaded()
    for kind, cls in _ATTENTION.items():
        if type(module) is cls:
            return kind
    return type(module).__name__


def knob_names(kind: str) -> tuple:
    """Keyword-only constructor arguments of attention ``kind`` (its knobs)."""
    params = inspect.signature(get_attention_cls(kind)).parameters.values()
    return tuple(p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY)


_FACTORY_ARGS = ("num_classes", "width", "attn_layer", "position", "stages", "stem", "in_chans")


def backbone_options(name: str) -> tuple:
    """Backbone-specific keyword options of model ``name`` (beyond ``create_model``'s own arguments)."""
    params = inspect.signature(get_backbone(name).builder).parameters
    return tuple(sorted(p for p in params if p not in _FACTORY_ARGS))


def _drop_none(kw: Mapping[str, Any]) -> dict:
    return {k: v for k, v in kw.items() if v is not None}


def create_attention(kind: str, channels: int, **kw) -> nn.Module:
    """Instantiate attention ``kind`` on ``channels`` channels; ``None`` knobs mean class default.

    Returns ``nn.Identity`` for ``none`` (never None). Unknown knobs raise ValueError.
    """
    cls = get_attention_cls(kind)
    kw = _drop_none(kw)
    if kind == "none":
        if kw:
            raise ValueError(f"unknown knob {sorted(kw)[0]!r} for attention 'none'; allowed: (none)")
        return nn.Identity()
    names = knob_names(kind)
    for key in kw:
        if key not in names:
            raise ValueError(f"unknown knob {key!r} for attention {kind!r}; allowed: {allowed(names)}")
    return cls(channels, **kw)


def parse_attention(attention: AttentionSpec) -> tuple[str, dict]:
    """Split an attention spec (a kind name, or a mapping with key ``kind``) into (kind, knobs without None)."""
    if attention is None:
        return "none", {}
    if isinstance(attention, str):
        get_attention_cls(attention)
        return attention, {}
    if isinstance(attention, Mapping):
        knobs = _drop_none(dict(attention))
        kind = knobs.pop("kind", None)
        if kind is None:
            raise ValueError(f"attention mapping needs a 'kind'; allowed: {allowed(list_attention())}")
        get_attention_cls(kind)
        return kind, knobs
    kinds = allowed(list_attention())
    raise ValueError(f"unknown attention {attention!r}; allowed: a kind ({kinds}) or a mapping with 'kind'")


class AttentionFactory:
    """Picklable ``channels -> nn.Module`` factory that blocks call to fill their attention slot.

    Precedence (lowest first): class defaults < ``slot_defaults`` a block passes < ``defaults``
    (the backbone's, per kind) < ``knobs`` (the caller's). One exception keeps Hydra configs, which
    restate every class default, from masking a backbone's own defaults: a caller's knob whose
    value EQUALS the class default yields to a backbone or slot default for that knob (e.g.
    ``conf/attention/se.yaml``'s ``act: relu6`` does not turn EfficientNet-B0's SiLU SE into ReLU6).

    Args:
        kind: registered attention kind.
        knobs: knobs set by the caller.
        defaults: backbone defaults for this kind.
    """

    def __init__(self, kind: str, knobs: Optional[Mapping] = None, defaults: Optional[Mapping] = None):
        self.kind = kind
        self.knobs = _drop_none(knobs or {})
        self.defaults = _drop_none(defaults or {})
        cls = get_attention_cls(kind)
        params = inspect.signature(cls).parameters if kind != "none" else {}
        self._class_defaults = {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}

    def _restated(self, key: str) -> bool:
        return key in self._class_defaults and self.knobs.get(key, object()) == self._class_defaults[key]

    def is_set(self, *names: str) -> bool:
        """Whether the caller (with a non-default value) or the backbone set any of ``names``."""
        return any((n in self.knobs and not self._restated(n)) or n in self.defaults for n in names)

    def __call__(self, channels: int, **slot_defaults) -> nn.Module:
        lower = {**_drop_none(slot_defaults), **self.defaults}
        user = {k: v for k, v in self.knobs.items() if not (k in lower and self._restated(k))}
        return create_attention(self.kind, channels, **{**lower, **user})

    def __repr__(self) -> str:
        return f"AttentionFactory({self.kind!r}, knobs={self.knobs}, defaults={self.defaults})"


def _check_width(width) -> float:
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not width > 0:
        raise ValueError(f"invalid width {width!r}; allowed: a number > 0 (paper: 1.0, 0.75, 0.5)")
    return float(width)


def create_model(
    name: str,
    *,
    num_classes: int = 1000,
    width: float = 1.0,
    attention: AttentionSpec = "none",
    stem: str = "imagenet",
    position: Optional[str] = None,
    stages=None,
    in_chans: int = 3,
    **kwargs,
) -> nn.Module:
    """Build backbone ``name`` with attention in its slots (timm ``create_model`` style).

    Args:
        name: a name from ``list_models()``.
        num_classes: classifier outputs.
        width: channel width multiplier (> 0).
        attention: a kind (``none``, ``se``, ``cbam``, ``ca``, ...) or a mapping ``{"kind": ..., knob: value}``.
        stem: ``imagenet`` (224x224 inputs) or ``small`` (32x32 inputs; see the backbone docstring).
        position: attention position inside the block; ``None`` is the backbone's official slot.
        stages: ``None``/``"all"`` (every eligible block), a list of stage indices, or ``"last:k"``.
        in_chans: input image channels (3; 1 for grayscale data).
        **kwargs: backbone-specific options (e.g. ``dropout``); ``None`` values are dropped.
    """
    entry = get_backbone(name)
    width = _check_width(width)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes <= 0:
        raise ValueError(f"invalid num_classes {num_classes!r}; allowed: an integer > 0")
    if isinstance(in_chans, bool) or not isinstance(in_chans, int) or in_chans <= 0:
        raise ValueError(f"invalid in_chans {in_chans!r}; allowed: an integer > 0")
    check_choice("stem", stem, STEMS)
    kwargs = _drop_none(kwargs)
    options = backbone_options(name)
    for key in kwargs:
        if key not in options:
            raise ValueError(f"unknown option {key!r} for model {name!r}; allowed: {allowed(options)}")
    position = entry.default_position if position is None else position
    check_choice(f"position for {name}", position, entry.positions)
    kind, knobs = parse_attention(attention)
    factory = AttentionFactory(kind, knobs, entry.attn_defaults.get(kind))
    factory(64)  # validate every knob on a small probe before building the network
    return entry.builder(
        num_classes=num_classes, width=width, attn_layer=factory, position=position,
        stages=stages, stem=stem, in_chans=in_chans, **kwargs,
    )
