"""``kind: optuna`` sweep files: a search space over config keys, tuned by an Optuna study.

Each trial is an ordinary run: the sampled values become Hydra overrides (``attention.reduction=16``)
on top of the sweep's ``overrides``, so a trial has the same run dir, result and run key as
``ablate train`` with those overrides, and a trial that repeats a finished run reuses its result.

Example (``sweeps/tune_reduction.yaml``)::

    kind: optuna
    overrides: [attention=ca]
    search:
      attention.reduction: {type: categorical, choices: [4, 8, 16, 32]}
      optim.lr: {type: float, low: 0.01, high: 0.5, log: true}
    objectives: [top1]            # or [top1, madds] -> NSGA-II, a Pareto front
    pruner: median
    n_trials: 20
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from ablate.errors import ConfigError, check_choice
from ablate.sweep.samplers import PRUNERS, SAMPLERS
from ablate.sweep.spec import BaseSweepSpec, _fmt

# metric in result.json -> Optuna direction. Top-1/top-5 are maximised, costs are minimised.
DIRECTIONS: dict[str, str] = {
    "top1": "maximize", "top5": "maximize", "loss": "minimize",
    "madds": "minimize", "params": "minimize", "latency_ms": "minimize",
}
PARAM_TYPES = ("categorical", "int", "float")
_PARAM_KEYS = {"categorical": {"type", "choices"}, "int": {"type", "low", "high", "step", "log"},
               "float": {"type", "low", "high", "step", "log"}}
SPACE_HELP = "a mapping of config key -> {type: categorical, choices: [...]} | {type: int|float, low, high[, step][, log]}"


@dataclass(frozen=True)
class Param:
    """One searched config key and its range (validated)."""

    key: str
    type: str
    choices: tuple = ()
    low: Optional[float] = None
    high: Optional[float] = None
    step: Optional[float] = None
    log: bool = False

    def corners(self) -> list:
        """Values that bound the range: every choice, or low and high (checked before compute)."""
        return list(self.choices) if self.type == "categorical" else [self.low, self.high]


def parse_param(sweep: str, key: str, raw: Any) -> Param:
    """One search-space entry -> ``Param``; bad entries are one-line ValueErrors."""
    where = f"sweep {sweep!r}: search {key!r}"
    if not isinstance(raw, dict):
        raw = {"type": "categorical", "choices": raw} if isinstance(raw, (list, tuple)) else {"type": raw}
    kind = raw.get("type", "categorical" if "choices" in raw else None)
    if kind not in PARAM_TYPES:
        raise ConfigError(f"{where}: unknown type {kind!r}; allowed: {', '.join(PARAM_TYPES)}")
    unknown = sorted(set(raw) - _PARAM_KEYS[kind])
    if unknown:
        raise ConfigError(f"{where}: unknown option {unknown[0]!r}; allowed: {', '.join(sorted(_PARAM_KEYS[kind]))}")
    if kind == "categorical":
        choices = raw.get("choices")
        if not isinstance(choices, (list, tuple)) or not choices:
            raise ConfigError(f"{where}: choices must be a non-empty list")
        return Param(key, kind, choices=tuple(choices))
    low, high, step, log = raw.get("low"), raw.get("high"), raw.get("step"), bool(raw.get("log", False))
    num = int if kind == "int" else (int, float)
    if not isinstance(low, num) or not isinstance(high, num) or isinstance(low, bool) or not low <= high:
        raise ConfigError(f"{where}: low={low!r} high={high!r}; allowed: {kind} numbers with low <= high")
    if step is not None and (not isinstance(step, num) or step <= 0):
        raise ConfigError(f"{where}: step={step!r}; allowed: a {kind} > 0")
    if log and (low <= 0 or step not in (None, 1)):
        raise ConfigError(f"{where}: log=true needs low > 0 and no step")
    return Param(key, kind, low=low, high=high, step=step, log=log)


@dataclass
class StudySpec(BaseSweepSpec):
    """An Optuna study over config keys; workers run trials until the study holds ``n_trials``."""

    kind: str = "optuna"
    search: dict[str, Any] = field(default_factory=dict)     # config key -> range (see SPACE_HELP)
    objectives: list[str] = field(default_factory=lambda: ["top1"])  # result.json metrics (DIRECTIONS)
    sampler: str = "auto"                       # auto | tpe | nsga2 | random
    sampler_options: dict[str, Any] = field(default_factory=dict)    # kwargs of the sampler class
    pruner: str = "median"                      # median | hyperband | none (one objective only)
    pruner_options: dict[str, Any] = field(default_factory=dict)     # kwargs of the pruner class
    n_trials: int = 20                          # trials in the study when it is done (all workers)
    workers: Optional[int] = None               # concurrent workers; null = launcher.workers
    storage: Optional[str] = None               # Optuna URL; null = journal file in the sweep dir
    study_name: Optional[str] = None            # null = the sweep's name
    seed: int = 0                               # run seed of every trial; the sampler's seed

    def __post_init__(self) -> None:
        super().__post_init__()
        from ablate.sweep.storage import check_storage_url

        where = f"sweep {self.name!r}"
        if self.kind != "optuna":
            raise ConfigError(f"{where}: kind {self.kind!r} is not a study; load it with load_sweep()")
        if not self.search:
            raise ConfigError(f"{where}: search space is empty; allowed: {SPACE_HELP}")
        self.params = [parse_param(self.name, k, v) for k, v in self.search.items()]
        bad = [m for m in self.objectives if m not in DIRECTIONS]
        if bad or not self.objectives or len(set(self.objectives)) != len(self.objectives):
            raise ConfigError(f"{where}: objectives {self.objectives!r}; allowed: distinct names from {', '.join(DIRECTIONS)}")
        check_choice("sampler", self.sampler, ["auto", *SAMPLERS.names()], owner=where)  # auto: tpe or nsga2
        check_choice("pruner", self.pruner, PRUNERS.names(), owner=where)
        if self.pruner != "none" and len(self.objectives) > 1:
            # Optuna cannot prune multi-objective trials (Trial.report raises for them).
            raise ConfigError(f"{where}: pruner {self.pruner!r} needs one objective; allowed with {len(self.objectives)}: none")
        if self.pruner != "none" and self.objectives[0] not in ("top1", "top5", "loss"):
            raise ConfigError(f"{where}: pruner {self.pruner!r} needs a per-epoch objective; allowed: top1, top5, loss "
                             f"(or pruner: none)")
        if not isinstance(self.n_trials, int) or self.n_trials < 1:
            raise ConfigError(f"{where}: n_trials={self.n_trials!r}; allowed: an integer >= 1")
        if self.workers is not None and (not isinstance(self.workers, int) or self.workers < 1):
            raise ConfigError(f"{where}: workers={self.workers!r}; allowed: null or an integer >= 1")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"{where}: seed={self.seed!r}; allowed: an integer >= 0")
        check_storage_url(self.storage)

    @property
    def directions(self) -> list[str]:
        return [DIRECTIONS[m] for m in self.objectives]

    @property
    def resolved_sampler(self) -> str:
        if self.sampler != "auto":
            return self.sampler
        return "tpe" if len(self.objectives) == 1 else "nsga2"

    @property
    def resolved_study_name(self) -> str:
        return self.study_name or self.name

    def trial_overrides(self, values: dict[str, Any], trial: int, extra: list[str] | tuple = ()) -> list[str]:
        """The run's overrides: base, extra (command line), sampled values, seed, sweep, trial."""
        cell = [f"{k}={_fmt(v)}" for k, v in values.items()]
        return [*self.overrides, *extra, *cell, f"seed={self.seed}", f"sweep={self.name}", f"+trial={trial}"]

    def corner_overrides(self, extra: list[str] | tuple = ()) -> list[list[str]]:
        """One override list per bounding value of each param (others at their first corner)."""
        base = {p.key: p.corners()[0] for p in self.params}
        out, seen = [], set()
        for p in self.params:
            for v in p.corners():
                values = {**base, p.key: v}
                sig = tuple(sorted((k, repr(x)) for k, x in values.items()))
                if sig not in seen:
                    seen.add(sig)
                    out.append([*self.overrides, *extra, *(f"{k}={_fmt(x)}" for k, x in values.items()), f"seed={self.seed}"])
        return out
