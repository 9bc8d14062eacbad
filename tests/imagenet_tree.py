"""A tiny ImageNet in its on-disk layout: ``train/<wnid>/<wnid>_<n>.JPEG`` and ``val/<wnid>/...``,
images of mixed sizes and aspect ratios (JPEG and PNG), as the ImageNet recipe reads them."""
from __future__ import annotations

from pathlib import Path

import numpy as np

WNIDS = ("n01440764", "n01443537", "n01484850")  # tench, goldfish, great white shark
SIZES = ((40, 30), (33, 52), (64, 64), (29, 45))  # (W, H): landscape, portrait, square


def write_imagenet_tree(root: Path, n_train: int = 3, n_val: int = 1, seed: int = 0) -> Path:
    """``n_train``/``n_val`` images per class; every fourth one a PNG (ImageNet holds a few)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("val", n_val)):
        for c, wnid in enumerate(WNIDS):
            d = root / split / wnid
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                w, h = SIZES[(i + c) % len(SIZES)]
                img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
                img[..., c] = 255  # a class colour, so the labels mean something
                ext = "png" if i % 4 == 3 else "JPEG"
                Image.fromarray(img).save(d / f"{wnid}_{i:05d}.{ext}", **({"quality": 95} if ext == "JPEG" else {}))
    return root


# Shipped sweeps whose runs read files under paths.data_dir (<ABLATE_HOME>/data/<sub>): planning
# them needs the files, so tests write a stand-in there first.
FILE_SWEEPS = {"imagenet_table2": "imagenet"}


def write_stand_in(sweep: str, home: Path) -> str | None:
    """Write the stand-in data sweep ``sweep`` reads (None: it reads no files); its sub-folder."""
    sub = FILE_SWEEPS.get(sweep)
    if sub is not None:
        write_imagenet_tree(home / "data" / sub)
    return sub
