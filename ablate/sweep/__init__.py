"""Sweeps: a YAML in ``sweeps/`` names a set of runs; launchers run the ones not done yet."""
from ablate.sweep.spec import SweepSpec, list_sweeps, load_sweep

__all__ = ["SweepSpec", "load_sweep", "list_sweeps"]
