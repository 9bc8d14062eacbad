"""Every backbone x attention x position builds, trains a step at 224 and 32, and round-trips a checkpoint."""

import io

import pytest
import torch

from ablate.errors import ConfigError
from ablate.models import create_model, insertion_plan, list_attention, list_models
from ablate.models.registry import get_backbone

COMBOS = [(name, kind, pos) for name in list_models() for kind in list_attention()
          for pos in get_backbone(name).positions
          if kind != "none" or pos == get_backbone(name).default_position]


def _step(model, x):
    model.train()
    out = model(x)
    assert out.shape == (x.shape[0], model.classifier[-1].out_features) and torch.isfinite(out).all()
    out.square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, f"no gradient for {name}"


@pytest.mark.slow
@pytest.mark.parametrize("name, kind, position", COMBOS)
def test_forward_backward_224(name, kind, position):
    torch.manual_seed(0)
    model = create_model(name, attention=kind, position=position)
    _step(model, torch.randn(1, 3, 224, 224))


@pytest.mark.parametrize("name, kind, position", COMBOS)
def test_small_stem_step_and_checkpoint(name, kind, position, tmp_path):
    torch.manual_seed(0)
    kw = dict(attention=kind, position=position, stem="small", num_classes=10)
    model = create_model(name, **kw)
    _step(model, torch.randn(2, 3, 32, 32))
    path = tmp_path / "ckpt.pt"
    torch.save(model.state_dict(), path)
    fresh = create_model(name, **kw)
    fresh.load_state_dict(torch.load(path, weights_only=True))
    x = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(fresh.eval()(x), model.eval()(x))


@pytest.mark.parametrize("knobs", [{"branches": "h"}, {"branches": "w"}, {"shared_transform": False},
                                   {"pool": "avgmax", "act": "silu", "gate": "hsigmoid", "norm": "none"}])
def test_ca_knob_variants_in_backbone(knobs):
    model = create_model("mobilenet_v2_tiny", attention={"kind": "ca", **knobs}, stem="small", num_classes=4)
    _step(model, torch.randn(2, 3, 24, 24))
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    buf.seek(0)
    assert set(torch.load(buf, weights_only=True)) == set(model.state_dict())


@pytest.mark.parametrize("name, blocks", [("mobilenet_v2", 16), ("mobilenext", 20), ("efficientnet_b0", 16)])
def test_official_slot_counts(name, blocks):
    plan = insertion_plan(name, attention="ca")
    assert len(plan) == blocks and {e.position for e in plan} == {get_backbone(name).default_position}


@pytest.mark.parametrize("name", ["mobilenet_v2", "mobilenext", "efficientnet_b0"])
@pytest.mark.parametrize("call, bad, allowed", [
    (dict(position="nowhere"), "'nowhere'", "after_depthwise"),
    (dict(width=0.01), "0.01", "rounds to zero channels"),
    (dict(stem="tiny"), "'tiny'", "imagenet, small"),
    (dict(stages=[42]), "42", "'last:k'"),
])
def test_invalid_combinations(name, call, bad, allowed):
    with pytest.raises(ConfigError) as e:
        create_model(name, **call)
    msg = str(e.value)
    assert "\n" not in msg and bad in msg and allowed in msg and "allowed" in msg, msg


def test_position_a_backbone_lacks():
    with pytest.raises(ConfigError, match=r"unknown position for mobilenext 'after_project'; allowed: after_depthwise"):
        create_model("mobilenext", position="after_project")


def test_unknown_model_lists_known():
    with pytest.raises(ConfigError, match=rf"unknown model 'resnet50'; allowed: {', '.join(list_models())}$"):
        create_model("resnet50")
