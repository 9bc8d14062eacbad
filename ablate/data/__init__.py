"""Datasets and loaders: ``load_dataset(name, root=..., seed=..., **options)`` and ``make_loader``.

Registered datasets (``list_datasets()``): ``alignment`` (generated, the embedded default),
``position`` (generated control), ``cifar10``, ``cifar100``, ``imagefolder`` and ``arrays``
(your own images: a folder tree or an ``.npz``), ``digits`` (needs scikit-learn). Importing
this package pulls in only numpy and torch; PIL and sklearn are imported when an image folder
is read or the digits are loaded.
"""
from ablate.data.registry import (
    DATASETS,
    FINGERPRINT_KEY,
    LOADER_KEYS,
    DataBundle,
    check_dataset,
    check_loader,
    dataset_fingerprint,
    fingerprints_memoised,
    dataset_options,
    list_datasets,
    load_dataset,
    register_dataset,
    split_config,
)
from ablate.data.tensor import TensorImageDataset
from ablate.data.loader import augment_batch, make_loader

__all__ = [
    "DATASETS",
    "FINGERPRINT_KEY",
    "LOADER_KEYS",
    "DataBundle",
    "check_dataset",
    "check_loader",
    "dataset_fingerprint",
    "fingerprints_memoised",
    "TensorImageDataset",
    "augment_batch",
    "dataset_options",
    "list_datasets",
    "load_dataset",
    "make_loader",
    "register_dataset",
    "split_config",
]
