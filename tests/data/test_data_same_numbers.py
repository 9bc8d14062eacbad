"""The same data and seed give the same numbers whichever path reads them.

One small random image set, written as an image folder (PNG) and as an ``arrays`` .npz: the
streamed folder (DataLoader, workers), the folder decoded into memory and the .npz must yield
bit-identical batches, augmentation on, and a short training must end on identical metrics.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ablate.data import load_dataset, make_loader

CLASSES = ("a", "b", "c")
LOADER = dict(batch_size=16, seed=3, augment=True, pad=2, hflip=True)


@pytest.fixture(autouse=True, scope="module")
def _one_thread(single_thread):
    return None  # a tiny model: one thread (tests/conftest.py)


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    from tests.data.conftest import write_image_folder

    root = tmp_path_factory.mktemp("same")
    rng = np.random.default_rng(0)
    splits = {}
    for split, n in (("train", 40), ("val", 15)):
        x = rng.integers(0, 256, (n, 3, 12, 12), dtype=np.uint8)
        y = np.sort(np.arange(n) % 3)  # sorted: folder order == array order
        x[:, :, :6] //= (y[:, None, None, None] + 1).astype(np.uint8)  # a learnable signal
        splits[split] = (x, y)
    write_image_folder(root / "folder", splits, CLASSES)
    np.savez(root / "data.npz", x=splits["train"][0].transpose(0, 2, 3, 1), y=splits["train"][1],
             x_val=splits["val"][0], y_val=splits["val"][1], class_names=np.array(CLASSES))
    return root


def _bundles(root):
    return {
        "streamed": load_dataset("imagefolder", root=root / "folder", in_memory=False),
        "decoded": load_dataset("imagefolder", root=root / "folder", in_memory=True),
        "arrays": load_dataset("arrays", root=None, path=str(root / "data.npz")),
    }


def _epochs(bundle, num_workers, epochs=(0, 1)):
    loader = make_loader(bundle.train, shuffle=True, mean=bundle.mean, std=bundle.std,
                         num_workers=num_workers, **LOADER)
    out = []
    for epoch in epochs:
        loader.set_epoch(epoch)
        out += list(loader)
    return type(loader).__name__, out


def test_every_path_yields_bit_identical_batches(paths):
    bundles = _bundles(paths)
    ref = bundles["arrays"]
    for b in bundles.values():
        assert (b.mean, b.std, b.num_classes, b.in_chans, b.image_size) == (
            ref.mean, ref.std, ref.num_classes, ref.in_chans, ref.image_size)
    kind, want = _epochs(ref, 0)
    assert kind == "TensorBatchLoader" and len(want) == 6
    for name, workers in (("decoded", 0), ("streamed", 0), ("streamed", 2)):
        kind, got = _epochs(bundles[name], workers)
        assert kind == ("FolderBatchLoader" if name == "streamed" else "TensorBatchLoader")
        assert len(got) == len(want)
        for (xa, ya), (xb, yb) in zip(want, got):
            assert torch.equal(xa, xb) and torch.equal(ya, yb), (name, workers)


def test_training_gives_identical_metrics_streamed_and_in_memory(paths, tmp_path):
    from ablate.models import create_model
    from ablate.track.store import RunDirStore
    from ablate.train.engine import TrainerConfig, fit

    bundles = _bundles(paths)
    cfg = TrainerConfig(epochs=1, device="cpu", checkpoint=False, warmup_epochs=0.0)
    rows = {}
    for name in ("streamed", "arrays"):
        b = bundles[name]
        train = make_loader(b.train, shuffle=True, mean=b.mean, std=b.std, **LOADER)
        val = make_loader(b.val, shuffle=False, mean=b.mean, std=b.std, **{**LOADER, "augment": False})
        torch.manual_seed(0)
        model = create_model("mobilenet_v2_tiny", num_classes=b.num_classes, in_chans=b.in_chans, attention="none")
        result = fit(model, train, val, lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9), cfg,
                     files=RunDirStore(tmp_path).files(name), seed=0, log=lambda msg: None)
        rows[name] = {k: v for k, v in result.history[-1].items() if k != "seconds"}
    assert rows["streamed"] == rows["arrays"]
    assert np.isfinite(rows["arrays"]["val_loss"]) and rows["arrays"]["train_loss"] > 0
