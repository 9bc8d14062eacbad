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


def _rows(fig):
    """(title, axes) of each row (subfigure) of an attention-map figure."""
    return [(sub._suptitle.get_text().strip(), sub.axes) for sub in fig.subfigs]


def test_figure_one_row_per_setting_one_image_per_class_with_colour_bars(runs, tmp_path):
    from ablate.report.attention_maps import AttentionRun
    from ablate.report.plots import FIG_DPI, MAX_WIDTH_PX, caption_of

    picked = {"+ CA (H+W)": AttentionRun(runs["ca"], runs["ca"].name, 97.5, 3, 10), "+ SE": runs["se"],
              "+ CBAM": runs["cbam"], "+ CA (H only)": runs["ca_h"]}
    fig = plot_attention_maps(picked)
    rows = _rows(fig)
    assert [t.split(":")[0] for t, _ in rows[1:]] == list(picked)  # one row per setting, in the given order
    # the input row: the first validation image of each class, each class once, named
    _, bundle, _ = load_run(runs["ca"])
    titles = [ax.get_title() for ax in rows[0][1] if ax.get_title()]
    assert titles == list(bundle.class_names) * 2 and len(set(bundle.class_names)) == bundle.num_classes == 3
    # the row of a picked run names it: run key, seed, top-1 and the pick
    assert f"run {runs['ca'].name}, seed 3, val top-1 97.5 % (median of 10)" in rows[1][0]
    assert runs["se"].name in caption_of(fig) and runs["ca"].name in caption_of(fig)
    for title, axes in rows[1:]:
        bars = [ax for ax in axes if getattr(ax, "_colorbar", None) is not None]
        maps = [ax for ax in axes if ax.images and getattr(ax, "_colorbar", None) is None]
        has_gate = not title.startswith("+ SE")  # SE has no spatial gate: features only
        assert len(bars) == (2 if has_gate else 1) and len(maps) == 3 * len(bars)
        for k, bar in enumerate(bars):  # each bar spans the values of its three panels
            data = np.concatenate([ax.images[0].get_array().ravel() for ax in maps[3 * k: 3 * k + 3]])
            assert bar._colorbar.vmin == pytest.approx(data.min()) and bar._colorbar.vmax == pytest.approx(data.max())
    assert any("a_h × a_w" in ax.get_ylabel() for _, axes in rows for ax in axes)
    assert any("spatial gate" in ax.get_ylabel() for _, axes in rows for ax in axes)  # CBAM
    # legible at the report's width: drawn at 150 dpi within MAX_WIDTH_PX, no text under 7 pt
    sizes = [t.get_fontsize() for t in fig.findobj(lambda a: hasattr(a, "get_fontsize") and a.get_text().strip())]
    assert min(sizes) >= 7
    png, pdf = save_figure(fig, tmp_path, "maps")
    from PIL import Image

    with Image.open(png) as im:  # saved at 150 dpi, not shrunk to fit
        assert im.size[0] <= MAX_WIDTH_PX and im.info["dpi"][0] == pytest.approx(FIG_DPI, abs=0.5)
    assert png.stat().st_size > 10_000 and pdf.stat().st_size > 5_000


def test_run_without_checkpoint_is_a_clear_error(home):
    from ablate.track.store import RunDirStore

    rec = fake_run(["attention=ca"], 50.0, checkpoint=False)
    with pytest.raises(ValueError, match="no checkpoint.pt"):
        load_run(RunDirStore(home / "outputs" / "runs").run_dir(rec["run_key"]))


def test_attention_runs_pick_the_median_run_of_every_attention_setting(tmp_path):
    """Every setting of the table with an attention module gets its run (CA H only and W only
    too), in table order, the one with the median val top-1 (upper median; needs a checkpoint)."""
    from ablate.report.attention_maps import attention_runs
    from ablate.report.cells import setting_labels
    from ablate.report.plots import SettingStyle, label_settings
    from ablate.report.spec import load_table_spec
    from ablate.track.store import RunDirStore
    from tests.report._synth import records_for

    spec = load_table_spec("branches")
    top1 = {0: (70, 40, 90, 60), 1: (50, 81, 79, 80), 2: (47, 75, 76, 90)}  # cell -> top-1 of seeds 0-3
    recs = records_for(spec, seeds=(0, 1, 2, 3), top1=lambda i, seed: float(top1.get(i % 3, (60,) * 4)[seed] + i))
    store = RunDirStore(tmp_path / "runs")
    for r in recs:
        if r["run_key"] != "c2s3":  # CBAM's best run has no checkpoint
            store.run_dir(r["run_key"]).mkdir(parents=True)
            store.files(r["run_key"]).checkpoint.write_bytes(b"x")
    recs = label_settings(recs, setting_labels(spec, recs))
    style = SettingStyle().add_table(spec, recs)
    picked = attention_runs(recs, store, style=style)
    assert list(picked) == ["+ SE", "+ CBAM", "+ CA (H only)", "+ CA (W only)", "+ CA (H+W)"]  # no plain net
    assert picked["+ SE"].run_key == "c1s3" and picked["+ SE"].top1 == 81.0  # 51, 80, 81, 82 -> upper median 81
    assert picked["+ CBAM"].run_key == "c2s1" and picked["+ CBAM"].n == 3  # 49, 77, 78 (92 has no checkpoint)
    assert picked["+ CA (H+W)"].run_dir == store.run_dir(picked["+ CA (H+W)"].run_key)
    assert "median of 4" in picked["+ SE"].describe() and "seed 3" in picked["+ SE"].describe()
    # without table labels: one run per varying-config setting, named by its keys
    auto = attention_runs(records_for(spec, seeds=(0,)), store)
    assert len(auto) == 5 and all("kind=" in k for k in auto)


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
