"""MobileNetV2: the official insertion plan, stage selection, small stem and tiny variant."""

import pytest
import torch

from ablate.models import count_params, create_model, insertion_plan
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


def test_small_stem_forward_backward():
    m = create_model("mobilenet_v2", attention="ca", stem="small", num_classes=10)
    x = torch.randn(2, 3, 32, 32)
    m(x).sum().backward()
    assert m.features(x).shape[-2:] == (4, 4)


def test_tiny_model_size():
    m = create_model("mobilenet_v2_tiny", attention="ca", stem="small", num_classes=10)
    assert 5_000 <= count_params(m) <= 12_000  # ~6k plain: three blocks, stem 8, last conv 64
    assert m(torch.randn(1, 3, 24, 24)).shape == (1, 10)
