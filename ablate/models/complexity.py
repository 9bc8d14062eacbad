"""Counting like the paper: Params, MAdds (convs + linears + attention gating), latency.

docs/design.md "Counting like the paper": Params = every parameter (BN included); MAdds = torch's
``FlopCounterMode`` total // 2 (multiply-adds of convs and linears) PLUS the element-wise gating
multiplies of attention modules (CA 2*C*H*W per block, SE C*H*W, CBAM 2*C*H*W), which modules
report through ``gating_madds(shape)`` and forward hooks collect at the real H, W.
"""

from __future__ import annotations

import time
from typing import Optional, Sequence

import torch
from torch import nn

from ablate.errors import ConfigError


def count_params(model: nn.Module) -> int:
    """Number of parameters, all of them (BN affine included, buffers excluded)."""
    return sum(p.numel() for p in model.parameters())


def count_madds(model: nn.Module, input_size: Sequence[int] = (1, 3, 224, 224), gating: bool = True) -> int:
    """Multiply-adds of one forward pass at ``input_size``, counted like the paper.

    Args:
        model: any nn.Module; attention modules with ``gating_madds`` add their gating multiplies.
        input_size: (N, C, H, W); MAdds scale with N (the paper reports N=1).
        gating: include attention gating multiplies (paper: yes).
    """
    from torch.utils.flop_counter import FlopCounterMode

    gated = [0]

    def hook(mod, inputs, output):
        gated[0] += int(mod.gating_madds(inputs[0].shape)) * int(inputs[0].shape[0])

    handles = [m.register_forward_hook(hook) for m in model.modules() if gating and hasattr(m, "gating_madds")]
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    was_training = model.training
    try:
        model.eval()
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            model(torch.zeros(*input_size, device=device))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return counter.get_total_flops() // 2 + gated[0]


def profile_model(
    model: nn.Module,
    input_size: Sequence[int] = (1, 3, 224, 224),
    threads: Optional[int] = None,
    device: str = "cpu",
    repeats: int = 20,
    warmup: int = 5,
) -> dict:
    """Params, MAdds (paper counting) and batch-1 latency of ``model``.

    Args:
        model: the model (moved to ``device``, put in eval mode).
        input_size: (N, C, H, W); latency always uses N=1 (the paper's setting).
        threads: ``torch.set_num_threads`` for the measurement (restored after); None leaves it.
        device: ``cpu`` or ``cuda[:i]``; CUDA timing synchronizes around each pass.
        repeats: timed passes (the median is reported).
        warmup: untimed passes first.

    Returns:
        ``{"params": int, "madds": int, "latency_ms": float}``.
    """
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"invalid device {device!r}; allowed: cpu (CUDA is not available)")
    model = model.to(dev).eval()
    params, madds = count_params(model), count_madds(model, input_size)
    return {"params": params, "madds": madds,
            "latency_ms": measure_latency(model, input_size, threads=threads, device=dev, repeats=repeats, warmup=warmup)}


def measure_latency(model: nn.Module, input_size: Sequence[int], *, threads: Optional[int] = None,
                    device: "str | torch.device" = "cpu", repeats: int = 20, warmup: int = 5) -> float:
    """Median batch-1 forward time in milliseconds (eval mode, inference mode)."""
    if repeats < 1 or warmup < 0:
        raise ConfigError(f"invalid repeats {repeats!r} / warmup {warmup!r}; allowed: repeats >= 1, warmup >= 0")
    dev = torch.device(device)
    model.eval()
    old_threads = torch.get_num_threads()
    x = torch.randn(1, *input_size[1:], device=dev)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    times = []
    try:
        if threads is not None:
            torch.set_num_threads(int(threads))
        with torch.inference_mode():
            for i in range(warmup + repeats):
                sync()
                t0 = time.perf_counter()
                model(x)
                sync()
                if i >= warmup:
                    times.append((time.perf_counter() - t0) * 1000.0)
    finally:
        torch.set_num_threads(old_threads)
    times.sort()
    return times[len(times) // 2]
