"""The segmentation report's figure: predicted masks beside the ground truth.

For each setting of a segmentation table, the completed run with a checkpoint whose mIoU is the
setting's median (ties by seed) predicts the first ``n`` validation images; the figure has one
row per image: the image, its ground-truth mask, then each setting's prediction (ignore pixels
grey), titled with the run's key and mIoU.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import pandas as pd

from ablate.errors import ConfigError


def load_segmenter(run_dir: Path):
    """(segmenter in eval mode, data bundle) of a finished segmentation run dir."""
    from omegaconf import OmegaConf

    from ablate.data import load_dataset, split_config
    from ablate.track.store import RunFiles
    from ablate.train.tasks import build_model, check_task

    files = RunFiles(Path(run_dir))
    cfg = OmegaConf.to_container(OmegaConf.load(files.config), resolve=True)
    name, root, data_kwargs, _ = split_config(cfg["data"])
    bundle = load_dataset(name, root=root, **data_kwargs)
    model = build_model(cfg["model"]["name"], cfg["model"], cfg["attention"], check_task(cfg.get("task")),
                        num_classes=bundle.num_classes, in_chans=bundle.in_chans)
    state = files.load_checkpoint(map_location="cpu")
    if state is None:
        raise ConfigError(f"run dir {files.dir}: no loadable checkpoint.pt; allowed: a run trained with trainer.checkpoint=true")
    model.load_state_dict(state["model"])
    return model.eval(), bundle


def plot_masks(records: list[dict], store, where: Optional[dict] = None, style=None, n: int = 4):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import torch

    from ablate.data import make_loader
    from ablate.report.plots import SettingStyle, completed_frame

    style = style if style is not None else SettingStyle()
    df, _ = completed_frame(records, where)
    if not len(df) or "miou" not in df.columns:
        raise ConfigError("masks: no completed segmentation run (no miou); allowed: a segmentation table's sweep")
    df = df[[store.files(k).checkpoint.is_file() for k in df["run_key"]]]
    picked = {}
    for setting in style.order(df["setting"].unique()):
        sub = df[df["setting"] == setting].assign(_m=lambda d: pd.to_numeric(d["miou"], errors="coerce"))
        sub = sub.sort_values(["_m", "seed"] if "seed" in sub.columns else ["_m"], kind="stable")
        row = sub.iloc[len(sub) // 2]
        picked[setting] = (store.run_dir(row["run_key"]), str(row["run_key"]), float(row["_m"]))
    preds, bundle = {}, None
    for setting, (run_dir, _, _) in picked.items():
        model, bundle = load_segmenter(run_dir)
        loader = make_loader(bundle.val, batch_size=n, shuffle=False, seed=0, augment=False,
                             mean=bundle.mean, std=bundle.std)
        x, y = next(iter(loader))
        with torch.no_grad():
            preds[setting] = model(x).argmax(1).numpy()
    images = bundle.val.images[:n].numpy() if hasattr(bundle.val, "images") else np.stack([bundle.val[i][0].numpy() for i in range(n)])
    truth = y.numpy()
    cols = 2 + len(preds)
    fig, axes = plt.subplots(len(truth), cols, figsize=(1.6 * cols, 1.6 * len(truth)), squeeze=False)
    k = bundle.num_classes

    def show(ax, mask):
        shown = np.ma.masked_where(mask == 255, mask)
        ax.imshow(shown, cmap="tab20", vmin=0, vmax=max(k - 1, 1), interpolation="nearest")
        ax.set_facecolor("0.7")

    for r in range(len(truth)):
        img = images[r].transpose(1, 2, 0)
        axes[r, 0].imshow(img[..., 0] if img.shape[2] == 1 else img, cmap="gray", interpolation="nearest")
        show(axes[r, 1], truth[r])
        for c, (setting, p) in enumerate(preds.items()):
            show(axes[r, 2 + c], p[r])
    titles = ["image", "ground truth"] + [f"{s}\n{picked[s][1]} mIoU {picked[s][2]:.1f}" for s in preds]
    for c, t in enumerate(titles):
        axes[0, c].set_title(t, fontsize=7)
    for ax in axes.flat:
        ax.set_xticks([]), ax.set_yticks([])
    fig.tight_layout()
    return fig
