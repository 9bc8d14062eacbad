"""Where attention goes: the explicit per-block insertion plan, and insertion into any network.

A block that can hold attention exposes ``attn`` (``nn.Identity`` when empty), ``block_index``,
``stage_index``, ``attn_position`` and ``attn_channels``; ``insertion_plan`` reads those, so the
CLI can print exactly what a config builds and tests can compare it with the paper (MBv2: the 16
blocks with expand_ratio != 1). Stage selection (``stages=``) is the backbones' own
(``backbones/_common.select_stages``).
"""

from __future__ import annotations

from typing import NamedTuple, Sequence, Union

from torch import nn

from ablate.errors import ConfigError, check_choice
from ablate.models.registry import AttentionFactory, attention_kind_of, create_model, parse_attention


class PlanEntry(NamedTuple):
    """One attention slot: block index in the net, stage (row of the stage table), position, channels, kind."""

    block_index: int
    stage: int
    position: str
    channels: int
    kind: str


def insertion_plan(model: Union[nn.Module, str], include_empty: bool = False, **create_kwargs) -> list:
    """The per-block attention plan of a model (or of ``create_model(name, **create_kwargs)``).

    Returns a list of ``PlanEntry`` for every slot holding attention (all slots if ``include_empty``).
    """
    if isinstance(model, str):
        model = create_model(model, **create_kwargs)
    plan = []
    for m in model.modules():
        if hasattr(m, "attn") and hasattr(m, "stage_index"):
            kind = "none" if isinstance(m.attn, nn.Identity) else attention_kind_of(m.attn)
            if kind != "none" or include_empty:
                plan.append(PlanEntry(m.block_index, m.stage_index, m.attn_position, m.attn_channels, kind))
    return plan


def format_plan(plan: Sequence[PlanEntry]) -> str:
    """A plain-text table of a plan, one slot per line."""
    lines = ["block  stage  position         channels  kind"]
    lines += [f"{e.block_index:>5}  {e.stage:>5}  {e.position:<15}  {e.channels:>8}  {e.kind}" for e in plan]
    return "\n".join(lines)


# --- Generic insertion into arbitrary nn.Module trees (torchvision, timm, your own nets) ---

WHERE = ("after_depthwise", "replace_se")
_SE_NAMES = ("squeezeexcit", "semodule", "seblock", "selayer")


def _is_se(m: nn.Module) -> bool:
    name = type(m).__name__.lower().replace("_", "")
    return any(s in name for s in _SE_NAMES)


def _is_depthwise(m: nn.Module) -> bool:
    return isinstance(m, nn.Conv2d) and m.groups > 1 and m.groups == m.in_channels == m.out_channels


def _is_norm_or_act(m: nn.Module) -> bool:
    """BN/activation-like modules that belong to a conv's unit (timm's BatchNormAct2d included)."""
    act_types = (nn.ReLU, nn.ReLU6, nn.SiLU, nn.GELU, nn.Hardswish, nn.Hardsigmoid, nn.Sigmoid, nn.Identity)
    norm_types = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)
    return isinstance(m, act_types + norm_types) or "norm" in type(m).__name__.lower()


def _in_channels(m: nn.Module) -> int:
    for sub in m.modules():
        if isinstance(sub, nn.Conv2d):
            return sub.in_channels
        if isinstance(sub, nn.Linear):
            return sub.in_features
    raise ConfigError(f"cannot infer the channels of {type(m).__name__}; allowed: SE modules with a Conv2d or Linear")


def insert_attention(model: nn.Module, attention, where: str = "replace_se") -> list:
    """Put a registered attention module into an existing network, in place.

    Args:
        model: any nn.Module tree (torchvision, timm, hand-built).
        attention: a kind or a mapping ``{"kind": ..., knob: value}`` (as ``create_model``).
        where: ``replace_se``: every SE-like module (class name SqueezeExcitation, SqueezeExcite,
            SEModule, ...) is replaced, sized on its input channels; ``after_depthwise``: after every
            depthwise conv and the norm/activation modules that directly follow it in its parent
            (appended to a Sequential; otherwise the last module of that run is wrapped as
            ``Sequential(module, attn)``, which renames its state_dict keys: load weights first).

    Returns:
        The dotted names of the modules that now hold attention.
    """
    check_choice("where", where, sorted(WHERE))
    kind, knobs = parse_attention(attention)
    factory = AttentionFactory(kind, knobs)
    factory.validate()  # every knob first
    named = list(model.named_modules())
    done = []
    if where == "replace_se":
        targets = [(n, m) for n, m in named if n and _is_se(m)]
        outer = [(n, m) for n, m in targets if not any(n.startswith(o + ".") for o, _ in targets if o != n)]
        for name, m in outer:
            parent_name, _, attr = name.rpartition(".")
            setattr(model.get_submodule(parent_name), attr, factory(_in_channels(m)))
            done.append(name)
    else:
        for name, conv in [(n, m) for n, m in named if _is_depthwise(m)]:
            parent_name, _, attr = name.rpartition(".")
            parent = model.get_submodule(parent_name)
            keys = list(parent._modules)
            i = keys.index(attr)
            while i + 1 < len(keys) and _is_norm_or_act(parent._modules[keys[i + 1]]):
                i += 1
            attn = factory(conv.out_channels)
            if isinstance(parent, nn.Sequential):
                mods = list(parent._modules.items())
                mods.insert(i + 1, (str(len(mods)) if i + 1 == len(mods) else f"attn{i + 1}", attn))
                parent._modules.clear()
                for k, v in mods:
                    parent._modules[k] = v
                done.append(parent_name)
            else:
                setattr(parent, keys[i], nn.Sequential(parent._modules[keys[i]], attn))
                done.append(f"{parent_name}.{keys[i]}" if parent_name else keys[i])
    if not done:
        raise ConfigError(f"no insertion point for where {where!r} in {type(model).__name__}; "
                         f"allowed: {', '.join(WHERE)} (SE-like modules / depthwise convs must exist)")
    return done
