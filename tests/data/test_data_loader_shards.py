"""One process of a multi-process run: every rank draws the same order and augmentation and
yields its share of each global batch, so the shares of all ranks, put together, are exactly the
batches one process yields (in memory and streamed from a dataset, short and empty shares)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

from ablate.data import make_loader
from ablate.data.tensor import TensorImageDataset
from ablate.errors import ConfigError


class _Images(Dataset):
    """``n`` three-channel 8x8 uint8 images, label = index."""

    def __init__(self, n: int):
        self.x = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (n, 3, 8, 8), dtype=np.uint8))

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], i


def _loader(ds, **kw):
    args = dict(batch_size=8, shuffle=True, seed=3, augment=True, mean=[0.5] * 3, std=[0.25] * 3, pad=2)
    return make_loader(ds, **{**args, **kw})


def _tensor(ds: _Images) -> TensorImageDataset:
    return TensorImageDataset(ds.x, torch.arange(len(ds)))


@pytest.mark.parametrize("n, world", [(32, 2), (30, 2), (33, 4), (17, 3)])
@pytest.mark.parametrize("path", ["memory", "stream"])
@pytest.mark.parametrize("shuffle", [True, False])
def test_shares_of_all_ranks_make_the_one_process_batches(n, world, path, shuffle):
    ds = _Images(n)
    data = _tensor(ds) if path == "memory" else ds
    whole = _loader(data, shuffle=shuffle, augment=shuffle)
    ranks = [_loader(data, shuffle=shuffle, augment=shuffle, rank=r, world_size=world) for r in range(world)]
    for epoch in (0, 1):
        for loader in (whole, *ranks):
            loader.set_epoch(epoch)
        one = list(whole)
        shares = [list(r) for r in ranks]
        assert all(len(s) == len(one) for s in shares)  # every rank takes every step
        for b, (x, y) in enumerate(one):
            xs = torch.cat([s[b][0] for s in shares])
            ys = torch.cat([s[b][1] for s in shares])
            assert torch.equal(xs, x) and torch.equal(ys, y)
            sizes = [len(s[b][1]) for s in shares]
            assert max(sizes) - min(sizes) <= 1  # balanced; equal when the batch divides
        assert all(r.global_size == len(one[-1][1]) for r in ranks)


@pytest.mark.parametrize("path", ["memory", "stream"])
def test_with_micro_batches_each_micro_batch_is_shared_out(path):
    """Gradient accumulation (K micro-batches a step): the ranks' j-th micro-batches together
    are the 1-process j-th micro-batch, so BatchNorm over the global micro-batch sees the
    same samples; every step still holds the whole batch."""
    ds = _Images(64 + 24)
    data = _tensor(ds) if path == "memory" else ds
    k, world = 4, 2
    whole = _loader(data, batch_size=32)
    ranks = [_loader(data, batch_size=32, rank=r, world_size=world, micro_batches=k) for r in range(world)]
    for loader in (whole, *ranks):
        loader.set_epoch(0)
    shares = [list(r) for r in ranks]
    for b, (x, y) in enumerate(whole):
        assert sorted(torch.cat([s[b][1] for s in shares]).tolist()) == sorted(y.tolist())
        if len(y) == 32:  # a full batch: micro-batch j of each rank = its share of micro-batch j
            for j, (xj, yj) in enumerate(zip(x.split(8), y.split(8))):
                assert torch.equal(torch.cat([s[b][1].split(4)[j] for s in shares]), yj)
                assert torch.equal(torch.cat([s[b][0].split(4)[j] for s in shares]), xj)


def test_a_batch_smaller_than_the_world_leaves_empty_shares():
    ds = _Images(9)  # batches of 8 and 1: the second gives rank 1 an empty share
    for data in (_tensor(ds), ds):
        loader = _loader(data, rank=1, world_size=2)
        loader.set_epoch(0)
        (x0, y0), (x1, y1) = list(loader)
        assert x0.shape == (4, 3, 8, 8) and x1.shape == (0, 3, 8, 8) and y1.shape == (0,)


def test_a_rank_outside_the_world_is_one_line():
    with pytest.raises(ConfigError, match="rank=2"):
        _loader(_Images(8), rank=2, world_size=2)
