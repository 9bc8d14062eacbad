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
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from ablate.errors import ConfigError, allowed

MIN_SIDE = 6


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
    import torch

    imgs, labels = zip(*(bundle.val[i] for i in range(min(n, len(bundle.val)))))
    raw = torch.stack(list(imgs)).float() / 255.0
    mean = torch.tensor(bundle.mean).view(1, -1, 1, 1)
    std = torch.tensor(bundle.std).view(1, -1, 1, 1)
    shown = raw[:, 0].numpy() if raw.shape[1] == 1 else raw.permute(0, 2, 3, 1).numpy()
    return (raw - mean) / std, shown, list(labels)


def plot_attention_maps(run_dirs: dict[str, str | Path], n_inputs: int = 4, block: Optional[int] = None):
    """One figure: rows = validation inputs; columns = the input, then per run (``{"CA": dir,
    "SE": dir, "CBAM": dir}``) its spatial map when it has one (CA, CBAM) and its block's output features."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch.nn.functional as F
    import torch

    if not run_dirs:
        raise ConfigError(f"attention maps: no run dirs; allowed: completed runs with checkpoints of an attention "
                          f"kind ({allowed(attention_kinds())})")
    panels, shown, labels, names = [], None, None, None
    for title, run_dir in run_dirs.items():
        model, bundle, _ = load_run(run_dir)
        x, img, lab = val_inputs(bundle, n_inputs)
        shown, labels, names = img, lab, bundle.class_names
        cap = capture(model, x, block)
        up = lambda a: F.interpolate(torch.from_numpy(a)[:, None], size=x.shape[2:], mode="bilinear",  # noqa: E731
                                     align_corners=False)[:, 0].numpy()
        where = f"{cap['block']} ({cap['shape'][2]}x{cap['shape'][3]})"
        if "map" in cap:
            panels.append((f"{title}: {cap['map_title']}\n{where}", up(cap["map"])))
        panels.append((f"{title}: output features\n{where}", up(cap["features"])))
    fig, axes = plt.subplots(len(shown), len(panels) + 1, figsize=(2.1 * (len(panels) + 1), 2.1 * len(shown)),
                             squeeze=False)
    for i in range(len(shown)):
        axes[i, 0].imshow(shown[i], cmap="gray")
        axes[i, 0].set_title(f"input: {names[labels[i]] if names else labels[i]}" if i == 0 else
                             (names[labels[i]] if names else str(labels[i])), fontsize=7)
        for j, (title, maps) in enumerate(panels, start=1):
            axes[i, j].imshow(shown[i], cmap="gray")
            axes[i, j].imshow(maps[i], cmap="jet", alpha=0.55)
            if i == 0:
                axes[i, j].set_title(title, fontsize=7)
    for ax in axes.flat:
        ax.set_axis_off()
    fig.suptitle("Attention maps on validation inputs (overlaid; red = high)", fontsize=9)
    fig.tight_layout()
    return fig


def attention_runs(records: list[dict], store, where: Optional[dict] = None) -> dict[str, Path]:
    """One completed run with a checkpoint per attention kind in the records (any registered kind
    but ``none``), titled by the kind in capitals, in the registry's order: the run whose attention
    knobs equal the kind's defaults first (CA with both branches before CA h-only / w-only), then
    the one differing in the fewest knobs, then the lowest seed."""
    import pandas as pd

    from ablate.errors import ConfigError, allowed
    from ablate.models.registry import knob_defaults
    from ablate.report.cells import RunFrame

    from ablate.track.store import RunDirStore

    if not isinstance(store, RunDirStore):
        raise ConfigError("attention maps need local run dirs with checkpoints; allowed source: the run-dir store")
    frame = RunFrame.build(records)
    df = frame.df[frame.mask({"status": "completed", **(where or {})})]
    present = set(df["attention.kind"].dropna()) if "attention.kind" in df.columns else set()
    picked: dict[str, Path] = {}
    for kind in (k for k in attention_kinds() if k in present):
        sub = df[df["attention.kind"] == kind]
        off = pd.Series(0, index=sub.index)  # knobs that differ from the kind's defaults
        for knob, default in knob_defaults(kind).items():
            col = f"attention.{knob}"
            if col in sub.columns:
                same = sub[col].isna() if default is None else sub[col].map(lambda v, d=default: v == d)
                off += (~same.astype(bool)).astype(int)
        sub = sub.assign(_knobs_off=off)
        order = ["_knobs_off", "seed"] if "seed" in sub.columns else ["_knobs_off"]
        for key in sub.sort_values(order, kind="stable")["run_key"]:
            if store.files(key).checkpoint.is_file():
                picked[kind.upper()] = store.run_dir(key)
                break
    if not picked:
        raise ConfigError("no completed CA, SE or CBAM run with a checkpoint.pt in this sweep; allowed: completed "
                          f"runs of an attention kind ({allowed(attention_kinds())}) with trainer.checkpoint=true")
    return picked
