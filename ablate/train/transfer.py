"""``model.init_from``: start a run from another run's backbone (transfer, the CA paper's claim 2).

``model.init_from`` is a run key (a run of the same ``paths.runs_dir``) or a checkpoint file (a
run dir's ``checkpoint.pt``, or any file holding a state dict or a checkpoint's ``{"model": ...}``).
``prepare`` writes it into the config as what it is, so the run key holds it: a run's checkpoint,
given by key, by run dir or by file, is that run's key; another file is ``sha256:<digest>`` of
its bytes (its path is kept as ``model.init_from_path``, not in the key). Only the backbone's
weights are loaded (``features.*`` of a classification net, ``backbone.*`` of a segmenter),
always with ``torch.load(weights_only=True)``; the head starts from its own initialisation.

The source must be the same architecture with the same attention (model name, width, stem,
position, stages, backbone options, every attention knob and the input channels), checked from
the source run's recorded config before any compute when it is already there, and from the
weights' names and shapes in every case: anything else is one line naming both sides. A source
run that has not finished yet is allowed when planning (a sweep that depends on another sweep
plans both first); the run itself refuses to start without the source's completed record.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Optional

from ablate.errors import ConfigError

KEY_RE = re.compile(r"^[0-9a-f]{12}$")
# Model keys that do not change the backbone's weights (the classifier's dropout and the
# transfer itself).
NOT_ARCHITECTURE = ("init_from", "init_from_path", "dropout")


def resolve(value: Any, runs_dir: Path) -> tuple[str, Optional[str]]:
    """``(what the run key holds, the checkpoint path given or None)`` for ``model.init_from``."""
    if not isinstance(value, str) or not value:
        raise ConfigError(f"model.init_from={value!r}; allowed: a run key (12 hex digits) or a checkpoint file")
    if KEY_RE.match(value):
        return value, None
    path = Path(value).expanduser()
    if path.is_dir():
        path = path / "checkpoint.pt"
    if not path.is_file():
        raise ConfigError(f"model.init_from={value!r}: no such run key or checkpoint file; allowed: a run key "
                          "(12 hex digits) or an existing checkpoint file")
    run_dir = path.parent
    if path.name == "checkpoint.pt" and KEY_RE.match(run_dir.name) and (run_dir / "result.json").exists():
        return run_dir.name, str(path.resolve())
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return f"sha256:{digest}", str(path.resolve())


def architecture(config: dict) -> dict:
    """What must match between a source and a target: the model group (minus ``NOT_ARCHITECTURE``),
    the attention group and the data's channels as far as the config says."""
    model = {k: v for k, v in (config.get("model") or {}).items() if k not in NOT_ARCHITECTURE}
    return {"model": model, "attention": dict(config.get("attention") or {})}


def _differs(a: dict, b: dict) -> Optional[str]:
    """The first dotted key where two architectures differ, as ``key: source vs target``."""
    for group in ("model", "attention"):
        keys = sorted(set(a[group]) | set(b[group]))
        for k in keys:
            if a[group].get(k) != b[group].get(k):
                return f"{group}.{k}: source {a[group].get(k)!r}, this run {b[group].get(k)!r}"
    return None


def check_source_config(init_from: str, source_config: dict, config: dict) -> None:
    """One line when the source run's architecture or attention is not this run's."""
    diff = _differs(architecture(source_config), architecture(config))
    if diff is not None:
        raise ConfigError(f"model.init_from={init_from}: architecture or attention differs ({diff}); "
                          "allowed: a run of the same model and attention")


def check_planned(config: dict, runs_dir: Path) -> None:
    """At prepare time: when the source is a run whose record is already there, its status and
    architecture (a record not there yet is allowed: its sweep may run first)."""
    init_from = config["model"]["init_from"]
    if not KEY_RE.match(init_from):
        return
    record = runs_dir / init_from / "result.json"
    if record.exists():
        data = json.loads(record.read_text())
        check_source_config(init_from, data.get("config") or {}, config)


def source_checkpoint(init_from: str, path: Optional[str], runs_dir: Path) -> Path:
    """The checkpoint to load, checked: for a run key, the run's completed record and its checkpoint."""
    if not KEY_RE.match(init_from):
        return Path(path)
    record = runs_dir / init_from / "result.json"
    status = json.loads(record.read_text()).get("status") if record.exists() else None
    if status != "completed":
        raise ConfigError(f"model.init_from={init_from}: that run is {status or 'not recorded'}; allowed: a "
                          "completed run (launch its sweep first)")
    ckpt = Path(path) if path else runs_dir / init_from / "checkpoint.pt"
    if not ckpt.is_file():
        raise ConfigError(f"model.init_from={init_from}: {ckpt} is missing (trainer.checkpoint=false on the source?); "
                          "allowed: a run that kept its checkpoint")
    return ckpt


def backbone_state(ckpt: Path) -> dict:
    """The backbone's tensors of a checkpoint (``features.*`` or ``backbone.*``), names without
    the prefix; loaded with ``weights_only=True``."""
    import torch

    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict):
        raise ConfigError(f"model.init_from: {ckpt} holds no state dict; allowed: a checkpoint of a run or a state dict")
    out = {}
    for prefix in ("features.", "backbone."):
        out = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        if out:
            return out
    raise ConfigError(f"model.init_from: {ckpt} has no backbone weights (no features.* or backbone.* keys); "
                      "allowed: a checkpoint of an ablate backbone")


def load_backbone(backbone, ckpt: Path, init_from: str) -> None:
    """Copy the source's backbone into ``backbone`` (names and shapes must all match)."""
    state = backbone_state(ckpt)
    own = backbone.state_dict()
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    if missing or extra:
        what = f"missing {missing[0]}" if missing else f"unexpected {extra[0]}"
        raise ConfigError(f"model.init_from={init_from}: architecture or attention differs ({what}, "
                          f"{len(missing)} missing, {len(extra)} unexpected); allowed: a run of the same model and attention")
    for k, v in state.items():
        if tuple(v.shape) != tuple(own[k].shape):
            raise ConfigError(f"model.init_from={init_from}: architecture differs ({k}: source {tuple(v.shape)}, "
                              f"this run {tuple(own[k].shape)}); allowed: a run of the same model and attention")
    backbone.load_state_dict(state, strict=True)
