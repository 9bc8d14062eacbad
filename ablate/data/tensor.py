"""In-memory image datasets: uint8 images and int64 labels held as two tensors.

Every dataset in ablate yields ``(uint8 image C,H,W, int label)``; augmentation and
normalisation happen per batch in :mod:`ablate.data.loader`. Keeping the stored images uint8
costs a quarter of the memory of float32 and lets the loader slice whole batches at once.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ablate.errors import ConfigError

# Pixels per bincount call in channel_histograms (its int64 temporary is 8 bytes a pixel).
_STATS_CHUNK = 1 << 24


class TensorImageDataset(Dataset):
    """Images (uint8, N×C×H×W) and labels (int64, N) in memory; the loader's fast path.

    Args:
        images: uint8 tensor or array of shape (N, C, H, W).
        labels: integer tensor or array of shape (N,).
    """

    def __init__(self, images: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray):
        images = torch.as_tensor(images)
        labels = torch.as_tensor(labels)
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ConfigError(
                f"TensorImageDataset: images must be uint8 N,C,H,W; got {images.dtype} {tuple(images.shape)}"
            )
        if labels.ndim != 1 or labels.shape[0] != images.shape[0] or labels.is_floating_point():
            raise ConfigError(
                f"TensorImageDataset: labels must be N integers; got {labels.dtype} {tuple(labels.shape)}"
                f" for {images.shape[0]} images"
            )
        self.images = images.contiguous()
        self.labels = labels.to(torch.int64).contiguous()

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], int(self.labels[index])

    @property
    def in_chans(self) -> int:
        """Number of image channels."""
        return int(self.images.shape[1])

    @property
    def image_size(self) -> tuple[int, int]:
        """(H, W) of every image."""
        return int(self.images.shape[2]), int(self.images.shape[3])

    def subset(self, indices: Sequence[int] | torch.Tensor | np.ndarray) -> "TensorImageDataset":
        """A new dataset holding only ``indices`` (copies; the fast path needs contiguous rows)."""
        idx = torch.as_tensor(np.asarray(indices), dtype=torch.int64)
        return TensorImageDataset(self.images[idx], self.labels[idx])


def channel_histograms(images: torch.Tensor | np.ndarray) -> np.ndarray:
    """Per-channel counts of each uint8 value in images N,C,H,W: an int64 array C×256.

    Counts are exact and add up across chunks, so stats computed from them do not depend on
    how the images were read (all at once, or one at a time while streaming from disk).
    """
    x = np.asarray(images)
    if x.dtype != np.uint8 or x.ndim != 4:
        raise ConfigError(f"channel_histograms: images must be uint8 N,C,H,W; got {x.dtype} {x.shape}")
    hist = np.zeros((x.shape[1], 256), dtype=np.int64)
    step = max(1, _STATS_CHUNK // max(1, x[0, 0].size))  # bincount widens to intp: keep chunks small
    for lo in range(0, x.shape[0], step):
        for c in range(x.shape[1]):
            hist[c] += np.bincount(x[lo:lo + step, c].ravel(), minlength=256)
    return hist


def stats_from_histograms(hist: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std on the [0, 1] scale from :func:`channel_histograms` counts."""
    hist = np.asarray(hist, dtype=np.int64)
    values = np.arange(256, dtype=np.float64) / 255.0
    n = hist.sum(axis=1).astype(np.float64)
    if hist.ndim != 2 or hist.shape[1] != 256 or not np.all(n > 0):
        raise ConfigError(f"stats_from_histograms: expected C×256 counts with pixels in every channel; got {hist.shape}")
    mean = (hist * values).sum(axis=1) / n
    std = np.sqrt((hist * (values[None, :] - mean[:, None]) ** 2).sum(axis=1) / n)
    # A constant channel (e.g. an all-zero debug set) would divide by zero in the loader.
    std = np.where(std > 1e-6, std, 1.0)
    return tuple(round(float(m), 6) for m in mean), tuple(round(float(s), 6) for s in std)


def channel_stats(images: torch.Tensor | np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images N,C,H,W on the [0, 1] scale.

    Computed in float64 from exact value counts, so the numbers are identical wherever the
    same bytes are loaded, whether all at once or streamed (:func:`channel_histograms`), and
    memory stays at a small chunk of the images rather than a float64 copy of them all.
    """
    return stats_from_histograms(channel_histograms(images))


def seeded_subset(owner: str, key: str, n_total: int, n_keep: int | None, seed: int,
                  salt: int) -> np.ndarray | None:
    """Indices of a seeded random subset of size ``n_keep`` (sorted), or None to keep all.

    ``salt`` separates the train and val draws so changing one never changes the other.
    Asking for more samples than exist is an error, not a silent cap: a table row that says
    n_train=100000 must have trained on that many.
    """
    if n_keep is None or n_keep == n_total:
        return None
    if n_keep > n_total:
        raise ConfigError(f"{owner}: {key}={n_keep!r} is not allowed; only {n_total} samples available")
    rng = np.random.default_rng([seed, salt])
    return np.sort(rng.permutation(n_total)[:n_keep])
