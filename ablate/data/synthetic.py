"""Generated datasets (no download): ``alignment`` (the embedded default) and ``position``.

``alignment`` — why: Coordinate Attention pools along W and along H, so every pixel gets
row-wide and column-wide context; it adds no absolute-position signal (docs/recipe.md, "The
task"). The label therefore asks a row/column question:

- each grayscale image holds a filled square and a disc (both ``object_size`` px wide,
  intensity 255) plus ``clutter`` short strokes (1-3 px, same intensity, never touching an
  object), on a ``image_size``² canvas;
- class 0 ``same_row``: both objects cover exactly the same rows (columns disjoint, >= 1 px
  apart); class 1 ``same_column``: the transpose; class 2 ``neither``: rows disjoint and
  columns disjoint. Partial overlaps never occur, so every label is unambiguous;
- no absolute-position shortcut: the square's top-left is uniform over the grid in every
  class, and so is the disc's (it is the square's position plus a class-dependent offset
  taken modulo the grid, which maps a uniform position to a uniform position);
- objects stay ``margin`` px inside the border, so a random crop with padding <= ``margin``
  never clips one and a horizontal flip keeps every relation: augmentation preserves labels;
- classes are exactly balanced (counts differ by at most one), in a seeded random order.

``position`` — a control where CA should not help: one filled square lies inside one of
four quadrants (the label), plus clutter. Flips change the label: train it with augment off.

Arrays are cached as ``<root>/<name>/<hash of params>.npz`` (written atomically) and
reloaded on the next call; the same params and seed give byte-identical arrays.
"""
from __future__ import annotations

import hashlib
import json
import time
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np

from ablate.data._checks import check_int
from ablate.data.registry import DataBundle, register_dataset
from ablate.data.tensor import TensorImageDataset, channel_stats
from ablate.errors import ConfigError
from ablate.io import atomic_write

# Bump when the generator's output changes for the same params: it re-keys the cache.
GENERATOR_VERSION = 1
ALIGNMENT_CLASSES = ("same_row", "same_column", "neither")
POSITION_CLASSES = ("top_left", "top_right", "bottom_left", "bottom_right")
_INK = 255
_STROKE_MAX = 3  # clutter strokes are 1..3 px: too small to be mistaken for a whole object


def object_stamps(k: int) -> tuple[np.ndarray, np.ndarray]:
    """(square, disc) k×k boolean masks; the disc drops the corners (radius² = 0.8·(k/2)²)."""
    yy, xx = np.mgrid[0:k, 0:k] - (k - 1) / 2
    # 0.8 makes a 3 px disc a plus sign rather than a full square, and rounds larger ones.
    disc = yy**2 + xx**2 <= 0.8 * (k / 2) ** 2
    return np.ones((k, k), dtype=bool), disc


def _stamp(canvas: np.ndarray, mask: np.ndarray, top: np.ndarray, left: np.ndarray) -> None:
    """Set ``mask`` (k×k) at per-image (top, left) to ink, on every image at once."""
    k = mask.shape[0]
    n = np.arange(canvas.shape[0])[:, None, None]
    rows = top[:, None, None] + np.arange(k)[None, :, None]
    cols = left[:, None, None] + np.arange(k)[None, None, :]
    canvas[n, rows, cols] = np.where(mask, _INK, canvas[n, rows, cols])


def _add_clutter(canvas: np.ndarray, boxes: list[tuple[np.ndarray, np.ndarray]], k: int,
                 clutter: int, rng: np.random.Generator) -> None:
    """Draw ``clutter`` short strokes per image, kept >= 1 px away from every object box."""
    n, s, _ = canvas.shape
    if clutter == 0:
        return
    sr = rng.integers(0, s, (n, clutter))
    sc = rng.integers(0, s, (n, clutter))
    vertical = rng.integers(0, 2, (n, clutter))
    length = rng.integers(1, _STROKE_MAX + 1, (n, clutter))
    a = _STROKE_MAX  # apron: strokes may run off the edge, and the grown boxes too
    layer = np.zeros((n, s + 2 * a, s + 2 * a), dtype=np.uint8)
    img = np.broadcast_to(np.arange(n)[:, None], (n, clutter))
    for j in range(_STROKE_MAX):
        on = j < length
        layer[img[on], a + (sr + j * vertical)[on], a + (sc + j * (1 - vertical))[on]] = _INK
    # Forbidden zone: each object's box grown by 1 px, so clutter never changes an object's shape.
    forbid = np.zeros(layer.shape, dtype=bool)
    for top, left in boxes:
        _stamp(forbid, np.ones((k + 2, k + 2), dtype=bool), top + a - 1, left + a - 1)
    layer[forbid] = 0
    np.maximum(canvas, layer[:, a:a + s, a:a + s], out=canvas)


def balanced_labels(n: int, num_classes: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` labels, class counts differing by at most one, in a random order."""
    return rng.permutation(np.arange(n) % num_classes).astype(np.int64)


def generate_alignment(n: int, rng: np.random.Generator, *, image_size: int = 24, clutter: int = 8,
                       object_size: int = 4, margin: int = 2) -> tuple[np.ndarray, np.ndarray, dict]:
    """``n`` alignment images (uint8 n,1,S,S), labels (int64) and object positions.

    Returns the positions as ``{"square": (top, left), "disc": (top, left)}`` arrays so tests
    can check the label rule and the absence of position shortcuts.
    """
    k, s = object_size, image_size
    grid = s - 2 * margin - k + 1  # top-left positions per axis
    labels = balanced_labels(n, 3, rng)
    r1, c1 = rng.integers(0, grid, n), rng.integers(0, grid, n)
    # Offsets modulo `grid` keep the disc uniform too. Aligned pairs: gap >= 1 px (d in
    # [k+1, grid-k-1] and grid-d likewise); "neither": spans disjoint (d, grid-d >= k).
    aligned_gap = rng.integers(k + 1, grid - k, n)
    dr_free, dc_free = rng.integers(k, grid - k + 1, n), rng.integers(k, grid - k + 1, n)
    dr = np.select([labels == 0, labels == 1], [0, aligned_gap], dr_free)
    dc = np.select([labels == 0, labels == 1], [aligned_gap, 0], dc_free)
    r2, c2 = (r1 + dr) % grid, (c1 + dc) % grid
    square, disc = object_stamps(k)
    canvas = np.zeros((n, s, s), dtype=np.uint8)
    boxes = [(r1 + margin, c1 + margin), (r2 + margin, c2 + margin)]
    _stamp(canvas, square, *boxes[0])
    _stamp(canvas, disc, *boxes[1])
    _add_clutter(canvas, boxes, k, clutter, rng)
    return canvas[:, None], labels, {"square": boxes[0], "disc": boxes[1]}


def generate_position(n: int, rng: np.random.Generator, *, image_size: int = 24, clutter: int = 8,
                      object_size: int = 4, margin: int = 2) -> tuple[np.ndarray, np.ndarray, dict]:
    """``n`` position images: a square fully inside quadrant ``label`` (>= margin from its edges)."""
    k, s = object_size, image_size
    half = s // 2
    grid = half - 2 * margin - k + 1
    labels = balanced_labels(n, 4, rng)
    top = rng.integers(0, grid, n) + margin + half * (labels // 2)
    left = rng.integers(0, grid, n) + margin + half * (labels % 2)
    canvas = np.zeros((n, s, s), dtype=np.uint8)
    _stamp(canvas, object_stamps(k)[0], top, left)
    _add_clutter(canvas, [(top, left)], k, clutter, rng)
    return canvas[:, None], labels, {"square": (top, left)}


def _check_params(name: str, image_size, n_train, n_val, clutter, object_size, margin) -> None:
    """Validate generator params (one-line ValueErrors) before any array is allocated."""
    check_int(name, "image_size", image_size, 12, 256)
    check_int(name, "n_train", n_train, 4, 2_000_000)
    check_int(name, "n_val", n_val, 4, 2_000_000)
    check_int(name, "clutter", clutter, 0, 64)
    check_int(name, "object_size", object_size, 3, 8)
    check_int(name, "margin", margin, 0, 8)
    # Room needed per axis: alignment needs grid >= 2k+2 (an aligned pair >= 1 px apart both
    # ways round the modulo); position needs one object per half-canvas quadrant.
    if name == "alignment":
        need = 3 * object_size + 1 + 2 * margin
    else:
        need = 2 * (object_size + 2 * margin)
    if image_size < need:
        raise ConfigError(f"{name}: image_size={image_size} is too small for object_size={object_size}"
                         f" and margin={margin}; need image_size >= {need}")


def generated_arrays(name: str, make: Callable, root: Path | None, seed: int, params: dict,
                     version: int = GENERATOR_VERSION) -> tuple[dict, Path | None, str, float]:
    """(arrays, cache path, "cache" | "generated", seconds generating) of a generated dataset.

    The arrays of (name, version, seed, params) are read from ``<root>/<name>/<digest>.npz`` or
    made by ``make(n, rng) -> (x, y)`` on separate train/val streams (changing n_val never
    changes the training set) and cached there (atomic write).
    """
    key = json.dumps({"name": name, "version": version, "seed": seed, **params}, sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    path = None if root is None else Path(root) / name / f"{digest}.npz"
    arrays, source = None, "generated"
    if path is not None and path.exists():
        try:
            with np.load(path) as z:
                arrays = {k: z[k] for k in ("x_train", "y_train", "x_val", "y_val")}
            source = "cache"
        except (OSError, KeyError, ValueError, zipfile.BadZipFile):
            arrays = None  # unreadable cache (e.g. copied half-way): regenerate and overwrite
    gen_s = 0.0
    if arrays is None:
        t0 = time.perf_counter()
        xt, yt = make(params["n_train"], np.random.default_rng([seed, 0]))
        xv, yv = make(params["n_val"], np.random.default_rng([seed, 1]))
        gen_s = time.perf_counter() - t0
        arrays = {"x_train": xt, "y_train": yt, "x_val": xv, "y_val": yv}
        if path is not None:
            atomic_write(path, lambda fh: np.savez(fh, **arrays), mode="wb")
    return arrays, path, source, gen_s


def _generated_bundle(name: str, generate: Callable, classes: tuple[str, ...], root: Path | None,
                      seed: int, params: dict) -> DataBundle:
    """Load the cached arrays for (name, params, seed) or generate, cache and return them."""
    opts = {k: params[k] for k in ("image_size", "clutter", "object_size", "margin")}
    arrays, path, source, gen_s = generated_arrays(name, lambda n, rng: generate(n, rng, **opts)[:2],
                                                   root, seed, params)
    mean, std = channel_stats(arrays["x_train"])
    return DataBundle(
        train=TensorImageDataset(arrays["x_train"], arrays["y_train"]),
        val=TensorImageDataset(arrays["x_val"], arrays["y_val"]),
        num_classes=len(classes), in_chans=1, image_size=params["image_size"],
        class_names=classes, mean=mean, std=std, name=name,
        info={"cache": None if path is None else str(path), "source": source,
              "generator_version": GENERATOR_VERSION, "generate_s": round(gen_s, 4), **params},
    )


def _check_generated(name: str):
    """The registry's pre-flight check for a generated dataset: its params, nothing generated."""

    def check(*, root, seed, image_size, n_train, n_val, clutter, object_size, margin) -> None:
        _check_params(name, image_size, n_train, n_val, clutter, object_size, margin)

    return check


def _augment_check(name: str, flips_change_labels: bool):
    """The registry's augmentation check: a crop padded beyond ``margin`` can push an object
    over the border (alignment) or across a quadrant line (position), and on ``position`` a
    flip moves the square to another quadrant. Refused whether or not ``augment`` is on now:
    the config would change labels the moment it is."""

    def check(*, augment, pad, hflip, margin, **_) -> None:
        if flips_change_labels and hflip:
            raise ConfigError(f"{name}: hflip=true is not allowed; a horizontal flip moves the object to "
                              "another quadrant and changes the label; allowed: false")
        if isinstance(margin, int) and pad > margin:
            raise ConfigError(f"{name}: pad={pad!r} is not allowed with margin={margin}; a crop padded beyond "
                              f"the margin can cut an object and change the label; allowed: pad <= {margin}")

    return check


@register_dataset("alignment", check=_check_generated("alignment"),
                  augment_check=_augment_check("alignment", flips_change_labels=False), generated=True)
def alignment(*, root: Path | None, seed: int, image_size: int = 24, n_train: int = 3000,
              n_val: int = 1000, clutter: int = 24, object_size: int = 4, margin: int = 2) -> DataBundle:
    """Same row / same column / neither (see the module docstring); 1 channel, 3 classes."""
    _check_params("alignment", image_size, n_train, n_val, clutter, object_size, margin)
    params = dict(image_size=image_size, n_train=n_train, n_val=n_val, clutter=clutter,
                  object_size=object_size, margin=margin)
    return _generated_bundle("alignment", generate_alignment, ALIGNMENT_CLASSES, root, seed, params)


@register_dataset("position", check=_check_generated("position"),
                  augment_check=_augment_check("position", flips_change_labels=True), generated=True)
def position(*, root: Path | None, seed: int, image_size: int = 24, n_train: int = 8000,
             n_val: int = 2000, clutter: int = 8, object_size: int = 4, margin: int = 2) -> DataBundle:
    """Which quadrant holds the square (a control task); 1 channel, 4 classes; no flips."""
    _check_params("position", image_size, n_train, n_val, clutter, object_size, margin)
    params = dict(image_size=image_size, n_train=n_train, n_val=n_val, clutter=clutter,
                  object_size=object_size, margin=margin)
    return _generated_bundle("position", generate_position, POSITION_CLASSES, root, seed, params)
