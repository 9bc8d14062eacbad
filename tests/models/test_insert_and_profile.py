"""Generic insert_attention on arbitrary trees, EfficientNet's SE slot semantics, and profile_model."""

from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from ablate.errors import ConfigError
from ablate.models import count_params, create_model, insert_attention, insertion_plan, profile_model
from ablate.models.attention import CoordAttention, SqueezeExcite
from ablate.models.backbones.blocks import InvertedResidual, SandglassBlock
from ablate.models.slot import Slot

CONF = Path(__file__).resolve().parents[2] / "conf"


class SqueezeExcitation(nn.Module):
    """A user's own SE (torchvision's class name), to be replaced."""

    def __init__(self, c):
        super().__init__()
        self.fc1, self.fc2 = nn.Conv2d(c, c // 4, 1), nn.Conv2d(c // 4, c, 1)

    def forward(self, x):
        return x * torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean((2, 3), keepdim=True)))))


class Block(nn.Module):
    """A non-Sequential block: depthwise conv, BN, act, SE, pointwise."""

    def __init__(self, c):
        super().__init__()
        self.conv_dw = nn.Conv2d(c, c, 3, 1, 1, groups=c, bias=False)
        self.bn = nn.BatchNorm2d(c)
        self.act = nn.ReLU()
        self.se = SqueezeExcitation(c)
        self.pw = nn.Conv2d(c, 8, 1)

    def forward(self, x):
        return self.pw(self.se(self.act(self.bn(self.conv_dw(x)))))


def tiny_net():
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1),
                         nn.Sequential(nn.Conv2d(16, 16, 3, 1, 1, groups=16), nn.BatchNorm2d(16), nn.ReLU6()),
                         Block(16))


def test_replace_se_on_hand_built_net():
    net = tiny_net()
    assert insert_attention(net, {"kind": "ca", "reduction": 4}, where="replace_se") == ["2.se"]
    assert isinstance(net[2].se, CoordAttention) and net[2].se.conv1.in_channels == 16
    assert net(torch.randn(1, 3, 12, 10)).shape == (1, 8, 12, 10)


def test_after_depthwise_on_hand_built_net():
    net = tiny_net()
    keys = set(net.state_dict())
    assert insert_attention(net, "ca", where="after_depthwise") == ["1", "2.act"]
    assert isinstance(net[1][3], CoordAttention)  # appended to the dw unit: old keys unchanged
    assert isinstance(net[2].act[1], CoordAttention)
    assert keys <= set(net.state_dict())
    y = net(torch.randn(2, 3, 9, 7))
    y.sum().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_insert_bad_input():
    with pytest.raises(ConfigError, match=r"unknown where 'inside'; allowed: after_depthwise, replace_se"):
        insert_attention(tiny_net(), "ca", where="inside")
    with pytest.raises(ConfigError, match=r"no insertion point for where 'replace_se' in Sequential"):
        insert_attention(nn.Sequential(nn.Conv2d(3, 4, 1)), "ca")
    with pytest.raises(ConfigError, match=r"unknown attention kind 'foo'"):
        insert_attention(tiny_net(), "foo")


def test_torchvision_mobilenet_v2_after_depthwise():
    tv = pytest.importorskip("torchvision.models", reason="torchvision is optional (pip install ablate[vision])")
    net = tv.mobilenet_v2(weights=None)
    before = count_params(net)
    assert len(insert_attention(net, "ca", where="after_depthwise")) == 17
    assert count_params(net) > before and net(torch.randn(1, 3, 64, 64)).shape == (1, 1000)


def test_torchvision_efficientnet_replace_se():
    tv = pytest.importorskip("torchvision.models", reason="torchvision is optional (pip install ablate[vision])")
    net = tv.efficientnet_b0(weights=None)
    assert len(insert_attention(net, "ca", where="replace_se")) == 16
    assert net(torch.randn(1, 3, 64, 64)).shape == (1, 1000)


def test_timm_mobilenetv3_replace_se():
    timm = pytest.importorskip("timm", reason="timm is optional (pip install ablate[vision])")
    net = timm.create_model("mobilenetv3_large_100", pretrained=False)
    assert len(insert_attention(net, "ca", where="replace_se")) > 0
    assert net(torch.randn(1, 3, 64, 64)).shape == (1, 1000)


def test_efficientnet_se_is_plain_efficientnet():
    """SE from 1/4 of the BLOCK INPUT with SiLU in all 16 MBConvs, also through conf/attention/se.yaml."""
    m = create_model("efficientnet_b0", attention="se")
    ses = [mod for mod in m.modules() if isinstance(mod, SqueezeExcite)]
    assert [s.fc1.out_channels for s in ses][:4] == [8, 4, 6, 6]  # 32//4, 16//4, 24//4, 24//4
    assert all(isinstance(s.act, nn.SiLU) for s in ses) and count_params(m) == 5_288_548
    from_yaml = create_model("efficientnet_b0", attention=yaml.safe_load((CONF / "attention/se.yaml").read_text()))
    assert count_params(from_yaml) == 5_288_548 and isinstance(from_yaml.features[1].attn.act, nn.SiLU)
    r16 = create_model("efficientnet_b0", attention={"kind": "se", "reduction": 16, "act": "relu"})
    assert r16.features[2].attn.fc1.out_channels == max(8, 96 // 16) and isinstance(r16.features[2].attn.act, nn.ReLU)
    own = create_model("efficientnet_b0", attention={"kind": "se", "mid_channels": 5})
    assert {s.fc1.out_channels for s in own.modules() if isinstance(s, SqueezeExcite)} == {5}
    assert isinstance(own.features[1].attn.act, nn.SiLU)  # the backbone's act still applies


class _RecordingFactory:
    """A factory speaking the slot protocol: records the slots it fills."""

    def __init__(self):
        self.slots = []

    def for_slot(self, slot):
        self.slots.append(slot)
        return nn.Identity()


@pytest.mark.parametrize("block, slot", [
    (lambda f, p: InvertedResidual(16, 24, 2, 6, f, p), Slot(96, 16, 24, "after_depthwise")),  # expanded: 16 * 6
    (lambda f, p: InvertedResidual(16, 24, 2, 6, f, p), Slot(24, 16, 24, "after_project")),
    (lambda f, p: SandglassBlock(32, 32, 1, 6, False, f, p), Slot(32, 32, 32, "after_depthwise")),
    (lambda f, p: SandglassBlock(32, 64, 2, 6, False, f, p), Slot(64, 32, 64, "post_add")),
])
def test_blocks_describe_their_slot(block, slot):
    """A block hands its factory the whole slot; a plain ``channels -> module`` callable gets the channels."""
    factory = _RecordingFactory()
    b = block(factory, slot.position)
    assert factory.slots == [slot] and b.attn_channels == slot.channels
    plain = block(lambda c: SqueezeExcite(c), slot.position)
    assert isinstance(plain.attn, SqueezeExcite) and plain.attn.fc1.in_channels == slot.channels


def test_efficientnet_attention_in_every_block():
    assert [e.block_index for e in insertion_plan("efficientnet_b0", attention="ca")] == list(range(16))


def test_model_confs_build():
    for path in sorted((CONF / "model").glob("*.yaml")):
        cfg = yaml.safe_load(path.read_text())
        m = create_model(cfg.pop("name"), attention="ca", num_classes=3, **cfg)
        size = 24 if cfg["stem"] == "small" else 64
        assert m.eval()(torch.randn(1, 3, size, size)).shape == (1, 3), path.name


def test_profile_model():
    m = create_model("mobilenet_v2_tiny", attention="ca", stem="small", num_classes=10)
    out = profile_model(m, (1, 3, 24, 24), threads=1, device="cpu", repeats=3, warmup=1)
    assert out["params"] == count_params(m) and out["madds"] > 0 and out["latency_ms"] > 0
    assert torch.get_num_threads() == 1  # the conftest's setting is restored
    with pytest.raises(ConfigError, match="repeats"):
        profile_model(m, (1, 3, 24, 24), repeats=0)


@pytest.mark.gpu
def test_profile_model_cuda():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    m = create_model("mobilenet_v2", attention="ca")
    out = profile_model(m, (1, 3, 224, 224), device="cuda", repeats=5)
    assert out["params"] == 3_950_648 and out["madds"] == 310_467_200 and out["latency_ms"] > 0
