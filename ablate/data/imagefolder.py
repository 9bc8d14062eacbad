"""Image folders: ``<root>/train/<class>/*.png|jpg`` and ``<root>/val/<class>/...``.

Read with PIL (no torchvision dependency); images come out uint8 C,H,W like every ablate
dataset, and the loader augments and normalises them per batch. Class names are the sorted
sub-folders of ``train``; ``val`` must not hold a class ``train`` lacks.

Defaults without surprises:
- ``image_size: null`` keeps each image's native size, which must then be one size for all
  (else a one-line error naming two sizes found); images are resized only when
  ``image_size`` is given;
- ``mean``/``std: null`` are computed from the training images, not borrowed from ImageNet;
- ``in_memory: auto`` decodes both splits once into a :class:`TensorImageDataset` (the
  loader's fast path, as for ``arrays``) when they fit in ``IN_MEMORY_LIMIT`` bytes, and
  streams them from disk through a DataLoader otherwise (``num_workers`` processes, kept
  alive across epochs). Both paths decode with the same function and the loader draws the
  same batches on both, so they give the same numbers.
- ``cache_dir`` (``${paths.cache_dir}`` in a run's config: ``<ABLATE_HOME>/cache``) keeps the
  decoded arrays of the in-memory path on disk, so the next run of a sweep, in this process
  or another, loads them instead of decoding every file again. A cache file is named by a
  digest of the decode options and of every image's name, size, mtime and label (the
  dataset fingerprint's metadata), so a changed, added or removed image is a miss and a new
  file; a file that does not load is set aside (``*.damaged-<time>``) and rebuilt. It is
  never written inside the data folder, and it is only a cache: deleting the dir is safe;
  ``ABLATE_CACHE=off`` turns it off with ablate's other caches.

The ImageNet recipe (``conf/data/imagenet.yaml``) reads images of any size:
- ``short_side`` (e.g. 256) resizes each image's short side to it and takes the centre
  ``image_size`` crop (e.g. 224): the validation view, and the training view without
  ``random_resized_crop``;
- ``random_resized_crop`` trains on a random crop of each image (its area a ``crop_scale``
  fraction of the image's, its aspect ratio in ``crop_ratio``, sampled as torchvision's
  ``RandomResizedCrop``) resized to ``image_size``. The draw depends on (run seed, epoch, image
  index) only, so workers decode and crop in parallel and the batches are the same for any
  ``num_workers``; the loader's flip (``hflip``) follows as for every dataset. It streams
  from disk (no in-memory path: every epoch crops anew).
Decoding is PIL's (``Image.BILINEAR``, antialiased, as torchvision's PIL path).
"""
from __future__ import annotations

import heapq
import logging
import math
import os
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ablate.data._checks import IMAGE_EXTENSIONS, check_bool, check_image_size, check_optional_int, check_stats
from ablate.data._fingerprint import digest, tree_lines
from ablate.data.registry import DataBundle, register_dataset
from ablate.data.tensor import (
    TensorImageDataset,
    channel_histograms,
    channel_stats,
    seeded_subset,
    stats_from_histograms,
)
from ablate.errors import ConfigError
from ablate.io import atomic_write, set_aside
from ablate.threads import usable_cores

# `in_memory: auto` decodes into memory up to this many uint8 bytes (train + val): 2 GiB.
IN_MEMORY_LIMIT = 2 * 1024**3
# Images per class folder, and class folders per split, whose headers the pre-flight opens.
_SAMPLE_PER_CLASS, _SAMPLE_CLASSES = 2, 8
_LAYOUT = "expected <root>/train/<class>/*.png and <root>/val/<class>/*.png"
# Bump when the decode changes what bytes an image gives: every older cache file then misses.
CACHE_VERSION = 1
log = logging.getLogger("ablate")


def _size_error(owner: str, a: tuple[Path, tuple[int, int]], b: tuple[Path, tuple[int, int]]) -> ValueError:
    """One line naming two different native sizes (H x W) and how to resolve it."""
    (pa, (ha, wa)), (pb, (hb, wb)) = a, b
    return ValueError(f"{owner}: images differ in size ({ha}x{wa} in {pa}, {hb}x{wb} in {pb}; H x W) "
                      "with image_size=null (native size); set data.image_size to resize every image, "
                      "e.g. data.image_size=64 or [H, W]")


# The random resized crop's draws: a stream of its own beside the loader's (seed, epoch) ones.
_CROP_STREAM = 3


def random_resized_crop_box(height: int, width: int, scale: Sequence[float], ratio: Sequence[float],
                            rng: np.random.Generator) -> tuple[int, int, int, int]:
    """``(top, left, h, w)`` of a random crop of an image ``height`` x ``width``: its area a
    fraction in ``scale`` of the image's and its aspect ratio w/h log-uniform in ``ratio``.

    torchvision's ``RandomResizedCrop.get_params``, drawn from ``rng``: up to 10 tries, then
    the centre crop of the whole image clamped to ``ratio``.
    """
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(log_ratio[0], log_ratio[1]))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        h, w = height, int(round(height * max(ratio)))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def crop_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The random resized crop's generator for image ``index`` of ``epoch`` in run ``seed``."""
    return np.random.default_rng(np.random.SeedSequence([seed, epoch, index, _CROP_STREAM]))


def _short_side_center(im, short_side: int, size: tuple[int, int]):
    """Resize the short side to ``short_side`` (long side scaled, truncated), then the centre
    ``size`` crop: torchvision's ``Resize(short_side)`` + ``CenterCrop(size)`` on a PIL image."""
    from PIL import Image

    w, h = im.size
    if w <= h:
        nw, nh = short_side, int(short_side * h / w)
    else:
        nw, nh = int(short_side * w / h), short_side
    if (nw, nh) != (w, h):
        im = im.resize((nw, nh), Image.BILINEAR)
    top, left = int(round((nh - size[0]) / 2.0)), int(round((nw - size[1]) / 2.0))
    return im.crop((left, top, left + size[1], top + size[0]))


def decode_image(path: Path, in_chans: int, size: tuple[int, int] | None, owner: str = "imagefolder",
                 expect: tuple[Path, tuple[int, int]] | None = None, *, short_side: int | None = None,
                 crop: tuple[np.random.Generator, Sequence[float], Sequence[float]] | None = None) -> np.ndarray:
    """One image as uint8 C,H,W: converted to ``in_chans``, resized to ``size`` if given.

    With ``size`` None the native size is kept, and ``expect`` ((path, (H, W)) of another
    image) makes a different size a one-line error rather than a silently ragged batch.
    ``short_side``: resize the short side to it, then the centre ``size`` crop (the aspect
    ratio kept). ``crop=(rng, scale, ratio)``: a random resized crop to ``size`` drawn from
    ``rng`` (:func:`random_resized_crop_box`); it takes precedence over ``short_side``.
    Both the streaming dataset and the in-memory decode call this, so they see the same bytes.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            if size is None and expect is not None and im.size != (expect[1][1], expect[1][0]):
                raise _size_error(owner, expect, (path, (im.size[1], im.size[0])))
            im = im.convert("L" if in_chans == 1 else "RGB")
            if crop is not None:
                top, left, h, w = random_resized_crop_box(im.size[1], im.size[0], crop[1], crop[2], crop[0])
                im = im.crop((left, top, left + w, top + h)).resize((size[1], size[0]), Image.BILINEAR)
            elif short_side is not None:
                im = _short_side_center(im, short_side, size)
            elif size is not None and im.size != (size[1], size[0]):
                im = im.resize((size[1], size[0]), Image.BILINEAR)
            arr = np.array(im, dtype=np.uint8)  # a writable copy (torch warns on read-only)
    except (UnidentifiedImageError, OSError) as exc:  # a truncated or non-image file: one line
        why = str(exc).splitlines()[0] if str(exc) else ""
        raise ConfigError(f"{owner}: cannot decode {path} ({type(exc).__name__}: {why})") from None
    return np.ascontiguousarray(arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1))


class ImageFolderDataset(Dataset):
    """A list of (path, label) read lazily with PIL (the streaming path).

    Args:
        samples: (path, label) pairs.
        image_size: (H, W) of every image this dataset yields.
        in_chans: 1 converts to grayscale ("L"), 3 to RGB.
        resize: resize to ``image_size`` (bilinear; aspect ratio not kept); False = images
            must already be ``image_size`` (native size), else a one-line error.
        reference: the image ``image_size`` was read from, named in that error (default:
            the first sample).
        short_side: resize the short side to it, then the centre ``image_size`` crop.
        crop: ``(scale, ratio)`` of a random resized crop to ``image_size``: the dataset is
            then ``keyed``, indexed by ``(seed, epoch, index)`` (the loader does this), the
            crop drawn from those; a plain ``index`` gives the deterministic view
            (``short_side`` and centre crop, or a resize).
    """

    def __init__(self, samples: list[tuple[Path, int]], image_size: tuple[int, int], in_chans: int,
                 resize: bool = True, reference: Path | None = None, short_side: int | None = None,
                 crop: tuple[Sequence[float], Sequence[float]] | None = None):
        self.samples = list(samples)
        self.image_size = tuple(image_size)
        self.in_chans = in_chans
        self.resize = resize
        self.reference = reference if reference is not None else (self.samples[0][0] if self.samples else None)
        self.short_side, self.crop = short_side, crop
        self.keyed = crop is not None

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int | tuple[int, int, int]) -> tuple[torch.Tensor, int]:
        draw = None
        if isinstance(index, tuple):  # (seed, epoch, index): the training view, drawn per sample
            seed, epoch, index = index
            if self.crop is not None:
                draw = (crop_rng(seed, epoch, index), *self.crop)
        path, label = self.samples[index]
        size = self.image_size if self.resize else None
        expect = None if self.resize else (self.reference, self.image_size)
        image = decode_image(path, self.in_chans, size, expect=expect, short_side=self.short_side, crop=draw)
        return torch.from_numpy(image), label


def _name(path: Path) -> str:
    return path.name


def scan_split(owner: str, folder: Path, classes: tuple[str, ...] | None) -> tuple[list[tuple[Path, int]], tuple[str, ...]]:
    """(samples, class names) under ``folder/<class>/``; ``classes`` fixes the label map."""
    if not folder.is_dir():
        raise FileNotFoundError(f"{owner}: {folder} not found; {_LAYOUT}")
    found = tuple(sorted(d.name for d in folder.iterdir() if d.is_dir()))
    if classes is None:
        classes = found
    extra = [c for c in found if c not in classes]
    if extra:
        raise ConfigError(f"{owner}: class {extra[0]!r} in {folder} is not in the train split; "
                         f"allowed: {', '.join(classes)}")
    index = {c: i for i, c in enumerate(classes)}
    # Sorted by name (siblings: the order Path comparison gives, ~10x faster on 10k files).
    samples = [(p, index[c]) for c in found for p in sorted((folder / c).iterdir(), key=_name)
               if p.suffix.lower() in IMAGE_EXTENSIONS]
    if not samples:
        raise FileNotFoundError(f"{owner}: no images ({', '.join(IMAGE_EXTENSIONS)}) under {folder}/<class>/")
    return samples, classes


def _header_size(owner: str, path: Path) -> tuple[int, int]:
    """(H, W) from an image's header (PIL decodes nothing until asked); one line if unreadable."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return im.size[1], im.size[0]
    except (UnidentifiedImageError, OSError) as exc:
        raise ConfigError(f"{owner}: cannot read {path} as an image ({type(exc).__name__}); "
                         f"allowed: {', '.join(IMAGE_EXTENSIONS)} files PIL can open") from None


def _sample_paths(folder: Path) -> list[Path]:
    """A few image paths spread over the class folders: what the pre-flight opens."""
    classes = sorted((d for d in folder.iterdir() if d.is_dir()), key=_name)
    if len(classes) > _SAMPLE_CLASSES:
        classes = [classes[i] for i in np.linspace(0, len(classes) - 1, _SAMPLE_CLASSES).round().astype(int)]
    out = []
    for d in classes:
        out += heapq.nsmallest(_SAMPLE_PER_CLASS, (p for p in d.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS),
                               key=_name)
    return out


def _common_size(owner: str, paths: Sequence[Path], sizes: Iterator[tuple[int, int]]) -> tuple[int, int] | None:
    """The one (H, W) all ``sizes`` share, else the one-line error naming two of them."""
    first = None
    for path, size in zip(paths, sizes):
        if first is None:
            first = (path, size)
        elif size != first[1]:
            raise _size_error(owner, first, (path, size))
    return None if first is None else first[1]


def _check_in_memory(owner: str, value: Any) -> Any:
    if value is True or value is False or value == "auto":
        return value
    raise ConfigError(f"{owner}: in_memory={value!r} is not allowed; allowed: auto, true, false")


def _check_range(owner: str, key: str, value: Any, lo: float, hi: float | None) -> tuple[float, float]:
    """A pair [a, b] of numbers with lo < a <= b (<= hi when given)."""
    ok = isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
    ok = ok and lo < value[0] <= value[1] and (hi is None or value[1] <= hi)
    if not ok:
        allowed = f"[a, b] with {lo} < a <= b" + (f" <= {hi}" if hi is not None else "")
        raise ConfigError(f"{owner}: {key}={value!r} is not allowed; expected {allowed}")
    return float(value[0]), float(value[1])


def _check_views(owner: str, size, random_resized_crop, crop_scale, crop_ratio, short_side, in_memory) -> dict:
    """The ImageNet-style views: a random resized crop for training, short side + centre crop."""
    random_resized_crop = check_bool(owner, "random_resized_crop", random_resized_crop)
    scale = _check_range(owner, "crop_scale", crop_scale, 0.0, 1.0)
    ratio = _check_range(owner, "crop_ratio", crop_ratio, 0.0, None)
    if short_side is not None:
        short_side = check_optional_int(owner, "short_side", short_side, 8, 4096)
    if size is None and (random_resized_crop or short_side is not None):
        key, value = ("random_resized_crop", "true") if random_resized_crop else ("short_side", short_side)
        raise ConfigError(f"{owner}: {key}={value} needs the crop's size, image_size=null; "
                          "allowed: an image_size such as 224")
    if short_side is not None and short_side < max(size):
        raise ConfigError(f"{owner}: short_side={short_side} is smaller than image_size {size[0]}x{size[1]}; "
                          f"allowed: short_side >= {max(size)} or null")
    if random_resized_crop and in_memory is True:
        raise ConfigError(f"{owner}: in_memory=true with random_resized_crop=true is not allowed (every epoch crops "
                          "the original images anew); allowed: in_memory auto or false")
    return {"crop": (scale, ratio) if random_resized_crop else None, "short_side": short_side}


def _check_imagefolder(*, root: Path | None, seed: int, image_size, in_chans: int, n_train, n_val, mean,
                       std, in_memory, cache_dir=None, random_resized_crop=False, crop_scale=(0.08, 1.0),
                       crop_ratio=(0.75, 4 / 3), short_side=None) -> dict:
    """Options, the two split dirs and a few image headers (fast); returns normalised options."""
    owner = "imagefolder"
    size = None if image_size is None else check_image_size(owner, image_size)
    if isinstance(in_chans, bool) or not isinstance(in_chans, int) or in_chans not in (1, 3):
        raise ConfigError(f"{owner}: in_chans={in_chans!r} is not allowed; allowed: 1, 3")
    n_train = check_optional_int(owner, "n_train", n_train, 1)
    n_val = check_optional_int(owner, "n_val", n_val, 1)
    mean = None if mean is None else check_stats(owner, "mean", mean, in_chans, positive=False)
    std = None if std is None else check_stats(owner, "std", std, in_chans, positive=True)
    in_memory = _check_in_memory(owner, in_memory)
    views = _check_views(owner, size, random_resized_crop, crop_scale, crop_ratio, short_side, in_memory)
    if cache_dir is not None and not isinstance(cache_dir, (str, Path)):
        raise ConfigError(f"{owner}: cache_dir={cache_dir!r} is not allowed; expected a path or null (no disk cache)")
    if root is None:
        raise ConfigError(f"{owner}: root=None is not allowed; expected a dir holding train/ and val/")
    for split in ("train", "val"):
        if not (Path(root) / split).is_dir():
            raise FileNotFoundError(f"{owner}: {Path(root) / split} not found; {_LAYOUT}")
    # A sample of headers catches an unreadable file or mixed native sizes in milliseconds;
    # the full check happens when the data is loaded.
    sample = _sample_paths(Path(root) / "train") + _sample_paths(Path(root) / "val")
    sizes = [_header_size(owner, p) for p in sample]
    if size is None:
        _common_size(owner, sample, iter(sizes))
    return {"size": size, "n_train": n_train, "n_val": n_val, "mean": mean, "std": std, "in_memory": in_memory,
            **views}


def _ordered_map(fn: Callable[[int], Any], n: int, chunk: int = 512) -> Iterator[Any]:
    """``fn(i)`` for i in 0..n-1, in order, on a few threads (PIL decodes without the GIL)."""
    workers = min(8, usable_cores())
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for lo in range(0, n, chunk):
            yield from pool.map(fn, range(lo, min(lo + chunk, n)))


def _decode_all(owner: str, samples: list[tuple[Path, int]], in_chans: int, size: tuple[int, int],
                resize: bool, reference: Path, short_side: int | None = None) -> np.ndarray:
    """Decode a split once into memory (the in-memory path): uint8 N,C,H,W."""
    out = np.empty((len(samples), in_chans, *size), dtype=np.uint8)
    expect = None if resize else (reference, size)

    def one(i: int) -> None:
        out[i] = decode_image(samples[i][0], in_chans, size if resize else None, owner, expect, short_side=short_side)

    for _ in _ordered_map(one, len(samples)):
        pass
    return out


def _labels(samples: list[tuple[Path, int]]) -> np.ndarray:
    return np.array([label for _, label in samples], dtype=np.int64)


def cache_file(cache_dir: Path, root: Path, splits: dict[str, list[tuple[Path, int]]], in_chans: int,
               size: tuple[int, int], resize: bool, short_side: int | None = None) -> Path:
    """Where the decoded arrays of ``splits`` live in ``cache_dir``: named by a digest of the
    decode options and of every image's relative name, size, mtime and label (one ``stat``
    per file, no decoding), so any change to the images or how they are read is another file."""
    lines = [f"imagefolder decoded v{CACHE_VERSION}", f"in_chans={in_chans}", f"size={size[0]}x{size[1]}",
             f"resize={resize}"] + ([f"short_side={short_side}"] if short_side is not None else [])
    for split, samples in splits.items():
        lines.append(f"[{split}]")
        for p, label in samples:  # stat_line's fields, without pathlib's per-file cost
            st = os.stat(p)
            lines.append(f"{_relative(root, p)}\t{st.st_size}\t{st.st_mtime_ns}\t{label}")
    return Path(cache_dir) / "imagefolder" / f"{digest(lines)}.npz"


def _relative(root: Path, path: Path) -> str:
    """``path`` relative to ``root`` with POSIX slashes (a string slice when ``path`` was built
    under ``root``, as the scan builds them)."""
    base, full = str(root), str(path)
    if os.sep == "/" and full.startswith(base + "/"):
        return full[len(base) + 1:]
    return path.relative_to(root).as_posix()


def _read_cache(path: Path, splits: dict[str, list[tuple[Path, int]]], shape: tuple[int, ...]) -> dict | None:
    """The cached arrays of ``splits`` (``{split: uint8 N,C,H,W}``), or None on a miss. A file
    that does not load or does not hold what its name promises is set aside; the caller rebuilds."""
    try:
        with np.load(path, allow_pickle=False) as z:  # zip CRCs catch a garbled member
            out = {split: z[f"x_{split}"] for split in splits}
            labels = {split: z[f"y_{split}"] for split in splits}
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        log.warning("imagefolder cache %s does not load (%s: %s); decoding again",
                    path, type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
        _set_aside(path)
        return None
    for split, samples in splits.items():
        x, y = out[split], labels[split]
        if x.dtype != np.uint8 or x.shape != (len(samples), *shape) or not np.array_equal(y, _labels(samples)):
            log.warning("imagefolder cache %s holds other data than its name says (%s: %s %s); decoding again",
                        path, split, x.dtype, x.shape)
            _set_aside(path)
            return None
    return out


def _set_aside(path: Path) -> None:
    try:
        set_aside(path)
    except OSError as exc:  # gone already (another process set it aside) or a read-only cache
        log.warning("imagefolder cache %s: cannot set it aside (%s)", path, exc)


def _write_cache(path: Path, arrays: dict[str, np.ndarray], splits: dict[str, list[tuple[Path, int]]]) -> bool:
    """Write the decoded arrays atomically (a reader sees no file or the whole one); a cache
    that cannot be written (full or read-only disk) is a warning, never a failed run."""
    members = {**{f"x_{k}": v for k, v in arrays.items()}, **{f"y_{k}": _labels(s) for k, s in splits.items()}}
    try:
        atomic_write(path, lambda fh: np.savez(fh, **members), mode="wb", fsync=False)
    except OSError as exc:
        log.warning("imagefolder cache %s not written (%s); the next run decodes the images again", path, exc)
        return False
    return True


def _inside(path: Path, folder: Path) -> bool:
    try:
        Path(path).resolve().relative_to(Path(folder).resolve())
        return True
    except ValueError:
        return False


def _decode_splits(owner: str, root: Path, splits: dict[str, list[tuple[Path, int]]], in_chans: int,
                   size: tuple[int, int], resize: bool, cache_dir: Path | None,
                   short_side: int | None = None) -> tuple[dict, dict]:
    """Both splits decoded into memory, from ``cache_dir`` when it holds them (else decoded and
    stored there); returns ``({split: TensorImageDataset}, info)``."""
    reference = splits["train"][0][0]
    path, cached = None, None
    if os.environ.get("ABLATE_CACHE", "").strip().lower() in ("off", "0", "false", "no"):
        cache_dir = None  # every cache of ablate off (ablate/cache.py)
    if cache_dir is not None and _inside(cache_dir, root):
        log.info("imagefolder: cache_dir %s is inside the data folder %s; not caching there", cache_dir, root)
    elif cache_dir is not None:
        path = cache_file(cache_dir, root, splits, in_chans, size, resize, short_side)
        cached = _read_cache(path, splits, (in_chans, *size))
    n = sum(len(samples) for samples in splits.values())
    if cached is not None:
        arrays, state = cached, "hit"
        log.info("imagefolder: %d images from the decoded cache %s", n, path)
    else:
        t0 = time.perf_counter()
        arrays = {split: _decode_all(owner, samples, in_chans, size, resize, reference, short_side)
                  for split, samples in splits.items()}
        state = "off" if path is None else ("written" if _write_cache(path, arrays, splits) else "not written")
        if state == "written":
            log.info("imagefolder: decoded %d images in %.1fs; cached in %s", n, time.perf_counter() - t0, path)
    datasets = {split: TensorImageDataset(arrays[split], _labels(samples)) for split, samples in splits.items()}
    return datasets, {"cache": state, **({"cache_file": str(path)} if path is not None else {})}


def _streamed_stats(owner: str, samples: list[tuple[Path, int]], in_chans: int, size: tuple[int, int],
                    resize: bool, short_side: int | None = None) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Training-set mean/std in one decode pass, from exact value counts.

    The counts add up to what :func:`channel_stats` counts on the decoded array, so the
    streamed and in-memory paths get identical statistics.
    """
    expect = None if resize else (samples[0][0], size)
    hist = np.zeros((in_chans, 256), dtype=np.int64)

    def one(i: int) -> np.ndarray:
        img = decode_image(samples[i][0], in_chans, size if resize else None, owner, expect, short_side=short_side)
        return channel_histograms(img[None])

    for h in _ordered_map(one, len(samples)):
        hist += h
    return stats_from_histograms(hist)


def _fingerprint_imagefolder(*, root: Path, **_: Any) -> str:
    """Class folders and image files of both splits: relative names, sizes and mtimes."""
    root = Path(root)
    return digest(tree_lines(root, root / "train", IMAGE_EXTENSIONS) + tree_lines(root, root / "val", IMAGE_EXTENSIONS))


@register_dataset("imagefolder", check=_check_imagefolder, fingerprint=_fingerprint_imagefolder)
def imagefolder(*, root: Path | None, seed: int, image_size: int | list[int] | None = None, in_chans: int = 3,
                n_train: int | None = None, n_val: int | None = None,
                mean: list[float] | None = None, std: list[float] | None = None,
                in_memory: str | bool = "auto", cache_dir: str | None = None, random_resized_crop: bool = False,
                crop_scale: list[float] = (0.08, 1.0), crop_ratio: list[float] = (0.75, 4 / 3),
                short_side: int | None = None) -> DataBundle:
    """Images from ``<root>/train`` and ``<root>/val`` (see the module docstring for defaults).

    ``mean``/``std`` null are computed from the training images (after ``n_train``); give
    explicit values to normalise like a pretrained model, e.g. ImageNet's
    (0.485, 0.456, 0.406) / (0.229, 0.224, 0.225). Without them and with
    ``random_resized_crop``, they are computed from the training images' deterministic view
    (``short_side`` and centre crop, or a resize to ``image_size``).
    """
    owner = "imagefolder"
    opts = _check_imagefolder(root=root, seed=seed, image_size=image_size, in_chans=in_chans, n_train=n_train,
                              n_val=n_val, mean=mean, std=std, in_memory=in_memory, cache_dir=cache_dir,
                              random_resized_crop=random_resized_crop, crop_scale=crop_scale, crop_ratio=crop_ratio,
                              short_side=short_side)
    crop, short_side = opts["crop"], opts["short_side"]
    size, resize = opts["size"], opts["size"] is not None
    train, classes = scan_split(owner, Path(root) / "train", None)
    val, _ = scan_split(owner, Path(root) / "val", classes)
    idx_t = seeded_subset(owner, "n_train", len(train), opts["n_train"], seed, 0)
    idx_v = seeded_subset(owner, "n_val", len(val), opts["n_val"], seed, 1)
    train = train if idx_t is None else [train[i] for i in idx_t]
    val = val if idx_v is None else [val[i] for i in idx_v]
    if size is None:  # the first image's size decides whether it fits; every other must match
        size = _header_size(owner, train[0][0])
    nbytes = (len(train) + len(val)) * in_chans * size[0] * size[1]
    memory = crop is None and (opts["in_memory"] is True or (opts["in_memory"] == "auto" and nbytes <= IN_MEMORY_LIMIT))
    cache: dict = {}
    if memory:
        decoded, cache = _decode_splits(owner, Path(root), {"train": train, "val": val}, in_chans, size, resize,
                                        None if cache_dir is None else Path(cache_dir), short_side)
        train_ds, val_ds = decoded["train"], decoded["val"]
        computed = channel_stats(train_ds.images) if opts["mean"] is None or opts["std"] is None else None
    else:
        if not resize:  # a size mismatch must fail now, not in the middle of an epoch
            paths = [p for p, _ in train + val]
            _common_size(owner, paths, _ordered_map(lambda i: _header_size(owner, paths[i]), len(paths)))
        train_ds = ImageFolderDataset(train, size, in_chans, resize, reference=train[0][0], short_side=short_side,
                                      crop=crop)
        val_ds = ImageFolderDataset(val, size, in_chans, resize, reference=train[0][0], short_side=short_side)
        computed = (_streamed_stats(owner, train, in_chans, size, resize, short_side)
                    if opts["mean"] is None or opts["std"] is None else None)
    mean = opts["mean"] or computed[0]
    std = opts["std"] or computed[1]
    return DataBundle(
        train=train_ds, val=val_ds, num_classes=len(classes), in_chans=in_chans,
        image_size=size[0] if size[0] == size[1] else size, class_names=classes,
        mean=mean, std=std, name=owner,
        info={"source": str(root), "in_memory": memory, "decoded_bytes": nbytes, "resized": resize,
              "random_resized_crop": crop is not None, "short_side": short_side, **cache},
    )
