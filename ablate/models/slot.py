"""The attention slot protocol: what a block tells the factory that fills its slot.

A block that can hold attention describes the slot with a ``Slot`` (the channels the attention
sees, the block's input and output channels, the position) and calls ``fill_slot``. An
``AttentionFactory`` (``registry.py``) builds the module from the whole slot, so a backbone can
declare per-kind defaults that depend on it (``FromSlot``: EfficientNet's SE bottleneck is
1/4 of the block INPUT channels) without the block or the backbone inspecting the factory.
Any plain ``channels -> nn.Module`` callable still works: it gets ``slot.channels``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

from torch import nn

__all__ = ["FromSlot", "Slot", "fill_slot"]


@dataclass(frozen=True)
class Slot:
    """One attention slot of a block.

    Attributes:
        channels: channels of the tensor the attention module gates (its ``channels`` argument).
        in_channels: the block's input channels.
        out_channels: the block's output channels.
        position: the slot's position inside the block (``None``: not a backbone block).
    """

    channels: int
    in_channels: int
    out_channels: int
    position: Optional[str] = None

    @classmethod
    def bare(cls, channels: int) -> "Slot":
        """A slot known only by its channels (``insert_attention``, a factory called with an int)."""
        return cls(channels, channels, channels)


@dataclass(frozen=True)
class FromSlot:
    """A backbone's knob default computed from the slot it fills: ``FromSlot(fn)``, ``fn(slot) -> value``.

    Use a module-level ``fn`` (factories stay picklable). A plain value in ``attn_defaults`` is
    used as is, so a class (``act=nn.SiLU``) is never mistaken for a slot function.
    """

    fn: Callable[[Slot], Any]

    def __call__(self, slot: Slot) -> Any:
        return self.fn(slot)


def fill_slot(attn_layer: Optional[Callable[..., nn.Module]], slot: Slot) -> nn.Module:
    """The module for ``slot``: ``nn.Identity`` without a factory; a factory with ``for_slot`` gets
    the whole slot, any other ``channels -> nn.Module`` callable gets ``slot.channels``."""
    if attn_layer is None:
        return nn.Identity()
    for_slot = getattr(attn_layer, "for_slot", None)
    return for_slot(slot) if for_slot is not None else attn_layer(slot.channels)
