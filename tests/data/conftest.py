"""Helpers that write a user's data in the real on-disk formats (image folders, .npz)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def write_image_folder(root: Path, splits: dict[str, tuple[np.ndarray, np.ndarray]],
                       classes: tuple[str, ...]) -> Path:
    """``<root>/<split>/<class>/NNNN.png`` from uint8 N,C,H,W images (C = 1 or 3) and labels.

    Files are numbered in array order, so scanning the folder (classes sorted, then files
    sorted) yields the arrays' order when the labels are sorted and ``classes`` is too.
    """
    from PIL import Image

    for split, (x, y) in splits.items():
        for c in classes:
            (root / split / c).mkdir(parents=True, exist_ok=True)
        for i, (img, label) in enumerate(zip(x, y)):
            arr = img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0)
            Image.fromarray(np.ascontiguousarray(arr)).save(root / split / classes[int(label)] / f"{i:04d}.png")
    return root


@pytest.fixture
def image_folder():
    return write_image_folder
