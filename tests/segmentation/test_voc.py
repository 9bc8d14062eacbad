"""The Pascal VOC loader on files written here in the VOC2012 layout (JPEG images, palette PNG
masks with 255 borders, ImageSets/Segmentation lists)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.helpers import TINY

VOC_TINY = [o for o in TINY if not o.startswith(("data.n_train", "data.n_val"))] + ["data.n_train=5"]


def write_voc(root, n_train=6, n_val=3, size=(20, 16), seed=0):
    """A VOC2012 tree: images w x h, masks of classes 0..20 with a 255 border; returns the masks."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    base = root / "VOCdevkit" / "VOC2012"
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    masks = {}
    w, h = size
    for split, n in (("train", n_train), ("val", n_val)):
        ids = [f"2007_{split}{i:03d}" for i in range(n)]
        (base / "ImageSets" / "Segmentation" / f"{split}.txt").write_text("\n".join(ids) + "\n")
        for i in ids:
            Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(base / "JPEGImages" / f"{i}.jpg")
            mask = rng.integers(0, 21, (h, w)).astype(np.uint8)
            mask[0, :] = 255  # the void border
            png = Image.fromarray(mask, mode="P")
            png.putpalette([c for k in range(256) for c in (k, 255 - k, (7 * k) % 256)])
            png.save(base / "SegmentationClass" / f"{i}.png")
            masks[i] = mask
    return masks


def test_voc_samples_keep_the_mask_indices_and_pad_with_ignore(tmp_path):
    from ablate.data import load_dataset, make_loader

    masks = write_voc(tmp_path)
    b = load_dataset("voc", root=tmp_path, image_size=20)  # longer side 20: no resize, 4 rows of padding
    assert b.num_classes == 21 and len(b.train) == 6 and len(b.val) == 3
    x, y = b.val[1]
    assert x.shape == (3, 20, 20) and x.dtype == torch.uint8 and y.shape == (20, 20)
    assert torch.equal(y[:16], torch.from_numpy(masks["2007_val001"]).long())
    assert (y[16:] == 255).all() and (x[:, 16:] == 0).all()
    loader = make_loader(b.train, batch_size=4, shuffle=True, seed=0, augment=True, pad=2, mean=b.mean, std=b.std)
    loader.set_epoch(0)
    xb, yb = next(iter(loader))
    assert xb.shape == (4, 3, 20, 20) and yb.shape == (4, 20, 20)
    assert set(torch.unique(yb).tolist()) <= set(range(21)) | {255}


def test_resizing_keeps_labels_unblended(tmp_path):
    from ablate.data import load_dataset

    write_voc(tmp_path, size=(40, 32))
    b = load_dataset("voc", root=tmp_path / "VOCdevkit" / "VOC2012", image_size=20)
    _, y = b.train[0]
    assert set(torch.unique(y).tolist()) <= set(range(21)) | {255}
    assert (y[16:] == 255).all()


def test_missing_files_are_one_line(tmp_path, home):
    from ablate.config import compose
    from ablate.errors import ConfigError
    from ablate.train.run import prepare

    write_voc(tmp_path)
    (tmp_path / "VOCdevkit/VOC2012/SegmentationClass/2007_val002.png").unlink()
    with pytest.raises(ConfigError, match="2007_val002.png not found") as exc:
        prepare(compose([*VOC_TINY, "task=segmentation", "data=voc", f"data.root={tmp_path}"]))
    assert "\n" not in str(exc.value)


@pytest.mark.slow
def test_a_segmentation_run_on_voc_files(tmp_path, home):
    from ablate.config import compose
    from ablate.train.run import prepare, run

    write_voc(tmp_path)
    over = [*VOC_TINY, "task=segmentation", "data=voc", f"data.root={tmp_path}", "data.image_size=20", "data.pad=2",
            "data.num_workers=0", "data.batch_size=3", "task.head_channels=8", "model.width=0.5"]
    rec = run(compose(over))
    assert rec["status"] == "completed" and len(rec["iou"]) == 21 and rec["input_size"] == [1, 3, 20, 20]
    key = rec["run_key"]
    (tmp_path / "VOCdevkit/VOC2012/ImageSets/Segmentation/val.txt").write_text("2007_val000\n")
    assert prepare(compose(over)).key != key  # other data, another run
