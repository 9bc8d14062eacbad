"""Optuna samplers and pruners a study file may name, each registered by name.

``SAMPLERS``: ``tpe`` (one objective; ``constant_liar`` so parallel workers spread out),
``nsga2`` (several objectives: a Pareto front), ``random``. A study's ``sampler: auto`` picks
``tpe`` for one objective and ``nsga2`` for several. ``PRUNERS``: ``median``, ``hyperband``,
``none``. A factory takes the study file's ``*_options`` and builds the Optuna object; Optuna
itself is imported only when one is built.
"""
from __future__ import annotations

from typing import Any, Callable

from ablate.registry import Registry

SAMPLERS: Registry[Callable[..., Any]] = Registry("sampler")
PRUNERS: Registry[Callable[..., Any]] = Registry("pruner")


@SAMPLERS.register("tpe")
def tpe(seed: int, **opts: Any):
    import optuna

    return optuna.samplers.TPESampler(seed=seed, **{"constant_liar": True, **opts})


@SAMPLERS.register("nsga2")
def nsga2(seed: int, **opts: Any):
    import optuna

    return optuna.samplers.NSGAIISampler(seed=seed, **opts)


@SAMPLERS.register("random")
def random(seed: int, **opts: Any):
    import optuna

    return optuna.samplers.RandomSampler(seed=seed, **opts)


@PRUNERS.register("median")
def median(epochs: int, **opts: Any):
    import optuna

    return optuna.pruners.MedianPruner(**{"n_startup_trials": 2, **opts})


@PRUNERS.register("hyperband")
def hyperband(epochs: int, **opts: Any):
    import optuna

    return optuna.pruners.HyperbandPruner(**{"min_resource": 1, "max_resource": max(1, epochs), **opts})


@PRUNERS.register("none")
def nop(epochs: int, **opts: Any):
    import optuna

    return optuna.pruners.NopPruner(**opts)
