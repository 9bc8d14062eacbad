"""The sequential procedure of --until-decided, by simulation (fixed seeds, no training): its
false-positive rate stays near alpha over repeated looks where naive re-testing does not, and a
clear effect is decided early. The looks run through the same pieces a table uses: the design's
information fraction, the look's nominal level, the test (ablate.report.stats.compare) and the
decision rule."""
from __future__ import annotations

import math

import numpy as np
import pytest

from ablate.report.sequential import Design, Track, decision, look_level, nominal_levels, spent
from ablate.report.stats import compare


def run_sequence(x, b, design: Design, test: str, start: int, step: int, naive: bool = False):
    """Looks at n = start, start + step, ... <= max_seeds; returns (decision, n at the decision)."""
    track = Track()
    n = start
    while True:
        level = design.alpha if naive else look_level(design, track.fractions, n, n, design.alpha)
        c = compare(x[:n], b[:n], test, alpha=level)
        track.record(design.fraction(n, n))
        d = decision(c.p, c.ci_low, c.ci_high, level, design, n, n)
        if d != "undecided":
            return d, n
        n = min(n + step, design.max_seeds)


def null_rate(test: str, reps: int, naive: bool = False, spending: str = "obf") -> float:
    rng = np.random.default_rng(2026)
    design = Design(alpha=0.05, max_seeds=20, spending=spending)
    hits = 0
    for _ in range(reps):
        # a top-1-like outcome: both cells from the same skewed distribution
        x = np.clip(rng.normal(80, 8, 20) - rng.exponential(4, 20), 33, 100)
        b = np.clip(rng.normal(80, 8, 20) - rng.exponential(4, 20), 33, 100)
        hits += run_sequence(x, b, design, test, start=5, step=5, naive=naive)[0] == "effect"
    return hits / reps


def test_spending_functions_spend_alpha_by_the_last_look():
    assert spent(1.0, 0.05, "obf") == pytest.approx(0.05) and spent(1.0, 0.05, "pocock") == pytest.approx(0.05)
    assert spent(0.25, 0.05, "obf") < spent(0.25, 0.05, "pocock") < 0.05
    levels = nominal_levels([0.25, 0.5, 0.75, 1.0], 0.05, "obf")
    assert levels == sorted(levels) and levels[0] < 1e-3 and 0.035 < levels[-1] < 0.05
    assert nominal_levels([1.0], 0.05) == pytest.approx([0.05])
    with pytest.raises(ValueError, match="increasing"):
        nominal_levels([0.5, 0.5])


def test_false_positive_rate_holds_under_four_looks_and_naive_retesting_inflates_it():
    sequential = null_rate("welch", reps=1500)
    naive = null_rate("welch", reps=1500, naive=True)
    # 1500 replicates: the binomial sd of a 5% rate is 0.56 points
    assert 0.03 <= sequential <= 0.065, sequential
    assert naive > 0.08, naive  # p < 0.05 at each of 4 looks: ~0.11


@pytest.mark.parametrize("spending", ["obf", "pocock"])
def test_false_positive_rate_holds_with_the_rank_test(spending):
    rate = null_rate("mannwhitney", reps=500, spending=spending)
    assert rate <= 0.075, rate  # 500 replicates: sd ~1 point around <= 5%


def test_clear_effect_is_decided_early_and_a_null_runs_to_the_limit():
    rng = np.random.default_rng(11)
    design = Design(alpha=0.05, max_seeds=20)
    stops = []
    for _ in range(200):
        x, b = rng.normal(99.9, 0.1, 20), rng.normal(75, 8, 20)  # CA-like vs a plain net
        d, n = run_sequence(x, b, design, "mannwhitney", start=10, step=5)
        assert d == "effect"
        stops.append(n)
    assert max(stops) == 10  # decided at the first look on every replicate
    null = rng.normal(75, 8, 20)
    assert run_sequence(null, rng.normal(75, 8, 20), design, "welch", 5, 5)[1] == 20


def test_margin_decides_no_effect_and_the_limit_decides_not_shown():
    design = Design(alpha=0.05, max_seeds=20, margin=2.0)
    assert decision(0.6, -1.0, 1.5, 0.02, design, 10, 10) == "no effect"
    assert decision(0.6, -3.0, 1.5, 0.02, design, 10, 10) == "undecided"
    assert decision(0.6, -3.0, 1.5, 0.02, design, 20, 20) == "not shown"
    assert decision(0.001, 1.0, 3.0, 0.02, design, 10, 10) == "effect"


def test_information_fraction_and_bad_designs():
    d = Design(max_seeds=20)
    assert d.fraction(20, 20) == 1.0 and d.fraction(10, 10) == pytest.approx(0.5)
    assert d.fraction(10, 20) == pytest.approx((1 / (1 / 10 + 1 / 20)) / 10) and d.fraction(1, 20) == 0.0
    assert Design(max_seeds=20, paired=True).fraction(10, 20) == pytest.approx(0.5)
    for kw, word in [({"alpha": 0}, "--alpha"), ({"max_seeds": 1}, "--max-seeds"), ({"spending": "x"}, "--spending"),
                     ({"margin": -1.0}, "--margin")]:
        with pytest.raises(ValueError, match=word):
            Design(**kw)
    assert not math.isnan(look_level(d, [0.25], 10, 10, 0.05))
