"""Plots of a sweep (matplotlib, Agg backend; every figure saved as PNG and PDF).

- ``metric_vs``: a metric against a config knob (top-1 vs reduction ratio r), mean ± std error
  bars over seeds, one line per series (e.g. attention kind).
- ``pareto``: top-1 vs MAdds, every run faint, each setting's mean, and the Pareto front
  (fewest MAdds for the most top-1): from the sweep's Optuna study when one with matching
  metric names exists, else computed from the settings' means.
- ``curves``: per-epoch curves (``metrics.jsonl``) per setting, mean over seeds ± std band.

A setting is a set of runs that differ only in the seed; its label names the config keys that
vary between the settings of the plot (``kind=ca, branches=h``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Optional

import matplotlib

from ablate.errors import ConfigError

matplotlib.use("Agg")  # files only, never a display (CI, servers)
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ablate.report.cells import RunFrame, _is_poolable, _shown  # noqa: E402

LABELS = {"top1": "Top-1 (%)", "top5": "Top-5 (%)", "madds": "MAdds (M)", "params": "Params (M)",
          "val_top1": "val top-1 (%)", "val_loss": "val loss", "train_loss": "train loss", "latency_ms": "latency (ms)"}
SCALE = {"madds": 1e-6, "params": 1e-6}  # counts are plotted in millions


def completed_frame(records: Iterable[dict], where: Optional[dict] = None) -> tuple[pd.DataFrame, list[str]]:
    """Completed runs as a flat frame with a ``setting`` label column, and the varying keys."""
    frame = RunFrame.build(records)
    df = frame.df[frame.mask({"status": "completed", **(where or {})})].copy()
    cfg = [k for k in frame.config_keys if k in df.columns and not _is_poolable(k)]
    # Keys that only come and go with another key (CA's knobs exist only where kind=ca) add
    # nothing to a label: a key counts when its present values differ.
    varying = [k for k in cfg if df[k].dropna().astype(str).nunique() > 1]
    labels = df["setting"] if "setting" in df.columns else pd.Series(None, index=df.index, dtype=object)
    if varying:
        auto = df[varying].apply(lambda r: ", ".join(
            f"{k.split('.')[-1]}={_shown(v)}" for k, v in zip(varying, r) if _shown(v) != "(unset)"), axis=1)
    else:
        auto = pd.Series("all runs", index=df.index)
    df["setting"] = labels.where(labels.notna(), auto) if len(df) else auto
    return df, varying


def label_settings(records: Iterable[dict], labels: dict[str, str]) -> list[dict]:
    """Copies of ``records`` with ``setting`` set from ``labels`` (run key -> table cell label)."""
    return [{**r, "setting": labels[r["run_key"]]} if r.get("run_key") in labels else r for r in records]


def save_figure(fig, out_dir: str | Path, name: str) -> list[Path]:
    """Write ``<out_dir>/<name>.png`` (150 dpi) and ``.pdf``; close the figure."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.pdf"]
    fig.savefig(paths[0], dpi=150, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight")
    plt.close(fig)
    return paths


def _check_key(df: pd.DataFrame, key: str, what: str) -> None:
    if key not in df.columns:
        allowed = ", ".join(sorted(c for c in df.columns if c != "setting"))
        raise ConfigError(f"plot: unknown {what} {key!r}; allowed: {allowed or '(no completed runs)'}")


def plot_metric_vs(records: Iterable[dict], x: str, y: str = "top1", series: Optional[str] = None,
                   where: Optional[dict] = None, title: str = ""):
    """``y`` against config key ``x`` with mean ± std error bars; one line per ``series`` value."""
    df, _ = completed_frame(records, where)
    _check_key(df, x, "x key")
    _check_key(df, y, "metric")
    df["_y"] = pd.to_numeric(df[y], errors="coerce") * SCALE.get(y, 1.0)
    groups = df.groupby(df[series].astype(str)) if series else [(None, df)]
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for name, g in groups:
        agg = g.groupby(x)["_y"].agg(["mean", "std", "count"]).sort_index()
        xs = agg.index.to_numpy()
        numeric = pd.api.types.is_numeric_dtype(agg.index)
        pos = xs if numeric else np.arange(len(xs))
        ax.errorbar(pos, agg["mean"], yerr=agg["std"].fillna(0), marker="o", capsize=4,
                    label=f"{series.split('.')[-1]}={name}" if series else None)
        if not numeric:
            ax.set_xticks(pos, [str(v) for v in xs])
        for p, m, n in zip(pos, agg["mean"], agg["count"]):
            ax.annotate(f"n={n}", (p, m), textcoords="offset points", xytext=(4, 4), fontsize=7)
    if pd.api.types.is_numeric_dtype(df[x]) and (df[x] > 0).all() and df[x].max() / max(df[x].min(), 1e-12) >= 8:
        ax.set_xscale("log", base=2)  # reduction ratios 4..32 are spaced by factors of 2
        ax.set_xticks(sorted(df[x].unique()), [str(v) for v in sorted(df[x].unique())])
    ax.set_xlabel(x)
    ax.set_ylabel(LABELS.get(y, y) + " (mean ± std over seeds)")
    ax.set_title(title or f"{LABELS.get(y, y)} vs {x}")
    if series:
        _legend(ax)
    ax.grid(alpha=0.3)
    return fig


def pareto_front(points: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """Rows not dominated by another (another has x <= and y >= with one strict): min x, max y."""
    pts = points.sort_values([x, y], ascending=[True, False])
    best, keep = -np.inf, []
    for idx, yv in zip(pts.index, pts[y]):
        if yv > best:  # sorted by cost: a point is on the front iff it beats every cheaper one
            keep.append(idx)
            best = yv
    return pts.loc[keep]


def plot_pareto(records: Iterable[dict], x: str = "madds", y: str = "top1", series: Optional[str] = None,
                where: Optional[dict] = None, title: str = "", study_objectives: Optional[dict] = None):
    """``y`` vs ``x`` per run and per setting (mean), with the Pareto front.

    ``study_objectives`` (an Optuna sweep's manifest: objective -> direction): when the study
    minimises ``x`` and maximises ``y``, the front is its trials' (the completed runs'), as
    Optuna's ``best_trials``; otherwise the front of the setting means.
    """
    df, _ = completed_frame(records, where)
    _check_key(df, x, "x metric")
    _check_key(df, y, "metric")
    sx, sy = SCALE.get(x, 1.0), SCALE.get(y, 1.0)
    df["_x"], df["_y"] = pd.to_numeric(df[x], errors="coerce") * sx, pd.to_numeric(df[y], errors="coerce") * sy
    means = df.groupby("setting")[["_x", "_y"]].mean()
    fig, ax = plt.subplots(figsize=(6.0, 4.2))
    ax.scatter(df["_x"], df["_y"], s=10, alpha=0.3, color="grey", label="runs")
    # One colour per series value (e.g. attention kind); settings of one series share it.
    tags = df.groupby("setting")[series].first().astype(str) if series else None
    palette = {t: f"C{i % 10}" for i, t in enumerate(sorted(tags.unique()))} if series else {}
    for name, row in means.iterrows():
        ax.scatter(row["_x"], row["_y"], s=40, zorder=3, color=palette.get(tags[name], "C0") if series else "C0")
        ax.annotate(str(name), (row["_x"], row["_y"]), textcoords="offset points", xytext=(4, 3), fontsize=7)
    if (study_objectives or {}).get(x) == "minimize" and (study_objectives or {}).get(y) == "maximize":
        front, how = pareto_front(df[["_x", "_y"]].dropna(), "_x", "_y"), "Optuna study front (completed trials)"
    else:
        front, how = pareto_front(means, "_x", "_y"), "Pareto front of setting means"
    ax.step(front["_x"], front["_y"], where="post", color="black", lw=1.2, label=how, zorder=2)
    ax.scatter(front["_x"], front["_y"], s=80, facecolors="none", edgecolors="black", zorder=4)
    ax.margins(x=0.12, y=0.08)  # room for the setting labels at the edges
    ax.set_xlabel(LABELS.get(x, x))
    ax.set_ylabel(LABELS.get(y, y))
    ax.set_title(title or f"{LABELS.get(y, y)} vs {LABELS.get(x, x)}")
    _legend(ax)
    ax.grid(alpha=0.3)
    return fig


def plot_curves(records: Iterable[dict], metrics_of, y: str = "val_top1", series: Optional[str] = None,
                where: Optional[dict] = None, title: str = ""):
    """Per-epoch ``y`` per setting: mean over seeds, ± std band. ``metrics_of(run_key)`` gives
    the run's ``metrics.jsonl`` rows (``ResultsStore.metrics``)."""
    df, _ = completed_frame(records, where)
    if series:
        _check_key(df, series, "series key")
        df["setting"] = series.split(".")[-1] + "=" + df[series].astype(str)
    rows = []
    for key, setting in zip(df["run_key"], df["setting"]):
        for r in metrics_of(key):
            if r.get(y) is not None and "epoch" in r:
                rows.append({"setting": setting, "epoch": int(r["epoch"]) + 1, "y": float(r[y]), "run_key": key})
    if not rows:
        raise ConfigError(f"plot curves: no per-epoch rows with {y!r} in the completed runs (metrics.jsonl)")
    long = pd.DataFrame(rows)
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    for i, (name, g) in enumerate(long.groupby("setting", sort=True)):
        agg = g.groupby("epoch")["y"].agg(["mean", "std", "count"])
        n = g["run_key"].nunique()
        ax.plot(agg.index, agg["mean"], marker=".", color=f"C{i % 10}", label=f"{name} (n={n})")
        lo, hi = agg["mean"] - agg["std"].fillna(0), agg["mean"] + agg["std"].fillna(0)
        if "top1" in y or "top5" in y:  # a ± std band of an accuracy stops at 0 and 100 %
            lo, hi = lo.clip(0, 100), hi.clip(0, 100)
        ax.fill_between(agg.index, lo, hi, color=f"C{i % 10}", alpha=0.15)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(LABELS.get(y, y))
    ax.set_title(title or f"{LABELS.get(y, y)} per epoch (mean ± std over seeds)")
    _legend(ax)
    ax.grid(alpha=0.3)
    return fig


def _legend(ax) -> None:
    """Legend outside the axes, right: long setting names never cover the data."""
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
