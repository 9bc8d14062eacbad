"""timm's coord_attn.py variants as attention kinds: ``ca_simple`` (SimpleCoordAttn), ``ela``
(EfficientLocalAttn), ``strip`` (StripAttn); and ``ca_timm`` (CoordAttn) beside them.

With timm installed (the optional ``vision`` extra) the same weights go into timm's module and
ablate's, and outputs and input gradients must agree, train and eval, on several shapes. Without
it those tests skip; the rest checks each kind against its equations written another way
(``F.conv1d`` on the strips, ``einsum``), its Params/MAdds against hand counts, and its knobs.
"""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ablate.errors import ConfigError
from ablate.models import count_madds, count_params, create_attention, create_model

KINDS = ("ca_simple", "ela", "strip")
SHAPES = [(2, 24, 7, 5), (1, 64, 14, 14), (3, 32, 1, 9), (2, 40, 6, 1)]


def _randomize(m: nn.Module, seed: int) -> nn.Module:
    """Random weights everywhere (norm affines and BN running stats included), so no default hides a mismatch."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.copy_(torch.randn(mod.running_mean.shape, generator=gen))
                mod.running_var.copy_(torch.rand(mod.running_var.shape, generator=gen) + 0.5)
    return m


# --- against timm itself (skipped without the vision extra) ---------------------------------

# ablate knobs -> timm constructor arguments, per kind: (ablate knobs, timm kwargs builder)
def _timm_module(kind: str, channels: int, knobs: dict):
    coord = pytest.importorskip("timm.layers.coord_attn",
                                reason="timm is optional (pip install 'ablate[vision]'); timm >= 1.0.23 has coord_attn")
    gate = {"sigmoid": "sigmoid", "hsigmoid": "hard_sigmoid"}[knobs.get("gate", "sigmoid")]
    act = {"silu": nn.SiLU, "hswish": nn.Hardswish, "relu": nn.ReLU}[knobs.get("act", {"ca_timm": "hswish"}.get(kind, "silu"))]
    skip = knobs.get("skip", False)
    if kind == "ca_timm":
        return coord.CoordAttn(channels, rd_ratio=1 / knobs.get("reduction", 16), bias=knobs.get("bias", False),
                               act_layer=act, gate_layer=gate, has_skip=skip)
    if kind == "ca_simple":
        return coord.SimpleCoordAttn(channels, rd_ratio=1 / knobs.get("reduction", 4), rd_channels=knobs.get("mid_channels"),
                                     bias=knobs.get("bias", True), act_layer=act, gate_layer=gate, has_skip=skip)
    if kind == "ela":
        from timm.layers.norm import GroupNorm1

        norm = {"gn1": GroupNorm1, "bn": nn.BatchNorm2d, "none": None}[knobs.get("norm", "gn1")]
        return coord.EfficientLocalAttn(channels, kernel_size=knobs.get("kernel_size", 7), bias=knobs.get("bias", False),
                                        act_layer=act, gate_layer=gate, norm_layer=norm, has_skip=skip)
    return coord.StripAttn(channels, use_conv=knobs.get("use_conv", True), kernel_size=knobs.get("kernel_size", 3),
                           bias=knobs.get("bias", False), gate_layer=gate, has_skip=skip)


TIMM_CASES = [
    ("ca_timm", {}), ("ca_timm", {"skip": True, "gate": "hsigmoid"}), ("ca_timm", {"reduction": 8, "bias": True, "act": "relu"}),
    ("ca_simple", {}), ("ca_simple", {"skip": True, "gate": "hsigmoid", "act": "hswish"}),
    ("ca_simple", {"reduction": 2, "bias": False}), ("ca_simple", {"mid_channels": 12}),
    ("ela", {}), ("ela", {"kernel_size": 5, "bias": True}), ("ela", {"norm": "bn"}),
    ("ela", {"norm": "none", "gate": "hsigmoid", "skip": True, "act": "relu"}),
    ("strip", {}), ("strip", {"use_conv": False}), ("strip", {"kernel_size": 7, "bias": True, "skip": True}),
    ("strip", {"gate": "hsigmoid"}),
]


@pytest.mark.parametrize("kind, knobs", TIMM_CASES, ids=[f"{k}-{sorted(v.items())}" for k, v in TIMM_CASES])
def test_same_outputs_and_input_gradients_as_timm(kind, knobs):
    for i, shape in enumerate(SHAPES):
        ours = _randomize(create_attention(kind, shape[1], **knobs), seed=i)
        theirs = _timm_module(kind, shape[1], knobs)
        theirs.load_state_dict(ours.state_dict(), strict=True)  # same names, same shapes
        assert count_params(theirs) == count_params(ours)
        for training in (True, False):
            ours.train(training), theirs.train(training)
            x = torch.randn(shape, generator=torch.Generator().manual_seed(100 + i))
            xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
            ya, yb = ours(xa), theirs(xb)
            torch.testing.assert_close(ya, yb, rtol=1e-5, atol=1e-5)
            g = torch.randn_like(ya)
            ya.backward(g), yb.backward(g)
            torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-5, atol=1e-5)
        for (na, a), (nb, b) in zip(ours.named_buffers(), theirs.named_buffers()):  # BN running stats
            assert na == nb
            torch.testing.assert_close(a, b)


# --- the equations, written another way (always run) ---------------------------------------

def _gate(name):
    return {"sigmoid": torch.sigmoid, "hsigmoid": F.hardsigmoid}[name]


@pytest.mark.parametrize("knobs", [{}, {"skip": True, "gate": "hsigmoid", "act": "relu", "bias": False}])
def test_ca_simple_equations(knobs):
    m = _randomize(create_attention("ca_simple", 24, **knobs), 1).double()
    x = torch.randn(2, 24, 7, 5, dtype=torch.float64)
    act = {"silu": F.silu, "relu": F.relu}[knobs.get("act", "silu")]
    bias = (lambda lin: lin.bias) if knobs.get("bias", True) else (lambda lin: torch.zeros(lin.out_features, dtype=x.dtype))
    s_h, s_w = x.mean(3), x.mean(2)  # (N, C, H), (N, C, W): every row / column a token of C features
    z_h = act(torch.einsum("mc,nch->nhm", m.fc1.weight, s_h) + bias(m.fc1))
    z_w = act(torch.einsum("mc,ncw->nwm", m.fc1.weight, s_w) + bias(m.fc1))
    l_h = torch.einsum("cm,nhm->nch", m.fc_h.weight, z_h) + bias(m.fc_h)[:, None]
    l_w = torch.einsum("cm,nwm->ncw", m.fc_w.weight, z_w) + bias(m.fc_w)[:, None]
    g = _gate(knobs.get("gate", "sigmoid"))(l_h[..., :, None] + l_w[..., None, :])  # (N, C, H, W)
    torch.testing.assert_close(m(x), x * g + x if knobs.get("skip") else x * g)
    torch.testing.assert_close(m.spatial_map(x), g.mean(1))


def _dw1d(strip: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """A (k,1) or (1,k) depthwise conv as the 1-D conv it is, on (N, C, L)."""
    return F.conv1d(strip, conv.weight.reshape(conv.out_channels, 1, -1), conv.bias,
                    padding=conv.weight.shape[2:].numel() // 2, groups=conv.out_channels)


@pytest.mark.parametrize("knobs", [{}, {"kernel_size": 3, "bias": True, "skip": True}, {"norm": "none", "act": "relu"}])
def test_ela_equations(knobs):
    m = _randomize(create_attention("ela", 16, **knobs), 2).double().train()
    x = torch.randn(3, 16, 9, 6, dtype=torch.float64)
    act = {"silu": F.silu, "relu": F.relu}[knobs.get("act", "silu")]
    norm = (lambda t, gn: t) if knobs.get("norm") == "none" else (lambda t, gn: F.group_norm(t, 1, gn.weight, gn.bias, 1e-5))
    a_h = torch.sigmoid(act(norm(_dw1d(x.mean(3), m.conv_h), m.norm_h)))  # (N, C, H)
    a_w = torch.sigmoid(act(norm(_dw1d(x.mean(2), m.conv_w), m.norm_w)))  # (N, C, W)
    want = x * a_h[..., :, None] * a_w[..., None, :]
    torch.testing.assert_close(m(x), want + x if knobs.get("skip") else want)
    parts = m.map_parts(x)
    torch.testing.assert_close(parts["a_h"][..., 0], a_h)
    torch.testing.assert_close(m.spatial_map(x), (a_h[..., :, None] * a_w[..., None, :]).mean(1))


@pytest.mark.parametrize("knobs", [{}, {"use_conv": False}, {"kernel_size": 5, "bias": True, "skip": True, "gate": "hsigmoid"}])
def test_strip_equations(knobs):
    m = _randomize(create_attention("strip", 12, **knobs), 3).double()
    x = torch.randn(2, 12, 5, 8, dtype=torch.float64)
    s_h, s_w = x.mean(3), x.mean(2)
    if knobs.get("use_conv", True):
        s_h, s_w = _dw1d(s_h, m.conv_h), _dw1d(s_w, m.conv_w)
    want = x * _gate(knobs.get("gate", "sigmoid"))(s_h[..., :, None] + s_w[..., None, :])
    torch.testing.assert_close(m(x), want + x if knobs.get("skip") else want)
    if not knobs.get("use_conv", True):
        assert count_params(m) == 0


def test_timm_state_dict_names():
    """timm's submodule names, so timm weights load as they are."""
    keys = lambda kind, **kw: sorted(create_attention(kind, 16, **kw).state_dict())  # noqa: E731
    assert keys("ca_simple") == ["fc1.bias", "fc1.weight", "fc_h.bias", "fc_h.weight", "fc_w.bias", "fc_w.weight"]
    assert keys("ela") == ["conv_h.weight", "conv_w.weight", "norm_h.bias", "norm_h.weight", "norm_w.bias", "norm_w.weight"]
    assert keys("strip") == ["conv_h.weight", "conv_w.weight"] and keys("strip", use_conv=False) == []


@pytest.mark.parametrize("kind", KINDS)
def test_any_input_size_train_and_eval(kind):
    m = create_attention(kind, 8)
    for shape in [(1, 8, 1, 1), (2, 8, 1, 13), (2, 8, 11, 1), (1, 8, 33, 20)]:
        for training in (True, False):
            y = m.train(training)(torch.randn(shape))
            assert y.shape == shape and torch.isfinite(y).all()


# --- Params / MAdds -----------------------------------------------------------------------------

def test_mid_rule_is_timms():
    # make_divisible(C * 0.25 * 2/3, 8, round_limit=0): 64 -> 10.7 -> 8; 384 -> 64; 960 -> 160; 100 -> 16
    for c, mid in ((64, 8), (384, 64), (960, 160), (100, 16), (24, 8)):
        assert create_attention("ca_simple", c).fc1.out_features == mid
    assert create_attention("ca_simple", 64, reduction=2).fc1.out_features == 24  # 64 / 2 * 2/3 = 21.3 -> 24
    assert create_attention("ca_simple", 64, mid_channels=5).fc1.out_features == 5


# (kind, knobs, params, MAdds) for one block on (1, C=64, H=7, W=5), counted by hand:
#   ca_simple, mid 8: params fc1 64*8+8, fc_h and fc_w 8*64+64 each;
#     MAdds fc1 on H+W=12 tokens 12*64*8, fc_h 7*8*64, fc_w 5*8*64, gate x*g 64*7*5
#   ela, k 7: params two depthwise 64*7, two GroupNorm 2*64; MAdds conv_h 64*7*7, conv_w 64*5*7, gates 2*64*7*5
#   strip, k 3: params two depthwise 64*3; MAdds conv_h 64*7*3, conv_w 64*5*3, gate 64*7*5
HAND = [
    ("ca_simple", {}, (64 * 8 + 8) + 2 * (8 * 64 + 64), 12 * 64 * 8 + 7 * 8 * 64 + 5 * 8 * 64 + 64 * 35),
    ("ela", {}, 2 * 64 * 7 + 2 * 2 * 64, 64 * 7 * 7 + 64 * 5 * 7 + 2 * 64 * 35),
    ("ela", {"norm": "none", "bias": True, "kernel_size": 3}, 2 * (64 * 3 + 64), 64 * 7 * 3 + 64 * 5 * 3 + 2 * 64 * 35),
    ("strip", {}, 2 * 64 * 3, 64 * 7 * 3 + 64 * 5 * 3 + 64 * 35),
    ("strip", {"use_conv": False}, 0, 64 * 35),
]


@pytest.mark.parametrize("kind, knobs, params, madds", HAND, ids=[f"{k}-{sorted(v)}" for k, v, *_ in HAND])
def test_params_and_madds_by_hand(kind, knobs, params, madds):
    m = create_attention(kind, 64, **knobs)
    assert count_params(m) == params
    assert count_madds(m, (1, 64, 7, 5)) == madds
    assert count_madds(m, (3, 64, 7, 5)) == 3 * madds  # per sample, times N


@pytest.mark.parametrize("kind", KINDS)
def test_counts_in_a_network_are_the_sum_of_its_blocks(kind):
    """In MobileNetV2 every slot adds its block's count and nothing else changes."""
    size = (1, 3, 64, 64)
    plain, net = create_model("mobilenet_v2", attention="none"), create_model("mobilenet_v2", attention=kind)
    shapes = []
    hooks = [m.register_forward_hook(lambda mod, i, o: shapes.append((mod, tuple(i[0].shape))))
             for m in net.modules() if hasattr(m, "gating_madds")]
    with torch.no_grad():
        net.eval()(torch.zeros(size))
    for h in hooks:
        h.remove()
    assert len(shapes) == 16  # MobileNetV2's 16 blocks with an expansion (CA's slot)
    assert count_params(net) - count_params(plain) == sum(count_params(m) for m, _ in shapes)
    assert count_madds(net, size) - count_madds(plain, size) == sum(count_madds(m, s) for m, s in shapes)


# --- knobs: one line naming the bad value and the allowed ones ----------------------------------

BAD = [
    ("ela", {"kernel_size": 4}, "invalid kernel_size 4; allowed: an odd integer > 0"),
    ("ela", {"kernel_size": 0}, "invalid kernel_size 0; allowed: an integer > 0"),
    ("strip", {"kernel_size": "3"}, "invalid kernel_size '3'; allowed: an integer > 0"),
    ("ela", {"norm": "ln"}, "unknown norm 'ln'; allowed: bn, gn1, none"),
    ("ela", {"act": "tanh"}, "unknown act 'tanh'; allowed: gelu, hswish, relu, relu6, sigmoid, silu"),
    ("ca_simple", {"gate": "relu"}, "unknown gate 'relu'; allowed: hsigmoid, sigmoid"),
    ("strip", {"use_conv": "yes"}, "invalid use_conv 'yes'; allowed: false, true"),
    ("strip", {"skip": 1}, "invalid skip 1; allowed: false, true"),
    ("ela", {"bias": "no"}, "invalid bias 'no'; allowed: false, true"),
    ("ca_simple", {"reduction": 0}, "invalid reduction 0; allowed: a number > 0"),
    ("ca_simple", {"mid_channels": -2}, "invalid mid_channels -2; allowed: an integer > 0"),
    ("ca_simple", {"se_factor": 0}, "invalid se_factor 0; allowed: a number > 0"),
    ("ela", {"reduction": 8}, "unknown knob 'reduction' for attention 'ela'; allowed: act, bias, gate, kernel_size, norm, skip"),
]


@pytest.mark.parametrize("kind, knobs, message", BAD, ids=[m for *_, m in BAD])
def test_bad_knob_is_one_line_naming_value_and_allowed(kind, knobs, message):
    with pytest.raises(ConfigError) as err:
        create_model("mobilenet_v2_tiny", attention={"kind": kind, **knobs}, stem="small", num_classes=3)
    assert str(err.value) == message


def test_bad_knob_from_the_cli_stops_before_any_run(home, capsys):
    from ablate.cli import main
    from tests.helpers import TINY

    assert main(["train", *TINY, "attention=ela", "attention.kernel_size=6"]) == 2
    err = capsys.readouterr().err
    assert err == "ablate: error: invalid kernel_size 6; allowed: an odd integer > 0\n"
    assert not (home / "outputs" / "runs").exists() or not any((home / "outputs" / "runs").iterdir())
