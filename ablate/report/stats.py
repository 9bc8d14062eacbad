"""Statistics of a cell and of a delta against the baseline, all through scipy.

A cell is the values of one metric over seeds. ``summarize`` gives mean, sample std (ddof=1),
n and the 95% t-interval of the mean. ``compare`` tests a cell against the baseline cell:
Welch's t-test (``scipy.stats.ttest_ind(equal_var=False)``), the Mann-Whitney rank test, or,
when runs are paired by seed, ``ttest_rel`` / ``wilcoxon``; shares of seeds above a threshold
(bimodal outcomes: a run solves the task or stays at chance) use Fisher's exact test. The
delta's 95% CI is a bootstrap (``scipy.stats.bootstrap``) when a side has fewer than
``BOOTSTRAP_BELOW`` seeds, because the t-interval leans on normality that a handful of seeds
cannot show; otherwise the test's own t-interval. Caveat: with 2-4 seeds the percentile
bootstrap interval is too narrow (it cannot see beyond the observed spread) and may exclude 0
where the test's p-value does not reach alpha; the marker follows the p-value, never the CI.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
from scipy import stats

BOOTSTRAP_BELOW = 10       # use a bootstrap CI of the delta when min(n) is below this
BOOTSTRAP_RESAMPLES = 2000  # enough for a stable 95% percentile interval; cheap (vectorised)
CONFIDENCE = 0.95
NAN = float("nan")


@dataclass(frozen=True)
class Summary:
    """Mean, sample std, n, the 95% t-interval of the mean, and the share above a threshold."""

    n: int
    mean: float = NAN
    std: float = NAN
    ci_low: float = NAN
    ci_high: float = NAN
    hits: int = 0  # seeds with value >= threshold (aggregate share)


@dataclass(frozen=True)
class Comparison:
    """A cell against the baseline cell: delta of means, test, p-value, CI of the delta."""

    delta: float = NAN
    test: str = ""
    p: float = NAN
    ci_low: float = NAN
    ci_high: float = NAN
    ci_method: str = ""
    n_pairs: int = 0

    def significant(self, alpha: float) -> bool:
        return not math.isnan(self.p) and self.p < alpha


def summarize(xs: Sequence[float], threshold: Optional[float] = None) -> Summary:
    """Mean ± sample std (ddof=1) and the 95% t-interval; std and CI need n >= 2."""
    x = np.asarray(xs, dtype=float)
    n = int(x.size)
    hits = int((x >= threshold).sum()) if threshold is not None else 0
    if n == 0:
        return Summary(0)
    if np.all(x == x[0]):  # a constant (Params, MAdds): exact, no rounding noise in std or CI
        mean = float(x[0])
        return Summary(n, mean, 0.0 if n > 1 else NAN, mean if n > 1 else NAN, mean if n > 1 else NAN, hits)
    mean = float(x.mean())
    if n < 2:
        return Summary(n, mean, hits=hits)
    std = float(x.std(ddof=1))
    if std == 0.0:
        lo = hi = mean
    else:
        lo, hi = stats.t.interval(CONFIDENCE, n - 1, loc=mean, scale=stats.sem(x))
    return Summary(n, mean, std, float(lo), float(hi), hits)


def compare(x: Sequence[float], base: Sequence[float], test: str, *,
            x_seeds: Sequence[int] = (), base_seeds: Sequence[int] = (),
            threshold: Optional[float] = None) -> Comparison:
    """Test ``x`` against ``base``; paired tests match runs by seed (only common seeds count)."""
    a, b = np.asarray(x, dtype=float), np.asarray(base, dtype=float)
    if a.size == 0 or b.size == 0:
        return Comparison()
    if threshold is not None:
        return _compare_shares(a, b, threshold)
    if test in ("ttest_rel", "wilcoxon"):
        return _compare_paired(a, b, list(x_seeds), list(base_seeds), test)
    delta = float(a.mean() - b.mean())
    if a.size < 2 or b.size < 2:
        return Comparison(delta, test)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # zero variance on both sides -> nan p
        if test == "welch":
            res = stats.ttest_ind(a, b, equal_var=False)
        elif test == "mannwhitney":
            res = stats.mannwhitneyu(a, b, alternative="two-sided")
        else:
            raise ValueError(f"unknown test {test!r}; allowed: welch, mannwhitney, ttest_rel, wilcoxon")
    lo, hi, how = _delta_ci(a, b, res if test == "welch" else None, paired=False)
    return Comparison(delta, test, float(res.pvalue), lo, hi, how)


def _compare_paired(a, b, sa: list[int], sb: list[int], test: str) -> Comparison:
    if len(sa) != a.size or len(sb) != b.size:
        raise ValueError("paired comparison needs one seed per value")
    common = sorted(set(sa) & set(sb))
    if not common:
        return Comparison(test=test)
    pa = np.array([a[sa.index(s)] for s in common])
    pb = np.array([b[sb.index(s)] for s in common])
    d = pa - pb
    delta = float(d.mean())
    if d.size < 2:
        return Comparison(delta, test, n_pairs=int(d.size))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if test == "ttest_rel":
            res = stats.ttest_rel(pa, pb)
        elif np.all(d == 0):
            res = None  # wilcoxon is undefined when every difference is zero
        else:
            res = stats.wilcoxon(pa, pb)
    p = NAN if res is None else float(res.pvalue)
    lo, hi, how = _delta_ci(d, None, res if test == "ttest_rel" else None, paired=True)
    return Comparison(delta, test, p, lo, hi, how, int(d.size))


def _compare_shares(a, b, threshold: float) -> Comparison:
    """Fisher's exact test on seeds above/below the threshold; delta in percentage points."""
    ha, hb = int((a >= threshold).sum()), int((b >= threshold).sum())
    delta = 100.0 * (ha / a.size - hb / b.size)
    res = stats.fisher_exact([[ha, a.size - ha], [hb, b.size - hb]])
    return Comparison(delta, "fisher", float(res.pvalue))


def _delta_ci(a, b, ttest_res, *, paired: bool) -> tuple[float, float, str]:
    """95% CI of the delta: bootstrap for few seeds, else the t-test's own interval."""
    n = a.size if b is None else min(a.size, b.size)
    if n >= BOOTSTRAP_BELOW and ttest_res is not None:
        ci = ttest_res.confidence_interval(CONFIDENCE)
        return float(ci.low), float(ci.high), "t"
    data = (a,) if paired else (a, b)

    def stat(*samples, axis=-1):
        if len(samples) == 1:
            return np.mean(samples[0], axis=axis)
        return np.mean(samples[0], axis=axis) - np.mean(samples[1], axis=axis)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # degenerate (constant) samples give a point interval
        res = stats.bootstrap(data, stat, vectorized=True, paired=False, n_resamples=BOOTSTRAP_RESAMPLES,
                              confidence_level=CONFIDENCE, method="percentile", rng=np.random.default_rng(0))
    return float(res.confidence_interval.low), float(res.confidence_interval.high), "bootstrap"
