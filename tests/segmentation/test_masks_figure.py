"""The segmentation report's masks figure: the image, its ground truth, then each setting's
median-mIoU run's prediction, titled with that run's key and mIoU."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.helpers import TINY
from tests.segmentation.test_segmentation import SEG

pytestmark = pytest.mark.slow


def test_masks_figure_shows_each_settings_median_run_prediction(home):
    from ablate.config import compose
    from ablate.data import make_loader
    from ablate.report.plots import SettingStyle
    from ablate.report.seg_masks import load_segmenter, plot_masks
    from ablate.track.store import get_store
    from ablate.train.run import run

    recs = [run(compose([*TINY, *SEG, f"attention={a}", f"seed={s}"])) for a in ("none", "ca") for s in (0, 1, 2)]
    assert all(r["status"] == "completed" for r in recs)
    store = get_store(home / "outputs" / "runs")
    records = [{**dict(r), "setting": "plain" if r["config"]["attention"]["kind"] == "none" else "+ CA"} for r in store.records()]
    fig = plot_masks(records, store, n=3, style=SettingStyle(["plain", "+ CA"]))  # table order
    axes = np.array(fig.axes).reshape(3, 4)  # 3 images x (image, truth, plain, + CA)
    titles = [ax.get_title() for ax in axes[0]]
    assert titles[:2] == ["image", "ground truth"]
    for col, setting in ((2, "plain"), (3, "+ CA")):
        runs = sorted((r for r in records if r["setting"] == setting), key=lambda r: (r["miou"], r["seed"]))
        median = runs[1]
        assert titles[col].startswith(setting) and median["run_key"] in titles[col]
        assert f"mIoU {median['miou']:.1f}" in titles[col]
        # the panel is that run's prediction of the first validation images
        model, bundle = load_segmenter(store.run_dir(median["run_key"]))
        x, y = next(iter(make_loader(bundle.val, batch_size=3, shuffle=False, seed=0, augment=False,
                                     mean=bundle.mean, std=bundle.std)))
        with torch.no_grad():
            pred = model(x).argmax(1).numpy()
        for row in range(3):
            shown = axes[row, col].images[0].get_array()
            assert np.array_equal(np.ma.getdata(shown), pred[row])
            truth = axes[row, 1].images[0].get_array()
            assert np.array_equal(np.ma.getmaskarray(truth), y[row].numpy() == 255)  # ignore pixels masked
