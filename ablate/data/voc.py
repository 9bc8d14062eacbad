"""Pascal VOC 2012 segmentation (``data=voc``): the DeepLabV3 table's dataset.

The layout of the VOC devkit (``<root>`` is ``VOCdevkit/VOC2012`` or a folder holding it):

- ``ImageSets/Segmentation/train.txt`` and ``val.txt``: one image id a line;
- ``JPEGImages/<id>.jpg``: the images (RGB);
- ``SegmentationClass/<id>.png``: palette ("P" mode) PNGs whose pixel values are the class
  indices 0..20 (background + 20 classes) and 255 for the void border (``IGNORE_INDEX``: no
  loss, not scored). The palette's colours are not read: the indices are the labels.

Each sample is resized so that its longer side is ``image_size`` (bilinear for the image,
nearest for the mask: labels are never blended) and padded bottom/right to ``image_size``²
(image 0, mask 255), so every batch has one shape and no pixel of padding is scored; the loader's
crop and flip move the mask with its image. (DeepLab trains on random scaled 513 px crops and
evaluates whole images; this loader is the fixed-size version of that, documented as such.)
The run key holds the fingerprint of the listed files (names, sizes, mtimes), not the root.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch.utils.data import Dataset

from ablate.data._checks import check_int
from ablate.data._fingerprint import files_fingerprint
from ablate.data.registry import DataBundle, register_dataset
from ablate.data.segmentation import IGNORE_INDEX
from ablate.data.tensor import seeded_subset
from ablate.errors import ConfigError

VOC_CLASSES = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
               "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
               "tvmonitor")
# ImageNet statistics: the backbones' pre-training data (torchvision's DeepLabV3 uses them too).
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def voc_root(root: Optional[Path]) -> Path:
    """``root`` itself when it holds ``ImageSets/Segmentation``, else ``root/VOCdevkit/VOC2012``
    or ``root/VOC2012``; FileNotFoundError (one line) naming what is expected otherwise."""
    if root is None:
        raise ConfigError("voc: data.root is null; allowed: the VOC2012 folder (JPEGImages, SegmentationClass, ImageSets)")
    root = Path(root).expanduser()
    for cand in (root, root / "VOCdevkit" / "VOC2012", root / "VOC2012"):
        if (cand / "ImageSets" / "Segmentation").is_dir():
            return cand
    raise FileNotFoundError(f"voc: {root}/ImageSets/Segmentation not found; expected the VOC2012 layout "
                            "(JPEGImages/<id>.jpg, SegmentationClass/<id>.png, ImageSets/Segmentation/train.txt, val.txt)")


def split_ids(root: Path, split: str) -> list[str]:
    path = root / "ImageSets" / "Segmentation" / f"{split}.txt"
    if not path.is_file():
        raise FileNotFoundError(f"voc: {path} not found; expected one image id a line")
    ids = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not ids:
        raise ConfigError(f"voc: {path} lists no image; expected one image id a line")
    return ids


def _files(root: Path, ids: list[str]) -> list[Path]:
    out = []
    for i in ids:
        for path in (root / "JPEGImages" / f"{i}.jpg", root / "SegmentationClass" / f"{i}.png"):
            if not path.is_file():
                raise FileNotFoundError(f"voc: {path} not found (listed in ImageSets/Segmentation); expected its image and mask")
            out.append(path)
    return out


class VOCSegmentation(Dataset):
    """``(uint8 image 3,S,S, int64 mask S,S)`` of one split, resized and padded to ``S`` = image_size."""

    in_chans = 3

    def __init__(self, root: Path, ids: list[str], image_size: int):
        self.root, self.ids, self.size = root, ids, image_size

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        from PIL import Image

        i = self.ids[index]
        with Image.open(self.root / "JPEGImages" / f"{i}.jpg") as im:
            image = im.convert("RGB")
        with Image.open(self.root / "SegmentationClass" / f"{i}.png") as m:
            if m.mode not in ("P", "L"):
                raise ValueError(f"voc: SegmentationClass/{i}.png is mode {m.mode}; expected a palette (P) PNG of class indices")
            mask = m.copy()
        if image.size != mask.size:
            raise ValueError(f"voc: {i}: image {image.size} and mask {mask.size} differ in size")
        w, h = image.size
        scale = self.size / max(w, h)
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        image = np.asarray(image.resize((nw, nh), Image.BILINEAR), dtype=np.uint8)
        mask = np.asarray(mask.resize((nw, nh), Image.NEAREST), dtype=np.uint8)
        x = np.zeros((self.size, self.size, 3), dtype=np.uint8)
        y = np.full((self.size, self.size), IGNORE_INDEX, dtype=np.uint8)
        x[:nh, :nw], y[:nh, :nw] = image, mask
        return torch.from_numpy(x).permute(2, 0, 1).contiguous(), torch.from_numpy(y).to(torch.int64)


def _check(*, root, seed, image_size, train_split, val_split, n_train, n_val) -> None:
    check_int("voc", "image_size", image_size, 16, 2048)
    for key, value in (("n_train", n_train), ("n_val", n_val)):
        if value is not None:
            check_int("voc", key, value, 1)
    base = voc_root(root)
    for split in (train_split, val_split):
        _files(base, split_ids(base, split))


def _fingerprint(*, root, seed, image_size, train_split, val_split, n_train, n_val) -> str:
    base = voc_root(root)
    paths = [base / "ImageSets" / "Segmentation" / f"{s}.txt" for s in (train_split, val_split)]
    for split in (train_split, val_split):
        paths += _files(base, split_ids(base, split))
    return files_fingerprint(base, paths)


@register_dataset("voc", check=_check, fingerprint=_fingerprint)
def voc(*, root: Optional[Path], seed: int, image_size: int = 513, train_split: str = "train",
        val_split: str = "val", n_train: Optional[int] = None, n_val: Optional[int] = None) -> DataBundle:
    """Pascal VOC 2012 segmentation, 21 classes + void (255); see the module docstring.
    ``n_train``/``n_val``: a seeded subset of each split (None: all of it)."""
    base = voc_root(root)
    train_ids, val_ids = split_ids(base, train_split), split_ids(base, val_split)
    for salt, (key, ids, n) in enumerate((("n_train", train_ids, n_train), ("n_val", val_ids, n_val))):
        keep = seeded_subset("voc", key, len(ids), n, seed, salt)
        if keep is not None:
            ids[:] = [ids[i] for i in keep]
    return DataBundle(
        train=VOCSegmentation(base, train_ids, image_size), val=VOCSegmentation(base, val_ids, image_size),
        num_classes=len(VOC_CLASSES), in_chans=3, image_size=image_size, class_names=VOC_CLASSES,
        mean=MEAN, std=STD, name="voc",
        info={"task": "segmentation", "ignore_index": IGNORE_INDEX, "source": str(base),
              "n_train": len(train_ids), "n_val": len(val_ids)},
    )
