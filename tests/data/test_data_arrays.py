"""`arrays`: a user's .npz of uint8 images and integer labels, checked from headers alone."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ablate.data import check_dataset, load_dataset, make_loader

N, H, W = 24, 10, 8


def _images(c: int = 3, n: int = N, seed: int = 0) -> np.ndarray:
    """uint8 N,C,H,W with a per-image marker so reordering bugs show."""
    x = np.random.default_rng(seed).integers(0, 200, (n, c, H, W), dtype=np.uint8)
    x[:, 0, 0, 0] = np.arange(n)
    return x


def _labels(n: int = N, k: int = 3) -> np.ndarray:
    return np.arange(n) % k


def _save(path, **arrays):
    np.savez(path, **arrays)
    return path


@pytest.fixture
def npz(tmp_path):
    """A valid file: NHWC RGB train + x_val/y_val + class_names."""
    return _save(tmp_path / "d.npz", x=_images().transpose(0, 2, 3, 1), y=_labels(),
                 x_val=_images(n=6, seed=1).transpose(0, 2, 3, 1), y_val=_labels(6),
                 class_names=np.array(["cat", "dog", "emu"]))


def test_loads_a_valid_file(npz):
    b = load_dataset("arrays", root=None, path=str(npz))
    assert (len(b.train), len(b.val), b.num_classes, b.in_chans, b.image_size) == (N, 6, 3, 3, (H, W))
    assert b.class_names == ("cat", "dog", "emu") and b.name == "arrays"
    assert type(b.train).__name__ == "TensorImageDataset"  # the loader's in-memory fast path
    assert torch.equal(b.train.images, torch.from_numpy(_images()))
    assert b.train.labels.tolist() == _labels().tolist()
    loader = make_loader(b.train, batch_size=8, shuffle=True, seed=0, augment=False, mean=b.mean, std=b.std)
    assert type(loader).__name__ == "TensorBatchLoader" and next(iter(loader))[0].shape == (8, 3, H, W)


def test_nhwc_nchw_and_nhw_give_the_same_dataset(tmp_path):
    x = _images()
    y = _labels()
    common = dict(root=None, val_fraction=0.25, seed=3)
    a = load_dataset("arrays", path=str(_save(tmp_path / "a.npz", x=x, y=y)), **common)
    b = load_dataset("arrays", path=str(_save(tmp_path / "b.npz", images=x.transpose(0, 2, 3, 1), labels=y)),
                     **common)
    c = load_dataset("arrays", path=str(_save(tmp_path / "c.npz", x=x.transpose(0, 2, 3, 1), y=y)),
                     layout="nhwc", **common)
    assert a.info["layout"] == "nchw" and b.info["layout"] == "nhwc"
    for other in (b, c):
        assert torch.equal(a.train.images, other.train.images) and torch.equal(a.val.labels, other.val.labels)
        assert (a.mean, a.std) == (other.mean, other.std)
    g = _images(c=1)
    gray = load_dataset("arrays", path=str(_save(tmp_path / "g.npz", x=g[:, 0], y=y)), **common)
    chw = load_dataset("arrays", path=str(_save(tmp_path / "h.npz", x=g, y=y)), **common)
    hwc = load_dataset("arrays", path=str(_save(tmp_path / "i.npz", x=g.transpose(0, 2, 3, 1), y=y)), **common)
    assert gray.in_chans == 1 and torch.equal(gray.train.images, chw.train.images)
    assert torch.equal(gray.train.images, hwc.train.images)


def test_val_from_x_val_val_path_or_val_fraction(tmp_path, npz):
    x, y = _images(), _labels()
    xv, yv = _images(n=6, seed=1), _labels(6)
    a = load_dataset("arrays", root=None, path=str(npz))
    _save(tmp_path / "train.npz", x=x, y=y)
    b = load_dataset("arrays", root=None, path=str(tmp_path / "train.npz"),
                     val_path=str(_save(tmp_path / "val.npz", x=xv, y=yv)))
    assert torch.equal(a.val.images, b.val.images) and torch.equal(a.val.labels, b.val.labels)
    assert a.info["val"] == "x_val" and b.info["val"].endswith("val.npz")
    c = load_dataset("arrays", root=None, path=str(tmp_path / "train.npz"), val_fraction=0.25, seed=1)
    d = load_dataset("arrays", root=None, path=str(tmp_path / "train.npz"), val_fraction=0.25, seed=1)
    e = load_dataset("arrays", root=None, path=str(tmp_path / "train.npz"), val_fraction=0.25, seed=2)
    assert (len(c.train), len(c.val)) == (18, 6)
    assert np.bincount(c.val.labels.numpy()).tolist() == [2, 2, 2]  # stratified: a quarter of each class
    assert torch.equal(c.val.images, d.val.images) and not torch.equal(c.val.images, e.val.images)
    # Every image lands in exactly one split (markers 0..N-1 at pixel 0,0 of channel 0).
    marks = torch.cat([c.train.images[:, 0, 0, 0], c.val.images[:, 0, 0, 0]]).sort().values
    assert marks.tolist() == list(range(N))


def test_subsets_and_stats(npz):
    b = load_dataset("arrays", root=None, path=str(npz), n_train=10, n_val=4, seed=5)
    again = load_dataset("arrays", root=None, path=str(npz), n_train=10, n_val=4, seed=5)
    assert (len(b.train), len(b.val)) == (10, 4) and torch.equal(b.train.images, again.train.images)
    from ablate.data.tensor import channel_stats

    assert (b.mean, b.std) == channel_stats(b.train.images)  # null = the training images' own
    fixed = load_dataset("arrays", root=None, path=str(npz), mean=[0.5, 0.5, 0.5], std=[0.2, 0.2, 0.2])
    assert fixed.mean == (0.5, 0.5, 0.5) and fixed.std == (0.2, 0.2, 0.2)


def test_class_names_set_the_class_count(tmp_path):
    y = np.zeros(N, dtype=np.int64)  # only class 0 present; five declared
    names = np.array(["a", "b", "c", "d", "e"])
    b = load_dataset("arrays", root=None, path=str(_save(tmp_path / "d.npz", x=_images(), y=y, class_names=names)),
                     val_fraction=0.25)
    assert b.num_classes == 5 and b.class_names == tuple("abcde")
    plain = load_dataset("arrays", root=None, path=str(_save(tmp_path / "e.npz", x=_images(), y=_labels(k=4))),
                         val_fraction=0.25)
    assert plain.num_classes == 4 and plain.class_names == ("0", "1", "2", "3")


def _bad_files(tmp_path):
    """(name, writer, words in the message): every bad file the header check must catch."""
    x, y = _images(), _labels()
    nhwc = x.transpose(0, 2, 3, 1)

    def npz(**arrays):
        return lambda p: np.savez(p, **arrays)

    return [
        ("not-zip", lambda p: p.write_text("hello"), ["not an .npz", "numpy.savez"]),
        ("npy", lambda p: np.save(open(p, "wb"), x), ["single .npy", "numpy.savez"]),
        ("no-x", npz(pics=x, y=y), ["no 'x' (or 'images')", "keys found: pics, y"]),
        ("no-y", npz(x=x, target=y), ["no 'y' (or 'labels')", "keys found: target, x"]),
        ("x-and-images", npz(x=x, images=x, y=y), ["both 'x' and 'images'"]),
        ("float", npz(x=x.astype(np.float32) / 255, y=y), ["float32", "uint8 is required", "astype(np.uint8)"]),
        ("int16", npz(x=x.astype(np.int16), y=y), ["int16", "uint8 is required"]),
        ("ndim2", npz(x=x.reshape(N, -1), y=y), ["2 dims", "N,H,W,C"]),
        ("ndim5", npz(x=x[:, None], y=y), ["5 dims", "N,H,W,C"]),
        ("channels-neither", npz(x=np.zeros((N, 5, 8, 7), np.uint8), y=y), ["neither dim 1 (5)", "(7)", "data.layout"]),
        ("channels-both", npz(x=np.zeros((N, 3, 8, 3), np.uint8), y=y), ["both dim 1", "data.layout=nhwc"]),
        ("empty", npz(x=np.zeros((0, 8, 8, 3), np.uint8), y=np.zeros(0, np.int64)), ["(0, 8, 8, 3)", "at least one"]),
        ("count", npz(x=x, y=y[:-1]), [f"{N - 1} labels for {N} images"]),
        ("float-labels", npz(x=x, y=y.astype(np.float64)), ["float64", "integer labels", "astype(np.int64)"]),
        ("bool-labels", npz(x=x, y=y > 0), ["bool", "integer labels"]),
        ("2d-labels", npz(x=x, y=y[:, None]), [f"({N}, 1)", "reshape(-1)"]),
        ("val-size", npz(x=x, y=y, x_val=np.zeros((4, 3, 9, 8), np.uint8), y_val=y[:4]),
         ["3x9x8", f"3x{H}x{W}", "must match"]),
        ("val-channels", npz(x=nhwc, y=y, x_val=np.zeros((4, H, W), np.uint8), y_val=y[:4]),
         [f"1x{H}x{W}", f"3x{H}x{W}"]),
        ("x-val-only", npz(x=x, y=y, x_val=x), ["x_val but no y_val"]),
        ("val-label-count", npz(x=x, y=y, x_val=x[:4], y_val=y[:3]), ["3 labels for 4 images in x_val"]),
        ("names-object", npz(x=x, y=y, class_names=np.array(["a", 1], dtype=object)),
         ["class_names", "object", "dtype=str"]),
    ]


BAD = [b[0] for b in _bad_files(None)]


@pytest.mark.parametrize("case", BAD)
def test_every_bad_file_is_one_line_before_any_array_is_loaded(tmp_path, monkeypatch, case):
    _, write, words = next(b for b in _bad_files(tmp_path) if b[0] == case)
    path = tmp_path / "bad.npz"
    write(path)

    def no_load(*a, **k):
        raise AssertionError("np.load called by the pre-flight check")

    monkeypatch.setattr(np, "load", no_load)
    with pytest.raises(ValueError) as err:
        check_dataset("arrays", root=None, path=str(path), val_fraction=0.2 if "val" not in case else None)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("arrays:"), msg
    for w in words:
        assert w in msg, (w, msg)


BAD_OPTIONS = [
    (dict(), ["path=None", "data.path"]),
    (dict(path=""), ["path=''", "data.path"]),
    (dict(path=3), ["path=3"]),
    (dict(val_fraction=0.25, layout="hwc"), ["layout 'hwc'", "auto, nhwc, nchw"]),
    (dict(val_fraction=1.5), ["val_fraction=1.5", "0.99"]),
    (dict(val_fraction=0.2, n_train=0), ["n_train=0"]),
    (dict(), ["no validation set", "x_val/y_val", "data.val_path", "data.val_fraction"]),
    (dict(val_fraction=0.2, val_path="v.npz"), ["2 ways", "exactly one of", "data.val_fraction"]),
    (dict(val_fraction=0.2, mean=[0.5]), ["mean=[0.5]", "3"]),
    (dict(val_fraction=0.2, std=[0.2, 0.0, 0.2]), ["std="]),
    (dict(val_path="v.npz"), ["val_path=", "not found"]),
]


@pytest.mark.parametrize("kwargs,words", BAD_OPTIONS, ids=lambda v: str(v)[:40] if isinstance(v, dict) else None)
def test_bad_options_are_one_line(tmp_path, monkeypatch, kwargs, words):
    monkeypatch.chdir(tmp_path)
    kwargs = dict(kwargs)
    if "path" not in kwargs and words[0] != "path=None":
        kwargs["path"] = str(_save(tmp_path / "d.npz", x=_images(), y=_labels()))
    with pytest.raises((ValueError, FileNotFoundError)) as err:
        check_dataset("arrays", root=None, **kwargs)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("arrays:"), msg
    for w in words:
        assert w in msg, (w, msg)


def test_missing_file_says_not_found(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        check_dataset("arrays", root=None, path=str(tmp_path / "nope.npz"), val_fraction=0.2)
    msg = str(err.value)
    assert "\n" not in msg and "nope.npz" in msg and "not found" in msg and "numpy.savez" in msg


def test_n_train_beyond_the_file_fails_in_the_check(npz):
    with pytest.raises(ValueError, match=f"n_train=99 .*only {N}"):
        check_dataset("arrays", root=None, path=str(npz), n_train=99)


@pytest.mark.parametrize("arrays,words", [
    (dict(y=np.where(_labels() == 2, -1, _labels())), ["label -1", "0..K-1"]),
    (dict(y=_labels(k=4), class_names=np.array(["a", "b", "c"])), ["label 3", "allowed: 0..2", "class_names lists 3"]),
    (dict(y=_labels(k=3), x_val=_images(n=4), y_val=np.array([0, 1, 5, 2])), ["y_val", "label 5", "allowed: 0..2",
                                                                                "train class"]),
], ids=["negative", "beyond-class-names", "val-beyond-train"])
def test_label_range_is_checked_at_load_in_one_line(tmp_path, arrays, words):
    arrays = {"x": _images(), **arrays}
    kw = {} if "x_val" in arrays else {"val_fraction": 0.25}
    path = _save(tmp_path / "d.npz", **arrays)
    check_dataset("arrays", root=None, path=str(path), **kw)  # headers are fine
    with pytest.raises(ValueError) as err:
        load_dataset("arrays", root=None, path=str(path), **kw)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("arrays:"), msg
    for w in words:
        assert w in msg, (w, msg)


def test_compressed_files_and_relative_paths(tmp_path, monkeypatch):
    np.savez_compressed(tmp_path / "z.npz", x=_images(), y=_labels())
    monkeypatch.chdir(tmp_path)
    b = load_dataset("arrays", root=None, path="z.npz", val_fraction=0.5)
    assert len(b.train) + len(b.val) == N
