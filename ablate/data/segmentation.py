"""Segmentation data: label maps instead of labels, and the embedded generated task ``seg_alignment``.

A segmentation dataset yields ``(uint8 image C,H,W, int64 mask H,W)``; mask values are classes
``0..num_classes-1`` or ``IGNORE_INDEX`` (255, Pascal VOC's "void": no loss, not scored). The
loader's batch augmentation (random crop from a zero-padded image, horizontal flip) moves the
mask with its image; a pixel the crop brings in from the padding is ``IGNORE_INDEX``.

``seg_alignment`` — why: as in the classification task ``alignment`` (ablate/data/synthetic.py),
the label of an object is a row/column question, now per pixel. Each grayscale image holds
``objects`` filled squares (``object_size`` px) and ``clutter`` short strokes (1-3 px, never
touching an object). Every pixel of a square is labelled

- 1 ``aligned``: another square covers exactly the same rows, or exactly the same columns;
- 2 ``isolated``: every other square's rows and columns are disjoint from its own;

and every other pixel (background, clutter) is 0 ``background``. Two squares never partly
share rows or columns (they share them exactly or not at all) and never touch, so every label is
unambiguous; which of the two a square is depends on squares up to the whole canvas away, so a
net whose receptive field is smaller than the canvas cannot tell them apart, while CA's strip
pools see a whole row and column. Positions are uniform over the grid, drawn again until that
rule holds; about half of the squares come out aligned (54 % at the defaults). Objects stay ``margin`` px inside the border, so crops padded by <= ``margin`` keep
every square whole, and flips keep rows and columns. Arrays are cached like ``alignment``'s.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ablate.data._checks import check_int
from ablate.data.registry import DataBundle, register_dataset
from ablate.data.synthetic import generated_arrays
from ablate.data.tensor import TensorImageDataset, channel_stats
from ablate.errors import ConfigError

IGNORE_INDEX = 255
SEG_ALIGNMENT_CLASSES = ("background", "aligned", "isolated")
GENERATOR_VERSION = 1
# Datasets whose samples are label maps: task=segmentation needs one, classification refuses them.
SEGMENTATION_DATASETS = ("seg_alignment", "voc")


class TensorMaskDataset(TensorImageDataset):
    """Images (uint8 N,C,H,W) and label maps (N,H,W, values 0..K-1 or 255) in memory; the
    loader's fast path (batches are sliced, the mask augmented with its image)."""

    def __init__(self, images: torch.Tensor | np.ndarray, masks: torch.Tensor | np.ndarray):
        images, masks = torch.as_tensor(images), torch.as_tensor(masks)
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ConfigError(f"TensorMaskDataset: images must be uint8 N,C,H,W; got {images.dtype} {tuple(images.shape)}")
        if masks.ndim != 3 or masks.shape[0] != images.shape[0] or masks.shape[1:] != images.shape[2:] \
                or masks.is_floating_point():
            raise ConfigError(f"TensorMaskDataset: masks must be integer N,H,W matching the images; got "
                              f"{masks.dtype} {tuple(masks.shape)} for images {tuple(images.shape)}")
        self.images = images.contiguous()
        self.labels = masks.to(torch.int64).contiguous()

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[index], self.labels[index]

    def subset(self, indices: Sequence[int] | torch.Tensor | np.ndarray) -> "TensorMaskDataset":
        idx = torch.as_tensor(np.asarray(indices), dtype=torch.int64)
        return TensorMaskDataset(self.images[idx], self.labels[idx])


def _grid_positions(rng: np.random.Generator, grid: int, k: int, objects: int) -> np.ndarray:
    """One image's square positions (objects x 2: top, left on the grid), uniform and drawn again
    until every pair shares rows (and columns) exactly or not at all, >= 1 px apart. That
    rule alone makes about half of the squares aligned (54 % of square pixels at the defaults)."""
    while True:
        pos = rng.integers(0, grid, (objects, 2))
        d = np.abs(pos[:, None] - pos[None])  # objects, objects, 2
        off = ~np.eye(objects, dtype=bool)
        partial = ((d > 0) & (d < k + 1)).any(axis=2) | (d == 0).all(axis=2)
        if not (partial & off).any():
            return pos


def generate_seg_alignment(n: int, rng: np.random.Generator, *, image_size: int = 24, objects: int = 3,
                           clutter: int = 16, object_size: int = 4, margin: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """``n`` images (uint8 n,1,S,S) and label maps (uint8 n,S,S) of ``seg_alignment``."""
    from ablate.data.synthetic import _add_clutter, _stamp

    k, s = object_size, image_size
    grid = s - 2 * margin - k + 1
    pos = np.stack([_grid_positions(rng, grid, k, objects) for _ in range(n)]) + margin  # n, objects, 2
    canvas = np.zeros((n, s, s), dtype=np.uint8)
    masks = np.zeros((n, s, s), dtype=np.uint8)
    square = np.ones((k, k), dtype=bool)
    for o in range(objects):
        same = (pos[:, :, 0] == pos[:, o:o + 1, 0]) | (pos[:, :, 1] == pos[:, o:o + 1, 1])
        same[:, o] = False
        label = np.where(same.any(axis=1), 1, 2).astype(np.uint8)
        _stamp(canvas, square, pos[:, o, 0], pos[:, o, 1])
        layer = np.zeros_like(canvas)
        _stamp(layer, square, pos[:, o, 0], pos[:, o, 1])
        masks = np.where(layer > 0, label[:, None, None], masks)
    _add_clutter(canvas, [(pos[:, o, 0], pos[:, o, 1]) for o in range(objects)], k, clutter, rng)
    return canvas[:, None], masks


def _check(image_size, n_train, n_val, objects, clutter, object_size, margin) -> None:
    name = "seg_alignment"
    check_int(name, "image_size", image_size, 12, 256)
    check_int(name, "n_train", n_train, 4, 1_000_000)
    check_int(name, "n_val", n_val, 4, 1_000_000)
    check_int(name, "objects", objects, 2, 8)
    check_int(name, "clutter", clutter, 0, 64)
    check_int(name, "object_size", object_size, 3, 8)
    check_int(name, "margin", margin, 0, 8)
    need = objects * (object_size + 1) + 2 * margin  # room for every square in its own rows
    if image_size < need:
        raise ConfigError(f"{name}: image_size={image_size} is too small for objects={objects}, "
                          f"object_size={object_size} and margin={margin}; need image_size >= {need}")


def _augment_check(*, augment, pad, hflip, margin, **_) -> None:
    if isinstance(margin, int) and pad > margin:
        raise ConfigError(f"seg_alignment: pad={pad!r} is not allowed with margin={margin}; a crop padded beyond "
                          f"the margin can cut a square and change its label; allowed: pad <= {margin}")


def _checker(*, root, seed, image_size, n_train, n_val, objects, clutter, object_size, margin) -> None:
    _check(image_size, n_train, n_val, objects, clutter, object_size, margin)


@register_dataset("seg_alignment", check=_checker, augment_check=_augment_check, generated=True)
def seg_alignment(*, root: Path | None, seed: int, image_size: int = 24, n_train: int = 2000, n_val: int = 500,
                  objects: int = 3, clutter: int = 16, object_size: int = 4, margin: int = 2) -> DataBundle:
    """Per-pixel background / aligned square / isolated square (module docstring); 1 channel, 3 classes."""
    _check(image_size, n_train, n_val, objects, clutter, object_size, margin)
    params = dict(image_size=image_size, n_train=n_train, n_val=n_val, objects=objects, clutter=clutter,
                  object_size=object_size, margin=margin)
    opts = {k: params[k] for k in ("image_size", "objects", "clutter", "object_size", "margin")}
    arrays, path, source, gen_s = generated_arrays(
        "seg_alignment", lambda n, rng: generate_seg_alignment(n, rng, **opts), root, seed, params,
        version=GENERATOR_VERSION)
    mean, std = channel_stats(arrays["x_train"])
    return DataBundle(
        train=TensorMaskDataset(arrays["x_train"], arrays["y_train"]),
        val=TensorMaskDataset(arrays["x_val"], arrays["y_val"]),
        num_classes=3, in_chans=1, image_size=image_size, class_names=SEG_ALIGNMENT_CLASSES,
        mean=mean, std=std, name="seg_alignment",
        info={"task": "segmentation", "ignore_index": IGNORE_INDEX, "cache": None if path is None else str(path),
              "source": source, "generator_version": GENERATOR_VERSION, "generate_s": round(gen_s, 4), **params},
    )
