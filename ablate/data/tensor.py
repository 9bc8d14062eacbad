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
            raise ValueError(
                f"TensorImageDataset: images must be uint8 N,C,H,W; got {images.dtype} {tuple(images.shape)}"
            )
        if labels.ndim != 1 or labels.shape[0] != images.shape[0] or labels.is_floating_point():
            raise ValueError(
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


def channel_stats(images: torch.Tensor | np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images N,C,H,W on the [0, 1] scale.

    Computed in float64 so the numbers are identical wherever the same bytes are loaded.
    """
    x = np.asarray(images, dtype=np.float64) / 255.0
    mean = x.mean(axis=(0, 2, 3))
    std = x.std(axis=(0, 2, 3))
    # A constant channel (e.g. an all-zero debug set) would divide by zero in the loader.
    std = np.where(std > 1e-6, std, 1.0)
    return tuple(round(float(m), 6) for m in mean), tuple(round(float(s), 6) for s in std)


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
        raise ValueError(f"{owner}: {key}={n_keep!r} is not allowed; only {n_total} samples available")
    rng = np.random.default_rng([seed, salt])
    return np.sort(rng.permutation(n_total)[:n_keep])
