"""Image folders: native size by default, stats from the data, in-memory or streamed alike."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ablate.data import check_dataset, load_dataset
from ablate.data import imagefolder as imf
from ablate.data.tensor import channel_stats

CLASSES = ("ant", "bee", "cow")


def _arrays(n: int, c: int = 3, h: int = 9, w: int = 7, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, c, h, w), dtype=np.uint8)
    y = np.sort(np.arange(n) % len(CLASSES))  # sorted: folder order == array order
    return x, y


@pytest.fixture
def folder(tmp_path, image_folder):
    xt, yt = _arrays(12)
    xv, yv = _arrays(6, seed=1)
    image_folder(tmp_path, {"train": (xt, yt), "val": (xv, yv)}, CLASSES)
    return tmp_path, xt, yt, xv, yv


def test_native_size_by_default_and_bytes_kept(folder):
    root, xt, yt, xv, yv = folder
    b = load_dataset("imagefolder", root=root)
    assert b.image_size == (9, 7) and b.info["resized"] is False and b.class_names == CLASSES
    assert torch.equal(b.train.images, torch.from_numpy(xt)) and b.train.labels.tolist() == yt.tolist()
    assert torch.equal(b.val.images, torch.from_numpy(xv))


def test_image_size_resizes(folder):
    b = load_dataset("imagefolder", root=folder[0], image_size=[12, 10])
    assert b.image_size == (12, 10) and b.train[0][0].shape == (3, 12, 10) and b.info["resized"] is True


def test_mixed_native_sizes_fail_in_the_check_naming_two_sizes(tmp_path, image_folder):
    from PIL import Image

    x, y = _arrays(6)
    image_folder(tmp_path, {"train": (x, y), "val": (x, y)}, CLASSES)
    # The first file of a class folder is in the pre-flight's sample.
    Image.fromarray(np.zeros((11, 7, 3), np.uint8)).save(tmp_path / "train" / "bee" / "0002.png")
    with pytest.raises(ValueError) as err:
        check_dataset("imagefolder", root=tmp_path)
    msg = str(err.value)
    assert "\n" not in msg and "9x7" in msg and "11x7" in msg and "data.image_size" in msg
    b = load_dataset("imagefolder", root=tmp_path, image_size=8)  # resizing makes it fine
    assert b.image_size == 8 and b.train.images.shape[1:] == (3, 8, 8)


@pytest.mark.parametrize("in_memory", [True, False])
def test_mixed_sizes_beyond_the_sample_fail_at_load(tmp_path, image_folder, in_memory):
    x, y = _arrays(30)
    image_folder(tmp_path, {"train": (x, y), "val": (x[:3], y[:3])}, CLASSES)
    from PIL import Image

    Image.fromarray(np.zeros((5, 7, 3), np.uint8)).save(tmp_path / "train" / "cow" / "0029.png")
    check_dataset("imagefolder", root=tmp_path)  # only a sample of headers: not seen yet
    with pytest.raises(ValueError) as err:
        load_dataset("imagefolder", root=tmp_path, in_memory=in_memory)
    msg = str(err.value)
    assert "\n" not in msg and "9x7" in msg and "5x7" in msg and "0029.png" in msg and "data.image_size" in msg


def test_preflight_reads_headers_only(folder, monkeypatch):
    from PIL import Image

    def no_decode(self, *a, **k):
        raise AssertionError("pixels decoded in the pre-flight")

    monkeypatch.setattr(Image.Image, "load", no_decode)
    check_dataset("imagefolder", root=folder[0])


def test_unreadable_image_is_one_line(folder):
    root = folder[0]
    (root / "train" / "ant" / "0000.png").write_bytes(b"not a png")
    with pytest.raises(ValueError) as err:
        check_dataset("imagefolder", root=root)
    msg = str(err.value)
    assert "\n" not in msg and "0000.png" in msg and "cannot read" in msg


@pytest.mark.parametrize("in_memory", [True, False])
def test_truncated_image_fails_at_load_in_one_line(tmp_path, image_folder, in_memory):
    x, y = _arrays(30)
    image_folder(tmp_path, {"train": (x, y), "val": (x[:3], y[:3])}, CLASSES)
    bad = tmp_path / "train" / "cow" / "0029.png"  # not in the pre-flight's sample
    bad.write_bytes(bad.read_bytes()[:60])
    with pytest.raises(ValueError) as err:
        load_dataset("imagefolder", root=tmp_path, in_memory=in_memory)
    msg = str(err.value)
    assert "\n" not in msg and "0029.png" in msg and "cannot decode" in msg


def test_stats_are_computed_from_the_training_images(folder):
    root, xt, *_ = folder
    b = load_dataset("imagefolder", root=root)
    assert (b.mean, b.std) == channel_stats(xt)
    gray = load_dataset("imagefolder", root=root, in_chans=1)
    assert len(gray.mean) == 1 and (gray.mean, gray.std) == channel_stats(gray.train.images)
    fixed = load_dataset("imagefolder", root=root, mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
    assert fixed.mean == (0.485, 0.456, 0.406) and fixed.std == (0.229, 0.224, 0.225)


def test_in_memory_auto_true_false(folder, monkeypatch):
    root, xt, *_ = folder
    auto = load_dataset("imagefolder", root=root)
    assert auto.info["in_memory"] is True and type(auto.train).__name__ == "TensorImageDataset"
    assert auto.info["decoded_bytes"] == (12 + 6) * 3 * 9 * 7
    streamed = load_dataset("imagefolder", root=root, in_memory=False)
    assert streamed.info["in_memory"] is False and type(streamed.train).__name__ == "ImageFolderDataset"
    # Streaming computes the same statistics in one decode pass, and yields the same images.
    assert (streamed.mean, streamed.std) == (auto.mean, auto.std)
    assert torch.equal(torch.stack([streamed.train[i][0] for i in range(12)]), auto.train.images)
    monkeypatch.setattr(imf, "IN_MEMORY_LIMIT", (12 + 6) * 3 * 9 * 7 - 1)  # one byte too small
    assert load_dataset("imagefolder", root=root).info["in_memory"] is False
    assert load_dataset("imagefolder", root=root, in_memory=True).info["in_memory"] is True


@pytest.mark.parametrize("value", ["yes", 1, "True"])
def test_bad_in_memory_is_one_line(tmp_path, value):
    with pytest.raises(ValueError) as err:
        check_dataset("imagefolder", root=tmp_path, in_memory=value)
    msg = str(err.value)
    assert "\n" not in msg and f"in_memory={value!r}" in msg and "auto, true, false" in msg
