"""Statistics the book reports: intervals on accuracies and speedups, tests on distributions and
on paired outcomes. One copy of each, used by the chapters and the tests alike; scipy.stats does
the work wherever it has the test (Wilson through `binomtest`, the bootstrap, Wilcoxon, McNemar's
binomial), and this module only names the book's uses of them."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def wilson_interval(correct: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval for a binomial proportion (scipy's `binomtest`); sound near 0 and 1."""
    from scipy.stats import binomtest

    if n == 0:
        return (math.nan, math.nan)
    ci = binomtest(correct, n).proportion_ci(confidence_level=confidence, method="wilson")
    return (max(0.0, float(ci.low)), min(1.0, float(ci.high)))


def chi_square_p(counts: Sequence[float], probs: Sequence[float], min_expected: float = 5.0) -> float:
    """Goodness of fit of observed `counts` to the distribution `probs` (any shape, flattened).
    Cells expecting fewer than `min_expected` samples are pooled into one, as the test's
    approximation needs; cells of probability 0 must be empty (else the fit fails outright)."""
    from scipy.stats import chisquare

    observed = np.asarray(counts, dtype=float).ravel()
    expected = np.asarray(probs, dtype=float).ravel()
    if observed.shape != expected.shape:
        raise ValueError(f"{observed.size} counts for {expected.size} probabilities")
    expected = expected / expected.sum() * observed.sum()
    if observed[expected == 0].sum() > 0:
        return 0.0  # a sample where the distribution has no mass
    small = expected < min_expected
    observed = np.append(observed[~small], observed[small].sum())
    expected = np.append(expected[~small], expected[small].sum())
    keep = expected > 0
    return float(chisquare(observed[keep], expected[keep]).pvalue)


def mcnemar_p(a: Sequence[bool], b: Sequence[bool]) -> float:
    """Two-sided exact McNemar test: do two systems graded on the same problems differ in accuracy?
    Only the problems where exactly one is right carry information (a binomial test at 1/2)."""
    from scipy.stats import binomtest

    only_a = sum(x and not y for x, y in zip(a, b, strict=True))
    only_b = sum(y and not x for x, y in zip(a, b, strict=True))
    if only_a + only_b == 0:
        return 1.0
    return float(binomtest(only_a, only_a + only_b, 0.5).pvalue)


def paired_bootstrap(
    statistic, *samples: Sequence[float], resamples: int = 10_000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """statistic(*samples) and its percentile bootstrap interval (scipy.stats.bootstrap), the samples
    resampled together item by item (paired: item i of each is one request or one problem).
    `statistic` takes the samples as arrays and an `axis` keyword (vectorized, as scipy wants)."""
    from scipy.stats import bootstrap

    arrays = [np.asarray(s, dtype=float) for s in samples]
    if len({a.size for a in arrays}) > 1:
        raise ValueError(f"samples of {', '.join(str(a.size) for a in arrays)} items: pair them by item")
    if arrays[0].size == 0:
        return (math.nan, math.nan, math.nan)
    estimate = float(statistic(*arrays, axis=-1))
    if arrays[0].size == 1 or all(np.all(a == a[0]) for a in arrays):  # nothing varies: the interval is the point
        return (estimate, estimate, estimate)
    ci = bootstrap(
        arrays,
        statistic,
        paired=True,
        n_resamples=resamples,
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(seed),
    ).confidence_interval
    return (estimate, float(ci.low), float(ci.high))


def _median_ratio(numerators, denominators, axis=-1):
    return np.median(numerators / denominators, axis=axis)


def bootstrap_median_ratio(
    numerators: Sequence[float], denominators: Sequence[float], samples: int = 10_000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """Median of the per-item ratios numerator / denominator (e.g. plain latency / speculative
    latency of the same request) and its percentile bootstrap interval, resampling items."""
    if len(numerators) != len(denominators):
        raise ValueError(f"{len(numerators)} numerators for {len(denominators)} denominators: pair them by item")
    return paired_bootstrap(_median_ratio, numerators, denominators, resamples=samples, confidence=confidence, seed=seed)


def wilcoxon_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided Wilcoxon signed-rank test that paired values (e.g. tokens of two targets' answers to
    the same problems) differ; 1.0 when every pair is equal."""
    from scipy.stats import wilcoxon

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"{a.size} values against {b.size}: pair them by item")
    if np.all(a == b):
        return 1.0
    return float(wilcoxon(a, b).pvalue)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of a family of p-values (nan left as nan): the adjusted p of the
    i-th smallest of m is the running maximum of (m - i + 1) · p, capped at 1. Rejecting where the
    adjusted p < 0.05 keeps the chance of any false rejection in the family below 5 %."""
    values = np.asarray(pvalues, dtype=float)
    present = np.flatnonzero(~np.isnan(values))
    adjusted = np.full(values.shape, math.nan)
    m, running = len(present), 0.0
    for rank, i in enumerate(present[np.argsort(values[present], kind="stable")]):
        running = max(running, min(1.0, (m - rank) * values[i]))
        adjusted[i] = running
    return adjusted.tolist()
