"""Attention maps of trained runs: CA's a_h x a_w beside SE and CBAM (the paper's Fig. 5 idea).

A run is reloaded from its run dir: ``.hydra/config.yaml`` gives the model, attention and data
config, ``checkpoint.pt`` the weights (``create_model`` + ``load_state_dict``; the model code
is never edited). Attention modules are found through the attention registry (every registered
kind but ``none``); a forward hook reads the input and output of one of them, by default the
last one whose input is at least ``MIN_SIDE`` pixels on each side (the paper visualises the
last building block; on small inputs the last blocks are 3x3 and show nothing). The module's
own protocol gives the map:

- ``spatial_map(x)`` (N,H,W): the spatial gating the module applies to its input, averaged over
  channels, or None. CA: mean_c(a_h * a_w); CBAM: its spatial gate; SE: None (one weight per
  channel, no spatial map). ``map_title`` names it in the figure (CA "a_h × a_w", CBAM
  "spatial gate"); ``map_parts(x)`` adds its pieces (CA: a_h N,C,H,1 and a_w N,C,1,W).
- Every model also shows its block's output feature map, mean_c |out|, which is what the paper
  compares (and all SE has to show).

The report's figure (``attention_runs`` + ``plot_attention_maps``) has one row per attention
setting of the table, each from the run with the median val top-1 of its setting (named by run
key, seed and top-1), on the first validation image of each class, with a colour bar per row,
sized to be shown unscaled in the report (``plots.MAX_WIDTH_PX`` at 150 dpi).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from ablate.errors import ConfigError, allowed

MIN_SIDE = 6
MAX_CLASSES = 4  # classes shown (one image each); more would not fit the report's width


def load_run(run_dir: str | Path):
    """(model in eval mode, data bundle, plain config) of a finished run dir."""
    from omegaconf import OmegaConf

    from ablate.data import load_dataset, split_config
    from ablate.models import create_model
    from ablate.track.store import RunFiles

    files = RunFiles(Path(run_dir))
    for p in (files.config, files.checkpoint):
        if not p.is_file():
            raise ConfigError(f"run dir {files.dir}: no {p.relative_to(files.dir)}; allowed: a run dir of a run trained with trainer.checkpoint=true")
    cfg = OmegaConf.to_container(OmegaConf.load(files.config), resolve=True)
    name, root, data_kwargs, _ = split_config(cfg["data"])
    bundle = load_dataset(name, root=root, **data_kwargs)
    model_cfg = dict(cfg["model"])
    model = create_model(model_cfg.pop("name"), num_classes=bundle.num_classes, in_chans=bundle.in_chans,
                         attention=cfg["attention"], **model_cfg)
    state = files.load_checkpoint(map_location="cpu")  # a damaged one is set aside and reads as None
    if state is None:
        raise ConfigError(f"run dir {files.dir}: its checkpoint.pt is damaged (set aside); allowed: a run whose "
                          "checkpoint loads (relaunch the sweep to redo it)")
    model.load_state_dict(state["model"])
    return model.eval(), bundle, cfg


def attention_kinds() -> list[str]:
    """The registered attention kinds that hold a module (every kind but ``none``)."""
    from ablate.models import list_attention

    return [k for k in list_attention() if k != "none"]


def _attention_modules(model) -> list[tuple[str, object, str]]:
    """(name, module, kind) of every module of a registered attention kind, in module order."""
    from ablate.models import get_attention_cls

    kinds = {get_attention_cls(k): k for k in attention_kinds()}
    return [(n, m, kinds[type(m)]) for n, m in model.named_modules() if type(m) in kinds]


def capture(model, x, block: Optional[int] = None) -> dict:
    """Run ``x`` through ``model`` (in eval mode) and return the maps of one attention block.

    Returns ``{"kind", "block", "shape", "features"}`` (features: mean_c |out|, N,H,W) plus, for a
    module whose ``spatial_map`` is not None, ``"map"`` (N,H,W), ``"map_title"`` and the module's
    ``map_parts`` (CA: ``a_h`` N,C,H,1 and ``a_w`` N,C,1,W); ``block`` indexes the attention
    modules (default: the last with both sides >= MIN_SIDE).
    """
    import torch

    mods = _attention_modules(model)
    if not mods:
        raise ConfigError(f"model has no attention module; allowed: a run with attention.kind "
                          f"{allowed(attention_kinds())}")
    was_training = model.training
    model.eval()
    try:
        shapes: dict[str, tuple] = {}
        handles = [m.register_forward_hook(lambda mod, inp, out, n=n: shapes.__setitem__(n, tuple(inp[0].shape)))
                   for n, m, _ in mods]
        with torch.no_grad():
            model(x)
        for h in handles:
            h.remove()
        if block is None:
            big = [i for i, (n, _, _) in enumerate(mods) if min(shapes[n][2:]) >= MIN_SIDE]
            block = big[-1] if big else max(range(len(mods)), key=lambda i: np.prod(shapes[mods[i][0]][2:]))
        elif not -len(mods) <= block < len(mods):
            raise ConfigError(f"attention block {block}; allowed: -{len(mods)} .. {len(mods) - 1}")
        name, mod, kind = mods[block]
        got: dict[str, torch.Tensor] = {}
        hook = mod.register_forward_hook(lambda m, i, o: got.update(x=i[0], out=o))
        try:
            with torch.no_grad():
                model(x)
        finally:
            hook.remove()
        out = {"kind": kind, "block": name, "shape": shapes[name], "features": got["out"].abs().mean(1).numpy()}
        spatial_map, parts = getattr(mod, "spatial_map", None), getattr(mod, "map_parts", None)
        with torch.no_grad():  # the module's own protocol, on the input it gated
            smap = spatial_map(got["x"]) if spatial_map is not None else None
            if smap is not None:
                out.update(map=smap.numpy(), map_title=getattr(mod, "map_title", None) or "spatial map")
                out.update({k: v.numpy() for k, v in (parts(got["x"]) if parts is not None else {}).items()})
    finally:
        model.train(was_training)
    return out


def val_inputs(bundle, n: int = 4):
    """The first ``n`` validation images: (normalised batch, raw images H,W or H,W,C, labels)."""
    return _batch(bundle, range(min(n, len(bundle.val))))


def class_inputs(bundle, max_classes: int = MAX_CLASSES):
    """The first validation image of each class (classes 0 .. ``max_classes``-1, those that have
    one): (normalised batch, raw images, labels), as ``val_inputs``."""
    want = min(bundle.num_classes, max_classes)
    first: dict[int, int] = {}
    for i in range(len(bundle.val)):
        label = int(bundle.val[i][1])
        if label < want:
            first.setdefault(label, i)
            if len(first) == want:
                break
    return _batch(bundle, [first[c] for c in sorted(first)])


def _batch(bundle, indices):
    import torch

    imgs, labels = zip(*(bundle.val[i] for i in indices))
    raw = torch.stack(list(imgs)).float() / 255.0
    mean = torch.tensor(bundle.mean).view(1, -1, 1, 1)
    std = torch.tensor(bundle.std).view(1, -1, 1, 1)
    shown = raw[:, 0].numpy() if raw.shape[1] == 1 else raw.permute(0, 2, 3, 1).numpy()
    return (raw - mean) / std, shown, [int(v) for v in labels]


@dataclass
class AttentionRun:
    """The run whose maps stand for one setting: its dir and key, and why it was picked."""

    run_dir: Path
    run_key: str
    top1: Optional[float] = None
    seed: Optional[int] = None
    n: int = 1  # the setting's completed runs with a checkpoint it was picked from

    def describe(self) -> str:
        top1 = f", val top-1 {self.top1:.1f} %" if self.top1 is not None else ""
        seed = f", seed {self.seed}" if self.seed is not None else ""
        return f"run {self.run_key}{seed}{top1}" + (f" (median of {self.n})" if self.n > 1 else "")


def plot_attention_maps(runs: dict, max_classes: int = MAX_CLASSES, block: Optional[int] = None, style=None):
    """One figure, one row per setting (``{"+ CA (H+W)": AttentionRun or run dir, ...}``, in
    that order) under a row of inputs (the first validation image of each class). Per row: the
    module's spatial gate (CA a_h × a_w, CBAM's spatial gate; SE has none), then its block's
    output features mean_c |out|, each with a colour bar (the row's own scale, shared by its
    classes). The input's outline is drawn over every map. The figure fits ``MAX_WIDTH_PX`` at
    150 dpi so the report shows it unscaled; its caption (``caption_of``) names each row's run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch
    import torch.nn.functional as F

    from ablate.report.plots import FIG_DPI, MAX_WIDTH_PX, SettingStyle, set_caption

    if not runs:
        raise ConfigError(f"attention maps: no run dirs; allowed: completed runs with checkpoints of an attention "
                          f"kind ({allowed(attention_kinds())})")
    style = style if style is not None else SettingStyle()
    runs = {label: r if isinstance(r, AttentionRun) else AttentionRun(Path(r), Path(r).name) for label, r in runs.items()}
    rows, shown, labels, names, blocks = [], None, None, None, set()
    for label, run in runs.items():
        model, bundle, _ = load_run(run.run_dir)
        x, img, lab = class_inputs(bundle, max_classes)
        if shown is None:
            shown, labels, names, num_classes = img, lab, bundle.class_names, bundle.num_classes
        cap = capture(model, x, block)
        up = lambda a: F.interpolate(torch.from_numpy(a)[:, None], size=x.shape[2:], mode="bilinear",  # noqa: E731
                                     align_corners=False)[:, 0].numpy()
        blocks.add(f"{cap['block']} ({cap['shape'][2]}×{cap['shape'][3]})")
        rows.append((label, run, cap.get("map_title"), up(cap["map"]) if "map" in cap else None, up(cap["features"]), img))
    k = len(shown)
    # Columns: k gate panels, a colour bar, a gap, k feature panels, a colour bar. Sized to fit the
    # report's width at 150 dpi with 7-9 pt text.
    panel = min(1.0, (MAX_WIDTH_PX / FIG_DPI - 1.6) / (2 * k + 0.5))
    ratios = [1.0] * k + [0.07, 0.45] + [1.0] * k + [0.07]
    head = 0.16  # the input row's second title line
    fig = plt.figure(figsize=(panel * sum(ratios) + 1.1, (panel + 0.42) * (len(rows) + 1) + head + 0.2),
                     layout="constrained")
    subs = fig.subfigures(len(rows) + 1, 1, height_ratios=[panel + 0.42 + head] + [panel + 0.42] * len(rows))
    gate_cols, feat_cols = list(range(k)), list(range(k + 2, 2 * k + 2))

    def panels(sub, title, colour=None):
        axes = sub.subplots(1, len(ratios), gridspec_kw={"width_ratios": ratios})
        axes[k + 1].set_axis_off()
        for cbar in (axes[k], axes[-1]):
            cbar.set_box_aspect(1.0 / ratios[k])  # as tall as the square panels beside it
        for ax in axes:
            ax.set_xticks([])
            ax.set_yticks([])
        sub.suptitle(("     " if colour is not None else "") + title, x=0.0, ha="left", fontsize=8.5)
        if colour is not None:  # the setting's colour in the curves and the Pareto plot
            sub.text(0.004, 0.985, "■", ha="left", va="top", fontsize=11, color=colour, transform=sub.transSubfigure)
        return axes

    def outline(ax, image):
        gray = image if image.ndim == 2 else image.mean(-1)
        if gray.max() > gray.min():
            ax.contour(gray, levels=[(gray.max() + gray.min()) / 2], colors="white", linewidths=0.7)

    axes = panels(subs[0], "Inputs: the first validation image of each class (outlined in white on every map).\n"
                           f"Left {k} columns: the module's spatial gate; right {k}: the block's output features")
    for j in range(k):
        name = names[labels[j]] if names else str(labels[j])
        for col in (gate_cols[j], feat_cols[j]):
            axes[col].imshow(shown[j], cmap="gray")
            axes[col].set_title(name, fontsize=8)
    for col in (gate_cols[0], feat_cols[0]):
        axes[col].set_ylabel("input", fontsize=8)
    for ax in (axes[k], axes[-1]):
        ax.set_axis_off()
    for sub, (label, run, map_title, gate, feats, img) in zip(subs[1:], rows):
        axes = panels(sub, f"{label}: {run.describe()}", style.colour(label))
        for cols, maps, cbar, what in ((gate_cols, gate, axes[k], map_title), (feat_cols, feats, axes[-1], "mean_c |out|")):
            if maps is None:
                for col in cols:
                    axes[col].set_axis_off()
                axes[cols[len(cols) // 2]].text(0.5, 0.5, "no spatial gate\n(channel weights only)", ha="center",
                                                va="center", fontsize=8, color="0.35", transform=axes[cols[len(cols) // 2]].transAxes)
                cbar.set_axis_off()
                continue
            lo, hi = float(maps.min()), float(maps.max())
            for j, col in enumerate(cols):
                im = axes[col].imshow(maps[j], cmap="viridis", vmin=lo, vmax=hi)
                outline(axes[col], img[j])
            axes[cols[0]].set_ylabel(what, fontsize=8)
            bar = sub.colorbar(im, cax=cbar)
            bar.ax.tick_params(labelsize=7)
            bar.ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(3))
    shown_classes = f"{k} of {num_classes} classes" if k < num_classes else f"each of the {k} classes"
    set_caption(fig, f"Block {', '.join(sorted(blocks))}, on the first validation image of "
                     f"{shown_classes} (white: the input's outline). One row per attention setting; each row is the "
                     "run with the median val top-1 of its setting: "
                     + "; ".join(f"{label}: {run.describe()}" for label, run in runs.items())
                     + ". Left: the module's spatial gate (mean over channels); right: the block's output, mean over "
                       "channels of |out|; each colour bar is its row's scale.", title="Attention maps")
    return fig


def attention_runs(records: list[dict], store, where: Optional[dict] = None, style=None) -> dict[str, AttentionRun]:
    """The run that stands for each setting with an attention module (any registered kind but
    ``none``), by setting label (the table's, when the records carry it), in table order: the
    setting's completed run with a checkpoint whose val top-1 is the median (the upper one of
    an even count; ties by seed), so the maps show a run as good as the setting's typical one."""
    from ablate.report.plots import SettingStyle, completed_frame
    from ablate.track.store import RunDirStore

    if not isinstance(store, RunDirStore):
        raise ConfigError("attention maps need local run dirs with checkpoints; allowed source: the run-dir store")
    style = style if style is not None else SettingStyle()
    df, _ = completed_frame(records, where)
    kinds = set(attention_kinds())
    if "attention.kind" in df.columns:
        df = df[df["attention.kind"].isin(kinds)]
    else:
        df = df.iloc[0:0]
    df = df[[store.files(k).checkpoint.is_file() for k in df["run_key"]]] if len(df) else df
    picked: dict[str, AttentionRun] = {}
    for setting in style.order(df["setting"].unique()):
        sub = df[df["setting"] == setting].assign(_top1=lambda d: pd.to_numeric(d["top1"], errors="coerce"))
        sort = ["_top1", "seed"] if "seed" in sub.columns else ["_top1"]
        sub = sub.sort_values(sort, kind="stable", na_position="first")
        row = sub.iloc[len(sub) // 2]
        seed = row.get("seed")
        picked[setting] = AttentionRun(store.run_dir(row["run_key"]), str(row["run_key"]),
                                       None if pd.isna(row["_top1"]) else float(row["_top1"]),
                                       None if seed is None or pd.isna(seed) else int(seed), len(sub))
    if not picked:
        raise ConfigError("no completed CA, SE or CBAM run with a checkpoint.pt in this sweep; allowed: completed "
                          f"runs of an attention kind ({allowed(attention_kinds())}) with trainer.checkpoint=true")
    return picked
