"""Attention zoo: one family per file; importing this package registers every kind.

``none`` is ``nn.Identity`` (a slot that does nothing, never ``None``).
"""

from torch import nn

from ablate.models.registry import register_attention

register_attention("none")(nn.Identity)

from ablate.models.attention.cbam import CBAM  # noqa: E402
from ablate.models.attention.coord import CoordAttention, CoordAttentionTimm  # noqa: E402
from ablate.models.attention.se import SqueezeExcite  # noqa: E402

__all__ = ["CBAM", "CoordAttention", "CoordAttentionTimm", "SqueezeExcite"]
