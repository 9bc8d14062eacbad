"""Params and MAdds at 224x224, 1000 classes, against the papers' tables (docs/design.md "Counting like the paper").

Params: every parameter, BN included. MAdds: FlopCounterMode total // 2 (convs + linears) plus the
attention gating multiplies (CA 2*C*H*W, SE C*H*W, CBAM 2*C*H*W per block).

CA paper (Hou et al. CVPR 2021), ImageNet tables, 224x224:
    Method              Params  M-Adds  Top-1
    MobileNetV2-1.0     3.5M    300M    72.3
    MobileNetV2 + SE    3.89M   300M    73.5
    MobileNetV2 + CBAM  3.89M   300M    73.6
    MobileNetV2 + CA    3.95M   310M    74.3
    MobileNeXt-1.0      3.5M    300M    74.0
    MobileNeXt + SE     3.89M   300M    74.7
    MobileNeXt + CA     4.09M   330M    75.2
MobileNetV2 widths (MobileNetV2 paper / TF-slim mobilenet README, 224, MACs and params; TF counts
no BN parameters and a 1001-way classifier): 1.0: 300M, 3.47M | 0.75: 209M, 2.61M | 0.5: 97M, 1.95M.
EfficientNet-B0 (Tan & Le 2019, Table 2): 5.3M params, 0.39B FLOPs (multiply-adds).

A figure that the official architecture does not reproduce stays in the test as a strict xfail
with the measured value in the reason; it is not loosened.
"""

import pytest
from torch import nn

from ablate.models import count_madds, count_params, create_model

M = 1_000_000

# Exact integers measured here: (params, MAdds with gating, MAdds without gating).
PINNED = {
    ("mobilenet_v2", 1.0, "none"): (3_504_872, 300_774_272, 300_774_272),
    ("mobilenet_v2", 1.0, "se"): (3_890_136, 303_052_544, 301_152_128),  # SE/CBAM min_mid 8 (CA's floor)
    ("mobilenet_v2", 1.0, "cbam"): (3_891_736, 306_329_632, 302_528_800),
    ("mobilenet_v2", 1.0, "ca"): (3_950_648, 310_467_200, 306_666_368),
    # timm's coord_attn.py variants (not in the paper). The 16 slots' channels sum to 7104
    # (96 + 2*144 + 3*192 + 4*384 + 3*576 + 3*960): ela adds 18 per channel (two 7-tap
    # depthwise + two GroupNorm affines), strip 6 (two 3-tap depthwise); ca_simple adds
    # 3*C*mid + mid + 2*C per slot with mid = make_divisible(C/6, 8): 2,271,008 in all.
    ("mobilenet_v2", 1.0, "ca_timm"): (4_072_264, 312_101_504, 308_300_672),
    ("mobilenet_v2", 1.0, "ca_simple"): (3_504_872 + 2_271_008, 332_049_152, 330_148_736),
    ("mobilenet_v2", 1.0, "ela"): (3_504_872 + 18 * 7104, 305_873_408, 302_072_576),
    ("mobilenet_v2", 1.0, "strip"): (3_504_872 + 6 * 7104, 303_231_104, 301_330_688),
    ("mobilenet_v2", 0.75, "none"): (2_636_424, 209_069_792, 209_069_792),
    ("mobilenet_v2", 0.75, "ca"): (2_891_631, 215_932_256, 212_648_864),
    ("mobilenet_v2", 0.5, "none"): (1_968_680, 97_131_840, 97_131_840),
    ("mobilenet_v2", 0.5, "ca"): (2_095_568, 101_091_264, 99_002_688),
    ("mobilenext", 1.0, "none"): (3_535_416, 311_342_592, 311_342_592),
    ("mobilenext", 1.0, "se"): (3_968_660, 314_097_088, 311_767_040),
    ("mobilenext", 1.0, "ca"): (4_035_727, 322_111_616, 317_451_520),
    ("efficientnet_b0", 1.0, "se"): (5_288_548, 388_121_280, 385_814_752),
    ("efficientnet_b0", 1.0, "ca"): (5_381_804, 398_627_104, 394_014_048),
}

_cache: dict = {}


def _counts(name, width, kind):
    key = (name, width, kind)
    if key not in _cache:
        m = create_model(name, width=width, attention=kind)
        bn = sum(p.numel() for mod in m.modules() if isinstance(mod, nn.BatchNorm2d) for p in mod.parameters())
        _cache[key] = (count_params(m), count_madds(m), count_madds(m, gating=False), bn)
    return _cache[key]


def _same(measured: float, paper: float, unit: float) -> bool:
    """Equal at the paper's precision: both round to the same multiple of ``unit``."""
    return round(measured / unit) == round(paper / unit)


@pytest.mark.parametrize("key", list(PINNED), ids=lambda k: "-".join(map(str, k)))
def test_pinned_exact(key):
    assert _counts(*key)[:3] == PINNED[key]


# (name, width, kind, paper params, unit, paper MAdds, unit)
PAPER = [
    ("mobilenet_v2", 1.0, "none", 3.5 * M, 0.1 * M, 300 * M, 10 * M),
    ("mobilenet_v2", 1.0, "se", 3.89 * M, 0.01 * M, 300 * M, 10 * M),
    ("mobilenet_v2", 1.0, "cbam", 3.89 * M, 0.01 * M, 300 * M, 10 * M),
    ("mobilenet_v2", 1.0, "ca", 3.95 * M, 0.01 * M, 310 * M, 10 * M),
    ("mobilenext", 1.0, "none", 3.5 * M, 0.1 * M, 300 * M, 10 * M),
    ("mobilenext", 1.0, "se", 3.89 * M, 0.01 * M, 300 * M, 10 * M),
    ("mobilenext", 1.0, "ca", 4.09 * M, 0.01 * M, 330 * M, 10 * M),
    ("efficientnet_b0", 1.0, "se", 5.3 * M, 0.1 * M, 390 * M, 10 * M),
]
_XFAIL = {
    ("mobilenet_v2", "cbam", "madds"): "306.3M with the 2*C*H*W gating rounds to 310M; without gating 302.5M",
    ("mobilenext", "none", "madds"): "the official mnext.py layout counts 311.3M (paper 300M)",
    ("mobilenext", "se", "params"): "SE (r=24) after the first dw in all 20 sandglass blocks: 3.97M",
    ("mobilenext", "se", "madds"): "SE after the first dw: 314.1M",
    ("mobilenext", "ca", "params"): "CA after the first dw in all 20 sandglass blocks: 4.04M",
    ("mobilenext", "ca", "madds"): "CA after the first dw: 322.1M (317.5M without gating)",
}


def _cases(what):
    for name, width, kind, p, pu, ma, mu in PAPER:
        reason = _XFAIL.get((name, kind, what))
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        yield pytest.param(name, width, kind, *((p, pu) if what == "params" else (ma, mu)),
                           marks=marks, id=f"{name}-{width}-{kind}")


@pytest.mark.parametrize("name, width, kind, paper, unit", list(_cases("params")))
def test_params_match_paper(name, width, kind, paper, unit):
    assert _same(_counts(name, width, kind)[0], paper, unit)


@pytest.mark.parametrize("name, width, kind, paper, unit", list(_cases("madds")))
def test_madds_match_paper(name, width, kind, paper, unit):
    assert _same(_counts(name, width, kind)[1], paper, unit)


def test_paper_madds_match_without_gating_for_mobilenet_v2():
    """Without gating multiplies all four MobileNetV2-1.0 rows match (the paper's likely counting)."""
    for kind, paper in [("none", 300), ("se", 300), ("cbam", 300), ("ca", 310)]:
        assert _same(_counts("mobilenet_v2", 1.0, kind)[2], paper * M, 10 * M), kind


_TF_1_0 = pytest.mark.xfail(
    strict=True, reason="300.77M rounds to 301M (TF-slim lists 300; 300M at the CA paper's 10M precision)")


@pytest.mark.parametrize("width, madds", [pytest.param(1.0, 300, marks=_TF_1_0), (0.75, 209), (0.5, 97)])
def test_mobilenet_v2_widths_madds_match_tf_slim(width, madds):
    """MobileNetV2 MACs at the CA paper's widths, to TF-slim's 1M precision."""
    assert _same(_counts("mobilenet_v2", width, "none")[1], madds * M, M)


@pytest.mark.parametrize("width, params", [(1.0, 3.47), (0.75, 2.61), (0.5, 1.95)])
def test_mobilenet_v2_widths_params_match_tf_slim(width, params):
    """MobileNetV2 params in TF-slim's counting (no BN parameters, 1001 classes) to its 0.01M precision."""
    p, _, _, bn = _counts("mobilenet_v2", width, "none")
    assert _same(p - bn + 1281, params * M, 0.01 * M)


@pytest.mark.parametrize("width, params, madds", [(0.75, 2.6, 210), (0.5, 2.0, 100)])
def test_mobilenet_v2_widths_at_ca_paper_precision(width, params, madds):
    """The same widths at the CA paper's precision (0.1M params, 10M MAdds)."""
    p, ma, _, _ = _counts("mobilenet_v2", width, "none")
    assert _same(p, params * M, 0.1 * M) and _same(ma, madds * M, 10 * M)
