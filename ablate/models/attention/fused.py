"""Fused building blocks of Coordinate Attention: fewer full-size passes, same math.

Autograd on ``x.mean(3)``, ``x.mean(2)`` and ``x * a_h * a_w`` keeps the ``x * a_w``
intermediate, broadcasts both strip gradients into full-size tensors and adds them one by one.
These two functions compute exactly the same values and gradients with fewer passes over
(N, C, H, W) memory, in whatever memory format ``x`` has (NCHW or channels_last):

- :func:`strip_means` returns both strip pools; its backward writes the two broadcast strip
  gradients into one tensor in ``x``'s memory format (one allocation instead of three);
- :func:`coord_gate` computes ``x * a_h * a_w`` saving only its inputs; its backward gets the
  strip gradients as reductions of ``grad * x`` against ``a_w`` and ``a_h`` (a batched matrix
  product when the tensors are NCHW-contiguous) and ``grad_x`` in place, without keeping or
  recomputing the full-size intermediate.

Plain PyTorch ops inside ``torch.autograd.Function``: they run on CPU and CUDA, under
``torch.compile`` (Dynamo traces autograd Functions) and with double-checked gradients in
``tests/models/test_fused_ca.py``.
"""
from __future__ import annotations

import torch

__all__ = ["coord_gate", "strip_means"]


class _StripMeans(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor):
        ctx.hw = x.shape[2], x.shape[3]
        ctx.fmt = _memory_format(x)
        return x.mean(3, keepdim=True), x.mean(2, keepdim=True)

    @staticmethod
    def backward(ctx, g_h, g_w):
        h, w = ctx.hw
        n, c = (g_h if g_h is not None else g_w).shape[:2]
        out = torch.empty((n, c, h, w), dtype=(g_h if g_h is not None else g_w).dtype,
                          device=(g_h if g_h is not None else g_w).device, memory_format=ctx.fmt)
        if g_h is not None and g_w is not None:
            torch.add(g_h / w, g_w / h, out=out)
        elif g_h is not None:
            out.copy_((g_h / w).expand(n, c, h, w))
        else:
            out.copy_((g_w / h).expand(n, c, h, w))
        return out


class _CoordGate(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, a_h: torch.Tensor, a_w: torch.Tensor):
        ctx.save_for_backward(x, a_h, a_w)
        out = x * a_h
        return out.mul_(a_w)

    @staticmethod
    def backward(ctx, g):
        x, a_h, a_w = ctx.saved_tensors
        need_x, need_h, need_w = ctx.needs_input_grad
        # Under create_graph (double backward) the graph must not see in-place updates.
        inplace = not torch.is_grad_enabled()
        grad_x = grad_h = grad_w = None
        if need_h or need_w:
            t = g * x
            if need_h:
                if t.is_contiguous():  # (N,C,H,W) @ (N,C,W,1): one read of t, no full-size temporary
                    grad_h = torch.matmul(t, a_w.transpose(2, 3))
                else:
                    grad_h = (t * a_w).sum(3, keepdim=True)
            if need_w:
                grad_w = (t.mul_(a_h) if inplace else t * a_h).sum(2, keepdim=True)
        if need_x:
            grad_x = g * a_h
            grad_x = grad_x.mul_(a_w) if inplace else grad_x * a_w
        return grad_x, grad_h, grad_w


def _memory_format(x: torch.Tensor) -> torch.memory_format:
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


def strip_means(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x.mean(3, keepdim=True), x.mean(2, keepdim=True))``: (N,C,H,1) and (N,C,1,W)."""
    return _StripMeans.apply(x)


def coord_gate(x: torch.Tensor, a_h: torch.Tensor, a_w: torch.Tensor) -> torch.Tensor:
    """``x * a_h * a_w`` with a_h (N,C,H,1) and a_w (N,C,1,W), saving only its inputs."""
    return _CoordGate.apply(x, a_h, a_w)
