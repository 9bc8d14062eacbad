"""CIFAR-10 and CIFAR-100 from the official "python version" pickles (no download).

Layout (as extracted from the tarballs at https://www.cs.toronto.edu/~kriz/cifar.html):
``<root>/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}`` and
``<root>/cifar-100-python/{train, test, meta}``. Each batch is a pickled dict (written by
Python 2, hence bytes keys) with ``data`` (N×3072 uint8, channel-major 32×32) and
``labels`` (CIFAR-10) or ``fine_labels``/``coarse_labels`` (CIFAR-100). The official test
set is ablate's ``val`` split, as in the CA paper's CIFAR-size baselines.

Pickles can run code: the batches are read by a restricted unpickler that builds only what the
format holds (numpy arrays, dicts, lists, bytes, str, numbers) and refuses any other global
with one line naming the file and the global, so a crafted file runs nothing.
"""
from __future__ import annotations

import codecs
import pickle
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ablate.data._checks import check_optional_int
from ablate.data._fingerprint import files_fingerprint
from ablate.data.registry import DataBundle, register_dataset
from ablate.data.tensor import TensorImageDataset, seeded_subset
from ablate.errors import ConfigError, check_choice

_URL = "https://www.cs.toronto.edu/~kriz/{}-python.tar.gz"
# Per-channel mean/std of the training sets on the [0, 1] scale (the widely used values).
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN, CIFAR100_STD = (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)


class _Refused(pickle.UnpicklingError):
    """A global the CIFAR format never holds."""


def _latin1(text: str, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles written by Python 3 use it for bytes (latin-1)."""
    if encoding not in ("latin1", "latin-1"):
        raise _Refused(f"_codecs.encode with encoding {encoding!r}")
    return codecs.encode(text, "latin-1", errors)


def _numpy_globals() -> dict[tuple[str, str], Callable]:
    """What pickled numpy arrays refer to, under numpy 1's and numpy 2's module names."""
    try:  # numpy >= 2
        from numpy._core import multiarray, numeric
    except ImportError:  # numpy 1
        from numpy.core import multiarray, numeric
    out: dict[tuple[str, str], Callable] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
                                            ("_codecs", "encode"): _latin1}
    for core in ("numpy.core", "numpy._core"):
        out[(f"{core}.multiarray", "_reconstruct")] = multiarray._reconstruct
        if hasattr(numeric, "_frombuffer"):
            out[(f"{core}.numeric", "_frombuffer")] = numeric._frombuffer
    return out


class _CifarUnpickler(pickle.Unpickler):
    """Builds dicts, lists, bytes, str, numbers and numpy arrays; refuses every other global."""

    allowed = _numpy_globals()

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self.allowed[(module, name)]
        except KeyError:
            raise _Refused(f"{module}.{name}") from None


def _unpickle(path: Path) -> dict[str, Any]:
    """A CIFAR pickle as a dict with str keys (the files have bytes keys), read by the
    restricted unpickler: a global the format does not hold is a one-line ConfigError."""
    allowed = ", ".join(sorted(f"{m}.{n}" for m, n in _CifarUnpickler.allowed))
    try:
        with open(path, "rb") as fh:
            raw = _CifarUnpickler(fh, encoding="bytes").load()
    except _Refused as exc:
        raise ConfigError(f"{path}: refused to unpickle global {exc}; a CIFAR batch holds only numpy arrays, "
                          f"lists, dicts, bytes, str and numbers (allowed globals: {allowed})") from None
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError, TypeError, ValueError) as exc:
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"{path}: not a readable CIFAR batch ({type(exc).__name__}: {why}); "
                          "expected the official python-version pickles") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: holds a {type(raw).__name__}, not a CIFAR batch; expected a pickled dict")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in raw.items()}


def _names(values: list) -> tuple[str, ...]:
    return tuple(v.decode() if isinstance(v, bytes) else str(v) for v in values)


def _images(owner: str, path: Path, data: Any) -> np.ndarray:
    arr = np.asarray(data, dtype=np.uint8)
    if arr.ndim != 2 or arr.shape[1] != 3 * 32 * 32:
        raise ConfigError(f"{owner}: {path} holds data of shape {arr.shape}; expected N x 3072")
    return arr.reshape(-1, 3, 32, 32)


def _require(owner: str, folder: Path, files: tuple[str, ...], tarball: str, root: Path) -> None:
    missing = [f for f in files if not (folder / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{owner}: {folder / missing[0]} not found (looked in {folder}); ablate does not "
            f"download: get {_URL.format(tarball)} and extract it into {root}"
        )


def _bundle(name: str, seed: int, n_train: int | None, n_val: int | None, xt, yt, xv, yv,
            classes: tuple[str, ...], mean, std, folder: Path) -> DataBundle:
    train, val = TensorImageDataset(xt, yt), TensorImageDataset(xv, yv)
    # Seeded subsets let debug runs and quick sweeps use a slice of the real data.
    idx_t = seeded_subset(name, "n_train", len(train), n_train, seed, 0)
    idx_v = seeded_subset(name, "n_val", len(val), n_val, seed, 1)
    return DataBundle(
        train=train if idx_t is None else train.subset(idx_t),
        val=val if idx_v is None else val.subset(idx_v),
        num_classes=len(classes), in_chans=3, image_size=32, class_names=classes,
        mean=mean, std=std, name=name, info={"source": str(folder)},
    )


_C10_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))


def _check_cifar10(*, root: Path | None, seed: int, n_train: int | None, n_val: int | None) -> None:
    """Options and files, without reading them (the registry's pre-flight check)."""
    check_optional_int("cifar10", "n_train", n_train, 1)
    check_optional_int("cifar10", "n_val", n_val, 1)
    if root is None:
        raise ConfigError("cifar10: root=None is not allowed; expected the dir holding cifar-10-batches-py")
    _require("cifar10", Path(root) / "cifar-10-batches-py", _C10_BATCHES + ("test_batch", "batches.meta"),
             "cifar-10", Path(root))


_C10_FILES = _C10_BATCHES + ("test_batch", "batches.meta")
_C100_FILES = ("train", "test", "meta")


def _fingerprint_cifar10(*, root: Path, **_: Any) -> str:
    """The batch files' names, sizes and mtimes."""
    return files_fingerprint(Path(root), [Path(root) / "cifar-10-batches-py" / f for f in _C10_FILES])


def _fingerprint_cifar100(*, root: Path, **_: Any) -> str:
    return files_fingerprint(Path(root), [Path(root) / "cifar-100-python" / f for f in _C100_FILES])


@register_dataset("cifar10", check=_check_cifar10, fingerprint=_fingerprint_cifar10)
def cifar10(*, root: Path | None, seed: int, n_train: int | None = None,
            n_val: int | None = None) -> DataBundle:
    """CIFAR-10: 50k train / 10k val (the test set), 32×32 RGB, 10 classes."""
    _check_cifar10(root=root, seed=seed, n_train=n_train, n_val=n_val)
    folder = Path(root) / "cifar-10-batches-py"
    batches = _C10_BATCHES
    parts = [_unpickle(folder / b) for b in batches]
    xt = np.concatenate([_images("cifar10", folder / b, p["data"]) for b, p in zip(batches, parts)])
    yt = np.concatenate([np.asarray(p["labels"], dtype=np.int64) for p in parts])
    test = _unpickle(folder / "test_batch")
    xv = _images("cifar10", folder / "test_batch", test["data"])
    yv = np.asarray(test["labels"], dtype=np.int64)
    classes = _names(_unpickle(folder / "batches.meta")["label_names"])
    return _bundle("cifar10", seed, n_train, n_val, xt, yt, xv, yv, classes,
                   CIFAR10_MEAN, CIFAR10_STD, folder)


def _check_cifar100(*, root: Path | None, seed: int, n_train: int | None, n_val: int | None, labels: str) -> None:
    """Options and files, without reading them (the registry's pre-flight check)."""
    check_optional_int("cifar100", "n_train", n_train, 1)
    check_optional_int("cifar100", "n_val", n_val, 1)
    check_choice("labels", labels, ("fine", "coarse"), owner="cifar100")
    if root is None:
        raise ConfigError("cifar100: root=None is not allowed; expected the dir holding cifar-100-python")
    _require("cifar100", Path(root) / "cifar-100-python", ("train", "test", "meta"), "cifar-100", Path(root))


@register_dataset("cifar100", check=_check_cifar100, fingerprint=_fingerprint_cifar100)
def cifar100(*, root: Path | None, seed: int, n_train: int | None = None, n_val: int | None = None,
             labels: str = "fine") -> DataBundle:
    """CIFAR-100: 50k train / 10k val, 32×32 RGB; 100 fine (default) or 20 coarse classes."""
    _check_cifar100(root=root, seed=seed, n_train=n_train, n_val=n_val, labels=labels)
    folder = Path(root) / "cifar-100-python"
    train, test = _unpickle(folder / "train"), _unpickle(folder / "test")
    key = f"{labels}_labels"
    xt, yt = _images("cifar100", folder / "train", train["data"]), np.asarray(train[key], np.int64)
    xv, yv = _images("cifar100", folder / "test", test["data"]), np.asarray(test[key], np.int64)
    classes = _names(_unpickle(folder / "meta")[f"{labels}_label_names"])
    return _bundle("cifar100", seed, n_train, n_val, xt, yt, xv, yv, classes,
                   CIFAR100_MEAN, CIFAR100_STD, folder)
