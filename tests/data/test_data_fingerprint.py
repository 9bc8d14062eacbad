"""A run key identifies its data: a fingerprint of the content of data read from files (image
folders, .npz arrays, CIFAR) is hashed into it and recorded in the run's config, the location
is not; generated datasets need none (their parameters are the config). A generated dataset
pointed at a user's folder is refused instead of caching into it."""
from __future__ import annotations

import os
import pickle
import shutil

import numpy as np
import pytest

from ablate.config import compose
from ablate.data import FINGERPRINT_KEY, dataset_fingerprint, split_config
from ablate.train.run import prepare
from tests.helpers import TINY


def _folder(image_folder, root, classes: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    names = tuple(f"c{i}" for i in range(classes))
    split = lambda n: (rng.integers(0, 255, (n, 3, 8, 8), dtype=np.uint8), np.arange(n) % classes)  # noqa: E731
    return image_folder(root, {"train": split(2 * classes), "val": split(classes)}, names)


def _plan(*overrides):
    return prepare(compose([*TINY, *overrides]))


def test_image_folders_with_other_content_are_other_runs_moved_ones_the_same(home, tmp_path, image_folder):
    three, four = _folder(image_folder, tmp_path / "three", 3), _folder(image_folder, tmp_path / "four", 4)
    a = _plan("data=imagefolder", f"data.root={three}")
    b = _plan("data=imagefolder", f"data.root={four}")
    assert a.key != b.key  # before: the same key, so the 4-class sweep reused the 3-class runs
    fp = a.config["data"][FINGERPRINT_KEY]
    assert isinstance(fp, str) and len(fp) == 16 and fp != b.config["data"][FINGERPRINT_KEY]
    moved = tmp_path / "elsewhere" / "three"
    moved.parent.mkdir()
    os.rename(three, moved)  # moving keeps names, sizes and mtimes: the same runs
    assert _plan("data=imagefolder", f"data.root={moved}").key == a.key
    # A file regenerated in place (new content and mtime) is another run.
    victim = sorted((moved / "train" / "c0").iterdir())[0]
    st = victim.stat()
    _folder(image_folder, moved, 3, seed=1)
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert _plan("data=imagefolder", f"data.root={moved}").key != a.key


def test_arrays_fingerprint_is_the_npz_content_not_its_path(home, tmp_path):
    path = tmp_path / "a.npz"
    x, y = np.zeros((8, 8, 8), np.uint8), np.arange(8) % 2
    np.savez(path, x=x, y=y)
    over = ("data=arrays", "data.val_fraction=0.5", "data.batch_size=4")
    a = _plan(*over, f"data.path={path}")
    copy = tmp_path / "copy" / "b.npz"
    copy.parent.mkdir()
    shutil.copy(path, copy)  # another name and mtime, the same arrays: the same run
    assert _plan(*over, f"data.path={copy}").key == a.key
    np.savez(path, x=x + 1, y=y)  # regenerated in place, same shapes: another run
    assert _plan(*over, f"data.path={path}").key != a.key


def test_cifar_fingerprint_follows_the_batch_files(home, tmp_path):
    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()
    for f in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]:
        (d / f).write_bytes(pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": [0]}, protocol=2))
    a = dataset_fingerprint("cifar10", root=tmp_path)
    assert a == dataset_fingerprint("cifar10", root=tmp_path, n_train=5)  # options are in the config
    (d / "test_batch").write_bytes(pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1]}, protocol=2))
    assert dataset_fingerprint("cifar10", root=tmp_path) != a


def test_generated_data_has_no_fingerprint_and_the_fingerprint_is_no_option(home):
    plan = _plan()
    assert FINGERPRINT_KEY not in plan.config["data"]  # shipped sweeps keep their keys (pinned)
    assert dataset_fingerprint("alignment", root=None) is None
    # a recorded config (attention maps reload a run's data from it) still splits into options
    name, _, kwargs, _ = split_config({"name": "arrays", "root": None, "path": "a.npz", FINGERPRINT_KEY: "ab"})
    assert name == "arrays" and FINGERPRINT_KEY not in kwargs
    with pytest.raises(ValueError, match="data.fingerprint='x' is not allowed"):
        _plan("+data.fingerprint=x")


@pytest.mark.parametrize("content, fix", [
    ("folder", "data=imagefolder"),
    ("npz", "data=arrays"),
    ("images", "data=imagefolder"),
])
def test_generated_dataset_on_a_users_folder_is_refused(home, tmp_path, image_folder, capsys, content, fix):
    from ablate.cli import main

    mine = tmp_path / "mine"
    if content == "folder":
        _folder(image_folder, mine, 3)
    elif content == "npz":
        mine.mkdir()
        np.savez(mine / "my.npz", x=np.zeros((4, 8, 8), np.uint8), y=np.zeros(4, np.int64))
    else:
        _folder(image_folder, tmp_path / "tmp", 2)
        shutil.move(tmp_path / "tmp" / "train", mine)  # mine/<class>/*.png
    before = sorted(p.name for p in mine.rglob("*"))
    assert main(["train", *TINY, f"data.root={mine}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"data.root='{mine}'" in err and fix in err and "alignment" in err
    assert sorted(p.name for p in mine.rglob("*")) == before  # no cache written into the user's folder
    assert not (home / "outputs" / "runs").exists()


def test_the_default_data_dir_and_a_plain_cache_dir_still_work(home, tmp_path):
    data_dir = home / "data"
    data_dir.mkdir()
    np.savez(data_dir / "mine.npz", x=np.zeros((4, 8, 8), np.uint8), y=np.zeros(4, np.int64))
    _plan()  # the default root (paths.data_dir) caches generated data whatever else it holds
    cache = tmp_path / "cache"
    (cache / "alignment").mkdir(parents=True)
    np.savez(cache / "alignment" / "0123.npz", x=np.zeros(1))  # the generated data's own cache layout
    _plan(f"data.root={cache}")
    _plan("data=position", f"data.root={tmp_path / 'not_yet'}")


def test_planning_a_sweep_fingerprints_each_dataset_once(home, tmp_path, image_folder, monkeypatch):
    """Every planned run needs the fingerprint, but a big folder is stat-ed once per sweep."""
    from ablate.data import imagefolder
    from ablate.sweep.runner import plan_sweep
    from ablate.sweep.spec import SweepSpec

    root = _folder(image_folder, tmp_path / "three", 3)
    calls = []
    real = imagefolder.tree_lines
    monkeypatch.setattr(imagefolder, "tree_lines", lambda *a, **k: calls.append(a) or real(*a, **k))
    spec = SweepSpec(name="fp", grid={"attention": ["none", "ca"]}, seeds=[0, 1, 2],
                     overrides=[*TINY, "data=imagefolder", f"data.root={root}"])
    runs = plan_sweep(spec)
    assert len(runs) == 6 and len({r.plan.config["data"][FINGERPRINT_KEY] for r in runs}) == 1
    per_pass = len(calls)
    assert 0 < per_pass <= 2  # train and val folders, once for the whole sweep
    plan_sweep(spec)  # a new plan looks again: data may have changed in between
    assert len(calls) == 2 * per_pass
