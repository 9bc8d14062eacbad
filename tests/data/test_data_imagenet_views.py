"""The ImageNet views of an image folder: random resized crops drawn per (seed, epoch, image),
short side + centre crop, their checks, and the batches they make."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ablate.data import check_dataset, load_dataset, make_loader
from ablate.data import imagefolder as imf
from ablate.errors import ConfigError
from tests.imagenet_tree import WNIDS, write_imagenet_tree

VIEWS = dict(image_size=24, random_resized_crop=True, short_side=28, mean=[0.5] * 3, std=[0.25] * 3)


@pytest.fixture
def tree(tmp_path):
    return write_imagenet_tree(tmp_path / "imagenet", n_train=4, n_val=2)


def test_crop_boxes_lie_inside_with_area_and_aspect_in_range():
    scale, ratio = (0.08, 1.0), (3 / 4, 4 / 3)
    rng = np.random.default_rng(0)
    for trial in range(2000):
        h, w = (int(v) for v in rng.integers(100, 400, 2))
        top, left, ch, cw = imf.random_resized_crop_box(h, w, scale, ratio, np.random.default_rng(trial))
        assert 0 <= top and 0 <= left and top + ch <= h and left + cw <= w and ch > 0 and cw > 0
        area, aspect = ch * cw / (h * w), cw / ch
        slack = 2.5 / min(ch, cw)  # w and h are rounded to whole pixels after the draw
        drawn = (scale[0] * (1 - slack) <= area <= scale[1] * (1 + slack)
                 and ratio[0] * (1 - slack) <= aspect <= ratio[1] * (1 + slack))
        centre = (ch == h or cw == w) and top == (h - ch) // 2 and left == (w - cw) // 2
        assert drawn or centre, (h, w, top, left, ch, cw)
    # a strip no draw fits: after 10 tries, the centre crop clamped to the widest ratio
    assert imf.random_resized_crop_box(20, 400, scale, ratio, np.random.default_rng(0)) == (0, 186, 20, 27)
    assert imf.random_resized_crop_box(400, 20, scale, ratio, np.random.default_rng(0)) == (186, 0, 27, 20)


def test_crop_area_is_uniform_over_scale():
    """Accepted draws have area ~ U(scale): the mean area fraction of many crops of a large
    square image is about (0.08 + 1) / 2, less the draws rejected near 1 for their aspect."""
    areas = [np.prod(imf.random_resized_crop_box(1000, 1000, (0.08, 1.0), (3 / 4, 4 / 3),
                                                 np.random.default_rng(i))[2:]) / 1e6 for i in range(3000)]
    assert 0.45 < np.mean(areas) < 0.55 and min(areas) > 0.075 and max(areas) <= 1.0


def test_centre_view_is_short_side_then_centre_crop(tree):
    from PIL import Image

    path = sorted((tree / "val" / WNIDS[1]).iterdir())[0]
    got = imf.decode_image(path, 3, (24, 24), short_side=28)
    with Image.open(path) as im:
        im = im.convert("RGB")
        w, h = im.size
        nw, nh = (28, int(28 * h / w)) if w <= h else (int(28 * w / h), 28)
        im = im.resize((nw, nh), Image.BILINEAR)
        top, left = int(round((nh - 24) / 2)), int(round((nw - 24) / 2))
        want = np.asarray(im.crop((left, top, left + 24, top + 24))).transpose(2, 0, 1)
    assert (w, h) != (nw, nh) and np.array_equal(got, want)


def test_random_crops_depend_on_seed_epoch_and_index_only(tree):
    b = load_dataset("imagefolder", root=tree, **VIEWS)
    assert b.info["random_resized_crop"] and not b.info["in_memory"] and b.image_size == 24
    ds = b.train
    assert ds.keyed and not b.val.keyed
    a, again = ds[(0, 1, 5)][0], ds[(0, 1, 5)][0]
    assert a.shape == (3, 24, 24) and torch.equal(a, again)
    others = [ds[(0, 2, 5)][0], ds[(1, 1, 5)][0]]
    assert not any(torch.equal(a, o) for o in others)
    assert torch.equal(ds[3][0], ds[3][0])  # a plain index: the deterministic (centre) view
    assert torch.equal(b.val[0][0], torch.from_numpy(imf.decode_image(b.val.samples[0][0], 3, (24, 24),
                                                                      short_side=28)))


def _batches(bundle, workers: int, epoch: int, batch: int = 5):
    loader = make_loader(bundle.train, batch_size=batch, shuffle=True, seed=3, augment=True, pad=0, hflip=True,
                         mean=bundle.mean, std=bundle.std, num_workers=workers)
    loader.set_epoch(epoch)
    return [x for x, _ in loader]


def test_batches_are_the_same_for_any_workers_and_change_with_the_epoch(tree):
    b = load_dataset("imagefolder", root=tree, **VIEWS)
    zero, two = _batches(b, 0, 1), _batches(b, 2, 1)
    assert len(zero) == math.ceil(12 / 5) and all(torch.equal(p, q) for p, q in zip(zero, two))
    assert not torch.equal(torch.cat(zero), torch.cat(_batches(b, 0, 2)))
    # a sample's crop does not depend on the batch it lands in (without the per-batch flip)
    def unflipped(batch):
        loader = make_loader(b.train, batch_size=batch, shuffle=True, seed=3, augment=False, mean=b.mean, std=b.std)
        loader.set_epoch(1)
        return torch.cat([x for x, _ in loader])

    assert torch.equal(unflipped(5), unflipped(12))


def test_stats_from_the_centre_view_when_not_given(tree):
    b = load_dataset("imagefolder", root=tree, image_size=24, random_resized_crop=True, short_side=28)
    views = np.stack([imf.decode_image(p, 3, (24, 24), short_side=28) for p, _ in b.train.samples])
    from ablate.data.tensor import channel_stats

    assert b.mean == channel_stats(views)[0] and b.std == channel_stats(views)[1]


def test_short_side_alone_decodes_into_memory(tree):
    b = load_dataset("imagefolder", root=tree, image_size=24, short_side=28, cache_dir=None)
    assert b.info["in_memory"] and b.train.images.shape == (12, 3, 24, 24)
    want = imf.decode_image(sorted((tree / "train" / WNIDS[0]).iterdir())[0], 3, (24, 24), short_side=28)
    assert np.array_equal(b.train.images[0].numpy(), want)


@pytest.mark.parametrize("kw, needle", [
    ({"random_resized_crop": True}, "imagefolder: random_resized_crop=true needs the crop's size, image_size=null"),
    ({"short_side": 256}, "imagefolder: short_side=256 needs the crop's size"),
    ({"image_size": 224, "short_side": 200}, "short_side=200 is smaller than image_size 224x224; allowed: short_side >= 224"),
    ({"image_size": 24, "random_resized_crop": True, "in_memory": True}, "in_memory=true with random_resized_crop=true"),
    ({"image_size": 24, "random_resized_crop": "yes"}, "random_resized_crop='yes' is not allowed; expected true or false"),
    ({"image_size": 24, "crop_scale": [0.5, 0.2]}, "crop_scale=[0.5, 0.2] is not allowed; expected [a, b] with 0.0 < a <= b <= 1.0"),
    ({"image_size": 24, "crop_ratio": [0, 2]}, "crop_ratio=[0, 2] is not allowed"),
])
def test_bad_view_options_are_one_line(tree, kw, needle):
    with pytest.raises(ConfigError) as exc:
        check_dataset("imagefolder", root=tree, **kw)
    assert needle in str(exc.value) and "\n" not in str(exc.value)


def test_the_new_keys_at_their_defaults_leave_run_keys_as_they_were(home):
    """data.random_resized_crop / crop_scale / crop_ratio / short_side came after runs were keyed:
    at their defaults an image-folder run keeps the key it had without them."""
    from ablate.config import compose, to_container
    from ablate.track.runkey import run_key

    new = ("random_resized_crop", "crop_scale", "crop_ratio", "short_side")
    cfg = to_container(compose(["data=imagefolder", "data.image_size=32"]))
    assert all(k in cfg["data"] for k in new)
    before = {**cfg, "data": {k: v for k, v in cfg["data"].items() if k not in new}}
    assert run_key(cfg) == run_key(before)
    for over in ("data.random_resized_crop=true", "data.short_side=36", "data.crop_scale=[0.2,1.0]"):
        assert run_key(to_container(compose(["data=imagefolder", "data.image_size=32", over]))) != run_key(before)
