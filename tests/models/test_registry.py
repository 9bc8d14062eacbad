"""Registry and factory contract: bad input is one line naming the value and the allowed ones."""

import subprocess
import sys

import pytest
from torch import nn

from ablate.models import create_attention, create_model, list_attention, list_models
from ablate.models.registry import register_attention, register_backbone


@pytest.mark.parametrize("call, bad, allowed", [
    (lambda: create_attention("foo", 8), "'foo'", "ca, ca_timm, cbam, none, se"),
    (lambda: create_attention("ca", 8, branches="x"), "'x'", "h, hw, w"),
    (lambda: create_attention("ca", 8, act="foo"), "'foo'", "gelu, hswish, relu, relu6, sigmoid, silu"),
    (lambda: create_attention("ca", 8, gate="relu"), "'relu'", "hsigmoid, sigmoid"),
    (lambda: create_attention("ca", 8, pool="median"), "'median'", "avg, avgmax, max"),
    (lambda: create_attention("ca", 8, norm="ln"), "'ln'", "bn, none"),
    (lambda: create_attention("ca", 8, reduction=0), "0", "> 0"),
    (lambda: create_attention("se", 8, reduction=-2), "-2", "> 0"),
    (lambda: create_attention("se", 8, branches="h"), "'branches'", "reduction"),
    (lambda: create_model("resnet9"), "'resnet9'", "mobilenet_v2"),
    (lambda: create_model("mobilenet_v2", width=0), "0", "> 0"),
    (lambda: create_model("mobilenet_v2", width=-1.0), "-1.0", "> 0"),
    (lambda: create_model("mobilenet_v2", stem="cifar"), "'cifar'", "imagenet, small"),
    (lambda: create_model("mobilenet_v2", position="before_dw"), "'before_dw'", "after_depthwise"),
    (lambda: create_model("mobilenet_v2", attention="foo"), "'foo'", "ca, ca_timm, cbam, none, se"),
    (lambda: create_model("mobilenet_v2", attention={"kind": "ca", "reduction": 0}), "0", "> 0"),
    (lambda: create_model("mobilenet_v2", attention={"kind": "ca", "branches": "x"}), "'x'", "h, hw, w"),
    (lambda: create_model("mobilenet_v2", attention={"reduction": 8}), "'kind'", "ca, "),
    (lambda: create_model("mobilenet_v2", stages=[9]), "9", "[0, 6]"),
    (lambda: create_model("mobilenet_v2", stages="last:0"), "'last:0'", "last:k"),
])
def test_bad_values_raise_one_line(call, bad, allowed):
    with pytest.raises(ValueError) as e:
        call()
    msg = str(e.value)
    assert "\n" not in msg and bad in msg and allowed in msg and "allowed" in msg, msg


def test_duplicates_raise():
    with pytest.raises(ValueError, match="already registered"):
        register_attention("ca")(nn.Identity)
    with pytest.raises(ValueError, match="already registered"):
        register_backbone("mobilenet_v2")(lambda **kw: None)


def test_lists_and_none():
    assert {"none", "se", "cbam", "ca"} <= set(list_attention())
    assert {"mobilenet_v2", "mobilenet_v2_tiny"} <= set(list_models())
    assert list_models("mobilenet_v2_t*") == ["mobilenet_v2_tiny"]
    assert isinstance(create_attention("none", 8), nn.Identity)


def test_none_knobs_mean_default():
    m = create_attention("ca", 64, reduction=None, act=None)
    assert m.conv1.out_channels == 8 and isinstance(m.act, nn.Hardswish)


def test_import_pulls_only_torch():
    code = ("import sys, ablate.models; bad = [m for m in ('wandb', 'optuna', 'hydra', 'omegaconf', 'pandas', "
            "'torchvision', 'timm') if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_backbone_options_and_in_chans():
    import torch

    from ablate.models.registry import backbone_options

    assert backbone_options("mobilenet_v2") == ("dropout",)
    assert backbone_options("efficientnet_b0") == ("drop_path", "dropout")
    m = create_model("mobilenet_v2_tiny", in_chans=1, num_classes=4, stem="small", dropout=0.0)
    assert m(torch.randn(2, 1, 16, 16)).shape == (2, 4)
    with pytest.raises(ValueError, match=r"unknown option 'drop_path' for model 'mobilenet_v2'; allowed: dropout"):
        create_model("mobilenet_v2", drop_path=0.1)
    with pytest.raises(ValueError, match=r"invalid in_chans 0; allowed: an integer > 0"):
        create_model("mobilenet_v2", in_chans=0)
