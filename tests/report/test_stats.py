"""Statistics (scipy underneath): one test per comparison, the interval that inverts it, clipped
ranges, shares, power; and the edge cases (few seeds, constants, no overlap of paired seeds)."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from ablate.report.stats import compare, seeds_for_power, summarize


def test_summary_n1_and_constants():
    s1 = summarize([70.0])
    assert s1.n == 1 and s1.mean == 70.0 and math.isnan(s1.std) and math.isnan(s1.ci_low)
    c = summarize([3.95, 3.95, 3.95])
    assert c.std == 0.0 and c.ci_low == c.ci_high == 3.95
    assert summarize([]).n == 0 and summarize([50, 95, 99], threshold=90).hits == 2


def test_interval_of_a_mean_is_clipped_to_the_metric_range():
    near_ceiling = [99.2, 100.0, 100.0, 98.7]
    raw, clipped = summarize(near_ceiling), summarize(near_ceiling, bounds=(0.0, 100.0))
    assert raw.ci_high > 100.0 and clipped.ci_high == 100.0 and clipped.ci_low == raw.ci_low
    assert summarize([0.5, 0.0, 3.0], bounds=(0.0, 100.0)).ci_low == 0.0


def test_share_cell_holds_the_share_and_its_exact_interval():
    s = summarize([99.0, 99.5, 40.0, 99.9], threshold=90)
    assert s.hits == 3 and s.share == 0.75
    ci = stats.binomtest(3, 4).proportion_ci(0.95, method="exact")
    assert (s.ci_low, s.ci_high) == pytest.approx((ci.low, ci.high)) and 0 <= s.ci_low < 0.75 < s.ci_high <= 1


def test_welch_needs_two_per_side_and_reports_nan_otherwise():
    c = compare([75.0], [70.0, 71.0], "welch")
    assert c.delta == pytest.approx(4.5) and math.isnan(c.p) and not c.significant()


def test_bimodal_outcome_welch_is_not_significant_but_the_share_can_be():
    # A net that solves the task on every seed vs one stuck at chance on some: a 20+ point gap
    # of means over 3 seeds is not significant (Welch p ~ 0.17) ...
    ca, plain = [99.1, 99.3, 99.0, 99.4, 99.2, 99.3, 99.1, 99.0], [33.3, 97.0, 33.4, 95.0, 33.3, 98.0, 33.3, 33.4]
    three = compare(ca[:3], plain[:3], "welch")
    assert three.delta > 20 and three.p > 0.05
    # ... with 8 seeds the share of seeds that solve the task (Fisher) is, and so is its odds ratio CI
    share = compare(ca, plain, "welch", threshold=90)
    assert share.test == "fisher" and share.delta == pytest.approx(62.5) and share.p < 0.05
    assert share.estimand == "odds_ratio" and share.ci_low > 1


def test_paired_with_no_common_seed_is_not_tested():
    c = compare([1.0, 2.0], [1.0, 2.0], "ttest_rel", x_seeds=[0, 1], base_seeds=[2, 3])
    assert c.n_pairs == 0 and math.isnan(c.p) and math.isnan(c.delta)


@pytest.mark.parametrize("test", ["welch", "mannwhitney", "ttest_rel", "wilcoxon"])
@pytest.mark.parametrize("alpha", [0.05, 0.01])
def test_interval_excludes_no_difference_exactly_when_the_test_rejects(test, alpha):
    rng = np.random.default_rng(7)
    rejected = kept = 0
    for _ in range(150):
        n = int(rng.integers(3, 13))
        # rounded values: ties, as top-1 on a 1000-image val set has
        a = np.round(rng.normal(rng.normal(0, 1.5), 1, n), 1)
        b = np.round(rng.normal(0, 1, n), 1)
        c = compare(a, b, test, x_seeds=range(n), base_seeds=range(n), alpha=alpha)
        if math.isnan(c.p):
            continue
        excludes = c.ci_low > 0 or c.ci_high < 0
        assert excludes == (c.p < alpha), (test, a, b, c)
        assert c.ci_low <= c.estimate <= c.ci_high and c.confidence == 1 - alpha
        rejected, kept = rejected + (c.p < alpha), kept + (c.p >= alpha)
    assert rejected > 10 and kept > 10  # both outcomes were exercised


def test_the_intervals_are_the_tests_own():
    a, b = [74.1, 80.2, 69.9, 77.5, 71.0], [70.2, 69.0, 72.5, 66.1, 68.8]
    w = compare(a, b, "welch")
    ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert w.estimand == "delta" and (w.ci_low, w.ci_high) == pytest.approx((ci.low, ci.high))
    mw = compare(a, b, "mannwhitney")
    assert mw.estimand == "shift" and mw.estimate == pytest.approx(np.median(np.subtract.outer(a, b)))
    assert mw.p == pytest.approx(stats.mannwhitneyu(a, b, method="exact").pvalue)


def test_difference_interval_is_clipped_to_the_metric_span():
    c = compare([100.0, 99.0, 1.0], [0.0, 1.0, 99.0], "welch", bounds=(0.0, 100.0))
    assert -100.0 <= c.ci_low and c.ci_high <= 100.0


def test_seeds_for_power_follows_effect_and_spread():
    big, small = seeds_for_power(20, 5, 5, "welch"), seeds_for_power(4, 5, 5, "welch")
    assert 2 <= big < small
    # d = 0.8 at 80% power: ~26 seeds per group, the textbook figure
    assert seeds_for_power(0.8, 1, 1, "welch") == 26
    assert seeds_for_power(4, 5, 5, "mannwhitney") > small
    assert math.isnan(seeds_for_power(0.0, 5, 5, "welch")) and seeds_for_power(0.01, 5, 5, "welch") == math.inf
