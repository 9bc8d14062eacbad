"""The attention-kind and backbone registries, and the one model factory.

Two ``ablate.registry.Registry`` instances: ``ATTENTION`` (discovers ``ablate.models.attention``)
and ``BACKBONES`` (discovers ``ablate.models.backbones``). A new attention kind or backbone is
one new module in that package (plus its conf YAML): its ``register_*`` decorator runs when the
registry first imports the package's modules, so there is no import list to edit. A duplicate
name raises ``RegistryError``. Every bad value is rejected with a one-line ``ConfigError``
naming the value and the allowed ones *before* any layer is built.

Knob precedence when a model is built: see ``AttentionFactory``.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Union

from torch import nn

from ablate.errors import ConfigError, allowed, check_choice
from ablate.models.slot import FromSlot, Slot
from ablate.registry import Registry, RegistryError

ATTENTION: Registry[type] = Registry("attention kind", discover="ablate.models.attention")
BACKBONES: Registry[Callable[..., nn.Module]] = Registry("model", discover="ablate.models.backbones")

STEMS = ("imagenet", "small")
AttentionSpec = Union[str, Mapping[str, Any], None]

# Knobs that set one quantity: reduction and mid_channels both size the bottleneck (mid_channels
# overrides reduction inside the modules). A caller who sets one of them sets the bottleneck, so
# the backbone's defaults for every knob of the group yield (see ``AttentionFactory``).
KNOB_GROUPS = (("reduction", "mid_channels"),)


@dataclass(frozen=True)
class BackboneEntry:
    """A registered backbone: its builder and what the factory needs to validate a request."""

    name: str
    builder: Callable[..., nn.Module]
    positions: tuple
    default_position: str
    attn_defaults: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


def register_attention(name: str):
    """Class decorator adding an attention module under ``name``; a duplicate raises ``RegistryError``.

    An attention class takes ``channels`` and keyword-only knobs (their defaults are the kind's
    defaults), and may offer ``gating_madds(shape)`` (complexity counting) and
    ``spatial_map(x)`` (attention maps; see ``ablate.report.attention_maps``).
    """
    return ATTENTION.register(name)


ATTENTION.register("none", nn.Identity)  # a slot that does nothing, never ``None``


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
        attn_defaults: per attention kind, knob defaults for this backbone (override class
            defaults); a value may be ``FromSlot(fn)``, computed from each slot it fills.
    """
    if default_position not in positions:
        raise RegistryError(f"default position {default_position!r} not in positions {positions}")
    return BACKBONES.register(name, positions=tuple(positions), default_position=default_position,
                              attn_defaults=dict(attn_defaults or {}))


def list_attention(pattern: str = "*") -> list[str]:
    """Sorted registered attention kinds (``none`` included), filtered by an fnmatch pattern."""
    return ATTENTION.names(pattern)


def list_models(pattern: str = "*") -> list[str]:
    """Sorted registered backbone names, filtered by an fnmatch pattern."""
    return BACKBONES.names(pattern)


def get_attention_cls(kind: str) -> type:
    """The class registered under ``kind`` (``nn.Identity`` for ``none``)."""
    return ATTENTION.get(kind)


def get_backbone(name: str) -> BackboneEntry:
    """The registry entry of backbone ``name``."""
    builder = BACKBONES.get(name)
    return BackboneEntry(name, builder, **BACKBONES.meta(name))


def attention_kind_of(module: nn.Module) -> str:
    """Reverse lookup: the registered kind of an attention module instance (``none`` for Identity)."""
    return ATTENTION.find(lambda cls: type(module) is cls) or type(module).__name__


def knob_names(kind: str) -> tuple:
    """Keyword-only constructor arguments of attention ``kind`` (its knobs)."""
    params = inspect.signature(get_attention_cls(kind)).parameters.values()
    return tuple(p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY)


def knob_defaults(kind: str) -> dict:
    """The default of every knob of attention ``kind`` (the class's; ``{}`` for ``none``)."""
    if kind == "none":
        return {}
    params = inspect.signature(get_attention_cls(kind)).parameters
    return {name: params[name].default for name in knob_names(kind)}


_FACTORY_ARGS = ("num_classes", "width", "attn_layer", "position", "stages", "stem", "in_chans")


def backbone_options(name: str) -> tuple:
    """Backbone-specific keyword options of model ``name`` (beyond ``create_model``'s own arguments)."""
    params = inspect.signature(get_backbone(name).builder).parameters
    return tuple(sorted(p for p in params if p not in _FACTORY_ARGS))


def _drop_none(kw: Mapping[str, Any]) -> dict:
    return {k: v for k, v in kw.items() if v is not None}


def create_attention(kind: str, channels: int, **kw) -> nn.Module:
    """Instantiate attention ``kind`` on ``channels`` channels; ``None`` knobs mean class default.

    Returns ``nn.Identity`` for ``none`` (never None). Unknown knobs raise ``ConfigError``.
    """
    cls = get_attention_cls(kind)
    kw = _drop_none(kw)
    if kind == "none":
        if kw:
            raise ConfigError(f"unknown knob {sorted(kw)[0]!r} for attention 'none'; allowed: (none)")
        return nn.Identity()
    names = knob_names(kind)
    for key in kw:
        if key not in names:
            raise ConfigError(f"unknown knob {key!r} for attention {kind!r}; allowed: {allowed(sorted(names))}")
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
            raise ConfigError(f"attention mapping needs a 'kind'; allowed: {allowed(list_attention())}")
        get_attention_cls(kind)
        return kind, knobs
    kinds = allowed(list_attention())
    raise ConfigError(f"unknown attention {attention!r}; allowed: a kind ({kinds}) or a mapping with 'kind'")


class AttentionFactory:
    """Picklable factory that blocks call to fill their attention slot (``for_slot(slot)``, or ``(channels)``).

    Precedence (lowest first): class defaults < ``defaults`` (the backbone's, per kind; a
    ``FromSlot`` value is computed from the slot being filled, e.g. EfficientNet's SE width from
    the block input) < ``knobs`` (the caller's). Two exceptions:

    - a caller's knob whose value EQUALS the class default yields to a backbone default for that
      knob, which keeps Hydra configs, which restate every class default, from masking a
      backbone's own defaults (``conf/attention/se.yaml``'s ``act: relu6`` does not turn
      EfficientNet-B0's SiLU SE into ReLU6);
    - a caller's knob (not a restated default) of a group in ``KNOB_GROUPS`` masks the backbone's
      defaults for the whole group: a user's ``reduction: 16`` wins over EfficientNet's SE
      ``mid_channels`` default (otherwise ``mid_channels`` would override it in the module).

    ``None`` always means "unset" and is dropped.

    Args:
        kind: registered attention kind.
        knobs: knobs set by the caller.
        defaults: backbone defaults for this kind (plain values or ``FromSlot``).
    """

    def __init__(self, kind: str, knobs: Optional[Mapping] = None, defaults: Optional[Mapping] = None):
        self.kind = kind
        self.knobs = _drop_none(knobs or {})
        self.defaults = _drop_none(defaults or {})
        self._class_defaults = knob_defaults(kind)

    def _restated(self, key: str) -> bool:
        return key in self._class_defaults and self.knobs.get(key, object()) == self._class_defaults[key]

    def _masked(self) -> set:
        """Backbone defaults that yield to a caller's knob of the same group."""
        set_by_caller = {k for k in self.knobs if not self._restated(k)}
        return {k for group in KNOB_GROUPS if set_by_caller.intersection(group) for k in group}

    def _build(self, channels: int, lower: Mapping[str, Any]) -> nn.Module:
        lower = _drop_none(lower)
        user = {k: v for k, v in self.knobs.items() if not (k in lower and self._restated(k))}
        return create_attention(self.kind, channels, **{**lower, **user})

    def for_slot(self, slot: Slot) -> nn.Module:
        """The module for one slot: the backbone's defaults resolved on ``slot``, then the caller's knobs."""
        masked = self._masked()
        lower = {k: (v(slot) if isinstance(v, FromSlot) else v) for k, v in self.defaults.items() if k not in masked}
        return self._build(slot.channels, lower)

    def __call__(self, channels: int) -> nn.Module:
        return self.for_slot(Slot.bare(channels))

    def validate(self, channels: int = 64) -> nn.Module:
        """Build one module on ``channels`` from the caller's knobs and the backbone's plain
        defaults (not its ``FromSlot`` ones), so that a bad knob fails before any layer of the
        network is built. This probe draws from the RNG exactly as it always has, which keeps
        the seeded initial weights of every model unchanged."""
        masked = self._masked()
        return self._build(channels, {k: v for k, v in self.defaults.items()
                                      if k not in masked and not isinstance(v, FromSlot)})

    def __repr__(self) -> str:
        return f"AttentionFactory({self.kind!r}, knobs={self.knobs}, defaults={self.defaults})"


def _check_width(width) -> float:
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not width > 0:
        raise ConfigError(f"invalid width {width!r}; allowed: a number > 0 (paper: 1.0, 0.75, 0.5)")
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
        raise ConfigError(f"invalid num_classes {num_classes!r}; allowed: an integer > 0")
    if isinstance(in_chans, bool) or not isinstance(in_chans, int) or in_chans <= 0:
        raise ConfigError(f"invalid in_chans {in_chans!r}; allowed: an integer > 0")
    check_choice("stem", stem, STEMS)
    kwargs = _drop_none(kwargs)
    options = backbone_options(name)
    for key in kwargs:
        if key not in options:
            raise ConfigError(f"unknown option {key!r} for model {name!r}; allowed: {allowed(options)}")
    position = entry.default_position if position is None else position
    check_choice(f"position for {name}", position, sorted(entry.positions))
    kind, knobs = parse_attention(attention)
    factory = AttentionFactory(kind, knobs, entry.attn_defaults.get(kind))
    factory.validate()  # every knob on a small probe before building the network
    return entry.builder(
        num_classes=num_classes, width=width, attn_layer=factory, position=position,
        stages=stages, stem=stem, in_chans=in_chans, **kwargs,
    )
