"""Fake finished runs on disk (no training): a planned run's dir with its config, a checkpoint of
freshly initialised weights, result.json and metrics.jsonl, exactly where `ablate train` puts them."""
from __future__ import annotations

from typing import Optional

from tests.helpers import TINY


def fake_run(overrides: list[str], top1: Optional[float], status: str = "completed", epochs: int = 3,
             checkpoint: bool = True) -> dict:
    """Write one run (composed from ``TINY + overrides`` under ABLATE_HOME); return its record."""
    import torch
    from omegaconf import OmegaConf

    from ablate.config import compose
    from ablate.data import load_dataset, split_config
    from ablate.io import torch_save
    from ablate.models import create_model
    from ablate.train.run import prepare

    plan = prepare(compose([*TINY, *overrides]))
    run_dir = plan.run_dir
    (run_dir / ".hydra").mkdir(parents=True, exist_ok=True)
    OmegaConf.save(OmegaConf.create(plan.config), run_dir / ".hydra" / "config.yaml")
    name, root, data_kwargs, _ = split_config(plan.config["data"])
    bundle = load_dataset(name, root=root, **data_kwargs)
    torch.manual_seed(plan.seed)
    model = create_model(plan.model_name, num_classes=bundle.num_classes, in_chans=bundle.in_chans,
                         attention=plan.attention, **plan.model_kwargs)
    if checkpoint:
        torch_save(run_dir / "checkpoint.pt", {"epoch": epochs - 1, "model": model.state_dict()})
    store = plan.store
    for e in range(epochs):
        store.append_metrics(plan.key, {"epoch": e, "train_loss": 1.0 / (e + 1), "val_top1": (top1 or 40.0) * (e + 1) / epochs,
                                        "val_top5": 100.0, "val_loss": 1.0, "lr": 0.1, "seconds": 1.0})
    rec = {"run_key": plan.key, "status": status, "seed": plan.seed, "sweep": plan.sweep, "top1": top1, "top5": 100.0,
           "loss": 1.0, "params": sum(p.numel() for p in model.parameters()), "madds": 1e6 + 1e5 * len(plan.attention),
           "latency_ms": 1.0, "seconds": 1.0, "config": plan.config}
    store.put(rec)
    return rec
