"""Statistics the book reports: intervals on accuracies and speedups, tests on distributions and
on paired outcomes. One copy of each, used by the chapters and the tests alike."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def wilson_interval(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval for a binomial proportion (95 % by default); sound near 0 and 1."""
    if n == 0:
        return (math.nan, math.nan)
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


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


def two_proportions_p(correct_a: int, n_a: int, correct_b: int, n_b: int) -> float:
    """Two-sided test that two independent samples share one success rate (e.g. accuracy of two
    sampled runs on the same problems, whose answers are drawn independently): Fisher's exact test."""
    from scipy.stats import fisher_exact

    if n_a == 0 or n_b == 0:
        return math.nan
    return float(fisher_exact([[correct_a, n_a - correct_a], [correct_b, n_b - correct_b]]).pvalue)


def bootstrap_median_ratio(
    numerators: Sequence[float], denominators: Sequence[float], samples: int = 10_000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """Median of the per-item ratios numerator / denominator (e.g. plain latency / speculative
    latency of the same request) and its percentile bootstrap interval, resampling items."""
    if len(numerators) != len(denominators):
        raise ValueError(f"{len(numerators)} numerators for {len(denominators)} denominators: pair them by item")
    ratios = np.asarray(numerators, dtype=float) / np.asarray(denominators, dtype=float)
    if ratios.size == 0:
        return (math.nan, math.nan, math.nan)
    rng = np.random.default_rng(seed)
    medians = np.median(ratios[rng.integers(0, ratios.size, (samples, ratios.size))], axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(medians, [tail, 100 - tail])
    return (float(np.median(ratios)), float(low), float(high))
