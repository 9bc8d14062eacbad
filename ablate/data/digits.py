"""scikit-learn's bundled 8×8 handwritten digits (1797 images, shipped inside sklearn).

A real, offline, tiny image set: upsampled to ``image_size`` (bilinear) so the CIFAR-size
stems have room to downsample. sklearn is an optional dependency imported here only.
The split is seeded and stratified (``val_fraction`` of each class goes to val).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ablate.data._checks import check_float, check_int, check_optional_int
from ablate.data.registry import DataBundle, register_dataset
from ablate.data.tensor import TensorImageDataset, channel_stats, seeded_subset

_MAX_VALUE = 16.0  # sklearn's digits are counts of set pixels in 4×4 blocks: 0..16


def load_digit_arrays() -> tuple[np.ndarray, np.ndarray]:
    """(images float 1797×8×8 in 0..16, labels) from sklearn; one-line ImportError if missing."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        # One line, with the cause: "installed but broken" must not read as "missing".
        raise ImportError(f"digits: cannot import scikit-learn ({exc}); pip install scikit-learn") from exc
    d = load_digits()
    return np.asarray(d.images, dtype=np.float64), np.asarray(d.target, dtype=np.int64)


def _check_digits(*, root, seed, image_size, val_fraction, n_train, n_val) -> None:
    """Options and that scikit-learn is importable (the registry's pre-flight check)."""
    import importlib.util

    check_int("digits", "image_size", image_size, 8, 256)
    check_float("digits", "val_fraction", val_fraction, 0.05, 0.95)
    check_optional_int("digits", "n_train", n_train, 1)
    check_optional_int("digits", "n_val", n_val, 1)
    if importlib.util.find_spec("sklearn") is None:
        raise ImportError("digits: scikit-learn is not installed; pip install scikit-learn")


@register_dataset("digits", check=_check_digits)
def digits(*, root: Path | None, seed: int, image_size: int = 16, val_fraction: float = 0.2,
           n_train: int | None = None, n_val: int | None = None) -> DataBundle:
    """The 8×8 digits upsampled to ``image_size``; 1 channel, 10 classes; ``root`` unused."""
    owner = "digits"
    image_size = check_int(owner, "image_size", image_size, 8, 256)
    val_fraction = check_float(owner, "val_fraction", val_fraction, 0.05, 0.95)
    n_train = check_optional_int(owner, "n_train", n_train, 1)
    n_val = check_optional_int(owner, "n_val", n_val, 1)
    images, labels = load_digit_arrays()
    x = torch.from_numpy(images / _MAX_VALUE).float()[:, None]
    if image_size != 8:
        x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False)
    x = (x.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    # Stratified seeded split: shuffle each class, send its first val_fraction to val.
    rng = np.random.default_rng([seed, 2])
    is_val = np.zeros(len(labels), dtype=bool)
    for c in range(10):
        members = rng.permutation(np.flatnonzero(labels == c))
        is_val[members[: int(round(val_fraction * len(members)))]] = True
    train = TensorImageDataset(x[~is_val], labels[~is_val])
    val = TensorImageDataset(x[is_val], labels[is_val])
    idx_t = seeded_subset(owner, "n_train", len(train), n_train, seed, 0)
    idx_v = seeded_subset(owner, "n_val", len(val), n_val, seed, 1)
    train = train if idx_t is None else train.subset(idx_t)
    val = val if idx_v is None else val.subset(idx_v)
    mean, std = channel_stats(train.images.numpy())
    return DataBundle(
        train=train, val=val, num_classes=10, in_chans=1, image_size=image_size,
        class_names=tuple(str(i) for i in range(10)), mean=mean, std=std, name=owner,
        info={"source": "sklearn.datasets.load_digits"},
    )
