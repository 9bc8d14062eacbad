"""make_loader: shapes, normalisation, (seed, epoch) determinism, augmentation semantics."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from numpy.lib.stride_tricks import sliding_window_view
from torch.utils.data import Dataset, Subset

from ablate.data import TensorImageDataset, augment_batch, load_dataset, make_loader
from ablate.data.loader import epoch_generator


@pytest.fixture(scope="module")
def bundle():
    return load_dataset("alignment", root=None, n_train=1000, n_val=200)


def _loader(b, **kw):
    args = dict(batch_size=128, shuffle=True, seed=0, augment=True, mean=b.mean, std=b.std)
    args.update(kw)
    return make_loader(b.train, **args)


def _epoch(loader, epoch):
    loader.set_epoch(epoch)
    xs, ys = zip(*loader)
    return torch.cat(xs), torch.cat(ys)


def test_shapes_dtypes_and_len(bundle):
    loader = _loader(bundle)
    batches = list(loader)
    assert len(loader) == len(batches) == 8  # ceil(1000 / 128)
    x, y = batches[0]
    assert x.shape == (128, 1, 24, 24) and x.dtype == torch.float32 and x.is_contiguous()
    assert y.shape == (128,) and y.dtype == torch.int64
    assert batches[-1][0].shape[0] == 1000 - 7 * 128
    dropped = _loader(bundle, drop_last=True)
    assert len(dropped) == len(list(dropped)) == 7


def test_normalisation_without_augmentation_is_exact(bundle):
    loader = _loader(bundle, shuffle=False, augment=False)
    x, y = _epoch(loader, 0)
    raw = bundle.train.images.float() / 255
    torch.testing.assert_close(x, (raw - bundle.mean[0]) / bundle.std[0])
    assert torch.equal(y, bundle.train.labels)
    # The bundle's own statistics standardise the training set.
    assert abs(x.mean().item()) < 1e-3 and abs(x.std().item() - 1) < 1e-3


def test_deterministic_per_seed_and_epoch_and_different_across_epochs(bundle):
    a0, ya0 = _epoch(_loader(bundle), 0)
    b0, yb0 = _epoch(_loader(bundle), 0)
    a1, ya1 = _epoch(_loader(bundle), 1)
    c0, _ = _epoch(_loader(bundle, seed=1), 0)
    assert torch.equal(a0, b0) and torch.equal(ya0, yb0)
    assert not torch.equal(ya0, ya1) and not torch.equal(a0, a1)
    assert not torch.equal(a0, c0)
    # Every sample appears once per epoch.
    assert torch.equal(ya1.sort().values, bundle.train.labels.sort().values)
    # Without set_epoch a second pass repeats the epoch (DistributedSampler convention).
    loader = _loader(bundle)
    loader.set_epoch(3)
    first, second = [torch.cat([x for x, _ in loader]) for _ in range(2)]
    assert torch.equal(first, second)


def test_augmentation_is_a_padded_crop_plus_optional_flip(bundle):
    imgs = bundle.train.images[:64]
    out = augment_batch(imgs, epoch_generator(0, 0), pad=2, hflip=True)
    assert out.shape == imgs.shape and out.dtype == torch.uint8 and not torch.equal(out, imgs)
    padded = torch.nn.functional.pad(imgs, (2, 2, 2, 2))
    seen = set()
    for i in range(len(imgs)):
        # Reference, one sample at a time: some (dy, dx, flip) must reproduce the output.
        hits = [(dy, dx, f) for dy in range(5) for dx in range(5) for f in (False, True)
                if torch.equal(out[i], (lambda c: c.flip(2) if f else c)(padded[i, :, dy:dy + 24, dx:dx + 24]))]
        assert hits, i
        seen.update(hits)
    assert len({h[:2] for h in seen}) > 5 and {h[2] for h in seen} == {False, True}


def _spans(img: np.ndarray, k: int = 4):
    """(rows, cols) spans of the square (the full k×k block) and the disc (the rest)."""
    ink = img > 0
    full = sliding_window_view(ink, (k, k)).all(axis=(2, 3))
    (t,), (l,) = np.nonzero(full)[0][:1], np.nonzero(full)[1][:1]
    rest = ink.copy()
    rest[t:t + k, l:l + k] = False
    rr, cc = np.nonzero(rest)
    return (t, t + k - 1), (l, l + k - 1), (rr.min(), rr.max()), (cc.min(), cc.max())


def _relation(img):
    sr, sc, dr, dc = _spans(img)
    if sr == dr:
        return 0
    if sc == dc:
        return 1
    assert sr[1] < dr[0] or dr[1] < sr[0]
    assert sc[1] < dc[0] or dc[1] < sc[0]
    return 2


def test_augmentation_preserves_alignment_labels():
    """Crop-with-padding (<= margin) and flips keep same-row / same-column / neither."""
    b = load_dataset("alignment", root=None, n_train=300, n_val=30, clutter=0)
    loader = make_loader(b.train, batch_size=100, shuffle=True, seed=7, augment=True,
                         mean=(0.0,), std=(1 / 255,), pad=2)  # x == raw uint8 values
    for epoch in range(2):
        loader.set_epoch(epoch)
        for x, y in loader:
            imgs = x.round().to(torch.uint8)[:, 0].numpy()
            assert [_relation(im) for im in imgs] == y.tolist()
    # The raw images obey the rule too (the detector is not vacuous).
    assert [_relation(im) for im in b.train.images[:100, 0].numpy()] == b.train.labels[:100].tolist()


def test_subset_of_tensor_dataset_takes_the_fast_path(bundle):
    sub = Subset(bundle.train, list(range(10, 50)))
    loader = make_loader(sub, batch_size=16, shuffle=False, seed=0, augment=False,
                         mean=bundle.mean, std=bundle.std)
    assert type(loader).__name__ == "TensorBatchLoader"
    _, y = _epoch(loader, 0)
    assert torch.equal(y, bundle.train.labels[10:50])


class _ListDataset(Dataset):
    """A non-tensor dataset: exercises the DataLoader fallback."""

    def __init__(self, base: TensorImageDataset):
        self.base = base
        self.in_chans = base.in_chans

    def __len__(self):
        return len(self.base)

    def __getitem__(self, i):
        return self.base[i]


def test_fallback_loader_matches_contract(bundle):
    ds = _ListDataset(bundle.val)
    mk = lambda: make_loader(ds, batch_size=64, shuffle=True, seed=2, augment=True,
                             mean=bundle.mean, std=bundle.std)
    loader = mk()
    assert type(loader).__name__ == "FolderBatchLoader" and len(loader) == 4
    a, ya = _epoch(loader, 0)
    b, yb = _epoch(mk(), 0)
    c, yc = _epoch(mk(), 1)
    assert a.dtype == torch.float32 and a.shape == (200, 1, 24, 24) and ya.dtype == torch.int64
    assert torch.equal(a, b) and torch.equal(ya, yb) and not torch.equal(ya, yc)


@pytest.mark.parametrize("num_workers", [0, 2])
@pytest.mark.parametrize("shuffle,drop_last", [(True, False), (True, True), (False, False)])
def test_streaming_loader_yields_the_in_memory_batches(bundle, num_workers, shuffle, drop_last):
    """Same images, seed and epoch: the DataLoader path yields the fast path's batches, bit for bit."""
    kw = dict(batch_size=48, shuffle=shuffle, seed=5, augment=True, mean=bundle.mean, std=bundle.std,
              drop_last=drop_last, pad=2)
    fast = make_loader(bundle.val, **kw)
    slow = make_loader(_ListDataset(bundle.val), num_workers=num_workers, **kw)
    assert type(slow).__name__ == "FolderBatchLoader" and len(fast) == len(slow)
    for epoch in (0, 3):
        fast.set_epoch(epoch)
        slow.set_epoch(epoch)
        pairs = list(zip(fast, slow, strict=True))
        assert len(pairs) == len(fast)
        for (xa, ya), (xb, yb) in pairs:
            assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_streaming_loader_leaves_the_global_rng_alone(bundle):
    """The model's dropout draws must not depend on which loader path fed it."""
    loader = make_loader(_ListDataset(bundle.val), batch_size=64, shuffle=True, seed=0, augment=True,
                         mean=bundle.mean, std=bundle.std)
    torch.manual_seed(0)
    list(loader)
    after = torch.rand(3)
    torch.manual_seed(0)
    assert torch.equal(torch.rand(3), after)
