"""Where attention goes: the stage selector and the explicit per-block insertion plan.

A block that can hold attention exposes ``attn`` (``nn.Identity`` when empty), ``block_index``,
``stage_index``, ``attn_position`` and ``attn_channels``; ``insertion_plan`` reads those, so the
CLI can print exactly what a config builds and tests can compare it with the paper (MBv2: the 16
blocks with expand_ratio != 1).
"""

from __future__ import annotations

from typing import NamedTuple, Optional, Sequence, Union

from torch import nn

StagesSpec = Union[None, str, int, Sequence[int]]


class PlanEntry(NamedTuple):
    """One attention slot: block index in the net, stage (row of the stage table), position, channels, kind."""

    block_index: int
    stage: int
    position: str
    channels: int
    kind: str


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
        raise ValueError(f"unknown stages {stages!r}; {allowed_msg}")
    items = [stages] if isinstance(stages, int) else list(stages)
    out = set()
    for s in items:
        if isinstance(s, bool) or not isinstance(s, int) or not -num_stages <= s < num_stages:
            raise ValueError(f"unknown stage {s!r} in stages {stages!r}; {allowed_msg}")
        out.add(s % num_stages)
    return frozenset(out)


def insertion_plan(model: Union[nn.Module, str], include_empty: bool = False, **create_kwargs) -> list:
    """The per-block attention plan of a model (or of ``create_model(name, **create_kwargs)``).

    Returns a list of ``PlanEntry`` for every slot holding attention (all slots if ``include_empty``).
    """
    from ablate.models.registry import attention_kind_of, create_model

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


def check_width_channels(c: int, width: float, stage: int, name: str) -> None:
    """Raise if ``width`` scales a stage of ``c`` channels below one channel (before rounding)."""
    if c * width < 1:
        raise ValueError(
            f"invalid width {width!r}: stage {stage} of {name} ({c} channels) rounds to zero channels; "
            f"allowed: width >= {1 / c:.4g}"
        )
