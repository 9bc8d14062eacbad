"""The fused CA pieces (ablate/models/attention/fused.py) compute exactly what autograd computes
on the plain expressions: values and every gradient, NCHW and channels_last, odd sizes, and the
whole CA module with each knob against the same module run on plain ops."""

import itertools

import pytest
import torch

from ablate.models.attention import coord
from ablate.models.attention.coord import CoordAttention
from ablate.models.attention.fused import coord_gate, strip_means

SHAPES = [(2, 3, 5, 7), (1, 4, 1, 6), (3, 2, 6, 1), (2, 8, 4, 4)]
FORMATS = [torch.contiguous_format, torch.channels_last]


def _inputs(shape, fmt, dtype=torch.float64):
    g = torch.Generator().manual_seed(sum(shape))
    n, c, h, w = shape
    x = torch.randn(shape, generator=g, dtype=dtype).contiguous(memory_format=fmt).requires_grad_()
    a_h = torch.rand((n, c, h, 1), generator=g, dtype=dtype).requires_grad_()
    a_w = torch.rand((n, c, 1, w), generator=g, dtype=dtype).requires_grad_()
    return x, a_h, a_w


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("fmt", FORMATS, ids=["nchw", "nhwc"])
def test_gate_and_pools_pass_gradcheck_and_gradgradcheck(shape, fmt):
    x, a_h, a_w = _inputs(shape, fmt)
    assert torch.autograd.gradcheck(coord_gate, (x, a_h, a_w))
    assert torch.autograd.gradgradcheck(coord_gate, (x, a_h, a_w))
    assert torch.autograd.gradcheck(lambda t: strip_means(t), (x,))
    assert torch.autograd.gradcheck(lambda t: strip_means(t)[0], (x,))  # one output unused
    assert torch.autograd.gradcheck(lambda t: strip_means(t)[1], (x,))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("fmt", FORMATS, ids=["nchw", "nhwc"])
def test_fused_equals_plain_autograd_and_keeps_the_memory_format(shape, fmt):
    x, a_h, a_w = _inputs(shape, fmt, torch.float32)
    g = torch.randn(shape).contiguous(memory_format=fmt)
    out = coord_gate(x, a_h, a_w)
    ref = x * a_w * a_h
    torch.testing.assert_close(out, ref)
    got = torch.autograd.grad(out, (x, a_h, a_w), g)
    want = torch.autograd.grad(ref, (x, a_h, a_w), g)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)
    p_h, p_w = strip_means(x)
    torch.testing.assert_close(p_h, x.mean(3, keepdim=True))
    torch.testing.assert_close(p_w, x.mean(2, keepdim=True))
    (gx,) = torch.autograd.grad((p_h * a_h).sum() + (p_w * a_w).sum(), x)
    (gx_ref,) = torch.autograd.grad((x.mean(3, keepdim=True) * a_h).sum() + (x.mean(2, keepdim=True) * a_w).sum(), x)
    torch.testing.assert_close(gx, gx_ref)
    assert gx.is_contiguous(memory_format=fmt)


def _plain_forward(self, x):
    """CoordAttention.forward on plain ops (the pre-fusion code), for comparison."""
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


@pytest.mark.parametrize("knobs", KNOBS, ids=lambda k: "-".join(str(v) for v in k.values()))
def test_ca_module_fused_equals_plain_ops_forward_and_every_gradient(knobs):
    torch.manual_seed(0)
    fused = CoordAttention(16, reduction=4, **knobs)
    plain = CoordAttention(16, reduction=4, **knobs)
    plain.load_state_dict(fused.state_dict())
    for (h, w), fmt, training in itertools.product([(5, 7), (8, 8), (1, 3)], FORMATS, [True, False]):
        fused.train(training), plain.train(training)
        x = torch.randn(2, 16, h, w).contiguous(memory_format=fmt)
        xf, xp = x.clone().requires_grad_(), x.clone().requires_grad_()
        of, op = fused(xf), _plain_forward(plain, xp)
        torch.testing.assert_close(of, op)
        g = torch.randn_like(of)
        of.backward(g), op.backward(g)
        torch.testing.assert_close(xf.grad, xp.grad)
        for (name, pf), pp in zip(fused.named_parameters(), plain.parameters()):
            torch.testing.assert_close(pf.grad, pp.grad, msg=name)
            pf.grad = pp.grad = None
