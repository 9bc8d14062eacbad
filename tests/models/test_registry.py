"""Registry and factory contract: bad input is one line naming the value and the allowed ones."""

import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn

from ablate.errors import ConfigError
from ablate.models import create_attention, create_model, insertion_plan, list_attention, list_models
from ablate.models.registry import ATTENTION, AttentionFactory, register_attention, register_backbone
from ablate.models.slot import FromSlot, Slot
from ablate.registry import RegistryError

KINDS = ", ".join(list_attention())  # the allowed kinds, whatever is registered


@pytest.mark.parametrize("call, bad, allowed", [
    (lambda: create_attention("foo", 8), "'foo'", KINDS),
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
    (lambda: create_model("mobilenet_v2", attention="foo"), "'foo'", KINDS),
    (lambda: create_model("mobilenet_v2", attention={"kind": "ca", "reduction": 0}), "0", "> 0"),
    (lambda: create_model("mobilenet_v2", attention={"kind": "ca", "branches": "x"}), "'x'", "h, hw, w"),
    (lambda: create_model("mobilenet_v2", attention={"reduction": 8}), "'kind'", "ca, "),
    (lambda: create_model("mobilenet_v2", stages=[9]), "9", "[0, 6]"),
    (lambda: create_model("mobilenet_v2", stages="last:0"), "'last:0'", "last:k"),
])
def test_bad_values_raise_one_line(call, bad, allowed):
    with pytest.raises(ConfigError) as e:
        call()
    msg = str(e.value)
    assert "\n" not in msg and bad in msg and allowed in msg and "allowed" in msg, msg


def test_duplicates_raise():
    list_attention(), list_models()  # discovered first: a duplicate of a registered name
    with pytest.raises(RegistryError, match="attention kind 'ca' is already registered"):
        register_attention("ca")(nn.Identity)
    with pytest.raises(RegistryError, match="model 'mobilenet_v2' is already registered"):
        register_backbone("mobilenet_v2")(lambda **kw: None)
    with pytest.raises(RegistryError, match="default position"):
        register_backbone("nowhere_net", positions=("a",), default_position="b")
    assert "nowhere_net" not in list_models()


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
    with pytest.raises(ConfigError, match=r"unknown option 'drop_path' for model 'mobilenet_v2'; allowed: dropout"):
        create_model("mobilenet_v2", drop_path=0.1)
    with pytest.raises(ConfigError, match=r"invalid in_chans 0; allowed: an integer > 0"):
        create_model("mobilenet_v2", in_chans=0)


class ToyGate(nn.Module):
    """A new attention kind as a user would write it: channels plus keyword-only knobs."""

    def __init__(self, channels: int, *, scale: float = 1.0):
        super().__init__()
        self.proj = nn.Conv2d(channels, channels, 1)
        self.scale = scale

    def forward(self, x):
        return x * torch.sigmoid(self.scale * self.proj(x.mean((2, 3), keepdim=True)))


@pytest.fixture
def scratch_attention(monkeypatch):
    """Registrations made in the test are undone after it (the registry's tables are restored)."""
    list_attention()  # discover the package's kinds first
    monkeypatch.setattr(ATTENTION, "_entries", dict(ATTENTION._entries))
    monkeypatch.setattr(ATTENTION, "_meta", dict(ATTENTION._meta))


def test_new_kind_is_picked_up_everywhere(scratch_attention):
    register_attention("toy_gate")(ToyGate)
    assert "toy_gate" in list_attention() and "toy_gate" in list_attention("toy*")
    torch.manual_seed(0)
    model = create_model("mobilenet_v2_tiny", attention={"kind": "toy_gate", "scale": 2.0}, stem="small", num_classes=3)
    plan = insertion_plan(model)
    assert plan and {e.kind for e in plan} == {"toy_gate"}
    assert all(m.scale == 2.0 for m in model.modules() if isinstance(m, ToyGate))
    assert model(torch.randn(2, 3, 24, 24)).shape == (2, 3)
    with pytest.raises(ConfigError, match=r"unknown knob 'reduction' for attention 'toy_gate'; allowed: scale"):
        create_model("mobilenet_v2_tiny", attention={"kind": "toy_gate", "reduction": 4})
    with pytest.raises(RegistryError, match="already registered"):
        register_attention("toy_gate")(ToyGate)


def test_scratch_registration_is_undone():
    assert "toy_gate" not in list_attention()


def test_a_new_file_in_the_packages_is_all_it_takes(tmp_path):
    """A new attention kind and a new backbone are one module each in their package: discovery
    imports them (here the packages' search path gets a temporary folder, in a fresh process)."""
    (tmp_path / "att").mkdir()
    (tmp_path / "bb").mkdir()
    (tmp_path / "att" / "toy_gate.py").write_text(textwrap.dedent('''
        import torch
        from torch import nn
        from ablate.models.registry import register_attention

        @register_attention("toy_gate")
        class ToyGate(nn.Module):
            def __init__(self, channels, *, scale: float = 1.0):
                super().__init__()
                self.proj = nn.Conv2d(channels, channels, 1)
                self.scale = scale

            def forward(self, x):
                return x * torch.sigmoid(self.scale * self.proj(x.mean((2, 3), keepdim=True)))
    '''))
    (tmp_path / "bb" / "toy_net.py").write_text(textwrap.dedent('''
        from torch import nn
        from ablate.models.backbones._common import StageRow, build_stages, classifier, plan_stages, stem_conv
        from ablate.models.backbones.blocks import POSITIONS_IR, InvertedResidual
        from ablate.models.registry import register_backbone

        @register_backbone("toy_net", positions=POSITIONS_IR, default_position="after_depthwise")
        def toy_net(*, num_classes=1000, width=1.0, attn_layer=None, position="after_depthwise", stages=None,
                    stem="imagenet", in_chans=3):
            plan = plan_stages([StageRow(4, 16, 2, 2)], name="toy_net", width=width, stem=stem, stages=stages,
                               small_stride1=0)
            blocks, out = build_stages(plan, 8, attn_layer, lambda a: InvertedResidual(
                a.inp, a.oup, a.stride, a.stage.expand_ratio, a.attn_layer, position))
            return nn.Sequential(stem_conv(in_chans, 8, stem), *blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                 classifier(out, num_classes, 0.0))
    '''))
    code = textwrap.dedent(f'''
        import torch
        import ablate.models.attention as att, ablate.models.backbones as bb
        att.__path__.append({str(tmp_path / "att")!r})
        bb.__path__.append({str(tmp_path / "bb")!r})
        from ablate.models import create_model, insertion_plan, list_attention, list_models
        assert "toy_gate" in list_attention() and "toy_net" in list_models(), (list_attention(), list_models())
        m = create_model("toy_net", attention="toy_gate", num_classes=3, stem="small")
        assert [e.kind for e in insertion_plan(m)] == ["toy_gate", "toy_gate"], insertion_plan(m)
        assert m(torch.randn(1, 3, 16, 16)).shape == (1, 3)
        print("ok")
    ''')
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and "ok" in r.stdout, r.stdout + r.stderr


def _in_channels_over_4(slot):
    return max(1, slot.in_channels // 4)


@pytest.mark.parametrize("knobs, slot_mid, bare_mid, probe_mid, act", [
    # the backbone's defaults; the width from the slot's block input (96 // 4), or 64 // 4 on a bare int
    ({}, 24, 16, 8, nn.SiLU),
    ({"reduction": 24, "act": "relu6"}, 24, 16, 8, nn.SiLU),  # restated class defaults yield to them
    ({"reduction": 4}, 16, 16, 16, nn.SiLU),  # a caller's reduction masks the backbone's mid_channels
    ({"mid_channels": 5, "act": "relu"}, 5, 5, 5, nn.ReLU),  # a caller's own values win
])
def test_factory_precedence_with_slot_defaults(knobs, slot_mid, bare_mid, probe_mid, act):
    """AttentionFactory's documented precedence with a slot-computed backbone default (EfficientNet's SE)."""
    factory = AttentionFactory("se", knobs, {"act": "silu", "mid_channels": FromSlot(_in_channels_over_4)})
    m = factory.for_slot(Slot(channels=64, in_channels=96, out_channels=32, position="after_depthwise"))
    assert m.fc1.in_channels == 64 and m.fc1.out_channels == slot_mid and isinstance(m.act, act)
    assert factory(64).fc1.out_channels == bare_mid
    probe = factory.validate()  # 64 channels; slot-computed defaults are left out of the probe
    assert probe.fc1.out_channels == probe_mid and isinstance(probe.act, act)
