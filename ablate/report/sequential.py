"""Sequential seeds: a group-sequential test that stays at its error rate under repeated looks.

``ablate sweep NAME --until-decided`` looks at each comparison with the baseline after every round
of seeds and adds seeds only where it is still undecided. Testing each look at p < 0.05 would
inflate the false-positive rate (five looks: ~14 % instead of 5 %). Instead each comparison
spends its alpha over the looks with a Lan-DeMets spending function of the information
fraction t = I / I_max, where I = 1 / (1/n_cell + 1/n_base) (paired: I = pairs) and I_max is
that at ``max_seeds`` seeds in both cells:

- ``obf`` (default): O'Brien-Fleming-type, alpha(t) = 2 - 2 Phi(z_{1-alpha/2} / sqrt(t)); spends
  almost nothing early, so the last look is tested near alpha itself;
- ``pocock``: Pocock-type, alpha(t) = alpha ln(1 + (e - 1) t); equal-ish levels at every look.

The boundary of look k is the two-sided z with P(no crossing before k, crossing at k | H0) =
alpha(t_k) - alpha(t_{k-1}), computed by numerical integration over the canonical joint normal
of the score statistics (Jennison & Turnbull 2000, ch. 19), exactly for looks at any fractions,
planned or not. A look rejects when the test's own p-value (Welch, Mann-Whitney, ... whatever
the table uses) is below that look's nominal level 2 (1 - Phi(c_k)); its interval is the test's
interval at confidence 1 - nominal level (a repeated confidence interval). A comparison is
decided when it rejects, when its interval lies inside +-``margin`` (no effect of that size:
optional), or at ``max_seeds`` seeds (its last look). docs/statistics.md shows the simulations.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Optional, Sequence

import numpy as np
from scipy import optimize, stats

from ablate.errors import ConfigError

SPENDING = ("obf", "pocock")
_GRID = 801  # integration points per look (odd, Simpson); boundaries are exact to ~1e-6
SEQUENTIAL_NAMES = {
    "obf": "O'Brien-Fleming-type alpha spending (Lan-DeMets)",
    "pocock": "Pocock-type alpha spending (Lan-DeMets)",
}


def spent(t: float, alpha: float, kind: str = "obf") -> float:
    """Cumulative two-sided alpha spent at information fraction ``t`` in [0, 1]."""
    if kind not in SPENDING:
        raise ConfigError(f"unknown alpha spending {kind!r}; allowed: {', '.join(SPENDING)}")
    t = min(max(float(t), 0.0), 1.0)
    if t <= 0.0:
        return 0.0
    if kind == "obf":
        return float(2 - 2 * stats.norm.cdf(stats.norm.ppf(1 - alpha / 2) / math.sqrt(t)))
    return float(alpha * math.log(1 + (math.e - 1) * t))


def nominal_levels(fractions: Sequence[float], alpha: float = 0.05, kind: str = "obf") -> list[float]:
    """Two-sided nominal p-value threshold of each look at increasing information ``fractions``."""
    ts = tuple(round(float(t), 9) for t in fractions)
    if any(b <= a for a, b in zip(ts, ts[1:])) or not ts or ts[0] <= 0 or ts[-1] > 1 + 1e-9:
        raise ConfigError(f"information fractions {list(ts)}; allowed: increasing values in (0, 1]")
    return list(_levels(ts, float(alpha), kind))


@lru_cache(maxsize=4096)
def _levels(ts: tuple[float, ...], alpha: float, kind: str) -> tuple[float, ...]:
    levels = []
    prev_spent = 0.0
    dens_x = dens_f = None  # density of the score S_{k-1} on the continuation region
    prev_t = 0.0
    for t in ts:
        target = spent(t, alpha, kind) - prev_spent
        sd = math.sqrt(t - prev_t)
        if dens_x is None:  # first look: S_1 ~ N(0, t_1)
            def cross(b):
                return 2 * stats.norm.sf(b / sd)
        else:
            x, f = dens_x, dens_f

            def cross(b):
                return _simpson(f * (stats.norm.cdf((-b - x) / sd) + stats.norm.sf((b - x) / sd)), x)
        mass = 1.0 if dens_x is None else _simpson(dens_f, dens_x)  # P(still running)
        if target <= 1e-15 or target >= mass:
            b = math.inf if target <= 1e-15 else 0.0
        else:
            b = optimize.brentq(lambda v: cross(v) - target, 1e-9, 40 * math.sqrt(t))
        z = b / math.sqrt(t)
        levels.append(float(2 * stats.norm.sf(z)) if math.isfinite(z) else 0.0)
        prev_spent += cross(b) if math.isfinite(b) else 0.0
        # density of S_k on (-b, b): the previous density convolved with N(0, t - prev_t)
        b_eff = b if math.isfinite(b) else 12 * math.sqrt(t)
        grid = np.linspace(-b_eff, b_eff, _GRID)
        if dens_x is None:
            dens = stats.norm.pdf(grid / sd) / sd
        else:
            kern = stats.norm.pdf((grid[:, None] - dens_x[None, :]) / sd) / sd
            dens = _simpson(kern * dens_f[None, :], dens_x, axis=1)
        dens_x, dens_f, prev_t = grid, dens, t
    return tuple(levels)


def _simpson(y, x, axis=-1):
    from scipy.integrate import simpson

    return simpson(y, x=x, axis=axis)


@dataclass(frozen=True)
class Design:
    """The settings of ``--until-decided``; stored with the sweep so tables can re-apply them."""

    alpha: float = 0.05
    max_seeds: int = 20
    spending: str = "obf"
    margin: Optional[float] = None  # |difference| below this counts as decided "no effect"
    paired: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ConfigError(f"--alpha {self.alpha!r}; allowed: a number in (0, 1)")
        if isinstance(self.max_seeds, bool) or not isinstance(self.max_seeds, int) or self.max_seeds < 2:
            raise ConfigError(f"--max-seeds {self.max_seeds!r}; allowed: an integer >= 2")
        if self.spending not in SPENDING:
            raise ConfigError(f"--spending {self.spending!r}; allowed: {', '.join(SPENDING)}")
        if self.margin is not None and not self.margin > 0:
            raise ConfigError(f"--margin {self.margin!r}; allowed: a number > 0")

    def fraction(self, n_cell: int, n_base: int) -> float:
        """Information fraction of a comparison with these seed counts (0 when untestable)."""
        if min(n_cell, n_base) < 2:
            return 0.0
        if self.paired:
            return min(n_cell, n_base) / self.max_seeds
        info = 1 / (1 / n_cell + 1 / n_base)
        return min(1.0, info / (self.max_seeds / 2))

    def describe(self) -> str:
        extra = f", no-effect margin ±{self.margin:g}" if self.margin else ""
        return (f"seeds added in rounds until decided: group-sequential test, {SEQUENTIAL_NAMES[self.spending]}, "
                f"overall α = {self.alpha:g} per comparison, at most {self.max_seeds} seeds per cell{extra}")


@dataclass
class Track:
    """The looks one comparison has had (information fractions, increasing)."""

    fractions: list[float] = field(default_factory=list)

    def level(self, design: Design, t: float) -> float:
        """The nominal level of a look at fraction ``t`` after the recorded ones (not recorded)."""
        ts = [f for f in self.fractions if f < t - 1e-12] + [t]
        return nominal_levels(ts, design.alpha, design.spending)[-1]

    def record(self, t: float) -> None:
        if t > 0 and (not self.fractions or t > self.fractions[-1] + 1e-12):
            self.fractions.append(round(t, 12))


def decision(p: float, ci_low: float, ci_high: float, level: float, design: Design,
             n_cell: int, n_base: int) -> str:
    """``effect``, ``no effect`` (inside the margin), ``not shown`` (last look) or ``undecided``."""
    if not math.isnan(p) and p < level:
        return "effect"
    if design.margin is not None and not math.isnan(ci_low) and -design.margin < ci_low and ci_high < design.margin:
        return "no effect"
    if min(n_cell, n_base) >= design.max_seeds:
        return "not shown"
    return "undecided"


def look_level(design: Design, fractions: Sequence[float], n_cell: int, n_base: int, default: float) -> float:
    """The nominal level of the current look of a comparison with ``fractions`` recorded so far
    (``default``, the table's alpha, when the cells are too small to test)."""
    t = design.fraction(n_cell, n_base)
    return Track(list(fractions)).level(design, t) if t > 0 else default
