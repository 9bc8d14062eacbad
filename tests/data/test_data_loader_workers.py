"""The streaming loader's workers start once per loader, not once per epoch, and a pass left early
(pre-emption, pruning) does not shift the next one."""
from __future__ import annotations

import os

import numpy as np
import torch
from torch.utils.data import Dataset

from ablate.data import make_loader

KW = dict(batch_size=4, shuffle=True, seed=1, augment=True, mean=[0.5], std=[0.25], pad=1)


class _Images(Dataset):
    """12 one-channel 6x6 images; with ``pid_labels`` each label is the pid that read it."""

    def __init__(self, pid_labels: bool = False):
        self.x = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (12, 1, 6, 6), dtype=np.uint8))
        self.pid_labels = pid_labels

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], (os.getpid() if self.pid_labels else i)


def test_workers_are_started_once_for_all_epochs():
    loader = make_loader(_Images(pid_labels=True), num_workers=2, **KW)
    pids = set()
    for epoch in range(3):
        loader.set_epoch(epoch)
        pids |= {int(p) for _, y in loader for p in y}
    assert len(pids) == 2 and os.getpid() not in pids  # the same two worker processes, every epoch


def test_a_pass_left_early_does_not_shift_the_next():
    ds = _Images()
    left = make_loader(ds, num_workers=2, **KW)
    left.set_epoch(0)
    for _ in left:
        break  # a run stopped after one step
    left.set_epoch(1)
    fresh = make_loader(ds, num_workers=0, **KW)
    fresh.set_epoch(1)
    for (xa, ya), (xb, yb) in zip(left, fresh, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_pin_memory_is_off_without_cuda():
    loader = make_loader(_Images(), num_workers=0, pin_memory=True, **KW)
    assert loader.pin_memory is torch.cuda.is_available()
    assert len(list(loader)) == 3
