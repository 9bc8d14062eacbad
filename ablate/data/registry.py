"""Dataset registry: names -> builders that return a :class:`DataBundle`.

Builders are plain functions ``builder(*, root, seed, **options) -> DataBundle`` registered
with ``@register_dataset("name")``. :func:`load_dataset` checks the name and the option names
against the builder's signature before calling it, so a typo in a config fails in
milliseconds with one line naming it, never after a download-sized read or a generation.
"""
from __future__ import annotations

import inspect
from contextlib import contextmanager
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

from torch.utils.data import Dataset

from ablate.data._checks import IMAGE_EXTENSIONS, check_bool, check_int
from ablate.errors import ConfigError
from ablate.registry import Registry

# Keys of the `data` config group that configure the loader, not the dataset.
LOADER_KEYS: tuple[str, ...] = ("batch_size", "num_workers", "augment", "pad", "hflip", "drop_last")
# What the loader does when a key is absent (a run's augment default is on, make_loader's pad/hflip).
LOADER_DEFAULTS: dict[str, Any] = {"batch_size": 128, "num_workers": 0, "augment": True, "pad": 2,
                                   "hflip": True, "drop_last": False}
# The key of the `data` config a run records its data's content fingerprint under (set by ablate,
# never by the user; not a dataset option).
FINGERPRINT_KEY = "fingerprint"


@dataclass
class DataBundle:
    """What a run needs to know about its data.

    Attributes:
        train, val: torch Datasets yielding ``(uint8 tensor C,H,W, int label)``.
            Use :func:`ablate.data.make_loader` to get normalised float batches.
        num_classes: number of classes (labels are ``0..num_classes-1``).
        in_chans: image channels (1 grayscale, 3 RGB).
        image_size: int (square) or (H, W).
        class_names: one name per label.
        mean, std: per-channel normalisation on the [0, 1] scale.
        name: registry name of the dataset.
        info: provenance (cache file, generator version, source dir); not needed to train.
    """

    train: Dataset
    val: Dataset
    num_classes: int
    in_chans: int
    image_size: int | tuple[int, int]
    class_names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    name: str
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DatasetEntry:
    """A registered dataset: its builder and optional hooks.

    check: the pre-flight check of its options and files (None: options only).
    fingerprint: ``fingerprint(root=..., seed=..., **options) -> str``, a short digest of the
        data's content (file list, sizes, mtimes, checksums; never its location), for datasets
        read from files: the run key hashes it, so other or regenerated data is another run.
        None: the config already says what the data is (generated datasets, digits).
    augment_check: ``augment_check(augment=..., pad=..., hflip=..., **options)`` refuses
        augmentation that would change a label of this dataset (None: any augmentation keeps labels).
    generated: the data is made from its parameters and ``root`` is only its cache.
    """

    builder: Callable[..., "DataBundle"]
    check: Optional[Callable[..., None]] = None
    fingerprint: Optional[Callable[..., str]] = None
    augment_check: Optional[Callable[..., None]] = None
    generated: bool = False


# Every module of ablate.data registers its datasets: a new dataset is one new module here
# (plus conf/data/<name>.yaml); nothing else lists them.
DATASETS: Registry[DatasetEntry] = Registry("dataset", discover="ablate.data")


def register_dataset(name: str, check: Callable[..., None] | None = None, *,
                     fingerprint: Callable[..., str] | None = None,
                     augment_check: Callable[..., None] | None = None, generated: bool = False,
                     ) -> Callable[[Callable[..., DataBundle]], Callable[..., DataBundle]]:
    """Decorator registering a builder under ``name``; a duplicate name is refused.

    ``check(root=..., seed=..., **options)`` validates the options (and that the files a real
    dataset needs exist) in milliseconds, without reading or generating data; it runs before
    any run of a sweep starts (:func:`check_dataset`). ``fingerprint``, ``augment_check`` and
    ``generated``: see :class:`DatasetEntry`.
    """

    def wrap(fn: Callable[..., DataBundle]) -> Callable[..., DataBundle]:
        DATASETS.register(name, DatasetEntry(fn, check, fingerprint, augment_check, generated))
        return fn

    return wrap


def list_datasets() -> list[str]:
    """Registered dataset names, sorted."""
    return DATASETS.names()


def dataset_options(name: str) -> dict[str, Any]:
    """The options a dataset accepts with their defaults (``root`` and ``seed`` excluded)."""
    fn = _get_builder(name)
    return {p.name: p.default for p in inspect.signature(fn).parameters.values()
            if p.name not in ("root", "seed")}


def check_dataset(name: str, *, root: str | Path | None, seed: int = 0, **kwargs: Any) -> dict[str, Any]:
    """Validate a dataset config without loading it; returns the options to build it with.

    Unknown names or options and out-of-range values raise a one-line ValueError naming the
    value (and the allowed ones); missing source files a one-line FileNotFoundError, a missing
    optional package an ImportError. So a sweep fails before its first run.
    """
    _get_builder(name)
    seed = check_int(name, "seed", seed, 0, 2**63 - 1)
    options = dataset_options(name)
    unknown = sorted(k for k in kwargs if k not in options)
    if unknown:
        raise ConfigError(
            f"{name}: unknown option {unknown[0]!r}; allowed: {', '.join(options) or '(none)'}"
        )
    if root is not None and not isinstance(root, (str, Path)):
        raise ConfigError(f"{name}: root={root!r} is not allowed; expected a path or null")
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    root = None if root is None else Path(root)
    check = DATASETS.get(name).check
    if check is not None:  # may raise FileNotFoundError / ImportError for missing data or packages
        check(root=root, seed=seed, **{**options, **kwargs})
    return {"root": root, "seed": seed, **kwargs}


def dataset_fingerprint(name: str, *, root: str | Path | None, seed: int = 0, **kwargs: Any) -> Optional[str]:
    """A digest of dataset ``name``'s content (see :class:`DatasetEntry`), or None when its
    config says it all. Checks the config first (:func:`check_dataset`); reads file metadata
    (names, sizes, mtimes, zip checksums), never the images."""
    checked = check_dataset(name, root=root, seed=seed, **kwargs)
    fingerprint = DATASETS.get(name).fingerprint
    if fingerprint is None:
        return None
    options = {**dataset_options(name), **checked}
    if _MEMO is None:
        return fingerprint(**options)
    key = (name, repr(sorted(options.items(), key=lambda kv: kv[0])))
    if key not in _MEMO:
        _MEMO[key] = fingerprint(**options)
    return _MEMO[key]


_MEMO: Optional[dict] = None


@contextmanager
def fingerprints_memoised():
    """Within the block, each dataset is fingerprinted once: planning a sweep prepares every run,
    and a large image folder's fingerprint stats every file (seconds on ImageNet)."""
    global _MEMO
    outer, _MEMO = _MEMO, ({} if _MEMO is None else _MEMO)
    try:
        yield
    finally:
        _MEMO = outer


def check_loader(name: str, loader: Mapping[str, Any], options: Mapping[str, Any]) -> dict[str, Any]:
    """Validate the loader keys of a ``data`` config (types, ranges, and that the augmentation
    keeps dataset ``name``'s labels, given its ``options``); returns them with defaults filled."""
    cfg = {**LOADER_DEFAULTS, **loader}
    for key, value in cfg.items():
        if key in ("augment", "hflip", "drop_last"):
            check_bool("data", key, value)
    check_int("data", "batch_size", cfg["batch_size"], 1)
    check_int("data", "num_workers", cfg["num_workers"], 0, 256)
    check_int("data", "pad", cfg["pad"], 0, 64)
    augment_check = DATASETS.get(name).augment_check
    if augment_check is not None:
        opts = {**dataset_options(name), **{k: v for k, v in options.items() if v is not None}}
        opts.pop("seed", None)
        augment_check(augment=cfg["augment"], pad=cfg["pad"], hflip=cfg["hflip"], **opts)
    return cfg


def foreign_data(root: str | Path | None) -> Optional[str]:
    """What user data ``root`` holds, if it looks like an image folder or holds ``.npz`` files
    (``"an image folder (train/ and val/)"``, ...), else None. Lists one directory level (two for
    image files), so it is cheap; used to refuse a generated dataset that would cache into it."""
    if root is None:
        return None
    root = Path(root).expanduser()
    if not root.is_dir():
        return None
    if (root / "train").is_dir() and (root / "val").is_dir():
        return "an image folder (train/ and val/)"
    try:
        entries = list(os.scandir(root))
    except OSError:
        return None
    npz = sorted(e.name for e in entries if e.is_file() and e.name.endswith(".npz"))
    if npz:
        return f".npz files ({npz[0]})"
    if any(e.is_file() and e.name.lower().endswith(IMAGE_EXTENSIONS) for e in entries):
        return "images"
    for sub in (e for e in entries if e.is_dir()):
        try:
            with os.scandir(sub.path) as it:
                if any(f.is_file() and f.name.lower().endswith(IMAGE_EXTENSIONS) for f in it):
                    return f"class folders of images ({sub.name}/)"
        except OSError:
            continue
    return None


def load_dataset(name: str, *, root: str | Path | None, seed: int = 0, **kwargs: Any) -> DataBundle:
    """Build dataset ``name`` from ``root`` (a cache or source dir; None = no disk cache).

    Options set to None are dropped, so "unset" in a config means the builder's default.
    Everything :func:`check_dataset` checks is checked first.
    """
    return _get_builder(name)(**check_dataset(name, root=root, seed=seed, **kwargs))


def split_config(cfg: Mapping[str, Any]) -> tuple[str, Any, dict[str, Any], dict[str, Any]]:
    """Split a plain ``data`` config dict into (name, root, dataset kwargs, loader kwargs).

    Dataset kwargs include ``seed`` when present; pass them as ``load_dataset(name, root=root,
    **dataset_kwargs)`` and the loader kwargs to :func:`ablate.data.make_loader`.
    """
    cfg = dict(cfg)
    name = cfg.pop("name", None)
    if not isinstance(name, str):
        raise ConfigError(f"data: name={name!r} is not allowed; allowed: {', '.join(list_datasets())}")
    root = cfg.pop("root", None)
    cfg.pop(FINGERPRINT_KEY, None)  # recorded by a run (its data's content), not an option
    loader = {k: cfg.pop(k) for k in LOADER_KEYS if k in cfg}
    return name, root, cfg, loader


def _get_builder(name: str) -> Callable[..., DataBundle]:
    return DATASETS.get(name).builder
