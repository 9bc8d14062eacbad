"""`experiment=` overlays (LHT style): each composes; the CIFAR one trains on real-format files."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

from ablate.config import compose, group_options
from ablate.train.run import prepare, run


@pytest.mark.parametrize("name", group_options("experiment"))
def test_every_experiment_composes(name, home):
    cfg = compose([f"experiment={name}"])
    assert cfg.model.name and cfg.attention.kind


def _write_cifar10(root, n_train=8, n_val=8):
    """A tiny CIFAR-10 in the official layout (python-2 pickles: bytes keys, N x 3072 uint8)."""
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    rng = np.random.default_rng(0)

    def dump(name, obj):
        with open(d / name, "wb") as fh:
            pickle.dump({k.encode(): v for k, v in obj.items()}, fh, protocol=2)

    for i in range(1, 6):
        dump(f"data_batch_{i}", {"data": rng.integers(0, 255, (n_train, 3072), dtype=np.uint8),
                                 "labels": [int(v) for v in rng.integers(0, 10, n_train)]})
    dump("test_batch", {"data": rng.integers(0, 255, (n_val, 3072), dtype=np.uint8),
                        "labels": [int(v) for v in rng.integers(0, 10, n_val)]})
    dump("batches.meta", {"label_names": [f"c{i}".encode() for i in range(10)]})


@pytest.mark.slow
def test_cifar10_experiment_validates_files_then_trains(home, tmp_path):
    over = ["experiment=cifar10_mbv2_ca", f"data.root={tmp_path / 'cifar'}", "trainer.epochs=1",
            "data.batch_size=16", "tracking=disabled", "trainer.latency_repeats=1", "trainer.threads=1"]
    with pytest.raises(ValueError, match="cifar-10-batches-py.* not found") as exc:
        prepare(compose(over))  # before any compute: the files are missing
    assert "\n" not in str(exc.value)
    _write_cifar10(tmp_path / "cifar")
    cfg = compose(over)
    assert cfg.model.name == "mobilenet_v2" and cfg.attention.kind == "ca" and cfg.trainer.label_smoothing == 0.0
    rec = run(cfg)
    assert rec["status"] == "completed", rec["message"]
    assert rec["input_size"] == [1, 3, 32, 32] and rec["epochs"] == 1
    # MobileNetV2-1.0 + CA is 3.95M with the 1000-class head (1280*1000 + 1000); with 10 classes:
    assert rec["params"] == 3_950_648 - 1_281_000 + 12_810
