"""Checks of a run's config that ``prepare`` makes before any data is read or any compute.

Each refuses bad input with one line naming the value and the allowed ones (a ``ConfigError``):
the optimiser (only a ``torch.optim.Optimizer`` subclass is ever instantiated, resolved by name
without calling anything, and its arguments are checked by building it on one dummy
parameter), the seed, the trainer keys, the data loader's keys and augmentation, and a
generated dataset pointed at a user's data folder.
"""
from __future__ import annotations

import importlib
import inspect
import math
from dataclasses import fields
from pathlib import Path
from typing import Any, Mapping, Optional

from ablate.errors import ConfigError

SEED_MAX = 2**63 - 1  # torch, numpy and the data generators take seeds up to int64
# Hydra's instantiation keys: the optim group may hold _target_ (an optimiser class) and
# _partial_: true (the optimiser is built once the model's parameters exist); no other.
INSTANTIATE_KEYS = ("_target_", "_partial_", "_args_", "_recursive_", "_convert_")
_OPTIM_HINT = "a subclass of torch.optim.Optimizer, e.g. torch.optim.AdamW or torch.optim.SGD"


def check_seed(seed: Any, key: str = "seed") -> int:
    """An integer in [0, 2**63 - 1] (not a bool)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        raise ConfigError(f"{key}={seed!r}; allowed: an integer in [0, {SEED_MAX}]")
    return seed


def check_keys(group: str, values: Mapping[str, Any], cls: type) -> None:
    """The keys of config group ``group`` are the fields of dataclass ``cls``."""
    names = [f.name for f in fields(cls)]
    unknown = sorted(k for k in values if k not in names)
    if unknown:
        raise ConfigError(f"{group}: unknown key {unknown[0]!r}; allowed: {', '.join(names)}")


def check_world(config: Mapping[str, Any]) -> None:
    """A run of several processes (``trainer.devices`` x ``launcher.nodes`` under SLURM) splits
    ``data.batch_size``, the global batch, evenly."""
    trainer = config.get("trainer") or {}
    devices = trainer.get("devices", 1)
    if isinstance(devices, bool) or not isinstance(devices, int) or devices < 1:
        return  # TrainerConfig names the bad value
    launcher = config.get("launcher") or {}
    nodes = launcher.get("nodes", 1) if launcher.get("name") == "slurm" else 1
    if isinstance(nodes, bool) or not isinstance(nodes, int) or nodes < 1:
        raise ConfigError(f"launcher.nodes={nodes!r}; allowed: an integer >= 1")
    batch = (config.get("data") or {}).get("batch_size")
    if batch is None:
        from ablate.data.registry import LOADER_DEFAULTS

        batch = LOADER_DEFAULTS["batch_size"]
    world = devices * nodes
    if isinstance(batch, int) and not isinstance(batch, bool) and world > 1 and batch % world:
        where = f"trainer.devices={devices}" + (f" x launcher.nodes={nodes}" if nodes > 1 else "")
        multiples = ", ".join(str(world * k) for k in range(1, 4))
        raise ConfigError(f"data.batch_size={batch} does not split over {where} = {world} processes "
                          f"(it is the global batch); allowed: a multiple of {world} ({multiples}, ...)")


def resolve_optimizer(target: Any) -> type:
    """The class a dotted ``optim._target_`` names, if it is a ``torch.optim.Optimizer`` subclass.

    The path is resolved with importlib and getattr only: nothing it names is called, so a
    target such as ``builtins.eval`` or ``torch.load`` is refused before it could run.
    """
    import torch

    if not isinstance(target, str) or not target or any(not p.isidentifier() for p in target.split(".")):
        raise ConfigError(f"optim._target_={target!r} is not allowed; allowed: {_OPTIM_HINT}")
    parts = target.split(".")
    obj, found = None, 0
    for i in range(len(parts) - 1, 0, -1):  # the longest importable module prefix
        try:
            obj = importlib.import_module(".".join(parts[:i]))
            found = i
            break
        except ImportError:
            continue
    if obj is None:
        raise ConfigError(f"optim._target_={target!r}: no module found; allowed: {_OPTIM_HINT}")
    for attr in parts[found:]:
        obj = getattr(obj, attr, None)
        if obj is None:
            raise ConfigError(f"optim._target_={target!r}: {'.'.join(parts[:found])} has no {attr!r}; "
                              f"allowed: {_OPTIM_HINT}")
    if not (inspect.isclass(obj) and issubclass(obj, torch.optim.Optimizer) and obj is not torch.optim.Optimizer):
        raise ConfigError(f"optim._target_={target!r} is not an optimiser; allowed: {_OPTIM_HINT}")
    return obj


def _no_nested_instantiation(value: Any, where: str) -> None:
    """No dict inside the optim group may carry an instantiation key (Hydra's instantiate is
    recursive: ``optim.x._target_`` would be called)."""
    if isinstance(value, Mapping):
        for k, v in value.items():
            if isinstance(k, str) and k.startswith("_") and k.endswith("_"):
                raise ConfigError(f"{where}.{k} is not allowed; only optim._target_ (an optimiser class) and "
                                  "optim._partial_ instantiate anything")
            _no_nested_instantiation(v, f"{where}.{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _no_nested_instantiation(v, f"{where}[{i}]")


def _real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_optim(optim: Mapping[str, Any]) -> type:
    """Validate the ``optim`` group without training: the target, the instantiation keys, the
    common hyper-parameters' ranges, the argument names, then the optimiser built on one dummy
    parameter (torch's own checks: betas, eps, nesterov with momentum, ...). Returns the class."""
    import torch

    cls = resolve_optimizer(optim.get("_target_"))
    name = optim["_target_"]
    if optim.get("_partial_") is not True:
        raise ConfigError(f"optim._partial_={optim.get('_partial_')!r}; allowed: true (the optimiser is built "
                          "once the model's parameters exist)")
    kwargs = {}
    for key, value in optim.items():
        if key in ("_target_", "_partial_"):
            continue
        if key.startswith("_") and key.endswith("_"):
            raise ConfigError(f"optim.{key} is not allowed; allowed instantiation keys: _target_, _partial_")
        _no_nested_instantiation(value, f"optim.{key}")
        kwargs[key] = value
    if "lr" in kwargs and not (_real(kwargs["lr"]) and kwargs["lr"] > 0):
        raise ConfigError(f"optim.lr={kwargs['lr']!r}; allowed: a number > 0")
    if "weight_decay" in kwargs and not (_real(kwargs["weight_decay"]) and kwargs["weight_decay"] >= 0):
        raise ConfigError(f"optim.weight_decay={kwargs['weight_decay']!r}; allowed: a number >= 0")
    if "momentum" in kwargs and not (_real(kwargs["momentum"]) and 0 <= kwargs["momentum"] < 1):
        raise ConfigError(f"optim.momentum={kwargs['momentum']!r}; allowed: a number in [0, 1)")
    params = inspect.signature(cls.__init__).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        known = [p for p in params if p not in ("self", "params")]
        unknown = sorted(k for k in kwargs if k not in known)
        if unknown:
            raise ConfigError(f"optim: {name} has no argument {unknown[0]!r}; allowed: {', '.join(known)}")
    try:  # torch's own argument checks, on one parameter: microseconds, no model, no data
        cls([torch.nn.Parameter(torch.zeros(1))], **kwargs)
    except (ValueError, TypeError, RuntimeError) as exc:
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
        raise ConfigError(f"optim: {name}({args}) is refused: {why}; allowed: arguments {name} accepts") from None
    return cls


def check_generated_root(data_name: str, root: Any, data_dir: Optional[str], generated: bool) -> None:
    """A generated dataset writes its cache into ``data.root``: refuse a root (other than the
    default ``paths.data_dir``) that holds a user's images or ``.npz`` files, which means the
    user meant ``data=imagefolder`` or ``data=arrays`` and forgot it."""
    from ablate.data.registry import foreign_data

    if not generated or root is None:
        return
    here = Path(str(root)).expanduser().resolve()
    if data_dir is not None and here == Path(str(data_dir)).expanduser().resolve():
        return
    what = foreign_data(here)
    if what is not None:
        fix = "data=arrays data.path=<file.npz>" if what.startswith(".npz") else "data=imagefolder"
        raise ConfigError(f"data.root={str(root)!r} holds {what}, but data={data_name} is a generated dataset that "
                          f"would train on its own images and cache them there; add {fix} to train on your data "
                          f"(allowed for data={data_name}: a cache dir without images or .npz files)")
