"""Plots of a sweep (matplotlib, Agg backend; every figure saved as PNG and PDF).

- ``metric_vs``: a metric against a config knob (top-1 vs reduction ratio r), mean ± std error
  bars over seeds, one line per series (e.g. attention kind).
- ``pareto``: top-1 vs MAdds, every run faint, each setting's mean, and the Pareto front
  (fewest MAdds for the most top-1): from the sweep's Optuna study when one with matching
  metric names exists, else computed from the settings' means.
- ``curves``: per-epoch curves (``metrics.jsonl``) per setting, mean over seeds ± std band.

A setting is a set of runs that differ only in the seed; its label is its table cell's (``+ CA
(H+W)``, ``+ SE / ×0.5``) when the report labelled the records, else it names the config keys
that vary between the settings of the plot (``kind=ca, branches=h``).

Every plot of one report draws with one ``SettingStyle``: one colour per table row (so one per
setting of a table without columns; the same in the curves, the Pareto plot and the attention
maps), one marker per table column, legends in table order. Each figure carries a caption
(``caption_of``) that says what its points, bars and bands are and over how many seeds. Labels
beside points are placed by ``place_labels`` so that no two overlap (checked with the
renderer's text extents).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import matplotlib

from ablate.errors import ConfigError

matplotlib.use("Agg")  # files only, never a display (CI, servers)
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from matplotlib.transforms import Bbox  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ablate.report.cells import RunFrame, _is_poolable, _shown, layout  # noqa: E402

LABELS = {"top1": "Top-1 (%)", "top5": "Top-5 (%)", "madds": "MAdds (M)", "params": "Params (M)",
          "val_top1": "val top-1 (%)", "val_loss": "val loss", "train_loss": "train loss", "latency_ms": "latency (ms)"}
SCALE = {"madds": 1e-6, "params": 1e-6}  # counts are plotted in millions
FIG_DPI = 150
# The report shows each PNG at its own pixel size (never scaled down, so 7 pt text stays ~15 px):
# no PNG is wider than this, which fits a 1280 px window less the page's margins.
MAX_WIDTH_PX = 1150
# tab10, then the light halves of tab20: one colour per table row, in table order.
PALETTE = [*(f"C{i}" for i in range(10)), "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
           "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*", "h", "<", ">"]
MAX_LABELLED = 12  # a Pareto plot with more settings labels only those on its front, and has no per-setting legend


class SettingStyle:
    """Colour, marker and legend order of the settings of one report.

    A setting belongs to a table row (its colour) and optionally a column (its marker); rows and
    columns get colours and markers in the order they are added (table order). A label never
    added (a plot without a table) is added on first use: ``order`` adds unknown labels sorted,
    so a report's plots agree as long as they ask in the same order.
    """

    def __init__(self, settings: Iterable[str] = ()):
        self._cell: dict[str, tuple[str, Optional[str]]] = {}  # setting -> (row, column)
        self._colour: dict[str, str] = {}  # row -> colour
        self._marker: dict[str, str] = {}  # column -> marker
        for s in settings:
            self.add(s)

    def add(self, setting: str, row: Optional[str] = None, column: Optional[str] = None) -> None:
        row = setting if row is None else row
        self._cell.setdefault(setting, (row, column))
        self._colour.setdefault(row, PALETTE[len(self._colour) % len(PALETTE)])
        if column is not None:
            self._marker.setdefault(column, MARKERS[len(self._marker) % len(MARKERS)])

    def add_table(self, spec: Any, records: Iterable[dict]) -> "SettingStyle":
        """Every cell of table ``spec`` (``row`` or ``row / column``, as ``cells.setting_labels``
        names them), rows and columns in the table's order."""
        frame = RunFrame.build(records)
        if frame.df.empty and spec.rows is None:
            return self
        rows, cols = layout(spec, frame)
        for rlabel, _, _ in rows:
            for clabel, _ in cols:
                self.add(rlabel if clabel is None else f"{rlabel} / {clabel}", rlabel, clabel)
        return self

    def order(self, settings: Iterable[str]) -> list[str]:
        """``settings`` (unique) in table order; labels not yet known go last, sorted, and are added."""
        settings = list(dict.fromkeys(str(s) for s in settings))
        for s in sorted(s for s in settings if s not in self._cell):
            self.add(s)
        rank = {s: i for i, s in enumerate(self._cell)}
        return sorted(settings, key=rank.__getitem__)

    def colour(self, setting: str) -> str:
        if setting not in self._cell:
            self.add(setting)
        return self._colour[self._cell[setting][0]]

    def marker(self, setting: str, default: str = "o") -> str:
        column = self._cell.get(setting, (None, None))[1]
        return self._marker.get(column, default) if column is not None else default

    def row(self, setting: str) -> str:
        return self._cell.get(setting, (setting, None))[0]

    @property
    def has_columns(self) -> bool:
        return bool(self._marker)


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


def save_figure(fig, out_dir: str | Path, name: str, max_width_px: Optional[int] = MAX_WIDTH_PX) -> list[Path]:
    """Write ``<out_dir>/<name>.png`` and ``.pdf``; close the figure.

    The PNG is drawn at ``FIG_DPI`` (150) unless that would make it wider than ``max_width_px``,
    then at the dpi that fits: the report shows every PNG at its own size, never scaled down.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.pdf"]
    dpi = float(FIG_DPI)
    if max_width_px:
        width_in = fig.get_tightbbox(fig.canvas.get_renderer()).width + 2 * 0.1  # + savefig's pad_inches
        dpi = min(dpi, 0.98 * max_width_px / width_in)
    fig.savefig(paths[0], dpi=dpi, bbox_inches="tight")
    if max_width_px:  # text extents (so the tight box) shift a little with the dpi: check the file
        from PIL import Image

        with Image.open(paths[0]) as im:
            width = im.size[0]
        if width > max_width_px:
            fig.savefig(paths[0], dpi=dpi * 0.99 * max_width_px / width, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight")
    plt.close(fig)
    return paths


def set_caption(fig, text: str, title: str = "") -> None:
    """Attach the sentences that say what a figure shows (its bands, bars, points, n) and its
    title: the report prints them under the figure."""
    fig.ablate_caption = text
    fig.ablate_title = title


def caption_of(fig) -> str:
    """The caption ``set_caption`` attached ('' when none)."""
    return getattr(fig, "ablate_caption", "")


def title_of(fig) -> str:
    """The title ``set_caption`` attached ('' when none)."""
    return getattr(fig, "ablate_title", "")


def _check_key(df: pd.DataFrame, key: str, what: str) -> None:
    if key not in df.columns:
        allowed = ", ".join(sorted(c for c in df.columns if c != "setting"))
        raise ConfigError(f"plot: unknown {what} {key!r}; allowed: {allowed or '(no completed runs)'}")


def plot_metric_vs(records: Iterable[dict], x: str, y: str = "top1", series: Optional[str] = None,
                   where: Optional[dict] = None, title: str = "", style: Optional[SettingStyle] = None):
    """``y`` against config key ``x`` with mean ± std error bars; one line per ``series`` value.

    A line whose points all belong to one table row takes that row's colour and name; a line
    across rows (top-1 vs r, one row per r) is dark grey with each point in its setting's colour.
    """
    df, _ = completed_frame(records, where)
    _check_key(df, x, "x key")
    _check_key(df, y, "metric")
    style = style if style is not None else SettingStyle()
    settings = style.order(df["setting"].unique())
    rank = {s: i for i, s in enumerate(settings)}
    df["_y"] = pd.to_numeric(df[y], errors="coerce") * SCALE.get(y, 1.0)
    groups = list(df.groupby(df[series].astype(str))) if series else [(None, df)]
    groups.sort(key=lambda ng: min(rank[s] for s in ng[1]["setting"]))  # lines in table order
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    counts, point_settings, n_labels, n_lines = [], {}, [], []
    for name, g in groups:
        agg = g.groupby(x).agg(mean=("_y", "mean"), std=("_y", "std"), count=("_y", "count"),
                               setting=("setting", lambda s: s.iloc[0] if s.nunique() == 1 else None)).sort_index()
        counts += list(agg["count"])
        xs = agg.index.to_numpy()
        numeric = pd.api.types.is_numeric_dtype(agg.index)
        pos = xs if numeric else np.arange(len(xs))
        rows = {style.row(s) for s in g["setting"]}
        one_row = len(rows) == 1
        colour = style.colour(g["setting"].iloc[0]) if one_row else "0.3"
        label = (next(iter(rows)) if one_row else f"{series.split('.')[-1]}={name}") if series else None
        ax.errorbar(pos, agg["mean"], yerr=agg["std"].fillna(0), marker="o", capsize=4, color=colour, label=label,
                    zorder=2)
        if not one_row:  # each point in its setting's colour
            for p, m, s in zip(pos, agg["mean"], agg["setting"]):
                if s is not None:
                    ax.scatter([p], [m], s=45, color=style.colour(s), marker=style.marker(s), zorder=3,
                               edgecolors="white", linewidths=0.6)
                    point_settings[s] = True
        if not numeric:
            ax.set_xticks(pos, [str(v) for v in xs])
        sd = agg["std"].fillna(0)
        n_labels += [(float(p), float(m), f"n={n}") for p, m, n in zip(pos, agg["mean"], agg["count"])]
        n_lines += [list(zip(map(float, pos), map(float, agg["mean"])))]
        n_lines += [[(float(p), float(m - e)), (float(p), float(m + e))] for p, m, e in zip(pos, agg["mean"], sd)]
    if pd.api.types.is_numeric_dtype(df[x]) and (df[x] > 0).all() and df[x].max() / max(df[x].min(), 1e-12) >= 8:
        ax.set_xscale("log", base=2)  # reduction ratios 4..32 are spaced by factors of 2
        ax.set_xticks(sorted(df[x].unique()), [str(v) for v in sorted(df[x].unique())])
    ax.set_xlabel(x)
    ax.set_ylabel(LABELS.get(y, y) + " (mean ± std over seeds)")
    ax.set_title(title or f"{LABELS.get(y, y)} vs {x}")
    handles, labels = ax.get_legend_handles_labels()
    for s in style.order(point_settings):
        handles.append(Line2D([], [], ls="", marker=style.marker(s), color=style.colour(s), markersize=7))
        labels.append(s)
    if handles:
        _legend(ax, handles, labels)
    ax.grid(alpha=0.3)
    ax.margins(x=0.08, y=0.1)
    fig.ablate_labels = place_labels(ax, n_labels, polylines=n_lines)  # each point's n, clear of lines and bars
    set_caption(fig, f"Points: mean {LABELS.get(y, y)} over seeds; error bars: ± 1 std over the seeds "
                     f"({_seeds_text(counts)}; n beside each point).", title=ax.get_title())
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
                where: Optional[dict] = None, title: str = "", study_objectives: Optional[dict] = None,
                style: Optional[SettingStyle] = None):
    """``y`` vs ``x`` per run and per setting (mean), with the Pareto front.

    ``study_objectives`` (an Optuna sweep's manifest: objective -> direction): when the study
    minimises ``x`` and maximises ``y``, the front is its trials' (the completed runs'), as
    Optuna's ``best_trials``; otherwise the front of the setting means. Each setting has its
    colour (``style``) and a marker per table column, else per ``series`` value. Up to
    ``MAX_LABELLED`` settings are all labelled and in the legend, in table order; with more (a
    tuning study's trials) only the settings on the front are labelled.
    """
    df, _ = completed_frame(records, where)
    _check_key(df, x, "x metric")
    _check_key(df, y, "metric")
    if series:
        _check_key(df, series, "series key")
    style = style if style is not None else SettingStyle()
    sx, sy = SCALE.get(x, 1.0), SCALE.get(y, 1.0)
    df["_x"], df["_y"] = pd.to_numeric(df[x], errors="coerce") * sx, pd.to_numeric(df[y], errors="coerce") * sy
    means = df.groupby("setting")[["_x", "_y"]].mean()
    counts = df.groupby("setting")["_y"].count()
    settings = style.order(means.index)
    many = len(settings) > MAX_LABELLED
    # Marker: the table column when the table has columns, else the series value (attention kind).
    tags = df.groupby("setting")[series].first().astype(str) if series else None
    tag_marker = {t: MARKERS[i % len(MARKERS)] for i, t in enumerate(dict.fromkeys(tags[s] for s in settings))} if series else {}

    def marker(s: str) -> str:
        return style.marker(s) if style.has_columns else tag_marker.get(tags[s], "o") if series else "o"

    fig, ax = plt.subplots(figsize=(6.0, 4.2))
    for s in settings:
        g = df[df["setting"] == s]
        colour = "0.55" if many else style.colour(s)
        ax.scatter(g["_x"], g["_y"], s=12, alpha=0.35, color=colour, marker=marker(s), linewidths=0, zorder=1)
        ax.scatter([means.loc[s, "_x"]], [means.loc[s, "_y"]], s=55, zorder=3, color="C0" if many else colour,
                   marker=marker(s), edgecolors="white", linewidths=0.7,
                   label=None if many else f"{s} (n={counts[s]})")
    study = (study_objectives or {}).get(x) == "minimize" and (study_objectives or {}).get(y) == "maximize"
    if study:
        front, how = pareto_front(df[["_x", "_y", "setting"]].dropna(subset=["_x", "_y"]), "_x", "_y"), \
            "Optuna study front (completed trials)"
    else:
        front, how = pareto_front(means, "_x", "_y"), "Pareto front of setting means"
    ax.step(front["_x"], front["_y"], where="post", color="black", lw=1.2, label=how, zorder=2)
    ax.scatter(front["_x"], front["_y"], s=110, facecolors="none", edgecolors="black", linewidths=1.0, zorder=4)
    ax.margins(x=0.15, y=0.12)  # room for the setting labels at the edges
    ax.set_xlabel(LABELS.get(x, x))
    ax.set_ylabel(LABELS.get(y, y))
    ax.set_title(title or f"{LABELS.get(y, y)} vs {LABELS.get(x, x)}")
    handles, labels = ax.get_legend_handles_labels()
    handles.insert(0, Line2D([], [], ls="", marker="o", color="0.55", alpha=0.5, markersize=4))
    labels.insert(0, "single runs")
    _legend(ax, handles, labels)
    ax.grid(alpha=0.3)
    if many:  # label the front only: its settings (a study's front: the setting of each trial on it)
        on_front = front["setting"] if study else pd.Series(front.index, index=front.index)
        items = [(float(fx), float(fy), str(s)) for fx, fy, s in zip(front["_x"], front["_y"], on_front)]
        others = [(float(means.loc[s, "_x"]), float(means.loc[s, "_y"])) for s in settings]
    else:
        items = [(float(means.loc[s, "_x"]), float(means.loc[s, "_y"]), s) for s in settings]
        others = [(float(a), float(b)) for a, b in zip(front["_x"], front["_y"])]
    fx, fy = front["_x"].to_numpy(float), front["_y"].to_numpy(float)
    step = [(a, b) for k in range(len(fx)) for a, b in ([(fx[k], fy[k])] if k == 0 else [(fx[k], fy[k - 1]), (fx[k], fy[k])])]
    fig.ablate_labels = place_labels(ax, [i for i in items if np.isfinite(i[0]) and np.isfinite(i[1])], others,
                                     polylines=[step])
    set_caption(fig, f"Faint markers: single runs; solid markers: each setting's mean over its seeds "
                     f"({_seeds_text(counts)}); black steps and rings: the "
                     + ("Optuna study's front (its completed trials). " if study else "Pareto front of the setting means. ")
                     + ("Labels: the settings on the front." if many else "Labels and legend: every setting, in table order."),
                title=ax.get_title())
    return fig


def plot_curves(records: Iterable[dict], metrics_of, y: str = "val_top1", series: Optional[str] = None,
                where: Optional[dict] = None, title: str = "", style: Optional[SettingStyle] = None):
    """Per-epoch ``y`` per setting: mean over seeds, ± std band. ``metrics_of(run_key)`` gives
    the run's ``metrics.jsonl`` rows (``ResultsStore.metrics``). With ``series``, one curve per
    value of that key, named by its table setting when the value is one setting."""
    df, _ = completed_frame(records, where)
    if series:
        _check_key(df, series, "series key")
        by_value = df.groupby(df[series].astype(str))["setting"].agg(lambda s: s.iloc[0] if s.nunique() == 1 else None)
        one_each = by_value.notna().all() and by_value.nunique() == len(by_value)
        df["setting"] = (df[series].astype(str).map(by_value) if one_each
                         else series.split(".")[-1] + "=" + df[series].astype(str))
    style = style if style is not None else SettingStyle()
    rows = []
    for key, setting in zip(df["run_key"], df["setting"]):
        for r in metrics_of(key):
            if r.get(y) is not None and "epoch" in r:
                rows.append({"setting": setting, "epoch": int(r["epoch"]) + 1, "y": float(r[y]), "run_key": key})
    if not rows:
        raise ConfigError(f"plot curves: no per-epoch rows with {y!r} in the completed runs (metrics.jsonl)")
    long = pd.DataFrame(rows)
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    counts = []
    bounded = "top1" in y or "top5" in y
    for name in style.order(long["setting"].unique()):
        g = long[long["setting"] == name]
        agg = g.groupby("epoch")["y"].agg(["mean", "std", "count"])
        n = g["run_key"].nunique()
        counts.append(n)
        colour = style.colour(name)
        ax.plot(agg.index, agg["mean"], marker=".", color=colour, label=f"{name} (n={n})")
        lo, hi = agg["mean"] - agg["std"].fillna(0), agg["mean"] + agg["std"].fillna(0)
        if bounded:  # a ± std band of an accuracy stops at 0 and 100 %
            lo, hi = lo.clip(0, 100), hi.clip(0, 100)
        ax.fill_between(agg.index, lo, hi, color=colour, alpha=0.15)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(LABELS.get(y, y))
    ax.set_title(title or f"{LABELS.get(y, y)} per epoch (mean ± std over seeds)")
    _legend(ax)
    ax.grid(alpha=0.3)
    set_caption(fig, f"Lines: mean {LABELS.get(y, y)} per epoch over seeds; bands: ± 1 std over the seeds "
                     f"({_seeds_text(counts)})" + (", clipped to 0–100 %." if bounded else "."), title=ax.get_title())
    return fig


def _seeds_text(counts: Iterable[int]) -> str:
    """'n = 10 seeds per setting' or 'n = 8-10 seeds per setting (each in the legend)'."""
    counts = sorted({int(c) for c in counts})
    if not counts:
        return "no seeds"
    if len(counts) == 1:
        return f"n = {counts[0]} seed{'s' if counts[0] != 1 else ''} per setting"
    return f"n = {counts[0]}–{counts[-1]} seeds per setting (each setting's n in the legend)"


def place_labels(ax, items: Sequence[tuple[float, float, str]], obstacles: Sequence[tuple[float, float]] = (),
                 polylines: Sequence[Sequence[tuple[float, float]]] = (), marker_pt: float = 5.0,
                 fontsize: float = 7.0, **text_kw) -> list:
    """Annotate each ``(x, y, text)`` (data coordinates) beside its point so that no label
    overlaps another label, a point (the items' own and ``obstacles``) or a line drawn through
    ``polylines`` (vertices in data coordinates, e.g. a Pareto step), and stays inside the axes:
    candidate offsets at growing distances around the point, the first free one wins (judged by
    the renderer's text extents); a far label gets a thin leader line. A label with no free
    place is left out. The axes limits are frozen first (labels are placed in display space).
    Returns the placed annotations.
    """
    fig = ax.figure
    ax.set_xlim(ax.get_xlim())
    ax.set_ylim(ax.get_ylim())
    renderer = fig.canvas.get_renderer()
    box = ax.get_window_extent(renderer)
    px = fig.dpi / 72.0
    pts = [(x, y) for x, y, _ in items] + list(obstacles)
    taken = [Bbox.from_bounds(cx - marker_pt * px, cy - marker_pt * px, 2 * marker_pt * px, 2 * marker_pt * px)
             for cx, cy in ax.transData.transform(np.asarray(pts, dtype=float).reshape(-1, 2))]
    samples = [np.empty((0, 2))]  # points along the lines, every pixel or so (display space)
    for line in polylines:
        xy = ax.transData.transform(np.asarray(line, dtype=float).reshape(-1, 2))
        for a, b in zip(xy[:-1], xy[1:]):
            steps = max(2, int(np.hypot(*(b - a))) + 1)
            samples.append(a + np.linspace(0.0, 1.0, steps)[:, None] * (b - a))
    on_lines = np.concatenate(samples)

    def free(bb: Bbox) -> bool:
        if not (bb.x0 >= box.x0 and bb.x1 <= box.x1 and bb.y0 >= box.y0 and bb.y1 <= box.y1):
            return False
        if any(bb.overlaps(o) for o in taken):
            return False
        x, y = on_lines[:, 0], on_lines[:, 1]
        return not ((x >= bb.x0) & (x <= bb.x1) & (y >= bb.y0) & (y <= bb.y1)).any()

    dirs = [(1, 1), (1, -1), (-1, 1), (-1, -1), (1, 0), (-1, 0), (0, 1), (0, -1)]
    placed = []
    for x, y, text in items:
        for radius in (4, 9, 15, 24, 36, 52):
            hit = None
            for dx, dy in dirs:
                scale = math.sqrt(2) if dx and dy else 1.0
                off = (dx * radius / scale, dy * radius / scale)
                kw = dict(ha="left" if dx > 0 else "right" if dx < 0 else "center",
                          va="bottom" if dy > 0 else "top" if dy < 0 else "center", fontsize=fontsize, **text_kw)
                t = ax.annotate(text, (x, y), xytext=off, textcoords="offset points", **kw)
                bb = t.get_window_extent(renderer).padded(1.5 * px)
                t.remove()
                if free(bb):
                    hit = (off, kw, bb)
                    break
            if hit is not None:
                off, kw, bb = hit
                arrow = dict(arrowstyle="-", color="0.45", lw=0.6, shrinkA=1, shrinkB=marker_pt) if radius >= 15 else None
                placed.append(ax.annotate(text, (x, y), xytext=off, textcoords="offset points", arrowprops=arrow, **kw))
                taken.append(bb)
                break
    return placed


def text_boxes(fig, texts: Iterable) -> list[Bbox]:
    """The display-space extents of ``texts`` (annotations: the text only, not a leader line)."""
    from matplotlib.text import Text

    renderer = fig.canvas.get_renderer()
    return [Text.get_window_extent(t, renderer) for t in texts]


def _legend(ax, handles=None, labels=None) -> None:
    """Legend outside the axes, right: long setting names never cover the data."""
    kw = dict(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    if handles is None:
        ax.legend(**kw)
    else:
        ax.legend(handles, labels, **kw)
