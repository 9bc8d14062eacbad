"""Registry contract, config files, and one-line ValueErrors for every bad input."""
from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from ablate.data import (
    LOADER_KEYS,
    dataset_options,
    list_datasets,
    load_dataset,
    make_loader,
    register_dataset,
    split_config,
)
from ablate.registry import RegistryError

CONF = Path(__file__).resolve().parents[2] / "conf" / "data"


def test_registry_lists_every_dataset():
    assert {"alignment", "position", "cifar10", "cifar100", "imagefolder", "arrays", "digits"} <= set(list_datasets())
    assert list_datasets() == sorted(list_datasets())
    with pytest.raises(RegistryError, match="already registered"):
        register_dataset("alignment")(lambda **kw: None)


def test_unknown_dataset_lists_the_allowed_ones():
    with pytest.raises(ValueError) as err:
        load_dataset("foo", root=None)
    assert str(err.value) == f"unknown dataset 'foo'; allowed: {', '.join(list_datasets())}"


@pytest.mark.parametrize("path", sorted(CONF.glob("*.yaml")), ids=lambda p: p.stem)
def test_conf_matches_builder_and_loader(path):
    cfg = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    name, root, ds_kwargs, loader_kwargs = split_config(cfg)
    assert name in list_datasets()
    preset = name != path.stem  # a preset of another dataset (imagenet.yaml: an image folder with ImageNet's views)
    assert isinstance(root, str) and root.startswith("${paths.data_dir}")
    options = dataset_options(name)
    seed = ds_kwargs.pop("seed")
    assert seed == 0
    for key, value in ds_kwargs.items():
        assert key in options, f"{path.name}: {key} is not an option of {name}"
        if isinstance(value, str) and value.startswith("${paths.") and options[key] is None:
            continue  # a location from the paths group (like root); the builder's None = none
        if preset:
            continue
        default = list(options[key]) if isinstance(options[key], tuple) else options[key]  # YAML has no tuples
        assert value == default, f"{path.name}: {key}={value!r}, builder default {options[key]!r}"
    assert {"batch_size", "num_workers", "augment"} <= set(loader_kwargs) <= set(LOADER_KEYS)
    assert set(loader_kwargs) <= set(inspect.signature(make_loader).parameters)
    # One comment per key.
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            assert "#" in line, f"{path.name}: no comment on {line!r}"


def test_conf_default_loads(tmp_path):
    cfg = OmegaConf.to_container(OmegaConf.load(CONF / "alignment.yaml"), resolve=False)
    cfg.update(root=str(tmp_path), n_train=30, n_val=9)
    name, root, ds_kwargs, loader_kwargs = split_config(cfg)
    b = load_dataset(name, root=root, **ds_kwargs)
    loader = make_loader(b.train, shuffle=True, seed=0, mean=b.mean, std=b.std, **loader_kwargs)
    assert len(loader) == 1 and next(iter(loader))[0].shape == (30, 1, 24, 24)


BAD_DATASET = [
    ("alignment", dict(n_train=-1), "-1"),
    ("alignment", dict(n_train="8000"), "'8000'"),
    ("alignment", dict(n_train=True), "True"),
    ("alignment", dict(n_val=2), "2"),
    ("alignment", dict(image_size=8), "8"),
    ("alignment", dict(image_size=16), "16"),  # too small for 4 px objects + 2 px margin
    ("alignment", dict(clutter=65), "65"),
    ("alignment", dict(object_size=2), "2"),
    ("alignment", dict(margin=1.5), "1.5"),
    ("alignment", dict(seed=-3), "-3"),
    ("alignment", dict(colour=1), "'colour'"),
    ("position", dict(image_size=15), "15"),
    ("cifar10", dict(n_train=0), "0"),
    ("cifar100", dict(labels="medium"), "'medium'"),
    ("imagefolder", dict(in_chans=2), "2"),
    ("imagefolder", dict(image_size=[0, 5]), "[0, 5]"),
    ("imagefolder", dict(mean=[0.5]), "[0.5]"),
    ("imagefolder", dict(std=[1.0, 0.0, 1.0]), "[1.0, 0.0, 1.0]"),
    ("digits", dict(val_fraction=2.0), "2.0"),
    ("digits", dict(image_size=4), "4"),
]


@pytest.mark.parametrize("name,kwargs,shown", BAD_DATASET, ids=[f"{n}-{list(k)[0]}" for n, k, _ in BAD_DATASET])
def test_bad_dataset_values_raise_one_line(tmp_path, name, kwargs, shown):
    kwargs = dict(kwargs)
    seed = kwargs.pop("seed", 0)
    # tmp_path has no data: checks must fire before any file is looked for.
    with pytest.raises(ValueError) as err:
        load_dataset(name, root=tmp_path, seed=seed, **kwargs)
    msg = str(err.value)
    assert "\n" not in msg and shown in msg and name in msg
    assert not (tmp_path / name).exists()


@pytest.fixture(scope="module")
def train():
    return load_dataset("alignment", root=None, n_train=20, n_val=8).train


BAD_LOADER = [
    (dict(batch_size=0), "0"),
    (dict(batch_size=2.5), "2.5"),
    (dict(seed=-1), "-1"),
    (dict(augment="yes"), "'yes'"),
    (dict(shuffle=1), "1"),
    (dict(mean=(0.1, 0.2)), "(0.1, 0.2)"),
    (dict(std=(0.0,)), "(0.0,)"),
    (dict(std=(float("nan"),)), "nan"),
    (dict(pad=-2), "-2"),
    (dict(num_workers=-1), "-1"),
    (dict(hflip=None), "None"),
]


@pytest.mark.parametrize("kwargs,shown", BAD_LOADER, ids=[list(k)[0] for k, _ in BAD_LOADER])
def test_bad_loader_values_raise_one_line(train, kwargs, shown):
    args = dict(batch_size=4, shuffle=True, seed=0, augment=True, mean=(0.1,), std=(0.3,))
    args.update(kwargs)
    with pytest.raises(ValueError) as err:
        make_loader(train, **args)
    msg = str(err.value)
    assert "\n" not in msg and shown in msg and msg.startswith("make_loader:")


def test_bad_epoch_raises_one_line(train):
    loader = make_loader(train, batch_size=4, shuffle=True, seed=0, augment=True, mean=(0.1,), std=(0.3,))
    with pytest.raises(ValueError, match="epoch=-1"):
        loader.set_epoch(-1)


def test_import_pulls_no_optional_dependency():
    code = "import sys, ablate.data; print(sorted(m for m in ('PIL', 'sklearn', 'wandb', 'optuna') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
