"""Sweeps: a YAML in ``sweeps/`` names a set of runs; ``launch`` runs the ones not done yet.

``launch(spec, overrides)`` is the one entry point, whatever the sweep's kind (grid, optuna);
``launch_rounds`` runs a grid in rounds for ``--until-decided``. Loading sweep files needs no
torch; ``launch`` and friends are imported on first use.
"""
from ablate.sweep.files import list_sweeps, load_sweep, sweep_name
from ablate.sweep.spec import SweepSpec

__all__ = ["SWEEP_KINDS", "Launched", "SweepSpec", "launch", "launch_rounds", "list_sweeps", "load_sweep",
           "sweep_name"]

_LAZY = {"SWEEP_KINDS", "Launched", "launch", "launch_rounds"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module("ablate.sweep.launching"), name)
    raise AttributeError(f"module 'ablate.sweep' has no attribute {name!r}")
