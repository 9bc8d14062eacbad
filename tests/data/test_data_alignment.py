"""The generated alignment/position tasks: determinism, cache, balance, label rule, no shortcuts."""
from __future__ import annotations

import os
import time

import numpy as np
import pytest
import torch

from ablate.data import load_dataset, synthetic
from ablate.data.synthetic import generate_alignment, generate_position, object_stamps

SMALL = dict(n_train=600, n_val=120)


def _arrays(bundle):
    return [bundle.train.images.numpy(), bundle.train.labels.numpy(),
            bundle.val.images.numpy(), bundle.val.labels.numpy()]


def test_same_seed_same_bytes_other_seed_other_data(tmp_path):
    a = load_dataset("alignment", root=tmp_path / "a", seed=3, **SMALL)
    b = load_dataset("alignment", root=None, seed=3, **SMALL)  # generated afresh, no cache
    c = load_dataset("alignment", root=None, seed=4, **SMALL)
    for x, y in zip(_arrays(a), _arrays(b)):
        assert x.tobytes() == y.tobytes()
    assert _arrays(a)[0].tobytes() != _arrays(c)[0].tobytes()
    assert a.mean == b.mean and a.std == b.std


def test_val_does_not_depend_on_n_train():
    a = load_dataset("alignment", root=None, n_train=300, n_val=90)
    b = load_dataset("alignment", root=None, n_train=600, n_val=90)
    assert torch.equal(a.val.images, b.val.images)


def test_cache_is_written_once_and_reused(tmp_path, monkeypatch):
    first = load_dataset("alignment", root=tmp_path, **SMALL)
    path = first.info["cache"]
    assert first.info["source"] == "generated" and path.startswith(str(tmp_path / "alignment"))
    assert path.endswith(".npz") and not [p for p in os.listdir(tmp_path / "alignment") if p.endswith(".tmp")]
    mtime = os.stat(path).st_mtime_ns

    def boom(*a, **k):
        raise AssertionError("regenerated although a cache file exists")

    monkeypatch.setattr(synthetic, "generate_alignment", boom)
    second = load_dataset("alignment", root=tmp_path, **SMALL)
    assert second.info["source"] == "cache" and os.stat(path).st_mtime_ns == mtime
    for x, y in zip(_arrays(first), _arrays(second)):
        assert np.array_equal(x, y)
    # Other params -> another file.
    monkeypatch.undo()
    assert load_dataset("alignment", root=tmp_path, n_train=300, n_val=120).info["cache"] != path


def test_corrupt_cache_is_regenerated(tmp_path):
    path = load_dataset("alignment", root=tmp_path, **SMALL).info["cache"]
    with open(path, "wb") as fh:
        fh.write(b"not a zip")
    again = load_dataset("alignment", root=tmp_path, **SMALL)
    assert again.info["source"] == "generated" and len(again.train) == SMALL["n_train"]


def test_bundle_fields_and_balance():
    b = load_dataset("alignment", root=None, n_train=8000, n_val=2000)
    assert (b.num_classes, b.in_chans, b.image_size) == (3, 1, 24)
    assert b.class_names == ("same_row", "same_column", "neither")
    assert b.train.images.shape == (8000, 1, 24, 24) and b.train.images.dtype == torch.uint8
    for split in (b.train, b.val):
        counts = np.bincount(split.labels.numpy(), minlength=3)
        assert counts.max() - counts.min() <= 1
    assert 0 < b.mean[0] < 0.2 and 0.1 < b.std[0] < 0.5


def test_generation_is_fast():
    t0 = time.perf_counter()
    generate_alignment(8000, np.random.default_rng(0))
    assert time.perf_counter() - t0 < 2.0  # ~0.07 s measured; generous for loaded CI machines


def test_label_rule_holds_for_the_object_positions():
    k = 4
    _, y, pos = generate_alignment(3000, np.random.default_rng(1), object_size=k)
    (r1, c1), (r2, c2) = pos["square"], pos["disc"]
    same_rows, same_cols = r1 == r2, c1 == c2
    rows_disjoint, cols_disjoint = np.abs(r1 - r2) >= k, np.abs(c1 - c2) >= k
    assert np.all(same_rows[y == 0] & (np.abs(c1 - c2) >= k + 1)[y == 0])
    assert np.all(same_cols[y == 1] & (np.abs(r1 - r2) >= k + 1)[y == 1])
    assert np.all(rows_disjoint[y == 2] & cols_disjoint[y == 2])
    # Inside the margin everywhere.
    for v in (r1, c1, r2, c2):
        assert v.min() >= 2 and v.max() + k <= 24 - 2


def test_objects_are_drawn_where_the_positions_say_and_clutter_keeps_off():
    x, _, pos = generate_alignment(500, np.random.default_rng(2), clutter=20)
    square, disc = object_stamps(4)
    for i in range(0, 500, 7):
        for (top, left), stamp in ((pos["square"], square), (pos["disc"], disc)):
            t, l = top[i], left[i]
            # The object's 1 px-grown box holds exactly the stamp: clutter never touches it.
            box = x[i, 0, max(t - 1, 0):t + 5, max(l - 1, 0):l + 5]
            expect = np.zeros((6, 6), dtype=np.uint8)
            expect[1:5, 1:5] = stamp * 255
            assert np.array_equal(box, expect[1 - (t - max(t - 1, 0)):, 1 - (l - max(l - 1, 0)):])


@pytest.mark.parametrize("obj", ["square", "disc"])
def test_no_absolute_position_shortcut(obj):
    """Each object's top row and left column are uniform in every class."""
    _, y, pos = generate_alignment(30000, np.random.default_rng(5))
    grid = 24 - 2 * 2 - 4 + 1
    for coord in pos[obj]:
        for c in range(3):
            hist = np.bincount(coord[y == c] - 2, minlength=grid)
            expected = (y == c).sum() / grid
            # ~590 per bin, binomial sd ~24: a 20% band is a > 4 sd test.
            assert np.all(np.abs(hist - expected) < 0.2 * expected), (obj, c, hist)


def test_logistic_regression_on_pixels_is_near_chance():
    """No linear pixel shortcut: a softmax regression on raw pixels stays near 1/3."""
    b = load_dataset("alignment", root=None, n_train=4000, n_val=2000)
    xt, xv = (s.images.flatten(1).float() / 255 for s in (b.train, b.val))
    torch.manual_seed(0)
    lin = torch.nn.Linear(xt.shape[1], 3)
    opt = torch.optim.LBFGS(lin.parameters(), max_iter=200, history_size=20)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(lin(xt), b.train.labels) + 1e-3 * lin.weight.square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    acc = (lin(xv).argmax(1) == b.val.labels).float().mean().item()
    assert acc < 0.42, acc


def test_position_dataset_quadrants():
    x, y, pos = generate_position(400, np.random.default_rng(0))
    top, left = pos["square"]
    assert np.array_equal(y, (top >= 12) * 2 + (left >= 12))
    assert np.all((top % 12 >= 2) & (top % 12 + 4 <= 10))
    b = load_dataset("position", root=None, n_train=400, n_val=40)
    assert b.num_classes == 4 and b.class_names[0] == "top_left"
    counts = np.bincount(b.train.labels.numpy())
    assert counts.max() - counts.min() <= 1
