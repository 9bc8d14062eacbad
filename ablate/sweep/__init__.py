"""Sweeps: a YAML in ``sweeps/`` names a set of runs; ``launch`` runs the ones not done yet.

``launch(spec, overrides)`` is the one entry point, whatever the sweep's kind (grid, optuna);
``launch_rounds`` runs a grid in rounds for ``--until-decided``.
"""
from ablate.sweep.launch import SWEEP_KINDS, Launched, launch, launch_rounds
from ablate.sweep.spec import SweepSpec, list_sweeps, load_sweep

__all__ = ["SWEEP_KINDS", "Launched", "SweepSpec", "launch", "launch_rounds", "list_sweeps", "load_sweep"]
