"""Real-format loaders on small files written here in the official on-disk layouts."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from ablate.data import load_dataset, make_loader


def _dump(path, obj):
    # The official files were pickled by Python 2: bytes keys, protocol 2.
    with open(path, "wb") as fh:
        pickle.dump({k.encode(): v for k, v in obj.items()}, fh, protocol=2)


def _rows(n, seed):
    """n CIFAR rows (3072 bytes, channel-major) with a marker: R at (1, 2) holds 200 + i."""
    rows = np.random.default_rng(seed).integers(0, 150, (n, 3072), dtype=np.uint8)
    rows[:, 0 * 1024 + 1 * 32 + 2] = 200 + np.arange(n)
    rows[:, 2 * 1024 + 31 * 32 + 31] = 7  # B at (31, 31)
    return rows


@pytest.fixture
def cifar10_root(tmp_path):
    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()
    for i in range(1, 6):
        _dump(d / f"data_batch_{i}", {"batch_label": b"training batch", "data": _rows(4, i),
                                      "labels": [(i + j) % 10 for j in range(4)],
                                      "filenames": [b"x.png"] * 4})
    _dump(d / "test_batch", {"data": _rows(6, 9), "labels": list(range(6))})
    names = [n.encode() for n in ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                                  "horse", "ship", "truck")]
    _dump(d / "batches.meta", {"label_names": names, "num_cases_per_batch": 4, "num_vis": 3072})
    return tmp_path


def test_cifar10_reads_the_official_layout(cifar10_root):
    b = load_dataset("cifar10", root=cifar10_root)
    assert (len(b.train), len(b.val), b.num_classes, b.in_chans, b.image_size) == (20, 6, 10, 3, 32)
    assert b.class_names[0] == "airplane" and b.class_names[9] == "truck"
    x = b.train.images
    assert x.dtype == torch.uint8 and x.shape == (20, 3, 32, 32)
    assert x[0, 0, 1, 2] == 200 and x[3, 0, 1, 2] == 203 and x[4, 0, 1, 2] == 200  # batch 2 starts
    assert torch.all(x[:, 2, 31, 31] == 7)
    assert b.train.labels.tolist()[:8] == [1, 2, 3, 4, 2, 3, 4, 5]
    assert b.val.labels.tolist() == list(range(6))
    assert len(b.mean) == len(b.std) == 3
    loader = make_loader(b.train, batch_size=8, shuffle=True, seed=0, augment=True, mean=b.mean,
                         std=b.std, pad=4)
    xb, yb = next(iter(loader))
    assert xb.shape == (8, 3, 32, 32) and xb.dtype == torch.float32 and yb.dtype == torch.int64


def test_cifar10_seeded_subsets(cifar10_root):
    a = load_dataset("cifar10", root=cifar10_root, seed=1, n_train=7, n_val=3)
    b = load_dataset("cifar10", root=cifar10_root, seed=1, n_train=7, n_val=3)
    assert (len(a.train), len(a.val)) == (7, 3) and torch.equal(a.train.images, b.train.images)
    with pytest.raises(ValueError, match="n_train=21 .*only 20"):
        load_dataset("cifar10", root=cifar10_root, n_train=21)


def test_cifar100_reads_fine_and_coarse_labels(tmp_path):
    d = tmp_path / "cifar-100-python"
    d.mkdir()
    for split, n in (("train", 10), ("test", 5)):
        _dump(d / split, {"filenames": [b"x"] * n, "batch_label": split.encode(),
                          "fine_labels": [(3 * j) % 100 for j in range(n)],
                          "coarse_labels": [j % 20 for j in range(n)], "data": _rows(n, n)})
    _dump(d / "meta", {"fine_label_names": [f"f{i}".encode() for i in range(100)],
                       "coarse_label_names": [f"c{i}".encode() for i in range(20)]})
    fine = load_dataset("cifar100", root=tmp_path)
    assert fine.num_classes == 100 and fine.class_names[:2] == ("f0", "f1")
    assert fine.train.labels.tolist() == [(3 * j) % 100 for j in range(10)]
    assert fine.train.images[4, 0, 1, 2] == 204 and len(fine.val) == 5
    coarse = load_dataset("cifar100", root=tmp_path, labels="coarse")
    assert coarse.num_classes == 20 and coarse.val.labels.tolist() == list(range(5))


@pytest.mark.parametrize("name,folder", [("cifar10", "cifar-10-batches-py"), ("cifar100", "cifar-100-python")])
def test_missing_cifar_says_where_and_how(tmp_path, name, folder):
    with pytest.raises(FileNotFoundError) as err:
        load_dataset(name, root=tmp_path)
    msg = str(err.value)
    assert "\n" not in msg and str(tmp_path / folder) in msg and "https://www.cs.toronto.edu" in msg


@pytest.fixture
def folder_root(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", 5), ("val", 2)):
        for c, (name, color) in enumerate((("cat", (250, 10, 10)), ("dog", (10, 10, 250)))):
            d = tmp_path / split / name
            d.mkdir(parents=True)
            for i in range(n):
                arr = np.full((10 + i, 14, 3), color, dtype=np.uint8)
                arr[0, 0] = rng.integers(0, 255, 3)
                ext = "png" if i % 2 else "jpg"
                Image.fromarray(arr).save(d / f"{i}.{ext}")
            (d / "notes.txt").write_text("not an image")
    return tmp_path


def test_imagefolder_reads_resizes_and_loads(folder_root):
    b = load_dataset("imagefolder", root=folder_root, image_size=12)
    assert b.class_names == ("cat", "dog") and (len(b.train), len(b.val)) == (10, 4)
    x, y = b.train[0]
    assert x.shape == (3, 12, 12) and x.dtype == torch.uint8 and y == 0
    assert x[0, 6, 6] > 200 and x[2, 6, 6] < 60  # red cat
    assert b.train[9][1] == 1 and b.train[9][0][2, 6, 6] > 200  # blue dog
    loader = make_loader(b.train, batch_size=4, shuffle=True, seed=0, augment=True, mean=b.mean,
                         std=b.std, num_workers=0)
    loader.set_epoch(1)
    batches = list(loader)
    assert len(loader) == len(batches) == 3 and batches[0][0].shape == (4, 3, 12, 12)
    gray = load_dataset("imagefolder", root=folder_root, image_size=[8, 10], in_chans=1, n_train=3)
    assert gray.train[0][0].shape == (1, 8, 10) and gray.image_size == (8, 10) and len(gray.train) == 3
    # null mean/std: the training images' own statistics, not ImageNet's.
    assert len(gray.mean) == 1 and gray.mean != (0.449,) and 0 < gray.mean[0] < 1


def test_imagefolder_errors(folder_root, tmp_path):
    (folder_root / "val" / "bird").mkdir()
    with pytest.raises(ValueError, match="class 'bird'"):
        load_dataset("imagefolder", root=folder_root, image_size=12)
    with pytest.raises(FileNotFoundError, match="train not found"):
        load_dataset("imagefolder", root=tmp_path / "nowhere")


def test_digits_loads_when_sklearn_is_installed():
    pytest.importorskip("sklearn", reason="scikit-learn not installed (optional: pip install scikit-learn)")
    b = load_dataset("digits", root=None, image_size=16)
    assert (b.num_classes, b.in_chans, b.image_size) == (10, 1, 16)
    assert len(b.train) + len(b.val) == 1797 and abs(len(b.val) - 360) <= 5
    assert b.train.images.shape[1:] == (1, 16, 16) and b.train.images.max() > 200
    counts = np.bincount(b.val.labels.numpy(), minlength=10)
    assert counts.min() >= 30  # stratified


def test_digits_without_sklearn_says_how_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "sklearn", None)  # makes `import sklearn...` raise ImportError
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match="pip install scikit-learn") as err:
        load_dataset("digits", root=None)
    assert "\n" not in str(err.value)
