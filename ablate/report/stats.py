"""Statistics of a cell and of a comparison against the baseline, all through scipy.

A cell is the values of one metric over seeds. ``summarize`` gives mean, sample std (ddof=1), n
and the 95% t-interval of the mean clipped to the metric's range (a top-1 interval never leaves
[0, 100]); for a share of seeds above a threshold, the exact (Clopper-Pearson) interval of the
share. ``compare`` tests a cell against the baseline cell with ONE test and reports the interval
that inverts that same test, so the interval excludes "no difference" exactly when p < alpha
(docs/statistics.md):

==============  =========================================  ==========================================
test            estimate                                   interval (inverts the test)
==============  =========================================  ==========================================
welch           difference of means                        Welch's t-interval
ttest_rel       mean of the paired differences             paired t-interval
mannwhitney     Hodges-Lehmann shift (median of x_i - y_j)  shifts the Mann-Whitney test accepts
wilcoxon        Hodges-Lehmann (median Walsh average)       shifts the signed-rank test accepts
fisher (share)  odds ratio of reaching the threshold       exact conditional interval; p is the
                                                           central (doubled one-sided) Fisher p
==============  =========================================  ==========================================

``delta`` is always the difference of the cell's displayed values (means, or shares in
percentage points), the number a table prints beside the cell; the marker follows the test.
``alpha`` is an argument because a sequential design (``ablate.report.sequential``) tests each
look at its own nominal level; the interval then has confidence 1 - that level.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
from scipy import stats

from ablate.errors import ConfigError

CONFIDENCE = 0.95
NAN = float("nan")
TESTS = ("welch", "mannwhitney", "ttest_rel", "wilcoxon")
# What a comparison's estimate and interval are about, per test (CSV column names).
ESTIMAND = {"welch": "delta", "ttest_rel": "delta", "mannwhitney": "shift", "wilcoxon": "shift",
            "fisher": "odds_ratio"}
# Asymptotic relative efficiency of the rank tests to the t-test under normal errors (3/pi).
RANK_ARE = 3 / math.pi


@dataclass(frozen=True)
class Summary:
    """Mean, sample std, n, a 95% interval, and the share above a threshold.

    ``ci_low``/``ci_high`` hold the t-interval of the mean, or for a share (``threshold`` given)
    the exact interval of the share ``hits / n`` as a fraction.
    """

    n: int
    mean: float = NAN
    std: float = NAN
    ci_low: float = NAN
    ci_high: float = NAN
    hits: int = 0  # seeds with value >= threshold (aggregate share)

    @property
    def share(self) -> float:
        return self.hits / self.n if self.n else NAN


@dataclass(frozen=True)
class Comparison:
    """A cell against the baseline cell.

    Attributes:
        delta: difference of the displayed values (means, or shares in percentage points).
        test: the test used (``welch``, ``mannwhitney``, ``ttest_rel``, ``wilcoxon``, ``fisher``).
        p: its two-sided p-value.
        estimand: what ``estimate`` and the interval measure (``delta``, ``shift``, ``odds_ratio``).
        estimate: the test's own estimate of it.
        ci_low, ci_high: the interval that inverts the test at ``confidence``.
        alpha: the level the marker uses (``significant``); confidence = 1 - alpha.
        n_pairs: seeds common to both cells (paired tests).
    """

    delta: float = NAN
    test: str = ""
    p: float = NAN
    estimand: str = ""
    estimate: float = NAN
    ci_low: float = NAN
    ci_high: float = NAN
    alpha: float = 0.05
    n_pairs: int = 0

    @property
    def confidence(self) -> float:
        return 1.0 - self.alpha

    def significant(self, alpha: Optional[float] = None) -> bool:
        level = self.alpha if alpha is None else alpha
        return not math.isnan(self.p) and self.p < level


def summarize(xs: Sequence[float], threshold: Optional[float] = None,
              bounds: Optional[Sequence[float]] = None) -> Summary:
    """Mean ± sample std (ddof=1) and a 95% interval; std and CI need n >= 2.

    ``bounds`` (lo, hi) clip the interval of the mean to the metric's range.
    """
    x = np.asarray(xs, dtype=float)
    n = int(x.size)
    if n == 0:
        return Summary(0)
    if threshold is not None:
        hits = int((x >= threshold).sum())
        ci = stats.binomtest(hits, n).proportion_ci(CONFIDENCE, method="exact")
        return Summary(n, float(x.mean()), float(x.std(ddof=1)) if n > 1 else NAN, float(ci.low), float(ci.high), hits)
    if np.all(x == x[0]):  # a constant (Params, MAdds): exact, no rounding noise in std or CI
        mean = float(x[0])
        return Summary(n, mean, 0.0 if n > 1 else NAN, mean if n > 1 else NAN, mean if n > 1 else NAN)
    mean = float(x.mean())
    if n < 2:
        return Summary(n, mean)
    std = float(x.std(ddof=1))
    lo, hi = stats.t.interval(CONFIDENCE, n - 1, loc=mean, scale=stats.sem(x))
    lo, hi = _clip(float(lo), float(hi), bounds)
    return Summary(n, mean, std, lo, hi)


def compare(x: Sequence[float], base: Sequence[float], test: str, *,
            x_seeds: Sequence[int] = (), base_seeds: Sequence[int] = (),
            threshold: Optional[float] = None, alpha: float = 0.05,
            bounds: Optional[Sequence[float]] = None) -> Comparison:
    """Test ``x`` against ``base``; paired tests match runs by seed (only common seeds count).

    ``threshold`` compares the shares of seeds reaching it (Fisher); ``bounds`` (lo, hi) of the
    metric clip a difference's interval to [lo - hi, hi - lo].
    """
    if test not in TESTS:
        raise ConfigError(f"unknown test {test!r}; allowed: {', '.join(TESTS)}")
    a, b = np.asarray(x, dtype=float), np.asarray(base, dtype=float)
    if a.size == 0 or b.size == 0:
        return Comparison(alpha=alpha)
    if threshold is not None:
        return _compare_shares(a, b, threshold, alpha)
    if test in ("ttest_rel", "wilcoxon"):
        if len(x_seeds) != a.size or len(base_seeds) != b.size:
            raise ConfigError("paired comparison needs one seed per value")
        common = sorted(set(x_seeds) & set(base_seeds))
        if not common:
            return Comparison(test=test, estimand=ESTIMAND[test], alpha=alpha)
        xi, bi = {s: v for s, v in zip(x_seeds, a)}, {s: v for s, v in zip(base_seeds, b)}
        a, b = np.array([xi[s] for s in common]), np.array([bi[s] for s in common])
    delta = float(a.mean() - b.mean())
    n_pairs = int(a.size) if test in ("ttest_rel", "wilcoxon") else 0
    if a.size < 2 or b.size < 2:
        return Comparison(delta, test, estimand=ESTIMAND[test], alpha=alpha, n_pairs=n_pairs)
    p, est, lo, hi = _TESTS[test](a, b, alpha)
    span = None if bounds is None else (bounds[0] - bounds[1], bounds[1] - bounds[0])
    lo, hi = _clip(lo, hi, span)
    return Comparison(delta, test, p, ESTIMAND[test], est, lo, hi, alpha, n_pairs)


def _welch(a, b, alpha):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # zero variance on both sides -> nan p
        res = stats.ttest_ind(a, b, equal_var=False)
        ci = res.confidence_interval(1 - alpha)
    return float(res.pvalue), float(a.mean() - b.mean()), float(ci.low), float(ci.high)


def _paired_t(a, b, alpha):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = stats.ttest_rel(a, b)
        ci = res.confidence_interval(1 - alpha)
    return float(res.pvalue), float((a - b).mean()), float(ci.low), float(ci.high)


def _mannwhitney(a, b, alpha):
    # scipy's "auto" rule, decided once on the data and kept for every shift: one test throughout
    both = np.concatenate([a, b])
    method = "exact" if max(a.size, b.size) <= 8 and np.unique(both).size == both.size else "asymptotic"
    p = float(stats.mannwhitneyu(a, b, alternative="two-sided", method=method).pvalue)
    diffs = np.unique(np.subtract.outer(a, b).ravel())
    est = float(np.median(np.subtract.outer(a, b)))
    shifts = _candidates(diffs)

    def pvalues(s):  # the same test on x - s for every candidate shift s, vectorised
        return stats.mannwhitneyu(a[None, :] - s[:, None], np.broadcast_to(b, (s.size, b.size)),
                                  alternative="two-sided", axis=1, method=method).pvalue

    lo, hi = _accepted(shifts, pvalues, alpha, p, est)
    return p, est, lo, hi


def _wilcoxon(a, b, alpha):
    d = a - b
    if np.all(d == 0):  # undefined when every difference is zero
        return NAN, 0.0, NAN, NAN
    # exact without zeros or ties (n <= 50), else the normal approximation; never scipy's
    # permutation fallback (slow); decided once on the data and kept for every shift
    absd = np.abs(d)
    method = "exact" if d.size <= 50 and not np.any(d == 0) and np.unique(absd).size == absd.size else "asymptotic"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = float(stats.wilcoxon(d, method=method).pvalue)
    i, j = np.triu_indices(d.size)
    walsh = (d[i] + d[j]) / 2
    est = float(np.median(walsh))

    def pvalues(s):
        shifted = d[None, :] - s[:, None]
        out = np.full(s.size, NAN)
        ok = ~np.all(shifted == 0, axis=1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out[ok] = stats.wilcoxon(shifted[ok], axis=1, method=method).pvalue
        return out

    lo, hi = _accepted(_candidates(np.unique(walsh)), pvalues, alpha, p, est)
    return p, est, lo, hi


_TESTS = {"welch": _welch, "ttest_rel": _paired_t, "mannwhitney": _mannwhitney, "wilcoxon": _wilcoxon}


def _candidates(points: np.ndarray) -> np.ndarray:
    """Where a rank test's p-value can change (the points) and one shift inside each gap, plus 0."""
    mids = (points[1:] + points[:-1]) / 2 if points.size > 1 else np.empty(0)
    return np.unique(np.concatenate([points, mids, [0.0]]))


def _accepted(shifts: np.ndarray, pvalues, alpha: float, p0: float, estimate: float) -> tuple[float, float]:
    """The test's confidence set in the shift: the run of accepted shifts around the estimate.

    Shift 0 is one of the candidates, so the interval holds 0 exactly when the test does not
    reject at 0 (``p0 >= alpha``); ties can make the accepted set ragged, in which case the
    interval still reaches 0 when 0 is accepted. No accepted shift at all (a tiny sample at a
    small alpha) gives NaN.
    """
    p = np.asarray(pvalues(shifts), dtype=float)
    ok = p >= alpha
    if not ok.any():
        return (0.0, 0.0) if p0 >= alpha else (NAN, NAN)
    idx = np.flatnonzero(ok)
    i = int(idx[np.argmin(np.abs(shifts[idx] - estimate))])
    lo = hi = i
    while lo > 0 and ok[lo - 1]:
        lo -= 1
    while hi < shifts.size - 1 and ok[hi + 1]:
        hi += 1
    low, high = float(shifts[lo]), float(shifts[hi])
    if p0 >= alpha:
        low, high = min(low, 0.0), max(high, 0.0)
    return low, high


def _compare_shares(a, b, threshold: float, alpha: float) -> Comparison:
    """Fisher's exact test (central p) on seeds reaching the threshold; its exact odds-ratio CI."""
    from scipy.stats.contingency import odds_ratio

    ha, hb = int((a >= threshold).sum()), int((b >= threshold).sum())
    table = [[ha, a.size - ha], [hb, b.size - hb]]
    delta = 100.0 * (ha / a.size - hb / b.size)
    less = stats.fisher_exact(table, alternative="less").pvalue
    greater = stats.fisher_exact(table, alternative="greater").pvalue
    p = float(min(1.0, 2 * min(less, greater)))
    res = odds_ratio(table, kind="conditional")
    ci = res.confidence_interval(1 - alpha)
    return Comparison(delta, "fisher", p, "odds_ratio", float(res.statistic), float(ci.low), float(ci.high), alpha)


def _clip(lo: float, hi: float, bounds: Optional[Sequence[float]]) -> tuple[float, float]:
    if bounds is None:
        return lo, hi
    return (float(np.clip(lo, bounds[0], bounds[1])) if not math.isnan(lo) else lo,
            float(np.clip(hi, bounds[0], bounds[1])) if not math.isnan(hi) else hi)


def seeds_for_power(delta: float, sd_x: float, sd_base: float, test: str, *, alpha: float = 0.05,
                    power: float = 0.8, max_seeds: int = 1000) -> float:
    """Seeds per cell for ``power`` to detect ``delta`` at the observed spreads (two-sided).

    A two-sample t-test with equal seeds per cell and the spreads averaged (noncentral t);
    for the rank tests the count is divided by their efficiency relative to the t-test (3/pi).
    Returns NaN when there is no difference to detect and ``inf`` beyond ``max_seeds``.
    """
    if any(map(math.isnan, (delta, sd_x, sd_base))) or delta == 0:
        return NAN
    sd = math.sqrt((sd_x ** 2 + sd_base ** 2) / 2)
    if sd == 0:
        return 2.0
    n = np.arange(2, max_seeds + 1)
    df = 2 * n - 2
    crit = stats.t.ppf(1 - alpha / 2, df)
    nc = abs(delta) / sd * np.sqrt(n / 2)
    achieved = stats.nct.sf(crit, df, nc) + stats.nct.cdf(-crit, df, nc)
    hit = np.flatnonzero(achieved >= power)
    if hit.size == 0:
        return math.inf
    seeds = int(n[hit[0]])
    return float(math.ceil(seeds / RANK_ARE)) if test in ("mannwhitney", "wilcoxon") else float(seeds)
