"""Run identity: a stable hash of the resolved config minus non-semantic keys.

Two launches that would train the same model on the same data with the same recipe and seed
get the same key, whatever launched them, where files go or how they are tracked. The run dir
is named by the key, so a relaunch finds the finished run and does nothing.

Data is identified by what it is, not where it lies: a dataset read from files (image folders,
``.npz`` arrays, CIFAR) has its content's fingerprint in the config as ``data.fingerprint``
(``ablate.train.run.prepare`` adds it), and its locations (``data.root``, ``data.path``,
``data.val_path``) are left out, so moved data keeps its runs and other or regenerated data
is another run. Generated datasets are identified by their parameters, already in the config.
"""
from __future__ import annotations

import copy
import hashlib
import json
from typing import Any, Mapping

# Keys that change where/how a run is executed or recorded, not what it computes.
NON_SEMANTIC_KEYS: tuple[str, ...] = (
    "paths",
    "tracking",
    "launcher",
    "hydra",
    "sweep",
    "tags",
    "force",
    "trial",
    "data.root",       # where data lies: its content is data.fingerprint (when read from files)
    "data.path",       # the .npz of data=arrays (its members' checksums are in data.fingerprint)
    "data.val_path",
    "data.num_workers",
    "data.in_memory",  # the same batches whether an image folder is decoded once or streamed
    "data.cache_dir",  # where decoded images are cached: the same bytes as decoding them
    "trainer.device",
    "trainer.threads",
    "trainer.checkpoint",
    "trainer.latency_repeats",
    "model.init_from_path",  # where the source checkpoint lies: model.init_from says which it is
)

KEY_LENGTH = 12  # hex digits: 48 bits, collision-free for any realistic number of runs

# Keys added to the config after runs were keyed: at these values a config computes what it did
# before the key existed, so they are left out of the key and those runs keep their keys.
ADDED_DEFAULTS: dict[str, Any] = {
    "data.random_resized_crop": False,
    "data.crop_scale": [0.08, 1.0],
    "data.crop_ratio": [0.75, 4 / 3],
    "data.short_side": None,
    "task": {"name": "classification"},
    "model.init_from": None,  # no transfer (prepare drops it anyway)  # the task group chosen explicitly: the same run as without it
}


def _same_math(out: dict) -> None:
    """Rewrite the trainer's precision and batch split into what they compute, in place.

    - ``trainer.precision``: fp32 is left out; bf16 is ``trainer.amp: true`` (its deprecated
      alias, so a run keyed with amp=true keeps its key); fp16 stays.
    - the batch split: ``data.batch_size`` B is the global micro-batch (one forward pass over
      every process), ``trainer.accumulate`` K micro-batches make a step, ``trainer.devices`` W
      (x ``launcher.nodes`` under SLURM) processes share each micro-batch. What that computes
      is the step's mean gradient over K x B samples and BatchNorm over B samples
      (``trainer.sync_bn``, the default, or one process) or over B / W (``sync_bn: false``). The
      key holds those two: ``data.batch_size`` is BatchNorm's batch, ``data.global_batch_size``
      the step's (only when it differs), not K or W, so the process count never changes a key
      by itself. Per-process BatchNorm on W > 1 also keeps ``trainer.sync_bn: false``: its
      running statistics are one process's (DDP broadcasts rank 0's), updated once a step,
      where K micro-batches in one process update them K times: the same gradients, other
      evaluation statistics, so another run.
    """
    trainer, data = out.get("trainer"), out.get("data")
    if not isinstance(trainer, dict):
        return
    precision = trainer.pop("precision", "fp32")
    if precision == "bf16":
        trainer["amp"] = True
    elif precision != "fp32":
        trainer["precision"] = precision
    accumulate = trainer.pop("accumulate", 1)
    devices, sync_bn = trainer.pop("devices", 1), trainer.pop("sync_bn", True)
    launcher = out.get("launcher") if isinstance(out.get("launcher"), dict) else {}
    nodes = launcher.get("nodes", 1) if launcher.get("name") == "slurm" else 1
    world = devices * nodes if all(isinstance(v, int) and not isinstance(v, bool) for v in (devices, nodes)) else 1
    batch = data.get("batch_size") if isinstance(data, dict) else None
    if isinstance(batch, int) and isinstance(accumulate, int):
        norm = batch // world if sync_bn is False and world > 1 else batch  # BatchNorm's batch
        data["batch_size"] = norm
        if norm != batch:
            trainer["sync_bn"] = False
        if batch * accumulate != norm:
            data["global_batch_size"] = batch * accumulate
    elif accumulate != 1:  # not a number: keep it as given (the run refuses it anyway)
        trainer["accumulate"] = accumulate


def semantic_config(cfg: Mapping[str, Any]) -> dict:
    """A copy of ``cfg`` (a resolved plain dict) without the non-semantic keys, keys at their
    ``ADDED_DEFAULTS`` value, and precision and batch split written as what they compute."""
    out = copy.deepcopy(dict(cfg))
    _same_math(out)
    for dotted, default in ADDED_DEFAULTS.items():
        *parents, leaf = dotted.split(".")
        node = out
        for p in parents:
            node = node.get(p) if isinstance(node, dict) else None
        if isinstance(node, dict) and leaf in node and node[leaf] == default:
            del node[leaf]
    for dotted in NON_SEMANTIC_KEYS:
        *parents, leaf = dotted.split(".")
        node = out
        for p in parents:
            node = node.get(p) if isinstance(node, dict) else None
            if node is None:
                break
        if isinstance(node, dict):
            node.pop(leaf, None)
    return out


def run_key(cfg: Mapping[str, Any]) -> str:
    """The run key of a resolved config (a plain dict, as from ``ablate.config.to_container``)."""
    blob = json.dumps(semantic_config(cfg), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:KEY_LENGTH]
