"""Fused building blocks of Coordinate Attention: fewer passes over full-size memory, same math.

Autograd on ``x.mean(3)``, ``x.mean(2)`` and ``x * a_h * a_w`` keeps the ``x * a_w``
intermediate, writes both broadcast strip gradients and three gradients of ``x`` into fresh
full-size tensors and adds them one by one. Two autograd functions compute exactly the same
values and gradients with fewer passes over (N, C, H, W) memory and fewer fresh full-size
tensors (on CPU a fresh large tensor costs several passes: the kernel zeroes its pages), in
whatever memory format ``x`` has (NCHW or channels_last):

- :func:`strip_means` returns both strip means as the rows of one (H + W, N, C) tensor (the
  layout in which CA's 1x1 convs are single matrix products). Each mean is one read of ``x``
  through a 3-D view that CPUs reduce at memory speed (:func:`sum_over_w`, :func:`sum_over_h`;
  a 4-D ``x.mean(3)`` is 2-5x slower on CPU).
- :func:`coord_gate` computes ``x * a_h * a_w`` saving only its inputs (and, detached, its
  output, let go of in the backward). Its backward gets the strip gradients as sums of ONE
  product, ``grad * out``, divided by the gates: a_h is constant along W, so
  ``sum_w(grad * x * a_w) = sum_w(grad * out) / a_h``, and alike for a_w (on CPU, float32/64,
  with every gate >= ``MIN_DIVISOR``, and ``out`` unchanged since the forward; otherwise from
  ``grad * x``: two batched matrix products over it (NCHW) or two products summed through 3-D
  views (channels_last)). The product is written into ``out``'s own memory when nothing else
  holds it any more (the next layer, a conv that saved ``out``, has run its backward by then).
  The first backward's choice is kept, so a backward repeated through a retained graph gives
  the same bits.

Linked (``coord_gate(..., pools=s.grad_fn)``), the two backward passes share that buffer: the
gate leaves the gradient of ``x`` to the pools' backward, which runs after it (the pools feed
the gates), and which writes ``grad * a_h * a_w + q_h / W + q_w / H`` into the gate's spent
buffer in three in-place passes. Autograd then sums nothing: in a net the whole CA backward
allocates no full-size tensor (SE's autograd ``x * s`` and mean allocate three). The gate
hands its share over only when the engine will run the pools' node in the same backward
(``torch._C._will_engine_execute_node``), and the pools take it only in that backward
(graph-task id); otherwise, and under ``create_graph`` (double backward: no in-place updates),
each computes its own gradient as the unlinked functions do.

Plain PyTorch ops inside ``torch.autograd.Function``: they run on CPU and CUDA. Under
``torch.compile`` the CA module does not call them (``torch.compiler.is_compiling()``): it
uses the plain expressions, which Inductor fuses itself. Gradients are checked in
``tests/models/test_fused_ca.py`` (gradcheck, gradgradcheck, against plain autograd, linked
and unlinked, every backward a caller can ask for).
"""
from __future__ import annotations

from typing import Optional

import torch

__all__ = ["coord_gate", "is_channels_last", "strip_layout", "strip_means", "strips_of", "sum_over_h", "sum_over_w"]


def is_channels_last(x: torch.Tensor) -> bool:
    """True for a 4-D tensor laid out NHWC (channels_last) and not also NCHW-contiguous."""
    return x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)


def _memory_format(x: torch.Tensor) -> torch.memory_format:
    return torch.channels_last if is_channels_last(x) else torch.contiguous_format


def _task_id() -> Optional[int]:
    return torch._C._current_graph_task_id() if hasattr(torch._C, "_current_graph_task_id") else None


def _will_run(node) -> bool:
    """Whether the autograd engine runs ``node`` in the backward pass now running."""
    check = getattr(torch._C, "_will_engine_execute_node", None)
    if node is None or check is None or _task_id() is None:
        return False
    try:
        return bool(check(node))
    except RuntimeError:  # not part of this graph task
        return False


def _fresh_is_costly(t: torch.Tensor) -> bool:
    """Whether a new tensor like ``t`` costs more than a pass over it: on CPU, where a fresh
    tensor of any size that matters is often memory the allocator has handed back to the kernel,
    which zeroes every page on first touch (measured in a training step: a new 2.4 MB tensor
    ~15 passes, ~8 from 32 MiB, glibc's largest mmap threshold); CUDA's caching allocator
    recycles memory."""
    return t.device.type == "cpu"


def _storage_refs(t: torch.Tensor) -> Optional[int]:
    count = getattr(torch._C, "_storage_Use_Count", None)
    return None if count is None else count(t.untyped_storage()._cdata)


_SOLE = _storage_refs(torch.empty(1))  # a tensor's own reference to its storage, as counted here


def _reusable(t: Optional[torch.Tensor]) -> bool:
    """Whether ``t``'s memory may be overwritten: nothing else (no other tensor, view, saved
    variable or caller) refers to its storage. For the gate's output in the backward pass: the
    next layer has then run its backward and let go of it, and nobody kept it."""
    return (t is not None and _SOLE is not None and _fresh_is_costly(t) and not t._is_view()
            and _storage_refs(t) == _SOLE)


def _as(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return t if t.dtype == like.dtype else t.to(like.dtype)


def _view3(x: torch.Tensor, keep: str) -> Optional[torch.Tensor]:
    """``x`` as a 3-D view whose middle dim is W (``keep="h"``) or H (``keep="w"``), or None.

    NCHW: (N*C*H, W) rows for W; (N*C, H, W) for H. NHWC: (N*H, W, C) for W; (N, H, W*C) for H.
    Summing the middle dim of such a view is a strided loop that CPUs vectorise along the last
    dim; a 4-D ``x.sum(3)`` / ``x.sum(2)`` is several times slower (measured on CPU: 2-5x at
    MobileNetV2's shapes), and so is a matrix product with a vector of ones for short rows.
    Rows of an NCHW tensor (W last) are summed as a matrix-vector product instead.
    """
    n, c, h, w = x.shape
    if is_channels_last(x):
        xp = x.permute(0, 2, 3, 1)
        return xp.reshape(n * h, w, c) if keep == "h" else xp.reshape(n, h, w * c)
    if x.is_contiguous():
        return x.view(n * c * h, w) if keep == "h" else x.view(n * c, h, w)
    return None


def sum_over_w(x: torch.Tensor, scale: float = 1.0, mv: Optional[bool] = None) -> torch.Tensor:
    """``x.sum(3) * scale``: (N, C, H), one read of ``x`` laid out for its memory format.

    ``mv``: sum NCHW rows as a matrix-vector product (default: on CPU, where it is several times
    faster than ``sum`` over the last dim; other devices reduce with ``sum``).
    """
    n, c, h, w = x.shape
    v = _view3(x, "h")
    if v is None:
        return x.sum(3) * scale
    if v.dim() == 2:  # NCHW rows
        if mv if mv is not None else x.device.type == "cpu":
            return torch.mv(v, torch.full((w,), scale, dtype=x.dtype, device=x.device)).view(n, c, h)
        s = v.sum(1)
        return (s.mul_(scale) if scale != 1.0 else s).view(n, c, h)
    s = v.sum(1)
    return (s.mul_(scale) if scale != 1.0 else s).view(n, h, c).transpose(1, 2)


def sum_over_h(x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """``x.sum(2) * scale``: (N, C, W), one read of ``x`` laid out for its memory format."""
    n, c, h, w = x.shape
    v = _view3(x, "w")
    if v is None:
        return x.sum(2) * scale
    s = v.sum(1)
    s = s.mul_(scale) if scale != 1.0 else s
    return s.view(n, w, c).transpose(1, 2) if is_channels_last(x) else s.view(n, c, w)


def strip_layout(s: torch.Tensor, dim: int, channels_last: bool) -> torch.Tensor:
    """Strip rows (L, N, C) as a gate (N, C, L, 1) (``dim=3``) or (N, C, 1, L) (``dim=2``), copied
    into the memory order that full-size loops over ``x`` read in sequence: (N, C, L) for NCHW,
    (N, L, C) for channels_last (read in (L, N, C) order, a gate is gathered across N at every
    step: measured up to 6x slower for NCHW)."""
    t = s.transpose(0, 1).contiguous().transpose(1, 2) if channels_last else s.permute(1, 2, 0).contiguous()
    return t.unsqueeze(dim)


def strips_of(x: torch.Tensor, z_h: torch.Tensor, z_w: torch.Tensor) -> torch.Tensor:
    """Strip pools (N, C, H) and (N, C, W) as one (H + W, N, C) tensor, rows z^h then z^w."""
    return torch.cat([z_h.permute(2, 0, 1), z_w.permute(2, 0, 1)], 0)


def _strip_means(x: torch.Tensor) -> torch.Tensor:
    n, c, h, w = x.shape
    if is_channels_last(x):  # reduce the NHWC view straight into the (H + W, N, C) rows
        xp, s = x.permute(0, 2, 3, 1), x.new_empty((h + w, n, c))
        torch.mean(xp, 2, out=s[:h].transpose(0, 1))
        torch.mean(xp, 1, out=s[h:].transpose(0, 1))
        return s
    return strips_of(x, sum_over_w(x, 1.0 / w), sum_over_h(x, 1.0 / h))


class _StripMeans(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor):
        ctx.shape, ctx.fmt, ctx.stash = x.shape, _memory_format(x), None
        return _strip_means(x)

    @staticmethod
    def backward(ctx, q):
        n, c, h, w = ctx.shape
        stash, ctx.stash = ctx.stash, None
        cl = ctx.fmt == torch.channels_last
        q_h = strip_layout(q[:h] * (1.0 / w), 3, cl)  # (N, C, H, 1)
        q_w = strip_layout(q[h:] * (1.0 / h), 2, cl)  # (N, C, 1, W)
        if stash is not None and stash[0] == _task_id() and not torch.is_grad_enabled():
            # The gate's share, g * a_h * a_w, written into its spent buffer, plus both strips.
            _, g, a_h, a_w, buf = stash
            out = torch.mul(g, a_w, out=buf) if buf is not None else g * a_w
            return torch.addcmul(q_h, out, a_h, out=out).add_(q_w)
        if torch.is_grad_enabled():  # create_graph: differentiable ops only
            return q_h + q_w
        out = torch.empty(ctx.shape, dtype=q.dtype, device=q.device, memory_format=ctx.fmt)
        return torch.add(q_h, q_w, out=out)


# The smallest gate value the output path divides by (see _CoordGate.backward).
MIN_DIVISOR = 1e-3


def _divides(g: torch.Tensor, a: torch.Tensor) -> bool:
    """Whether strip sums of ``g * out`` may be divided by the gate ``a``: on CPU (the check reads
    ``a``; on CUDA it would stall the stream), in float32/float64, with every value >= MIN_DIVISOR
    (a product ``g * out`` then underflows only where ``g * x * a_other`` is within 1e3 of
    underflowing itself)."""
    return (a.device.type == "cpu" and g.dtype in (torch.float32, torch.float64) and a.dtype == g.dtype
            and bool(a.min() >= MIN_DIVISOR))


class _CoordGate(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, a_h: torch.Tensor, a_w: torch.Tensor, pools=None):
        ctx.save_for_backward(x, a_h, a_w)
        ctx.pools = pools
        out = x * a_h
        out = out.mul_(a_w)
        # The output for the backward (detached: no reference cycle through this node; it shares
        # out's version counter, so an in-place change of out is seen and the backward then
        # recomputes from x). The next layer usually keeps out until just before this backward
        # anyway (a conv saves its input); the backward lets go of it.
        ctx.use_out = None
        ctx.out, ctx.out_version = (None, -1) if out.is_inference() else (out.detach(), out._version)
        return out

    @staticmethod
    def backward(ctx, g):
        x, a_h, a_w = ctx.saved_tensors
        need_x, need_h, need_w = ctx.needs_input_grad[:3]
        # Under create_graph (double backward) the graph must not see in-place updates.
        inplace = not torch.is_grad_enabled()
        grad_x = grad_h = grad_w = buf = None
        n, c, h, w = x.shape
        out, ctx.out = ctx.out, None  # let go of it: the graph may outlive this backward
        if inplace and ctx.use_out is None:  # the first backward decides, for every later one too
            ctx.use_out = (out is not None and out._version == ctx.out_version and out.dtype == g.dtype
                           and _divides(g, a_h) and _divides(g, a_w))
        if inplace and ctx.use_out and (need_h or need_w):
            if out is None:  # a later backward through a retained graph: the output again, bit for bit
                out = x * a_h
                out = out.mul_(a_w)
            # sum_w(g * x * a_w) = sum_w(g * out) / a_h (a_h is constant along W), and alike for
            # a_w: both strip gradients are plain sums of ONE product, g * out.
            t = out.mul_(g) if _reusable(out) else g * out
            if need_h:
                grad_h = sum_over_w(t).unsqueeze(3).div_(a_h)
            if need_w:
                grad_w = sum_over_h(t).unsqueeze(2).div_(a_w)
            buf = t
        elif need_h or need_w:
            t = torch.mul(g, x, out=out) if inplace and _reusable(out) and out.dtype == g.dtype == x.dtype else g * x
            if t.is_contiguous() and a_h.dtype == a_w.dtype == t.dtype:
                # (NC, H, W) @ (NC, W, 1) and (NC, 1, H) @ (NC, H, W): one read of t each.
                tm = t.view(n * c, h, w)
                if need_h:
                    grad_h = torch.bmm(tm, a_w.reshape(n * c, w, 1)).view(n, c, h, 1)
                if need_w:
                    grad_w = torch.bmm(a_h.reshape(n * c, 1, h), tm).view(n, c, 1, w)
            else:  # channels_last (or mixed): products summed through 3-D views
                if need_h:
                    if not inplace or (need_w and not _fresh_is_costly(t)):
                        u = t * a_w  # a second buffer: t is still needed for grad_w
                    else:
                        u = t.mul_(a_w)
                    grad_h = _as(sum_over_w(u).unsqueeze(3), a_h)
                if need_w:
                    if need_h and inplace and u is t:  # g * x again, into the same buffer
                        t = torch.mul(g, x, out=t)
                    grad_w = _as(sum_over_h(t.mul_(a_h) if inplace else t * a_h).unsqueeze(2), a_w)
            buf = t if inplace else None
        if buf is not None and (buf.dtype != g.dtype or buf.shape != g.shape):
            buf = None
        if need_x:
            if inplace and _will_run(ctx.pools):
                # The pools' backward finishes grad_x (detached: no reference back into the graph).
                ctx.pools.stash = (_task_id(), g.detach(), a_h.detach(), a_w.detach(), buf)
            elif inplace:
                grad_x = torch.mul(g, a_h, out=buf) if buf is not None else g * a_h
                grad_x.mul_(a_w)
            else:
                grad_x = g * a_h * a_w
        return grad_x, grad_h, grad_w, None


def strip_means(x: torch.Tensor) -> torch.Tensor:
    """Both strip means of ``x`` (N, C, H, W) as one (H + W, N, C) tensor: rows ``x.mean(3)``
    at h = 0..H-1, then ``x.mean(2)`` at w = 0..W-1 (its autograd node links :func:`coord_gate`)."""
    return _StripMeans.apply(x)


def coord_gate(x: torch.Tensor, a_h: torch.Tensor, a_w: torch.Tensor, pools=None) -> torch.Tensor:
    """``x * a_h * a_w`` with a_h (N,C,H,1) and a_w (N,C,1,W), saving only its inputs.

    ``pools``: the autograd node of :func:`strip_means` on the same ``x`` whose strips the gates
    were computed from (``s.grad_fn``); it lets both backward passes share one buffer.
    """
    return _CoordGate.apply(x, a_h, a_w, pools)
