"""Coordinate Attention against the paper's equations (Hou et al. 2021, Eq. 2-9) and its shape contract."""

import pytest
import torch

from ablate.models import create_attention
from ablate.models.attention.coord import CoordAttention


def _hswish(x):
    return x * torch.clamp(x + 3, 0, 6) / 6


def _bn(f, bn, training):
    """BatchNorm over (N, positions) from the module's affine weights / running stats."""
    if training:
        mean, var = f.mean((0, 2), keepdim=True), f.var((0, 2), unbiased=False, keepdim=True)
    else:
        mean, var = bn.running_mean[None, :, None], bn.running_var[None, :, None]
    return (f - mean) / torch.sqrt(var + bn.eps) * bn.weight[None, :, None] + bn.bias[None, :, None]


def _pointwise(w, b, z):
    """A 1x1 conv written as a matrix product: (O, C) x (N, C, L) -> (N, O, L)."""
    return torch.einsum("oc,ncl->nol", w[:, :, 0, 0], z) + b[None, :, None]


def reference_ca(m: CoordAttention, x: torch.Tensor, branches: str, training: bool) -> torch.Tensor:
    """Eq. 2-3 strip pooling, Eq. 4 shared transform F1 + BN + delta, Eq. 5-6 split/F_h/F_w/sigma, Eq. 7 output."""
    n, c, h, w = x.shape
    z_h = x.mean(3)  # (N, C, H): z^h_c(h) = 1/W sum_i x_c(h, i)
    z_w = x.mean(2)  # (N, C, W): z^w_c(w) = 1/H sum_j x_c(j, w)
    z = {"hw": torch.cat([z_h, z_w], 2), "h": z_h, "w": z_w}[branches]
    f = _hswish(_bn(_pointwise(m.conv1.weight, m.conv1.bias, z), m.bn1, training))
    out = x
    if "h" in branches:
        g_h = torch.sigmoid(_pointwise(m.conv_h.weight, m.conv_h.bias, f[:, :, :h]))  # (N, C, H)
        out = out * g_h[:, :, :, None]
    if "w" in branches:
        g_w = torch.sigmoid(_pointwise(m.conv_w.weight, m.conv_w.bias, f[:, :, -w:]))  # (N, C, W)
        out = out * g_w[:, :, None, :]
    return out


@pytest.mark.parametrize("branches", ["hw", "h", "w"])
@pytest.mark.parametrize("training", [True, False])
def test_ca_matches_paper_equations(branches, training):
    torch.manual_seed(0)
    m = CoordAttention(48, branches=branches)
    with torch.no_grad():  # non-trivial BN statistics and affine
        m.bn1.running_mean.uniform_(-0.5, 0.5)
        m.bn1.running_var.uniform_(0.5, 2.0)
        m.bn1.weight.uniform_(0.5, 1.5)
        m.bn1.bias.uniform_(-0.2, 0.2)
    m.train(training)
    x = torch.randn(3, 48, 7, 5)
    expected = reference_ca(m, x, branches, training)
    torch.testing.assert_close(m(x), expected, rtol=1e-5, atol=1e-5)


def test_ca_single_branch_has_no_dead_weights():
    h, w = CoordAttention(32, branches="h"), CoordAttention(32, branches="w")
    assert not hasattr(h, "conv_w") and not hasattr(w, "conv_h")
    full = CoordAttention(32)
    assert sorted(n.split(".")[0] for n, _ in full.named_parameters()) == sorted(
        ["conv1", "conv1", "bn1", "bn1", "conv_h", "conv_h", "conv_w", "conv_w"])


def test_ca_official_mid_rule():
    assert CoordAttention(960).conv1.out_channels == 30  # max(8, 960 // 32)
    assert CoordAttention(96).conv1.out_channels == 8  # max(8, 3)
    assert CoordAttention(96, reduction=4).conv1.out_channels == 24
    assert CoordAttention(96, mid_channels=5).conv1.out_channels == 5


def test_ca_timm_mid_rule():
    # timm: make_divisible(C / 16 * 2/3, 8, round_limit=0), biases off
    m = create_attention("ca_timm", 960)
    assert m.conv1.out_channels == 40 and m.conv1.bias is None
    assert create_attention("ca_timm", 96).conv1.out_channels == 8


@pytest.mark.parametrize("kw", [{}, {"shared_transform": False}, {"pool": "max"}, {"pool": "avgmax"},
                                {"branches": "h"}, {"norm": "none", "act": "silu", "gate": "hsigmoid"}])
@pytest.mark.parametrize("training", [True, False])
def test_ca_input_size_agnostic(kw, training):
    m = CoordAttention(16, **kw).train(training)
    for shape in [(2, 16, 9, 5), (1, 16, 4, 11), (2, 16, 32, 32)]:
        if training and shape[0] == 1 and kw.get("norm", "bn") == "bn":
            shape = (2,) + shape[1:]  # BN in training needs > 1 value per channel: N*(H+W) covers it anyway
        x = torch.randn(*shape)
        y = m(x)
        assert y.shape == x.shape and torch.isfinite(y).all()


def test_ca_batch_one_train_and_eval():
    m = CoordAttention(16)
    x = torch.randn(1, 16, 6, 3)
    assert m.train()(x).shape == x.shape  # BN sees N*(H+W) = 9 values per channel
    assert m.eval()(x).shape == x.shape


def test_ca_separate_transforms_keys():
    m = CoordAttention(32, shared_transform=False)
    keys = {k.split(".")[0] for k in m.state_dict()}
    assert keys == {"conv1_h", "bn1_h", "conv1_w", "bn1_w", "conv_h", "conv_w"}
