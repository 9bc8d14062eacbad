"""The decoded cache of image folders: later loads (in this process or another) read the arrays
instead of decoding every file; any change to a file is a miss; a damaged cache file is set aside
and rebuilt; the batches are those of the streamed folder."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from ablate.data import imagefolder as imf
from ablate.data import load_dataset, make_loader
from ablate.errors import ConfigError
from tests.helpers import ROOT

CLASSES = ("ant", "bee", "cow")
LOADER = dict(batch_size=5, seed=4, augment=True, pad=2, hflip=True)


@pytest.fixture
def folder(tmp_path, image_folder):
    rng = np.random.default_rng(0)
    splits = {}
    for split, n in (("train", 15), ("val", 6)):
        splits[split] = (rng.integers(0, 256, (n, 3, 8, 6), dtype=np.uint8), np.sort(np.arange(n) % 3))
    image_folder(tmp_path / "images", splits, CLASSES)
    return tmp_path / "images", tmp_path / "cache", splits


def _load(root, cache, **kw):
    return load_dataset("imagefolder", root=root, cache_dir=None if cache is None else str(cache), **kw)


def _files(cache):
    return sorted(p.name for p in (cache / "imagefolder").iterdir())


def _no_decoding(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("decoded an image although the cache holds it")

    monkeypatch.setattr(imf, "decode_image", refuse)


def test_the_second_load_reads_the_cache_and_decodes_nothing(folder, monkeypatch):
    root, cache, splits = folder
    first = _load(root, cache)
    assert first.info["cache"] == "written" and len(_files(cache)) == 1
    _no_decoding(monkeypatch)
    again = _load(root, cache)
    assert again.info["cache"] == "hit" and again.info["cache_file"] == first.info["cache_file"]
    assert torch.equal(again.train.images, torch.from_numpy(splits["train"][0]))
    assert torch.equal(again.val.images, torch.from_numpy(splits["val"][0]))
    assert again.train.labels.tolist() == splits["train"][1].tolist()
    assert (again.mean, again.std) == (first.mean, first.std)


def test_another_process_reads_the_cache(folder):
    """What a sweep's next run does: a fresh interpreter finds the file and decodes nothing."""
    root, cache, _ = folder
    written = _load(root, cache)
    code = ("import json, sys; from ablate.data import imagefolder as imf, load_dataset\n"
            "imf.decode_image = lambda *a, **k: sys.exit('decoded an image')\n"
            f"b = load_dataset('imagefolder', root={str(root)!r}, cache_dir={str(cache)!r})\n"
            "print(json.dumps([b.info['cache'], b.info['cache_file'], b.train.images.sum().item()]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    state, path, total = json.loads(out.stdout.strip().splitlines()[-1])
    assert (state, path, total) == ("hit", written.info["cache_file"], written.train.images.sum().item())


def _rewrite(path, pixels=None, note=None, keep_mtime=False):
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    st = path.stat()
    img = Image.open(path)
    img.load()
    if pixels is not None:
        img = Image.fromarray(pixels)
    info = PngInfo()
    if note:
        info.add_text("Comment", note)  # a text chunk: more bytes, the same pixels
    img.save(path, pnginfo=info)
    if keep_mtime:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


@pytest.mark.parametrize("change", ["content", "size", "mtime"])
def test_a_changed_file_is_a_miss(folder, change):
    root, cache, splits = folder
    first = _load(root, cache)
    image = sorted((root / "train" / "bee").iterdir())[0]
    index = int(np.flatnonzero(splits["train"][1] == 1)[0])  # the first bee, in scan order
    old = splits["train"][0][index]
    st = image.stat()
    new = None
    if change == "content":  # other pixels: what a user's edit does
        new = (255 - old).transpose(1, 2, 0)
        _rewrite(image, pixels=new)
    elif change == "size":  # same pixels, other bytes, same mtime: only the size tells
        _rewrite(image, note="edited", keep_mtime=True)
        assert image.stat().st_size != st.st_size and image.stat().st_mtime_ns == st.st_mtime_ns
    else:  # touched: same bytes, other mtime
        os.utime(image, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    again = _load(root, cache)
    assert again.info["cache"] == "written" and again.info["cache_file"] != first.info["cache_file"]
    assert len(_files(cache)) == 2
    want = old if new is None else new.transpose(2, 0, 1)
    assert torch.equal(again.train.images[index], torch.from_numpy(np.ascontiguousarray(want)))
    fresh = _load(root, None)
    assert fresh.info["cache"] == "off" and torch.equal(again.train.images, fresh.train.images)


def test_added_or_removed_files_and_decode_options_are_misses(folder, image_folder):
    root, cache, splits = folder
    names = {_load(root, cache).info["cache_file"]}
    names.add(_load(root, cache, in_chans=1).info["cache_file"])
    names.add(_load(root, cache, image_size=10).info["cache_file"])
    names.add(_load(root, cache, n_train=9).info["cache_file"])
    sorted((root / "val" / "cow").iterdir())[-1].unlink()
    names.add(_load(root, cache).info["cache_file"])
    assert len(names) == 5 and len(_files(cache)) == 5


def _garble(path):
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid:mid + 64] = bytes(b ^ 0xFF for b in data[mid:mid + 64])
    path.write_bytes(bytes(data))


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])


def _other_arrays(path):  # a valid archive that does not hold this folder's images
    np.savez(path, x_train=np.zeros((2, 3, 8, 6), np.uint8), y_train=np.zeros(2, np.int64),
             x_val=np.zeros((1, 3, 8, 6), np.uint8), y_val=np.zeros(1, np.int64))


@pytest.mark.parametrize("damage", [_garble, _truncate, _other_arrays], ids=["garbled", "truncated", "other-data"])
def test_a_damaged_cache_file_is_set_aside_and_rebuilt(folder, damage, caplog):
    root, cache, splits = folder
    first = _load(root, cache)
    path = cache / "imagefolder" / _files(cache)[0]
    damage(path)
    with caplog.at_level("WARNING", logger="ablate"):
        again = _load(root, cache)
    assert again.info["cache"] == "written" and again.info["cache_file"] == first.info["cache_file"]
    assert torch.equal(again.train.images, torch.from_numpy(splits["train"][0]))
    assert torch.equal(again.val.images, torch.from_numpy(splits["val"][0]))
    kept = [n for n in _files(cache) if ".damaged-" in n]
    assert len(kept) == 1 and kept[0].startswith(path.name) and path.name in _files(cache)
    assert any("decoding again" in r.getMessage() for r in caplog.records)
    assert _load(root, cache).info["cache"] == "hit"  # the rebuilt file loads


def test_cached_streamed_and_decoded_give_the_same_batches(folder):
    root, cache, _ = folder
    _load(root, cache)
    bundles = {"cached": _load(root, cache), "decoded": _load(root, None), "streamed": _load(root, None, in_memory=False)}
    assert bundles["cached"].info["cache"] == "hit" and bundles["streamed"].info["in_memory"] is False
    runs = {}
    for name, b in bundles.items():
        assert (b.mean, b.std) == (bundles["streamed"].mean, bundles["streamed"].std)
        loader = make_loader(b.train, shuffle=True, mean=b.mean, std=b.std, num_workers=1 if name == "streamed" else 0,
                             **LOADER)
        batches = []
        for epoch in (0, 1, 2):
            loader.set_epoch(epoch)
            batches += list(loader)
        runs[name] = batches
    assert len(runs["cached"]) == 9
    for name in ("decoded", "streamed"):
        for (xa, ya), (xb, yb) in zip(runs["cached"], runs[name], strict=True):
            assert torch.equal(xa, xb) and torch.equal(ya, yb), name


def test_ablate_cache_off_turns_it_off(folder, monkeypatch):
    root, cache, _ = folder
    monkeypatch.setenv("ABLATE_CACHE", "off")
    assert _load(root, cache).info["cache"] == "off" and not cache.exists()


def test_never_inside_the_data_folder(folder):
    root, _, _ = folder
    b = _load(root, root / "cache")
    assert b.info["cache"] == "off" and not (root / "cache").exists()


def test_a_cache_that_cannot_be_written_is_a_warning_not_a_failure(folder, monkeypatch, caplog):
    import errno

    root, cache, splits = folder

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(imf, "atomic_write", full)
    with caplog.at_level("WARNING", logger="ablate"):
        b = _load(root, cache)
    assert b.info["cache"] == "not written" and torch.equal(b.train.images, torch.from_numpy(splits["train"][0]))
    assert any("not written" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("value", [3, ["a"], True])
def test_a_bad_cache_dir_is_one_line(folder, value):
    with pytest.raises(ConfigError, match=r"cache_dir=.* is not allowed") as err:
        load_dataset("imagefolder", root=folder[0], cache_dir=value)
    assert "\n" not in str(err.value)


def test_a_run_caches_under_the_home_and_the_key_ignores_where(folder, home):
    from ablate.config import compose
    from ablate.train.run import prepare
    from tests.helpers import TINY

    root = folder[0]
    base = [*TINY, "data=imagefolder", f"data.root={root}", "data.n_train=null", "data.n_val=null"]
    plan = prepare(compose(base))
    assert plan.data_kwargs["cache_dir"] == str(home / "cache")
    assert prepare(compose([*base, f"data.cache_dir={home / 'elsewhere'}"])).key == plan.key
    assert prepare(compose([*base, "data.cache_dir=null"])).key == plan.key
