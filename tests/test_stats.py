"""The book's statistics on cases worked by hand, and a chi-square that passes for the right
distribution and fails for a wrong one."""

import math

import numpy as np
import pytest

from specbook import stats


def test_wilson_interval():
    low, high = stats.wilson_interval(0, 50)
    assert low == 0.0 and high == pytest.approx(0.0713, abs=1e-4)
    low, high = stats.wilson_interval(29, 50)  # 58 %
    assert (round(low, 3), round(high, 3)) == (0.442, 0.706)
    assert all(math.isnan(x) for x in stats.wilson_interval(0, 0))


def test_chi_square_accepts_the_true_distribution_and_rejects_another():
    rng = np.random.default_rng(0)
    probs = np.array([0.5, 0.3, 0.15, 0.04, 0.01])
    counts = np.bincount(rng.choice(5, 4000, p=probs), minlength=5)
    assert stats.chi_square_p(counts, probs) > 0.01
    assert stats.chi_square_p(counts, [0.4, 0.4, 0.15, 0.04, 0.01]) < 1e-6
    # a sample where the distribution has no mass fails outright
    assert stats.chi_square_p([3, 1, 0], [0.75, 0.0, 0.25]) == 0.0
    with pytest.raises(ValueError, match="3 counts for 2 probabilities"):
        stats.chi_square_p([1, 2, 3], [0.5, 0.5])


def test_chi_square_pools_rare_cells():
    # expected 50, 45, 3, 2 -> the last two pooled into one cell of 5: observed 52, 43, 5
    from scipy.stats import chisquare

    assert stats.chi_square_p([52, 43, 4, 1], [0.5, 0.45, 0.03, 0.02]) == pytest.approx(chisquare([52, 43, 5], [50, 45, 5]).pvalue)


def test_mcnemar_counts_only_the_discordant_problems():
    a = [True] * 10 + [False] * 5 + [True] * 30
    b = [False] * 10 + [True] * 5 + [True] * 30
    from scipy.stats import binomtest

    assert stats.mcnemar_p(a, b) == pytest.approx(binomtest(10, 15, 0.5).pvalue)
    assert stats.mcnemar_p(a, a) == 1.0
    assert stats.mcnemar_p([True] * 20, [False] * 20) < 1e-5
    with pytest.raises(ValueError):
        stats.mcnemar_p([True], [True, False])


def test_bootstrap_median_ratio():
    plain = [2.0, 4.0, 6.0, 8.0, 10.0]
    fast = [1.0, 2.0, 2.0, 4.0, 5.0]  # ratios 2, 2, 3, 2, 2
    median, low, high = stats.bootstrap_median_ratio(plain, fast, samples=2000)
    assert (median, low) == (2.0, 2.0) and 2.0 <= high <= 3.0
    assert stats.bootstrap_median_ratio(plain, fast, samples=2000) == (median, low, high)  # seeded
    rng = np.random.default_rng(1)
    noisy = rng.lognormal(0.0, 0.3, 400)
    m, lo, hi = stats.bootstrap_median_ratio(1.5 * noisy, np.ones(400))
    assert lo < m < hi and lo < 1.5 < hi
    with pytest.raises(ValueError, match="pair them by item"):
        stats.bootstrap_median_ratio([1.0, 2.0], [1.0])


def test_holm_multiplies_each_p_by_its_rank_and_keeps_the_order():
    assert stats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])  # 0.04 * 1 raised to the running 0.06
    assert stats.holm([0.5, 0.6]) == [1.0, 1.0]  # capped
    adjusted = stats.holm([0.01, float("nan"), 0.02])
    assert adjusted[0] == pytest.approx(0.02) and math.isnan(adjusted[1]) and adjusted[2] == pytest.approx(0.02)
