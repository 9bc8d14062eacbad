"""Attention maps: hooks read CA's a_h, a_w (checked against the block's own output), CBAM's
spatial gate, and the figure of CA beside SE and CBAM from run dirs (.hydra config + checkpoint)."""
from __future__ import annotations

import numpy as np
import pytest

from ablate.report.attention_maps import capture, load_run, plot_attention_maps, val_inputs
from ablate.report.plots import save_figure
from tests.report._runs import fake_run


@pytest.fixture
def runs(home):
    from ablate.track.store import RunDirStore

    recs = {k: fake_run([f"attention={k}"], 50.0) for k in ("ca", "se", "cbam", "ca_h")}
    store = RunDirStore(home / "outputs" / "runs")
    return {k: store.run_dir(r["run_key"]) for k, r in recs.items()}


def _block_io(model, x, name):
    import torch

    got = {}
    mod = dict(model.named_modules())[name]
    h = mod.register_forward_hook(lambda m, i, o: got.update(x=i[0], out=o))
    with torch.no_grad():
        model(x)
    h.remove()
    return got["x"].numpy(), got["out"].numpy()


def test_ca_maps_reproduce_the_block_output(runs):
    model, bundle, cfg = load_run(runs["ca"])
    assert cfg["attention"]["kind"] == "ca"
    x, shown, labels = val_inputs(bundle, 3)
    cap = capture(model, x)
    assert cap["kind"] == "ca" and min(cap["shape"][2:]) >= 6
    xin, out = _block_io(model, x, cap["block"])
    n, c, h, w = xin.shape
    assert cap["a_h"].shape == (n, c, h, 1) and cap["a_w"].shape == (n, c, 1, w)
    np.testing.assert_allclose(out, xin * cap["a_h"] * cap["a_w"], rtol=1e-5, atol=1e-6)  # out = x * a_w * a_h
    np.testing.assert_allclose(cap["map"], (cap["a_h"] * cap["a_w"]).mean(1), rtol=1e-6)
    assert cap["map"].shape == (n, h, w) and ((cap["map"] > 0) & (cap["map"] < 1)).all()
    assert shown.shape == (3, 24, 24) and len(labels) == 3


def test_single_branch_ca_and_cbam_maps(runs):
    model, bundle, _ = load_run(runs["ca_h"])
    x, _, _ = val_inputs(bundle, 2)
    cap = capture(model, x)
    xin, out = _block_io(model, x, cap["block"])
    np.testing.assert_allclose(out, xin * cap["a_h"], rtol=1e-5, atol=1e-6)  # h only: a_w == 1
    assert (cap["a_w"] == 1).all()
    model, bundle, _ = load_run(runs["cbam"])
    cap = capture(model, x)
    assert cap["kind"] == "cbam" and cap["map"].shape == (2, *cap["shape"][2:])
    assert capture(model, x, block=0)["block"] != cap["block"]
    with pytest.raises(ValueError, match=r"attention block 99; allowed: -\d+ \.\. \d+"):
        capture(model, x, block=99)


def test_figure_ca_beside_se_and_cbam(runs, tmp_path):
    fig = plot_attention_maps({"CA": runs["ca"], "SE": runs["se"], "CBAM": runs["cbam"]}, n_inputs=3)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert any("CA: a_h × a_w" in t for t in titles) and any("CBAM: spatial gate" in t for t in titles)
    assert any(t.startswith("SE: output features") for t in titles)
    assert len(fig.axes) == 3 * (1 + 2 + 1 + 2)  # inputs x (input, CA map+features, SE features, CBAM map+features)
    png, pdf = save_figure(fig, tmp_path, "maps")
    assert png.stat().st_size > 10_000 and pdf.stat().st_size > 5_000


def test_run_without_checkpoint_is_a_clear_error(home):
    from ablate.track.store import RunDirStore

    rec = fake_run(["attention=ca"], 50.0, checkpoint=False)
    with pytest.raises(ValueError, match="no checkpoint.pt"):
        load_run(RunDirStore(home / "outputs" / "runs").run_dir(rec["run_key"]))


def test_attention_runs_pick_one_run_per_kind_with_default_knobs(runs, home):
    """Every kind present gets a panel; CA's is the run with CA's default knobs (both branches), not CA h-only."""
    from ablate.report.attention_maps import attention_runs
    from ablate.track.store import RunDirStore

    store = RunDirStore(home / "outputs" / "runs")
    picked = attention_runs(list(store.records()), store)
    assert picked == {"CA": runs["ca"], "CBAM": runs["cbam"], "SE": runs["se"]}
    assert list(picked) == sorted(picked)  # the registry's order


def test_capture_uses_the_module_protocol_for_any_kind(monkeypatch):
    """No kind is special-cased: ca_timm has CA's maps by inheritance, and a new kind without
    ``spatial_map`` still shows its block's output features."""
    import torch
    from torch import nn

    from ablate.models import create_model, list_attention, register_attention
    from ablate.models.registry import ATTENTION

    x = torch.randn(2, 3, 24, 24)
    cap = capture(create_model("mobilenet_v2_tiny", attention="ca_timm", stem="small", num_classes=3), x)
    assert cap["kind"] == "ca_timm" and cap["map_title"] == "a_h × a_w" and cap["a_h"].shape[-1] == 1
    np.testing.assert_allclose(cap["map"], (cap["a_h"] * cap["a_w"]).mean(1), rtol=1e-6)

    class ChannelScale(nn.Module):
        def __init__(self, channels, *, init: float = 1.0):
            super().__init__()
            self.w = nn.Parameter(torch.full((1, channels, 1, 1), init))

        def forward(self, inp):
            return inp * self.w

    list_attention()
    monkeypatch.setattr(ATTENTION, "_entries", dict(ATTENTION._entries))
    monkeypatch.setattr(ATTENTION, "_meta", dict(ATTENTION._meta))
    register_attention("channel_scale")(ChannelScale)
    model = create_model("mobilenet_v2_tiny", attention="channel_scale", stem="small", num_classes=3).train()
    cap = capture(model, x)
    assert cap["kind"] == "channel_scale" and "map" not in cap and cap["features"].shape[0] == 2
    assert model.training  # capture puts the model back in its mode
