"""Batch loaders: reproducible shuffling and augmentation, normalisation, per epoch.

:func:`make_loader` returns an object you iterate once per epoch, after ``set_epoch(epoch)``
(the torch ``DistributedSampler`` convention: without it every pass repeats epoch 0's order
and augmentation). Everything random is drawn from a generator seeded by ``(seed, epoch)``,
so a resumed run sees exactly the batches an uninterrupted one would have seen.

Two paths, one stream of batches:
- in-memory :class:`~ablate.data.tensor.TensorImageDataset`: whole batches are sliced from
  the uint8 tensor and augmented as a batch in torch (no per-sample Python), which keeps a
  CPU run's time in the model, not the data;
- any other dataset (image folders streamed from disk): a torch ``DataLoader`` collates
  uint8 images (workers allowed, started once for all epochs) in an order the main process
  fixed, and the same batch augmentation runs in the main process.
Both draw the order (``randperm``) and then each batch's augmentation from one generator, in
the same sequence, so the same images, seed and epoch give bit-identical batches on either
path, whatever ``num_workers`` is (workers only decode; they draw nothing).
Augmentation is the CIFAR recipe: random crop from a zero-padded image (``pad`` px each
side) plus a horizontal flip with probability 1/2. Both keep "same row"/"same column"
relations, which is why the alignment task can use them.
"""
from __future__ import annotations

import math
from typing import Iterator, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Subset, default_collate

from ablate.data._checks import check_bool, check_int, check_stats
from ablate.data.tensor import TensorImageDataset
from ablate.errors import ConfigError


def epoch_generator(seed: int, epoch: int, stream: int = 0) -> torch.Generator:
    """A torch generator for ``(seed, epoch, stream)``; distinct triples give unrelated streams."""
    # SeedSequence mixes the triple properly; seed*K+epoch would collide across seeds.
    state = np.random.SeedSequence([seed, epoch, stream]).generate_state(2, np.uint32)
    return torch.Generator().manual_seed((int(state[0]) << 31) ^ int(state[1]))


def augment_batch(x: torch.Tensor, generator: torch.Generator, pad: int, hflip: bool,
                  part: Optional[tuple[torch.Tensor, int]] = None) -> torch.Tensor:
    """Random crop with zero padding + horizontal flip on a uint8 batch N,C,H,W, per sample.

    ``part=(positions, total)``: ``x`` holds the samples at ``positions`` of a batch of
    ``total`` (one rank's share of a global batch): the draws are made for all ``total``
    samples, in the same sequence, and ``x`` gets its samples' draws, so each sample is
    augmented as in the whole batch.
    """
    n, _, h, w = x.shape
    pick, total = (part[0], part[1]) if part is not None else (slice(None), n)
    if pad > 0:
        padded = F.pad(x, (pad, pad, pad, pad))
        oy = torch.randint(0, 2 * pad + 1, (total,), generator=generator)[pick]
        ox = torch.randint(0, 2 * pad + 1, (total,), generator=generator)[pick]
        rows = (oy[:, None] + torch.arange(h))[:, :, None]  # N,H,1
        cols = (ox[:, None] + torch.arange(w))[:, None, :]  # N,1,W
        # Advanced indices around a slice put the broadcast dims first: result is N,H,W,C.
        x = padded[torch.arange(n)[:, None, None], :, rows, cols].permute(0, 3, 1, 2)
    if hflip:
        flip = torch.rand(total, generator=generator)[pick] < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
    return x.contiguous()


def augment_with_masks(x: torch.Tensor, y: torch.Tensor, generator: torch.Generator, pad: int, hflip: bool,
                       part: Optional[tuple[torch.Tensor, int]] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``augment_batch`` on images N,C,H,W and their label maps N,H,W with the same draws (the
    same draws as the images alone take). Labels ride as one more uint8 channel holding label + 1
    (255, "ignore", as 0), so the crop's zero padding comes back as 255: pixels from outside
    the image are ignored, not background."""
    if pad == 0 and not hflip:
        return x, y
    packed = torch.cat([x, ((y + 1) % 256).to(torch.uint8)[:, None]], dim=1)
    packed = augment_batch(packed, generator, pad, hflip, part)
    return packed[:, :-1], (packed[:, -1].to(torch.int64) - 1) % 256


class _EpochLoader:
    """Shared state of both loaders: epoch, order, normalisation, augmentation settings."""

    def __init__(self, n: int, batch_size: int, shuffle: bool, seed: int, augment: bool,
                 mean: Sequence[float], std: Sequence[float], drop_last: bool, pad: int, hflip: bool,
                 rank: int = 0, world_size: int = 1, micro_batches: int = 1):
        self.n, self.batch_size, self.shuffle, self.seed = n, batch_size, shuffle, seed
        self.augment, self.drop_last, self.pad, self.hflip = augment, drop_last, pad, hflip
        self.rank, self.world_size, self.micro_batches = rank, world_size, micro_batches
        self.epoch = 0
        self.global_size = self.share_size = 0  # the last share's global batch and its own size
        self.share_parts: list[int] | None = None  # with micro_batches: its part of each micro-batch
        std_t = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
        # (x/255 - mean)/std folded into one multiply-add on the batch.
        self._scale = 1.0 / (255.0 * std_t)
        self._shift = -torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1) / std_t

    def set_epoch(self, epoch: int) -> None:
        """Select the shuffle order and augmentation of ``epoch`` for the next pass."""
        self.epoch = check_int("make_loader", "epoch", epoch, 0)

    def __len__(self) -> int:
        return self.n // self.batch_size if self.drop_last else math.ceil(self.n / self.batch_size)

    def _batches(self) -> tuple[torch.Generator, list[torch.Tensor], list[tuple]]:
        """This epoch's generator, its index batches and each one's ``(positions in the global
        batch, global batch size, sizes of its parts of the micro-batches or None)``; the order
        is the generator's first draw.

        Both loaders call this, so they agree on the order and leave the generator in the same
        state for the augmentation draws that follow, batch by batch. With ``world_size > 1``
        every rank draws the same global order and takes its share of each global batch:
        ``torch.tensor_split`` into ``world_size`` parts, equal when the batch divides (a last
        short batch gives the first ranks one sample more; one smaller than ``world_size``
        leaves some ranks an empty share). With ``micro_batches`` K > 1 (gradient
        accumulation: the trainer runs each batch as K micro-batches of ``ceil(batch / K)``)
        each micro-batch is split so, and a rank's share is its parts of the K in order: the
        ranks' j-th micro-batches together are the 1-process j-th micro-batch (``share_parts``:
        the sizes of this rank's parts, which the trainer splits the share by, so every rank runs
        as many micro-batches, an empty part included, and their collectives pair up).
        """
        gen = epoch_generator(self.seed, self.epoch)
        order = torch.randperm(self.n, generator=gen) if self.shuffle else torch.arange(self.n)
        full = [order[b * self.batch_size:(b + 1) * self.batch_size] for b in range(len(self))]
        if self.world_size == 1:
            return gen, full, [(torch.arange(len(idx)), len(idx), None) for idx in full]
        batches, parts = [], []
        for idx in full:
            total = len(idx)
            size = max(1, -(-total // self.micro_batches))
            mine = [(torch.tensor_split(chunk, self.world_size)[self.rank],
                     torch.tensor_split(pos, self.world_size)[self.rank])
                    for chunk, pos in zip(idx.split(size), torch.arange(total).split(size))]
            batches.append(torch.cat([m[0] for m in mine]))
            parts.append((torch.cat([m[1] for m in mine]), total, [len(m[0]) for m in mine]))
        return gen, batches, parts

    def _finish(self, x: torch.Tensor, y: torch.Tensor, gen: torch.Generator,
                part: tuple) -> tuple[torch.Tensor, torch.Tensor]:
        self.global_size, self.share_size, self.share_parts = part[1], len(y), part[2]
        if self.augment and y.ndim == 3:  # label maps (segmentation): the mask moves with its image
            x, y = augment_with_masks(x, y, gen, self.pad, self.hflip, part if self.world_size > 1 else None)
        elif self.augment:
            x = augment_batch(x, gen, self.pad, self.hflip, part if self.world_size > 1 else None)
        x = torch.addcmul(self._shift, x.to(torch.float32), self._scale)
        return x, y.to(torch.int64)


class TensorBatchLoader(_EpochLoader):
    """Fast path over a :class:`TensorImageDataset`: index-sliced batches, batch augmentation."""

    def __init__(self, dataset: TensorImageDataset, **kw):
        super().__init__(len(dataset), **kw)
        self.images, self.labels = dataset.images, dataset.labels

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        gen, batches, parts = self._batches()
        for idx, part in zip(batches, parts):
            if self.shuffle:
                x, y = self.images[idx], self.labels[idx]
            else:  # in order: a contiguous slice, no gather copy
                lo, hi = (int(idx[0]), int(idx[-1]) + 1) if len(idx) else (0, 0)
                x, y = (self.images[lo:hi], self.labels[lo:hi]) if hi - lo == len(idx) else (self.images[idx], self.labels[idx])
            yield self._finish(x, y, gen, part)


def _collate(batch: list):
    """The DataLoader's collate: torch's default, and None for a rank's empty share of a batch."""
    return default_collate(batch) if batch else None


class _EpochBatchSampler:
    """The ``batch_sampler`` of :class:`FolderBatchLoader`'s one DataLoader: yields the batches
    the loader fixed for the epoch being iterated (the DataLoader iterates it in the main
    process at each pass, so persistent workers see each epoch's order)."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class FolderBatchLoader(_EpochLoader):
    """Map-style datasets read from disk: a torch ``DataLoader`` over the loader's own batches.

    The index batches come from :meth:`_EpochLoader._batches` (``batch_sampler``), not from a
    ``DataLoader`` shuffle, so this path yields exactly what :class:`TensorBatchLoader` yields
    for the same images; workers decode in parallel and the DataLoader keeps batch order.
    One DataLoader serves every epoch, so its ``num_workers`` processes start once, not once
    per epoch (``persistent_workers``). A dataset with ``keyed = True`` draws something per
    sample in ``__getitem__`` (an image folder's random resized crop): it is asked for
    ``(seed, epoch, index)`` instead of ``index``, so each sample's draw depends on those three
    only, not on the worker or the batch it lands in. ``pin_memory`` page-locks each finished (augmented,
    normalised) batch, so its copy to a CUDA device can overlap compute; without CUDA it is off.
    """

    def __init__(self, dataset: Dataset, num_workers: int, pin_memory: bool = False, **kw):
        super().__init__(len(dataset), **kw)
        self.dataset, self.num_workers = dataset, num_workers
        self.pin_memory = pin_memory and torch.cuda.is_available()
        self._sampler = _EpochBatchSampler()
        self._loader: DataLoader | None = None

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        gen, batches, parts = self._batches()
        if getattr(self.dataset, "keyed", False):  # it draws per sample (e.g. a random resized crop)
            self._sampler.batches = [[(self.seed, self.epoch, i) for i in b.tolist()] for b in batches]
        else:
            self._sampler.batches = [b.tolist() for b in batches]
        if self._loader is None:
            # Its own generator: without one, the DataLoader draws its worker base seed from the
            # global torch RNG, shifting the model's dropout draws away from the in-memory path's.
            self._loader = DataLoader(self.dataset, batch_sampler=self._sampler, num_workers=self.num_workers,
                                      persistent_workers=self.num_workers > 0, collate_fn=_collate,
                                      generator=epoch_generator(self.seed, 0, stream=1))
        for batch, part in zip(self._loader, parts):
            x, y = batch if batch is not None else self._empty()
            x, y = self._finish(x, torch.as_tensor(y), gen, part)
            yield (x.pin_memory(), y.pin_memory()) if self.pin_memory else (x, y)

    def _empty(self) -> tuple[torch.Tensor, torch.Tensor]:
        """A rank's empty share: no images of the dataset's shape, no labels."""
        image = torch.as_tensor(self.dataset[0][0])
        return image.new_empty((0, *image.shape)), torch.empty(0, dtype=torch.int64)


def make_loader(dataset: Dataset, *, batch_size: int, shuffle: bool, seed: int, augment: bool,
                mean: Sequence[float], std: Sequence[float], drop_last: bool = False,
                num_workers: int = 0, pad: int = 2, hflip: bool = True, pin_memory: bool = False,
                rank: int = 0, world_size: int = 1, micro_batches: int = 1) -> _EpochLoader:
    """A re-iterable loader yielding ``(x float32 N,C,H,W normalised, y int64 N)``.

    Args:
        dataset: a DataBundle's ``train`` or ``val`` (uint8 images), or a ``Subset`` of one.
        batch_size: samples per batch (the last batch may be smaller unless ``drop_last``).
        shuffle: draw a new order each epoch (seeded by ``(seed, epoch)``).
        seed: seeds order and augmentation; the run seed.
        augment: random crop (zero padding ``pad``) + horizontal flip (if ``hflip``).
        mean, std: per-channel normalisation on the [0, 1] scale (the bundle's).
        drop_last: drop a final incomplete batch (keeps BatchNorm away from tiny batches).
        num_workers: worker processes for disk datasets, started once and kept across epochs;
            ignored on the in-memory path.
        pad: crop padding in pixels (CIFAR recipe: 4 at 32 px; 2 suits 24 px alignment).
        hflip: flip horizontally in augmentation (turn off where left/right is the label).
        pin_memory: page-locked batches from disk datasets, for a non-blocking copy to a CUDA
            device (off without CUDA); the in-memory path ignores it.
        rank, world_size: one process of a multi-process run: every rank draws the same order
            and augmentation as one process would and yields its share of each batch of
            ``batch_size`` (``batch_size / world_size`` samples when it divides); ``global_size``
            is the size of the batch the last share came from, ``share_size`` the share's.
        micro_batches: with ``world_size > 1``, the K micro-batches a trainer accumulating
            gradients splits each batch into: each is shared out among the ranks (see
            ``_EpochLoader._batches``).
    """
    owner = "make_loader"
    batch_size = check_int(owner, "batch_size", batch_size, 1)
    seed = check_int(owner, "seed", seed, 0, 2**63 - 1)
    num_workers = check_int(owner, "num_workers", num_workers, 0, 256)
    pad = check_int(owner, "pad", pad, 0, 64)
    shuffle, augment = check_bool(owner, "shuffle", shuffle), check_bool(owner, "augment", augment)
    drop_last, hflip = check_bool(owner, "drop_last", drop_last), check_bool(owner, "hflip", hflip)
    pin_memory = check_bool(owner, "pin_memory", pin_memory)
    world_size = check_int(owner, "world_size", world_size, 1)
    rank = check_int(owner, "rank", rank, 0, world_size - 1)
    micro_batches = check_int(owner, "micro_batches", micro_batches, 1)
    if isinstance(dataset, Subset) and isinstance(dataset.dataset, TensorImageDataset):
        dataset = dataset.dataset.subset(dataset.indices)
    chans = getattr(dataset, "in_chans", None)
    mean = check_stats(owner, "mean", mean, chans, positive=False)
    std = check_stats(owner, "std", std, len(mean), positive=True)
    if len(dataset) == 0:
        raise ConfigError(f"{owner}: dataset is empty; expected at least one sample")
    kw = dict(batch_size=batch_size, shuffle=shuffle, seed=seed, augment=augment, mean=mean,
              std=std, drop_last=drop_last, pad=pad, hflip=hflip, rank=rank, world_size=world_size,
              micro_batches=micro_batches)
    if isinstance(dataset, TensorImageDataset):
        return TensorBatchLoader(dataset, **kw)
    return FolderBatchLoader(dataset, num_workers=num_workers, pin_memory=pin_memory, **kw)
