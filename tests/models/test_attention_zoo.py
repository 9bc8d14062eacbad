"""Conformance suite over every registered attention kind (timm test_models.py style)."""

import inspect
from pathlib import Path

import pytest
import torch
import yaml
from torch.utils._python_dispatch import TorchDispatchMode

from ablate.models import create_attention, get_attention_cls, list_attention
from ablate.models.registry import knob_names

CONF = Path(__file__).resolve().parents[2] / "conf" / "attention"


@pytest.mark.parametrize("kind", list_attention())
def test_shape_grad_finite(kind):
    torch.manual_seed(0)
    m = create_attention(kind, 24).train()
    x = torch.randn(2, 24, 7, 5, requires_grad=True)
    y = m(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    (y * torch.randn_like(y)).sum().backward()
    assert torch.isfinite(x.grad).all()
    for name, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), f"{kind}: no gradient for {name}"
    m.eval()
    assert m(torch.randn(1, 24, 3, 9)).shape == (1, 24, 3, 9)


class _FullSizeMuls(TorchDispatchMode):
    """Counts the element-wise multiplies whose output has ``numel`` elements (the gating ones)."""

    def __init__(self, numel: int):
        super().__init__()
        self.numel, self.count = numel, 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func.overloadpacket in (torch.ops.aten.mul, torch.ops.aten.mul_) and out.numel() == self.numel:
            self.count += 1
        return out


@pytest.mark.parametrize("kind", [k for k in list_attention() if k != "none"])
def test_gating_madds(kind):
    """``gating_madds`` counts C*H*W for every full-size multiply the forward pass performs."""
    m = create_attention(kind, 8).eval()
    if not hasattr(m, "gating_madds"):
        pytest.skip(f"{kind} reports no gating multiplies")
    x = torch.randn(1, 8, 5, 3)
    with torch.no_grad(), _FullSizeMuls(x.numel()) as muls:
        m(x)
    assert muls.count >= 1, f"{kind}: no full-size multiply (not a gate?)"
    assert m.gating_madds(tuple(x.shape)) == muls.count * 8 * 5 * 3


def test_se_and_cbam_param_formula():
    # SE: C*mid + mid + mid*C + C (biases on), mid = max(8, C // 24); CBAM adds 7*7*2 conv + BN(1) affine = 100
    for c, mid in ((144, 8), (384, 16)):  # 144 // 24 = 6 is lifted to the floor of 8 (CA's)
        se = sum(p.numel() for p in create_attention("se", c).parameters())
        cbam = sum(p.numel() for p in create_attention("cbam", c).parameters())
        assert se == 2 * c * mid + mid + c
        assert cbam == se + 100


@pytest.mark.parametrize("path", sorted(CONF.glob("*.yaml")), ids=lambda p: p.name)
def test_conf_keys_match_signature_defaults(path):
    cfg = yaml.safe_load(path.read_text())
    if "defaults" in cfg:  # a preset on top of another option of the group (ca_h, ca_w)
        base = yaml.safe_load((CONF / f"{cfg.pop('defaults')[0]}.yaml").read_text())
        cfg = {**base, **cfg}
    kind = cfg.pop("kind")
    cls = get_attention_cls(kind)
    params = inspect.signature(cls).parameters
    assert set(cfg) <= set(knob_names(kind)), f"{path.name}: keys not in {cls.__name__}'s signature"
    for key, value in cfg.items():
        if path.stem == kind:  # the kind's own file holds exactly the class defaults
            assert value == params[key].default, f"{path.name}: {key}={value!r} != default {params[key].default!r}"
    if path.stem == kind and kind != "none":
        assert set(cfg) == set(knob_names(kind)), f"{path.name}: missing keys"
    create_attention(kind, 32, **cfg)


def test_every_kind_has_a_conf():
    assert {p.stem for p in CONF.glob("*.yaml")} >= set(list_attention())


def test_conf_presets_compose_with_hydra():
    hydra = pytest.importorskip("hydra", reason="hydra-core not installed")
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        for name, branches in [("ca_h", "h"), ("ca_w", "w")]:
            cfg = compose(config_name=name)
            assert cfg.kind == "ca" and cfg.branches == branches and cfg.reduction == 32
    assert hydra
