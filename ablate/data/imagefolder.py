"""Image folders: ``<root>/train/<class>/*.png|jpg`` and ``<root>/val/<class>/...``.

Read with PIL and resized by hand (no torchvision dependency); images come out uint8 C,H,W
like every ablate dataset, and the loader augments and normalises them per batch. Class
names are the sorted sub-folders of ``train``; ``val`` must not hold a class ``train`` lacks.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ablate.data._checks import check_image_size, check_optional_int, check_stats
from ablate.data.registry import DataBundle, register_dataset
from ablate.data.tensor import seeded_subset

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
# ImageNet statistics (torchvision's); the gray pair is their luminance-weighted average.
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
GRAY_MEAN, GRAY_STD = (0.449,), (0.226,)


class ImageFolderDataset(Dataset):
    """A list of (path, label) read lazily with PIL, converted and resized to ``image_size``.

    Args:
        samples: (path, label) pairs.
        image_size: (H, W) every image is resized to (bilinear; aspect ratio not kept).
        in_chans: 1 converts to grayscale ("L"), 3 to RGB.
    """

    def __init__(self, samples: list[tuple[Path, int]], image_size: tuple[int, int], in_chans: int):
        self.samples = list(samples)
        self.image_size = tuple(image_size)
        self.in_chans = in_chans

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        from PIL import Image

        path, label = self.samples[index]
        h, w = self.image_size
        with Image.open(path) as im:
            im = im.convert("L" if self.in_chans == 1 else "RGB")
            if im.size != (w, h):
                im = im.resize((w, h), Image.BILINEAR)
            arr = np.array(im, dtype=np.uint8)  # a writable copy (torch warns on read-only)
        arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
        return torch.from_numpy(np.ascontiguousarray(arr)), label


def scan_split(owner: str, folder: Path, classes: tuple[str, ...] | None) -> tuple[list[tuple[Path, int]], tuple[str, ...]]:
    """(samples, class names) under ``folder/<class>/``; ``classes`` fixes the label map."""
    if not folder.is_dir():
        raise FileNotFoundError(
            f"{owner}: {folder} not found; expected <root>/train/<class>/*.png and <root>/val/<class>/*.png"
        )
    found = tuple(sorted(d.name for d in folder.iterdir() if d.is_dir()))
    if classes is None:
        classes = found
    extra = [c for c in found if c not in classes]
    if extra:
        raise ValueError(f"{owner}: class {extra[0]!r} in {folder} is not in the train split; "
                         f"allowed: {', '.join(classes)}")
    index = {c: i for i, c in enumerate(classes)}
    samples = [(p, index[c]) for c in found for p in sorted((folder / c).iterdir())
               if p.suffix.lower() in IMAGE_EXTENSIONS]
    if not samples:
        raise FileNotFoundError(f"{owner}: no images ({', '.join(IMAGE_EXTENSIONS)}) under {folder}/<class>/")
    return samples, classes


def _check_imagefolder(*, root: Path | None, seed: int, image_size, in_chans: int, n_train, n_val, mean, std) -> dict:
    """Options and the two split dirs, without opening an image; returns normalised options."""
    owner = "imagefolder"
    size = check_image_size(owner, image_size)
    if isinstance(in_chans, bool) or not isinstance(in_chans, int) or in_chans not in (1, 3):
        raise ValueError(f"{owner}: in_chans={in_chans!r} is not allowed; allowed: 1, 3")
    n_train = check_optional_int(owner, "n_train", n_train, 1)
    n_val = check_optional_int(owner, "n_val", n_val, 1)
    mean = check_stats(owner, "mean", mean if mean is not None else
                       (IMAGENET_MEAN if in_chans == 3 else GRAY_MEAN), in_chans, positive=False)
    std = check_stats(owner, "std", std if std is not None else
                      (IMAGENET_STD if in_chans == 3 else GRAY_STD), in_chans, positive=True)
    if root is None:
        raise ValueError(f"{owner}: root=None is not allowed; expected a dir holding train/ and val/")
    for split in ("train", "val"):
        if not (Path(root) / split).is_dir():
            raise FileNotFoundError(f"{owner}: {Path(root) / split} not found; expected "
                                    "<root>/train/<class>/*.png and <root>/val/<class>/*.png")
    return {"size": size, "n_train": n_train, "n_val": n_val, "mean": mean, "std": std}


@register_dataset("imagefolder", check=_check_imagefolder)
def imagefolder(*, root: Path | None, seed: int, image_size: int | list[int] = 64, in_chans: int = 3,
                n_train: int | None = None, n_val: int | None = None,
                mean: list[float] | None = None, std: list[float] | None = None) -> DataBundle:
    """Images from ``<root>/train`` and ``<root>/val`` resized to ``image_size``.

    ``mean``/``std`` default to the ImageNet statistics (their gray average for 1 channel);
    pass the dataset's own for other domains.
    """
    owner = "imagefolder"
    opts = _check_imagefolder(root=root, seed=seed, image_size=image_size, in_chans=in_chans,
                              n_train=n_train, n_val=n_val, mean=mean, std=std)
    size, n_train, n_val, mean, std = opts["size"], opts["n_train"], opts["n_val"], opts["mean"], opts["std"]
    train, classes = scan_split(owner, Path(root) / "train", None)
    val, _ = scan_split(owner, Path(root) / "val", classes)
    idx_t = seeded_subset(owner, "n_train", len(train), n_train, seed, 0)
    idx_v = seeded_subset(owner, "n_val", len(val), n_val, seed, 1)
    train = train if idx_t is None else [train[i] for i in idx_t]
    val = val if idx_v is None else [val[i] for i in idx_v]
    return DataBundle(
        train=ImageFolderDataset(train, size, in_chans), val=ImageFolderDataset(val, size, in_chans),
        num_classes=len(classes), in_chans=in_chans,
        image_size=size[0] if size[0] == size[1] else size, class_names=classes,
        mean=mean, std=std, name=owner, info={"source": str(root)},
    )
