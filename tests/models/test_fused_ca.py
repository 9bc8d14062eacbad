"""The fused CA (ablate/models/attention/fused.py and CoordAttention's strip path) computes the
official CA math: values and every gradient equal the published formulation on plain ops (1x1
convs on (N, C, L, 1) strips, ``x.mean``, ``x * a_w * a_h``) and the paper's equations, for
every branch/pool/gate/transform knob, NCHW and channels_last, odd and changing sizes, train
and eval; gradcheck/gradgradcheck in float64 (and float32 at float32 tolerances); linked and
unlinked backward passes; and under ``torch.compile``."""

import itertools

import pytest
import torch
from torch import nn

from ablate.models.attention import coord, fused
from ablate.models.attention.coord import CoordAttention
from ablate.models.attention.fused import coord_gate, strip_means, sum_over_h, sum_over_w
from tests.models.test_coord_attention import reference_ca

SHAPES = [(2, 3, 5, 7), (1, 4, 1, 6), (3, 2, 6, 1), (2, 8, 4, 4)]
FORMATS = [torch.contiguous_format, torch.channels_last]
FMT_IDS = ["nchw", "nhwc"]


def _x(shape, fmt, dtype=torch.float64, seed=None):
    g = torch.Generator().manual_seed(sum(shape) if seed is None else seed)
    return torch.randn(shape, generator=g, dtype=dtype).contiguous(memory_format=fmt).requires_grad_()


def _plain_strips(x):
    return torch.cat([x.mean(3).permute(2, 0, 1), x.mean(2).permute(2, 0, 1)], 0)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("fmt", FORMATS, ids=FMT_IDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_strip_sums_and_means_equal_plain_reductions(shape, fmt, dtype):
    x = _x(shape, fmt, dtype).detach()
    for mv in (None, False):  # the CPU matrix-vector form and the plain-sum form (other devices)
        torch.testing.assert_close(sum_over_w(x, 0.5, mv=mv), x.sum(3) * 0.5)
    torch.testing.assert_close(sum_over_h(x, 0.5), x.sum(2) * 0.5)
    odd = x.transpose(2, 3)  # neither NCHW- nor NHWC-contiguous: the plain reductions
    torch.testing.assert_close(sum_over_w(odd), odd.sum(3))
    torch.testing.assert_close(sum_over_h(odd), odd.sum(2))
    s = strip_means(x)
    assert s.shape == (shape[2] + shape[3], shape[0], shape[1]) and s.is_contiguous()
    torch.testing.assert_close(s, _plain_strips(x))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("fmt", FORMATS, ids=FMT_IDS)
def test_gate_and_pools_pass_gradcheck_and_gradgradcheck(shape, fmt):
    n, c, h, w = shape
    x = _x(shape, fmt)
    a_h = torch.rand((n, c, h, 1), dtype=torch.float64).requires_grad_()
    a_w = torch.rand((n, c, 1, w), dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(coord_gate, (x, a_h, a_w))
    assert torch.autograd.gradgradcheck(coord_gate, (x, a_h, a_w))
    assert torch.autograd.gradcheck(strip_means, (x,))
    assert torch.autograd.gradgradcheck(strip_means, (x,))
    assert torch.autograd.gradcheck(lambda t: strip_means(t)[:h], (x,))  # one strip unused


def _gates(s, weight, h):
    """Differentiable gates from the strips (L, N, C): a_h (N, C, H, 1), a_w (N, C, 1, W)."""
    a = torch.sigmoid(s @ weight)
    return a[:h].permute(1, 2, 0).unsqueeze(3), a[h:].permute(1, 2, 0).unsqueeze(2)


def _linked(x, weight):
    s = strip_means(x)
    a_h, a_w = _gates(s, weight, x.shape[2])
    return coord_gate(x, a_h, a_w, s.grad_fn), a_h


def _plain(x, weight):
    a_h, a_w = _gates(_plain_strips(x), weight, x.shape[2])
    return x * a_w * a_h, a_h


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("fmt", FORMATS, ids=FMT_IDS)
def test_linked_backward_equals_plain_autograd_whatever_is_asked(shape, fmt, monkeypatch):
    x = _x(shape, fmt)
    weight = torch.randn(shape[1], shape[1], dtype=torch.float64, requires_grad=True)
    g = torch.randn(shape, dtype=torch.float64).contiguous(memory_format=fmt)
    out, a_h = _linked(x, weight)
    ref, ref_a_h = _plain(x, weight)
    torch.testing.assert_close(out, ref)
    want = torch.autograd.grad(ref, (x, weight), g, retain_graph=True)
    # Parameters only first (the pools' node is not run: the gate must keep nothing for later),
    # then x, then both, on the same graph; then a sum that also reaches a_h directly.
    torch.testing.assert_close(torch.autograd.grad(out, weight, g, retain_graph=True)[0], want[1])
    torch.testing.assert_close(torch.autograd.grad(out, x, g, retain_graph=True)[0], want[0])
    for a, b in zip(torch.autograd.grad(out, (x, weight), g, retain_graph=True), want):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(torch.autograd.grad(out, a_h, g, retain_graph=True)[0],
                               torch.autograd.grad(ref, ref_a_h, g, retain_graph=True)[0])
    got = torch.autograd.grad((out * g).sum() + a_h.sum(), x)[0]
    torch.testing.assert_close(got, torch.autograd.grad((ref * g).sum() + ref_a_h.sum(), x)[0])
    assert torch.autograd.gradcheck(lambda t: _linked(t, weight)[0], (x,))
    assert torch.autograd.gradgradcheck(lambda t: _linked(t, weight)[0], (x,))
    # The link is what runs: the pools' backward gets the gate's share (and the result is the
    # same without it).
    taken = []
    backward = fused._StripMeans.backward

    def spy(ctx, q):
        taken.append(ctx.stash is not None)
        return backward(ctx, q)

    monkeypatch.setattr(fused._StripMeans, "backward", staticmethod(spy))
    out, _ = _linked(x, weight)
    torch.testing.assert_close(torch.autograd.grad(out, x, g)[0], want[0])
    assert taken == [True]
    monkeypatch.setattr(fused, "_will_run", lambda node: False)
    out, _ = _linked(x, weight)
    torch.testing.assert_close(torch.autograd.grad(out, x, g)[0], want[0])
    assert taken == [True, False]


def _plain_forward(self, x):
    """CoordAttention.forward as the published formulation on plain ops: 1x1 convs on
    (N, C, L, 1) strips, ``x.mean``, ``x * a_w * a_h`` (the module before fusion)."""
    h, w = x.shape[2], x.shape[3]
    if self.branches == "h":
        return x * self.gate(self.conv_h(self._transform(coord._strip_pool(x, 3, self.pool))))
    if self.branches == "w":
        return x * self.gate(self.conv_w(self._transform(coord._strip_pool(x, 2, self.pool))))
    x_h = coord._strip_pool(x, 3, self.pool)
    x_w = coord._strip_pool(x, 2, self.pool).transpose(2, 3)
    if self.shared:
        y_h, y_w = torch.split(self._transform(torch.cat([x_h, x_w], dim=2)), [h, w], dim=2)
    else:
        y_h, y_w = self._transform(x_h, "_h"), self._transform(x_w, "_w")
    return x * self.gate(self.conv_w(y_w.transpose(2, 3))) * self.gate(self.conv_h(y_h))


KNOBS = [dict(branches=b, pool=p, gate=g, shared_transform=s)
         for b, p, g, s in itertools.product(["hw", "h", "w"], ["avg", "max", "avgmax"], ["sigmoid", "hsigmoid"], [True, False])]


def _pair(dtype=torch.float64, **knobs):
    torch.manual_seed(0)
    fast = CoordAttention(16, reduction=4, **knobs).to(dtype)
    plain = CoordAttention(16, reduction=4, **knobs).to(dtype)
    with torch.no_grad():  # non-trivial BN statistics and affine
        for bn in (m for m in fast.modules() if isinstance(m, nn.BatchNorm2d)):
            bn.running_mean.uniform_(-0.5, 0.5), bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5), bn.bias.uniform_(-0.2, 0.2)
    plain.load_state_dict(fast.state_dict())
    return fast, plain


def _compare(fast, plain, x, forward_plain=_plain_forward):
    """Same output, input gradient, parameter gradients and BN running statistics."""
    xf, xp = x.clone().requires_grad_(), x.clone().requires_grad_()
    of, op = fast(xf), forward_plain(plain, xp)
    torch.testing.assert_close(of, op)
    assert of.is_contiguous(memory_format=torch.channels_last) == x.is_contiguous(memory_format=torch.channels_last)
    g = torch.randn_like(of)
    of.backward(g), op.backward(g)
    torch.testing.assert_close(xf.grad, xp.grad)
    for (name, pf), pp in zip(fast.named_parameters(), plain.parameters()):
        torch.testing.assert_close(pf.grad, pp.grad, msg=name)
        pf.grad = pp.grad = None
    for (name, bf), bp in zip(fast.named_buffers(), plain.buffers()):
        torch.testing.assert_close(bf, bp, msg=name)


@pytest.mark.parametrize("knobs", KNOBS, ids=lambda k: "-".join(str(v) for v in k.values()))
def test_ca_module_equals_published_formulation_forward_and_every_gradient(knobs):
    fast, plain = _pair(**knobs)
    assert fast._strip_path
    # one module through changing sizes (odd, 1-wide, square), both layouts, train and eval
    for (h, w), fmt, training in itertools.product([(5, 7), (8, 8), (1, 3), (6, 1)], FORMATS, [True, False]):
        fast.train(training), plain.train(training)
        _compare(fast, plain, torch.randn(2, 16, h, w, dtype=torch.float64).contiguous(memory_format=fmt))


@pytest.mark.parametrize("fmt", FORMATS, ids=FMT_IDS)
def test_ca_default_in_float32_at_float32_tolerance(fmt):
    fast, plain = _pair(torch.float32)
    for training in (True, False):
        fast.train(training), plain.train(training)
        _compare(fast, plain, torch.randn(4, 16, 9, 11).contiguous(memory_format=fmt))


@pytest.mark.parametrize("branches", ["hw", "h", "w"])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("fmt", FORMATS, ids=FMT_IDS)
def test_ca_gradients_match_paper_equations(branches, training, fmt):
    fast, _ = _pair(branches=branches)
    fast.train(training)
    x = torch.randn(3, 16, 7, 5, dtype=torch.float64).contiguous(memory_format=fmt)
    _compare(fast, fast, x, lambda m, t: reference_ca(m, t, branches, training))


@pytest.mark.filterwarnings("ignore:Input #0 requires gradient and is not a double")
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("fmt", FORMATS, ids=FMT_IDS)
def test_ca_module_gradcheck_float64_and_float32(training, fmt):
    """The whole module, w.r.t. its input and every parameter (float32 at float32 tolerances)."""
    for dtype in (torch.float64, torch.float32):
        torch.manual_seed(0)
        m = CoordAttention(8, reduction=4).to(dtype).train(training)
        names = [n for n, _ in m.named_parameters()]
        x = _x((2, 8, 3, 5), fmt, dtype)

        def f(t, *ps):
            return torch.func.functional_call(m, dict(zip(names, ps)), (t,))

        if dtype == torch.float64:
            assert torch.autograd.gradcheck(f, (x, *m.parameters()))
            assert torch.autograd.gradgradcheck(lambda t: m(t), (x,), fast_mode=True)
        else:
            ps = [p.detach().requires_grad_(False) for p in m.parameters()]  # x only: one input, no warnings per param
            assert torch.autograd.gradcheck(lambda t: f(t, *ps), (x,), eps=1e-3, atol=2e-2, rtol=2e-2)


def test_layers_the_strip_path_cannot_take_use_the_convs_and_agree():
    class Act(nn.Hardswish):  # a class the strip path does not know to be element-wise
        pass

    torch.manual_seed(0)
    convs = CoordAttention(16, reduction=4, act=Act).double()
    strips = CoordAttention(16, reduction=4).double()
    strips.load_state_dict(convs.state_dict())
    assert strips._strip_path and not convs._strip_path
    for fmt in FORMATS:
        _compare(strips, convs, torch.randn(2, 16, 5, 7, dtype=torch.float64).contiguous(memory_format=fmt),
                 lambda m, t: m(t))


@pytest.mark.parametrize("fmt", FORMATS, ids=FMT_IDS)
def test_ca_under_torch_compile_equals_eager(fmt):
    torch._dynamo.reset()
    fast, plain = _pair(torch.float32)
    compiled = torch.compile(fast, fullgraph=True, dynamic=False)  # fullgraph: no graph break
    _compare(compiled, plain, torch.randn(2, 16, 5, 7).contiguous(memory_format=fmt))


def _gate_inputs(shape, fmt, low=0.05):
    n, c, h, w = shape
    x = _x(shape, fmt)
    a_h = (torch.rand((h, n, c), dtype=torch.float64) * (1 - low) + low).requires_grad_()  # (H, N, C) rows, as the module
    a_w = (torch.rand((w, n, c), dtype=torch.float64) * (1 - low) + low).requires_grad_()
    return x, a_h, a_w


def _views(a_h, a_w):
    return a_h.permute(1, 2, 0).unsqueeze(3), a_w.permute(1, 2, 0).unsqueeze(2)


@pytest.mark.parametrize("fmt", FORMATS, ids=FMT_IDS)
@pytest.mark.parametrize("case", ["kept", "consumed", "changed_in_place", "small_gates"])
def test_gate_backward_from_its_output_is_exact_and_leaves_what_others_hold(fmt, case, monkeypatch):
    """The backward reads the gate's output (g * out, strip sums divided by the gates) when it is
    unchanged and every gate value >= MIN_DIVISOR, writes into it only when nothing else holds
    it, and otherwise recomputes from x: the same gradients in every case."""
    shape = (2, 4, 5, 3)
    x, a_h, a_w = _gate_inputs(shape, fmt, low=0.0 if case == "small_gates" else 0.05)
    if case == "small_gates":
        with torch.no_grad():
            a_h[1, 0, 2] = 0.0  # a hard-sigmoid gate at 0: no division by it
    weight = torch.randn(4, 6, 1, 1, dtype=torch.float64)
    paths, reused = [], []
    divides, reusable = fused._divides, fused._reusable
    monkeypatch.setattr(fused, "_divides", lambda g, a: paths.append(divides(g, a)) or paths[-1])
    monkeypatch.setattr(fused, "_reusable", lambda t: reused.append(reusable(t)) or reused[-1])
    ref = torch.nn.functional.conv2d(x * _views(a_h, a_w)[0] * _views(a_h, a_w)[1], weight.transpose(0, 1))
    want = torch.autograd.grad(ref.square().sum(), (x, a_h, a_w))
    out = coord_gate(x, *_views(a_h, a_w))
    kept = out.detach().clone()
    y = torch.nn.functional.conv2d(out, weight.transpose(0, 1))  # saves out, as a 1x1 conv does
    if case == "changed_in_place":
        y = torch.nn.functional.conv2d(out.mul_(1.0), weight.transpose(0, 1))
    if case != "kept":
        del out
    got = torch.autograd.grad(y.square().sum(), (x, a_h, a_w))
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)
    if case == "kept":
        torch.testing.assert_close(out, kept)  # the caller's tensor is untouched
    if case in ("kept", "consumed"):
        assert paths and all(paths)  # the output path was taken
    else:  # recomputed from x: it needs an unchanged output and gates >= MIN_DIVISOR
        assert not paths or not all(paths)
    assert any(reused) == (case != "kept")  # its memory reused only when nothing else holds it


@pytest.mark.parametrize("fmt", FORMATS, ids=FMT_IDS)
def test_backward_through_a_retained_graph_repeats_bit_for_bit(fmt):
    fast, _ = _pair()
    x = torch.randn(2, 16, 5, 7, dtype=torch.float64).contiguous(memory_format=fmt).requires_grad_()
    out = fast(x)
    y = torch.nn.functional.conv2d(out, torch.randn(3, 16, 1, 1, dtype=torch.float64))
    del out  # the first backward may write into the output's memory
    first = torch.autograd.grad(y.sum(), [x, *fast.parameters()], retain_graph=True)
    second = torch.autograd.grad(y.sum(), [x, *fast.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(first, second))


@pytest.mark.parametrize("fmt", FORMATS, ids=FMT_IDS)
def test_gate_with_gates_in_another_dtype_equals_plain_autograd(fmt):
    x = _x((2, 4, 5, 3), fmt, torch.float32)
    a_h, a_w = (t.to(torch.bfloat16).detach().requires_grad_() for t in _gate_inputs((2, 4, 5, 3), fmt)[1:])
    out = coord_gate(x, *_views(a_h, a_w))
    ref = x * _views(a_h, a_w)[1] * _views(a_h, a_w)[0]
    torch.testing.assert_close(out, ref)
    g = torch.randn_like(ref)
    for a, b in zip(torch.autograd.grad(out, (x, a_h, a_w), g), torch.autograd.grad(ref, (x, a_h, a_w), g)):
        assert a.dtype == b.dtype
        torch.testing.assert_close(a, b, rtol=1e-2, atol=1e-2)


def test_ca_runs_under_inference_mode_and_no_grad():
    fast, plain = _pair(torch.float32)
    fast.eval(), plain.eval()
    x = torch.randn(2, 16, 5, 7).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        torch.testing.assert_close(fast(x), _plain_forward(plain, x))
    with torch.no_grad():
        torch.testing.assert_close(fast(x.requires_grad_()), _plain_forward(plain, x))
