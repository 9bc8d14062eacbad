"""Your own images, held in memory: one ``.npz`` of uint8 images and integer labels.

``data=arrays data.path=my_data.npz``. Keys in the file (``numpy.savez(path, x=..., y=...)``):

- ``x`` (or ``images``): uint8, N,H,W,C or N,C,H,W with 1 or 3 channels, or N,H,W (grayscale);
  ``layout`` says which, or ``auto`` picks the one of dim 1 / the last dim that is 1 or 3;
- ``y`` (or ``labels``): N integers 0..K-1, K = ``len(class_names)`` or ``max(y) + 1``;
- ``class_names`` (optional): K strings;
- the validation set comes from exactly one of: ``x_val``/``y_val`` in the same file, a second
  file ``val_path`` (keys as above), or ``val_fraction`` of each class split off with ``seed``.

Why a pre-flight that reads only the ``.npy`` headers inside the zip: a sweep validates every
run's config before the first one trains, and a shape or dtype mistake in a multi-GB file must
fail in milliseconds, with one line saying what is wrong and how to fix it. Label ranges need
the data, so they are checked when the arrays are loaded (also one line).
"""
from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from ablate.data._checks import check_float, check_optional_int, check_stats
from ablate.data._fingerprint import digest, zip_lines
from ablate.data.registry import DataBundle, register_dataset
from ablate.data.tensor import TensorImageDataset, channel_stats, seeded_subset
from ablate.errors import ConfigError, check_choice

OWNER = "arrays"
LAYOUTS = ("auto", "nhwc", "nchw")
CHANNELS = (1, 3)
_VAL_WAYS = "x_val/y_val in data.path, data.val_path=<file.npz>, or data.val_fraction=<0.01..0.99>"
_SAVE_HINT = "numpy.savez(path, x=images, y=labels)"


@dataclass(frozen=True)
class _Split:
    """Where one split's arrays live and what their headers say (nothing loaded)."""

    path: Path
    x_key: str
    y_key: str
    layout: str  # "nhw", "nhwc" or "nchw", resolved
    n: int
    chw: tuple[int, int, int]


@dataclass(frozen=True)
class _Plan:
    """The checked options: what the builder loads, and how."""

    train: _Split
    val: _Split | None  # None: split off with val_fraction
    val_fraction: float | None
    names_key: str | None
    n_train: int | None
    n_val: int | None
    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None


def read_headers(owner: str, key: str, path: Any) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """``{array name: (shape, dtype)}`` of an ``.npz`` from its ``.npy`` headers only.

    Reads a few hundred bytes per array, whatever the file's size; raises one line for a
    missing file (FileNotFoundError) or a file that is not an ``.npz`` (ValueError).
    """
    if isinstance(path, bool) or not isinstance(path, (str, Path)) or str(path) == "":
        raise ConfigError(f"{owner}: {key}={path!r} is not allowed; set data.{key} to an .npz file "
                         f"(data=arrays data.{key}=my_data.npz)")
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{owner}: {key}={str(path)!r} not found; expected an .npz file "
                                f"written by {_SAVE_HINT}")
    with open(path, "rb") as fh:
        if fh.read(6) == b"\x93NUMPY":
            raise ConfigError(f"{owner}: {key}={str(path)!r} is a single .npy array, not an .npz; "
                             f"save images and labels together with {_SAVE_HINT}")
    try:
        with zipfile.ZipFile(path) as zf:
            return {info.filename[:-4]: _npy_header(owner, path, info.filename[:-4], zf.open(info))
                    for info in zf.infolist() if info.filename.endswith(".npy")}
    except zipfile.BadZipFile:
        raise ConfigError(f"{owner}: {key}={str(path)!r} is not an .npz file (not a zip archive); "
                         f"save it with {_SAVE_HINT}") from None


def _npy_header(owner: str, path: Path, name: str, fh: IO[bytes]) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) from one ``.npy`` member's header; the array data is never read."""
    fmt = np.lib.format
    with fh:
        try:
            version = fmt.read_magic(fh)
            if version == (1, 0):
                shape, _, dtype = fmt.read_array_header_1_0(fh)
            elif version == (2, 0):
                shape, _, dtype = fmt.read_array_header_2_0(fh)
            else:
                raise ConfigError(f"format version {version[0]}.{version[1]}; allowed: 1.0, 2.0")
        except ValueError as exc:
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ConfigError(f"{owner}: {name} in {path} is not a readable .npy array ({msg}); "
                             f"re-save with {_SAVE_HINT}") from None
    return tuple(int(d) for d in shape), dtype


def _pick(path: Path, found: dict, names: tuple[str, str]) -> str:
    """The one of ``names`` present in the file (``x`` or ``images``, ...)."""
    hits = [n for n in names if n in found]
    if len(hits) == 1:
        return hits[0]
    if hits:
        raise ConfigError(f"{OWNER}: {path} holds both {hits[0]!r} and {hits[1]!r}; keep one of them")
    raise ConfigError(f"{OWNER}: {path} has no {names[0]!r} (or {names[1]!r}) array; keys found: "
                     f"{', '.join(sorted(found)) or '(none)'}; expected x and y (or images and labels)")


def _images(path: Path, key: str, shape: tuple[int, ...], dtype: np.dtype, layout: str) -> tuple[str, tuple[int, int, int]]:
    """Check an image array's header; return its resolved layout and (C, H, W)."""
    if dtype != np.uint8:
        raise ConfigError(f"{OWNER}: {key} in {path} is {dtype}; uint8 is required (values 0..255: "
                         f"x.astype(np.uint8); floats in [0, 1]: (x * 255).round().astype(np.uint8))")
    if len(shape) not in (3, 4):
        raise ConfigError(f"{OWNER}: {key} in {path} has shape {shape} ({len(shape)} dims); "
                         "expected N,H,W,C or N,C,H,W (C = 1 or 3) or N,H,W")
    if shape[0] == 0 or 0 in shape[1:]:
        raise ConfigError(f"{OWNER}: {key} in {path} has shape {shape}; expected at least one non-empty image")
    if len(shape) == 3:
        return "nhw", (1, shape[1], shape[2])
    if layout == "auto":
        first, last = shape[1] in CHANNELS, shape[3] in CHANNELS
        if first and last:
            raise ConfigError(f"{OWNER}: {key} in {path} has shape {shape}: both dim 1 and the last dim "
                             "could be channels (1 or 3); set data.layout=nhwc or data.layout=nchw")
        if not first and not last:
            raise ConfigError(f"{OWNER}: {key} in {path} has shape {shape}: neither dim 1 ({shape[1]}) nor "
                             f"the last dim ({shape[3]}) is a channel count of 1 or 3; expected N,H,W,C "
                             "or N,C,H,W with C in 1, 3 (or set data.layout=nhwc or data.layout=nchw)")
        layout = "nchw" if first else "nhwc"
    c, h, w = (shape[1], shape[2], shape[3]) if layout == "nchw" else (shape[3], shape[1], shape[2])
    if c not in CHANNELS:
        raise ConfigError(f"{OWNER}: {key} in {path} has {c} channels with layout={layout} (shape {shape}); "
                         "allowed channel counts: 1, 3")
    return layout, (c, h, w)


def _labels(path: Path, key: str, shape: tuple[int, ...], dtype: np.dtype, n: int, x_key: str) -> None:
    """Check a label array's header: N integers, one per image."""
    if dtype.kind not in "iu":
        raise ConfigError(f"{OWNER}: {key} in {path} is {dtype}; integer labels 0..K-1 are required "
                         f"(convert with {key}.astype(np.int64))")
    if len(shape) != 1:
        raise ConfigError(f"{OWNER}: {key} in {path} has shape {shape}; expected one label per image, "
                         f"shape ({n},) (use {key}.reshape(-1))")
    if shape[0] != n:
        raise ConfigError(f"{OWNER}: {key} in {path} holds {shape[0]} labels for {n} images in {x_key}; "
                         "expected one label per image")


def _split(path: Path, found: dict, x_key: str, y_key: str, layout: str) -> _Split:
    """Check one split's image and label headers."""
    xs, xd = found[x_key]
    resolved, chw = _images(path, x_key, xs, xd, layout)
    ys, yd = found[y_key]
    _labels(path, y_key, ys, yd, xs[0], x_key)
    return _Split(path=path, x_key=x_key, y_key=y_key, layout=resolved, n=xs[0], chw=chw)


def _check_arrays(*, root: Path | None, seed: int, path, layout: str, val_path, val_fraction,
                  n_train, n_val, mean, std) -> _Plan:
    """Options, files and array headers, without loading an array (the registry's pre-flight)."""
    layout = check_choice("layout", layout, LAYOUTS, owner=OWNER)
    n_train = check_optional_int(OWNER, "n_train", n_train, 1)
    n_val = check_optional_int(OWNER, "n_val", n_val, 1)
    if val_fraction is not None:
        val_fraction = check_float(OWNER, "val_fraction", val_fraction, 0.01, 0.99)
    found = read_headers(OWNER, "path", path)
    path = Path(path).expanduser()
    train = _split(path, found, _pick(path, found, ("x", "images")), _pick(path, found, ("y", "labels")), layout)
    in_file = [k for k in ("x_val", "y_val") if k in found]
    if len(in_file) == 1:
        other = "y_val" if in_file[0] == "x_val" else "x_val"
        raise ConfigError(f"{OWNER}: {path} holds {in_file[0]} but no {other}; give both, or neither")
    ways = [w for w, given in (("x_val/y_val in the file", bool(in_file)), (f"val_path={val_path!r}", val_path is not None),
                               (f"val_fraction={val_fraction!r}", val_fraction is not None)) if given]
    if len(ways) != 1:
        what = "no validation set" if not ways else f"validation set given {len(ways)} ways ({', '.join(ways)})"
        raise ConfigError(f"{OWNER}: {what}; give exactly one of: {_VAL_WAYS}")
    val = None
    if in_file:
        val = _split(path, found, "x_val", "y_val", layout)
    elif val_path is not None:
        vfound = read_headers(OWNER, "val_path", val_path)
        vpath = Path(val_path).expanduser()
        val = _split(vpath, vfound, _pick(vpath, vfound, ("x", "images")), _pick(vpath, vfound, ("y", "labels")), layout)
    if val is not None and val.chw != train.chw:
        raise ConfigError(f"{OWNER}: validation images ({val.x_key} in {val.path}) are {_fmt(val.chw)} but "
                         f"training images ({train.x_key}) are {_fmt(train.chw)} (channels x H x W); they must match")
    names_key = "class_names" if "class_names" in found else None
    if names_key:
        shape, dtype = found[names_key]
        if dtype.kind not in "US" or len(shape) != 1:
            raise ConfigError(f"{OWNER}: class_names in {path} is {dtype} of shape {shape}; expected a 1-d "
                             "array of strings (np.array(names, dtype=str))")
    if val is not None:  # with val_fraction the split sizes depend on the labels: checked at load
        for key, want, have in (("n_train", n_train, train.n), ("n_val", n_val, val.n)):
            if want is not None and want > have:
                raise ConfigError(f"{OWNER}: {key}={want!r} is not allowed; only {have} samples available")
    c = train.chw[0]
    mean = None if mean is None else check_stats(OWNER, "mean", mean, c, positive=False)
    std = None if std is None else check_stats(OWNER, "std", std, c, positive=True)
    return _Plan(train=train, val=val, val_fraction=val_fraction, names_key=names_key,
                 n_train=n_train, n_val=n_val, mean=mean, std=std)


def _fmt(chw: tuple[int, int, int]) -> str:
    return "x".join(str(v) for v in chw)


def _load(split: _Split, names_key: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(images uint8 N,C,H,W contiguous, labels int64, class names or None) of one split."""
    with np.load(split.path) as z:
        x, y = z[split.x_key], z[split.y_key]
        names = z[names_key] if names_key else None
    if split.layout == "nhw":
        x = x[:, None]
    elif split.layout == "nhwc":
        x = x.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(x), y.astype(np.int64), names


def _check_range(split: _Split, y: np.ndarray, k: int, why: str) -> None:
    """Labels must be 0..k-1; one line naming the first bad label and the allowed range."""
    bad = y[(y < 0) | (y >= k)]
    if bad.size and k < 1:
        raise ConfigError(f"{OWNER}: {split.y_key} in {split.path} holds label {int(bad[0])}; "
                         "allowed: integers 0..K-1")
    if bad.size:
        raise ConfigError(f"{OWNER}: {split.y_key} in {split.path} holds label {int(bad[0])}; "
                         f"allowed: 0..{k - 1} ({why})")


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of the validation samples: ``fraction`` of each class, seeded.

    Each class's members are shuffled with one generator in class order and the first
    ``round(fraction * count)`` go to val, so the split depends only on the labels and seed.
    """
    rng = np.random.default_rng([seed, 2])
    order = np.argsort(labels, kind="stable")
    classes, starts = np.unique(labels[order], return_index=True)
    is_val = np.zeros(len(labels), dtype=bool)
    for lo, hi in zip(starts, list(starts[1:]) + [len(labels)]):
        members = rng.permutation(order[lo:hi])
        is_val[members[: int(round(fraction * len(members)))]] = True
    return is_val


def _fingerprint_arrays(*, path, val_path=None, **_: Any) -> str:
    """The ``.npz`` members' names, sizes and CRC-32s (from the zip directory; nothing loaded)."""
    lines = zip_lines("path", Path(path).expanduser())
    if val_path is not None:
        lines += zip_lines("val_path", Path(val_path).expanduser())
    return digest(lines)


@register_dataset("arrays", check=_check_arrays, fingerprint=_fingerprint_arrays)
def arrays(*, root: Path | None, seed: int, path: str | None = None, layout: str = "auto",
           val_path: str | None = None, val_fraction: float | None = None, n_train: int | None = None,
           n_val: int | None = None, mean: list[float] | None = None,
           std: list[float] | None = None) -> DataBundle:
    """Images and labels from ``path`` (see the module docstring); ``root`` unused.

    ``mean``/``std`` null: computed from the training images (after ``n_train``), like the
    generated datasets'.
    """
    plan = _check_arrays(root=root, seed=seed, path=path, layout=layout, val_path=val_path,
                         val_fraction=val_fraction, n_train=n_train, n_val=n_val, mean=mean, std=std)
    x, y, names = _load(plan.train, plan.names_key)
    if names is not None:
        classes = tuple(str(s) for s in names.tolist())
        k, why = len(classes), f"class_names lists {len(classes)} classes"
    else:
        k = int(y.max()) + 1
        why = "labels must be integers 0..K-1"
    _check_range(plan.train, y, k, why)
    if names is None:
        classes = tuple(str(i) for i in range(k))
    if plan.val is not None:
        xv, yv, _ = _load(plan.val)
        why = (f"a val label must be a train class; class_names lists {k}" if names is not None else
               f"a val label must be a train class; y has {k} (add class_names to declare more)")
        _check_range(plan.val, yv, k, why)
        source = "x_val" if plan.val.path == plan.train.path else str(plan.val.path)
    else:
        is_val = stratified_split(y, plan.val_fraction, seed)
        if is_val.all() or not is_val.any():
            raise ConfigError(f"{OWNER}: val_fraction={plan.val_fraction!r} leaves {int(is_val.sum())} of "
                             f"{len(y)} images for validation; expected at least one in each split")
        xv, yv, x, y = x[is_val], y[is_val], x[~is_val], y[~is_val]
        source = f"val_fraction={plan.val_fraction}"
    train, val = TensorImageDataset(x, y), TensorImageDataset(xv, yv)
    idx_t = seeded_subset(OWNER, "n_train", len(train), plan.n_train, seed, 0)
    idx_v = seeded_subset(OWNER, "n_val", len(val), plan.n_val, seed, 1)
    train = train if idx_t is None else train.subset(idx_t)
    val = val if idx_v is None else val.subset(idx_v)
    mean, std = plan.mean, plan.std
    if mean is None or std is None:  # null = the training images' own statistics
        computed = channel_stats(train.images)
        mean, std = mean or computed[0], std or computed[1]
    c, h, w = plan.train.chw
    return DataBundle(
        train=train, val=val, num_classes=k, in_chans=c, image_size=h if h == w else (h, w),
        class_names=classes, mean=mean, std=std, name=OWNER,
        info={"source": str(plan.train.path), "layout": plan.train.layout, "val": source},
    )
