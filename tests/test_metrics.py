import math

import numpy as np
import pytest

from specbook import metrics
from specbook.engines import Generation


def test_rates_on_a_hand_computed_run():
    # 3 steps at K=4: accepted 4 (all), 2, 0  -> per position [2, 2, 1, 1]
    accepted_at, steps = [2, 2, 1, 1], 3
    assert metrics.acceptance_rate(6, 12) == 0.5
    assert metrics.mean_acceptance_length(6, steps) == 3.0
    assert metrics.per_position_rates(accepted_at, steps) == [2 / 3, 2 / 3, 1 / 3, 1 / 3]
    # tests: position 0 in 3 steps, 1 in 2, 2 in 2, 3 in 1 -> 8 tests, 6 passed
    assert metrics.estimate_alpha(accepted_at, steps) == 6 / 8
    # the same with a fourth step near the length cap that proposed one token and had it accepted:
    # counted tests see that position 1 was not tested there; without them every step counts as K
    assert metrics.estimate_alpha([3, 2, 1, 1], 4, tested_at=[4, 2, 2, 1]) == 7 / 9
    assert metrics.estimate_alpha([3, 2, 1, 1], 4) == 7 / 10
    assert math.isnan(metrics.acceptance_rate(0, 0)) and math.isnan(metrics.mean_acceptance_length(0, 0))


def test_expected_tokens_per_step():
    assert metrics.expected_tokens_per_step(0.0, 5) == 1.0
    assert metrics.expected_tokens_per_step(1.0, 5) == 6.0
    assert metrics.expected_tokens_per_step(0.5, 2) == pytest.approx(1 + 0.5 + 0.25)
    assert metrics.expected_tokens_per_step(0.8, 4) == pytest.approx(sum(0.8**i for i in range(5)))


def test_predicted_speedup():
    # alpha 0.8, K 4: E = 1 + .8 + .64 + .512 + .4096 = 3.3616; c 0.05 -> cost 4 * 0.05 + 1 = 1.2
    assert metrics.predicted_speedup(0.8, 4, 0.05) == pytest.approx(3.3616 / 1.2)
    assert metrics.predicted_speedup(0.8, 4, 0.05, verify_cost=1.5) == pytest.approx(3.3616 / 1.7)
    assert metrics.predicted_speedup(0.0, 3, 0.0) == 1.0  # a useless free draft changes nothing


def test_alpha_estimate_recovers_the_truth_on_simulated_steps():
    """Simulate the i.i.d. model: the estimate lands near the true alpha; accepted/proposed does not."""
    rng = np.random.default_rng(0)
    alpha, k, steps = 0.7, 5, 20000
    runs = rng.geometric(1 - alpha, size=steps) - 1  # accepted tokens before the first rejection
    accepted = np.minimum(runs, k)
    accepted_at = [int((accepted > i).sum()) for i in range(k)]
    assert metrics.estimate_alpha(accepted_at, steps) == pytest.approx(alpha, abs=0.01)
    assert metrics.acceptance_rate(int(accepted.sum()), k * steps) < alpha - 0.1
    assert metrics.mean_acceptance_length(int(accepted.sum()), steps) == pytest.approx(metrics.expected_tokens_per_step(alpha, k), abs=0.03)


def test_summarize_generations():
    gens = [
        Generation("a", [1, 2, 3, 4, 5], "length", 0.5, 0.1, 2, 6, 3, [2, 1, 0], draft_s=0.1, target_s=0.25),
        Generation("b", [1, 2, 3], "stop", 0.5, 0.3, 1, 3, 2, [1, 1, 0], draft_s=0.0, target_s=0.0),
    ]
    s = metrics.summarize(gens)
    assert (s["requests"], s["tokens"], s["tokens_per_s"], s["ttft_median_s"]) == (2, 8, 8.0, pytest.approx(0.2))
    assert (s["steps"], s["proposed"], s["accepted"]) == (3, 9, 5)
    assert s["acceptance_rate"] == 5 / 9 and s["mean_acceptance_length"] == 1 + 5 / 3
    assert s["per_position"] == [1.0, 2 / 3, 0.0] and s["alpha"] == 5 / (3 + 3 + 2)
    plain = metrics.summarize([Generation("a", [1, 2], "length", latency_s=1.0, steps=2)])
    assert plain["mean_acceptance_length"] == 1.0 and math.isnan(plain["alpha"]) and math.isnan(plain["ttft_median_s"])
    # after the first step: request a has 1 more step in 0.4 s; b has none (one step) and is left out
    assert s["decode_step_s"] == pytest.approx(0.4) and math.isnan(plain["decode_step_s"])
    # of which 0.1 s in the draft's passes and 0.25 s in the target's; an engine that does not time them: nan
    assert (s["decode_draft_s"], s["decode_target_s"]) == (pytest.approx(0.1), pytest.approx(0.25))
    assert math.isnan(plain["decode_draft_s"]) and math.isnan(plain["decode_target_s"])


def test_decode_speedup_leaves_out_the_first_step():
    # plain: 10 tokens, prompt pass 0.1 s, then 9 passes of 0.01 s; speculative: 3 tokens a pass, 4 passes,
    # prompt pass 0.12 s, then 3 passes of 0.015 s: 3 / 0.015 against 1 / 0.01 = 2x
    plain = metrics.summarize([Generation("", list(range(10)), "length", latency_s=0.19, ttft_s=0.1, steps=10)])
    spec = metrics.summarize(
        [Generation("", list(range(12)), "length", latency_s=0.165, ttft_s=0.12, steps=4, proposed=12, accepted=8, accepted_at=[4, 3, 1])]
    )
    assert metrics.decode_speedup(spec, plain) == pytest.approx(2.0)


def test_the_alpha_a_rate_implies_gives_that_rate_back():
    for k in (1, 3, 5):
        for rate in (0.2, 0.6, 0.88):
            alpha = metrics.alpha_from_rate(rate, k)
            assert sum(alpha**i for i in range(1, k + 1)) / k == pytest.approx(rate, abs=1e-9)
    assert metrics.alpha_from_rate(0.5, 1) == pytest.approx(0.5)


def test_the_reference_run_beside_the_model():
    import pandas as pd

    from specbook.paths import REFERENCE_RUN

    reference = pd.read_csv(REFERENCE_RUN, comment="#")
    table = metrics.reference_against_model(reference, k=5, c=0.05).set_index(["level", "target"])
    assert len(table) == 6
    easy_cot = table.loc[("easy", "cot")]
    assert easy_cot["measured speedup"] == pytest.approx(351.3219645562342 / 248.33899055262862)
    assert easy_cot["tokens/step"] == pytest.approx(1 + 5 * 0.827255679769203)
    assert (table["predicted speedup"] > table["measured speedup"]).all()
