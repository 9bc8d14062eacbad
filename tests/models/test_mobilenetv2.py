"""MobileNetV2: the official insertion plan and the paper's Params/MAdds (224x224, 1000 classes)."""

import pytest
import torch

from ablate.models import count_madds, count_params, create_model, insertion_plan
from ablate.models.backbones.mobilenetv2 import MBV2_CFG


@pytest.fixture(scope="module")
def mbv2_ca():
    return create_model("mobilenet_v2", attention="ca")


def test_plan_is_the_16_expanding_blocks(mbv2_ca):
    plan = insertion_plan(mbv2_ca)
    expected = [(i, s) for i, s in enumerate(s for s, (t, c, n, _) in enumerate(MBV2_CFG) for _ in range(n))]
    expected = [(i, s) for i, s in expected if MBV2_CFG[s][0] != 1]
    assert len(plan) == 16 == len(expected)
    assert [(e.block_index, e.stage) for e in plan] == expected
    assert all(e.position == "after_depthwise" and e.kind == "ca" for e in plan)
    assert plan[0].channels == 96 and plan[-1].channels == 960  # expanded channels (t * c_in)


def test_stages_selection():
    assert {e.stage for e in insertion_plan("mobilenet_v2", attention="ca", stages="last:2")} == {5, 6}
    assert len(insertion_plan("mobilenet_v2", attention="se", stages=[0])) == 0  # t=1: never
    assert len(insertion_plan("mobilenet_v2", attention="se", stages=[1, 3])) == 6
    assert insertion_plan("mobilenet_v2") == []
    assert len(insertion_plan("mobilenet_v2", include_empty=True)) == 17


def test_positions_channels():
    plan = insertion_plan("mobilenet_v2", attention="ca", position="after_project")
    assert plan[0].channels == 24 and plan[-1].channels == 320


# Hou et al. 2021 (CA paper), ImageNet table, 224x224, 1000 classes:
#   MobileNetV2-1.0 3.5M 300M | +SE 3.89M 300M | +CBAM 3.89M 300M | +CA 3.95M 310M
# Measured here (exact integers, MAdds with attention gating, DESIGN.md "Counting like the paper"):
PINNED = {
    "none": (3_504_872, 300_774_272),
    "se": (3_888_208, 303_050_624),
    "cbam": (3_889_808, 306_325_792),
    "ca": (3_950_648, 310_467_200),
}


@pytest.mark.parametrize("kind", list(PINNED))
def test_mbv2_counts_pinned(kind):
    m = create_model("mobilenet_v2", attention=kind)
    assert (count_params(m), count_madds(m)) == PINNED[kind]


def test_mbv2_ca_madds_without_gating(mbv2_ca):
    assert count_madds(mbv2_ca, gating=False) == 306_666_368  # DESIGN.md: ~306.7M


def test_small_stem_forward_backward():
    m = create_model("mobilenet_v2", attention="ca", stem="small", num_classes=10)
    x = torch.randn(2, 3, 32, 32)
    m(x).sum().backward()
    assert m.features(x).shape[-2:] == (4, 4)


def test_tiny_model_size():
    m = create_model("mobilenet_v2_tiny", attention="ca", stem="small", num_classes=10)
    assert 15_000 <= count_params(m) <= 35_000
    assert m(torch.randn(1, 3, 24, 24)).shape == (1, 10)
