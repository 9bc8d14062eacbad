"""Attention zoo: one family per module, each registering its kinds with ``register_attention``.

The attention registry (``ablate.models.registry.ATTENTION``) imports every module of this
package on first use, so a new kind is one new file here (plus ``conf/attention/<kind>.yaml``).
The names below are re-exports for ``from ablate.models.attention import ...``, not a
registration list. ``none`` (``nn.Identity``, a slot that does nothing) is registered by the
registry itself.
"""

from ablate.models.attention.cbam import CBAM
from ablate.models.attention.coord import CoordAttention, CoordAttentionTimm
from ablate.models.attention.se import SqueezeExcite

__all__ = ["CBAM", "CoordAttention", "CoordAttentionTimm", "SqueezeExcite"]
