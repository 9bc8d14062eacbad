"""Strip attention: timm's minimal ``StripAttn`` (timm/layers/coord_attn.py).

Strip-pool each channel to (N, C, H, 1) and (N, C, 1, W), optionally refine each strip with a
1-D depthwise conv of size k (3, zero-padded, no bias), and gate their broadcast sum:
``out = x * gate(s_h + s_w)``, optionally ``+ x``. No channel mixing, no norm, no activation
before the gate: with ``use_conv=false`` it has no parameters at all (a fixed gate of the
row and column means).

Submodule names are timm's (``conv_h``, ``conv_w``, ``gate``), so a state dict loads into either.
"""

from __future__ import annotations

import torch
from torch import nn

from ablate.models.attention._strips import GATES, check_flag, check_odd_kernel, strip_convs, SummedStripGate
from ablate.models.layers import LayerSpec, get_act_layer
from ablate.models.registry import register_attention


@register_attention("strip")
class StripAttention(SummedStripGate):
    """Strip attention as timm's ``StripAttn``: ``x * gate(conv_h(s_h) + conv_w(s_w))``.

    Args:
        channels: input = output channels.
        kernel_size: size of the 1-D depthwise convs, odd (3: timm).
        use_conv: refine each strip with its depthwise conv (True: timm); false gates the raw means.
        gate: gating function (sigmoid: timm); sigmoid or hsigmoid.
        bias: conv biases (False: timm).
        skip: add the input to the output (False: timm ``has_skip``).
    """

    def __init__(
        self,
        channels: int,
        *,
        kernel_size: int = 3,
        use_conv: bool = True,
        gate: LayerSpec = "sigmoid",
        bias: bool = False,
        skip: bool = False,
    ):
        super().__init__()
        kernel_size = check_odd_kernel(kernel_size)
        self.use_conv = check_flag("use_conv", use_conv)
        check_flag("bias", bias)
        self.skip = check_flag("skip", skip)
        gate_cls = get_act_layer(gate, GATES if isinstance(gate, str) else None, what="gate")
        if use_conv:
            self.conv_h, self.conv_w = strip_convs(channels, kernel_size, bias)
        else:
            self.conv_h, self.conv_w = nn.Identity(), nn.Identity()
        self.gate = gate_cls()

    def gate_map(self, x: torch.Tensor) -> torch.Tensor:
        """The gate (N, C, H, W) that ``forward`` multiplies ``x`` by."""
        return self.gate(self.conv_h(x.mean(3, keepdim=True)) + self.conv_w(x.mean(2, keepdim=True)))

    map_title = "gate(s_h + s_w)"
