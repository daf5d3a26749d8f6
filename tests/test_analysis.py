"""Chapter 05's verdicts on data made to answer each way, and the rejection analysis on a known run."""

import math

import pandas as pd
import pytest

from specbook import analysis


def test_fine_tuning_verdict_follows_mcnemar():
    base = [False] * 50
    assert analysis.fine_tuning("easy", "CoT", base, [True] * 20 + [False] * 30)["verdict"] == "raises accuracy"
    assert analysis.fine_tuning("hard", "CoT", base, [True] * 2 + [False] * 48)["verdict"] == "not shown"  # 2 of 50: p = 0.5
    assert analysis.fine_tuning("easy", "CoT", [True] * 20 + [False] * 30, base)["verdict"] == "lowers accuracy"


def test_a_level_counts_as_learnt_only_where_losing_the_margin_would_show():
    base = [False] * 200
    tuned = [True] * 120 + [False] * 80
    assert analysis.learnt(analysis.fine_tuning("easy", "CoT", base, tuned), tuned)
    barely = [True] * 6 + [False] * 194  # 3 %: beats a base at 0 % (McNemar p = 0.03), but below the 5-point margin
    assert analysis.fine_tuning("medium", "CoT", base, barely)["verdict"] == "raises accuracy"
    assert not analysis.learnt(analysis.fine_tuning("medium", "CoT", base, barely), barely)


def test_speculation_verdicts():
    assert analysis.speculation_faster("easy", "CoD", 5, 2.0, 1.7, 2.2, False)["verdict"] == "faster"
    assert analysis.speculation_faster("easy", "CoD", 5, 1.05, 0.97, 1.1, False)["verdict"] == "not shown"
    assert analysis.speculation_faster("easy", "CoD", 5, 0.8, 0.7, 0.9, True)["verdict"] == "slower (unstable timing: its rounds disagree)"
    same = analysis.speculation_unchanged("easy", "CoD", 1.0, 0.0, [True, False] * 10, [True, False] * 10)
    assert same["verdict"] == "changes nothing (every answer identical)" and "Δ acc +0.000 [+0.000, +0.000]" in same["estimate"]
    rounding = analysis.speculation_unchanged("easy", "CoD", 0.9, 0.1, [True] * 20, [True] * 20)
    assert rounding["verdict"] == "changes nothing but rounding (10.0% of the answers parted at a numerical near-tie)"
    beyond = analysis.speculation_unchanged("easy", "CoD", 0.9, 0.05, [True] * 20, [True] * 19 + [False])
    assert beyond["verdict"] == "changed 5.0% of the answers beyond rounding"


def test_cod_shorter_and_better_accepted():
    cot, cod = [100 + i for i in range(30)], [60 + i for i in range(30)]
    assert analysis.cod_shorter("easy", cot, cod)["verdict"] == "shorter"
    assert analysis.cod_shorter("easy", cot, cot)["verdict"] == "not shown"
    proposed = [10] * 40
    better = analysis.cod_better_accepted("easy", ([6] * 40, proposed), ([9] * 40, proposed))
    assert better["verdict"] == "better accepted" and better["estimate"].startswith("Δ acceptance +0.300")
    noisy = analysis.cod_better_accepted("easy", ([6, 9] * 20, proposed), ([9, 6] * 20, proposed))
    assert noisy["verdict"] == "not shown"


def test_as_accurate_uses_the_margin_stated_up_front_and_only_where_both_targets_learnt():
    cot = [True] * 60 + [False] * 40
    close = [True] * 59 + [False] * 41  # one problem fewer: inside the margin, the interval narrow
    assert analysis.cod_as_accurate("easy", cot, close, learnt=True)["verdict"] == "as accurate (within 5%)"
    assert analysis.cod_as_accurate("easy", cot, close, learnt=False)["verdict"] == "not shown: the targets did not both learn this level"
    worse = [True] * 20 + [False] * 80
    assert analysis.cod_as_accurate("easy", cot, worse, learnt=True)["verdict"] == "less accurate"
    better = [True] * 95 + [False] * 5
    assert analysis.cod_as_accurate("easy", cot, better, learnt=True)["verdict"] == "more accurate"
    # below CoT beyond doubt, but whether by more than the margin is not shown: never "the interval is too wide"
    cot, slightly_worse = [True] * 150 + [False] * 50, [True] * 135 + [False] * 65
    lower = analysis.cod_as_accurate("medium", cot, slightly_worse, learnt=True)
    assert lower["verdict"] == "less accurate (the gap may be within 5%)" and lower["estimate"].startswith("Δ acc -0.075")


def test_best_k_is_chosen_on_half_and_reported_on_the_other():
    plain = [2.0] * 8
    # K = 2 looks best on the even requests (chosen there) but is only 1.5x on the odd ones
    by_k = {1: [1.6, 1.6] * 4, 2: [1.0, 4 / 3] * 4}
    best = analysis.best_k_held_out(plain, by_k)
    assert best["k"] == 2 and best["speedup"] == 1.5 and (best["chosen_on"], best["reported_on"]) == (4, 4)


class SweptLatencies:
    """`results.Results`' requests for the CoD pair's timed runs: one latency per request and K."""

    def __init__(self, latency_by_k):
        self.latency_by_k = latency_by_k

    def requests(self, level, target, draft, k, request_set):
        assert (level, target, draft, request_set) == ("easy", "cod", "distilled", "timed")
        return pd.DataFrame({"latency_s": self.latency_by_k[k]})


def test_a_best_k_at_the_sweeps_edge_is_rising_only_when_the_last_k_is_faster_beyond_noise():
    before = [1.0, 1.2, 0.9, 1.1, 1.0, 1.3, 0.8, 1.0, 1.1, 0.9]
    faster = [t / 1.25 for t in before]  # every request 1.25x faster at the largest K
    rising = analysis.sweep_edge(SweptLatencies({10: before, 12: faster}), "easy", [8, 12, 10], seed=0)
    assert (rising["before"], rising["last"], rising["rising"]) == (10, 12, True) and rising["ratio"] == pytest.approx(1.25)
    # the largest K as fast on half the requests and slower on the rest: its median gain is none
    mixed = [t * (1.1 if i % 2 else 1.0) for i, t in enumerate(before)]
    flat = analysis.sweep_edge(SweptLatencies({10: before, 12: mixed}), "easy", [10, 12], seed=0)
    assert not flat["rising"] and flat["low"] < 1


class Letters:
    """A tokenizer whose token i is the i-th string of VOCAB."""

    VOCAB = ["3", " * ", "2", "=", "6", "\n", "Total", ":", "<eos>", " ducks"]

    def decode(self, ids):
        return "".join(self.VOCAB[i] for i in ids)


def test_rejections_are_read_by_the_class_of_the_missed_token():
    assert [analysis.token_class(t) for t in ["12", " + ", "Total", "\n", ":"]] == [
        "digits",
        "operators",
        "words",
        "formatting",
        "formatting",
    ]
    assert analysis.token_class("", end_of_answer=True) == "end of answer"
    requests = pd.DataFrame(
        {
            "id": ["a", "b"],
            "token_ids": [[0, 1, 2, 3, 4, 5, 8], [6, 7, 0, 8]],
            # a: the draft wrote "3" where the target wrote "6"; b: "\n" for the end; one past the answer's end is dropped
            "rejections": [[[4, 0, 4]], [[3, 5, 8], [9, 2, 2]]],
        }
    )
    missed = analysis.rejections(requests, Letters(), eos_ids={8})
    assert list(missed["missed class"]) == ["digits", "end of answer"] and list(missed["draft token"]) == ["3", "\n"]
    assert list(missed["relative position"]) == [4 / 7, 3 / 4]
    counts = analysis.class_counts(requests, Letters(), eos_ids={8})
    assert counts == {"digits": 4, "operators": 2, "words": 1, "formatting": 2, "end of answer": 2}
    rates = analysis.miss_rates(missed, counts).set_index("class")
    assert rates.loc["digits", "misses"] == 1 and rates.loc["digits", "misses per 100 tokens"] == 25.0
    assert rates.loc["end of answer", "share of misses"] == 0.5 and rates.loc["words", "misses"] == 0


def test_equivalence_needs_the_interval_inside_the_margin():
    same = [True] * 60 + [False] * 40
    assert analysis.equivalent_accuracy(same, same)["verdict"] == "the same within 5%"
    better = [True] * 100
    assert analysis.equivalent_accuracy(same, better)["verdict"] == "differs"
    few = [True, False, True, False]
    assert analysis.equivalent_accuracy(few, few[::-1])["verdict"].startswith("not shown")  # 4 problems cannot show "the same"


def test_holm_is_applied_within_each_question_and_the_answers_pivot_by_level():
    import pandas as pd

    verdicts = pd.DataFrame(
        [
            {"question": "1. tuning raises accuracy, CoT", "level": "easy", "verdict": "raises accuracy", "p": 0.01},
            {"question": "1. tuning raises accuracy, CoT", "level": "hard", "verdict": "raises accuracy", "p": 0.04},
            {"question": "3a. CoD answers are shorter", "level": "easy", "verdict": "shorter", "p": 0.04},
            {"question": "2a. speculation (K = 5) is faster, CoT", "level": "easy", "verdict": "faster", "p": None},
        ]
    )
    corrected = analysis.with_holm(verdicts)
    adjusted = corrected["p (Holm)"].tolist()
    assert adjusted[:3] == pytest.approx([0.02, 0.04, 0.04]) and math.isnan(adjusted[3])  # 3a is its own family
    two = pd.concat([verdicts.iloc[[2]], verdicts.iloc[[2]].assign(level="hard")])  # 3a at 0.04 on two levels: 0.08 after Holm
    assert analysis.with_holm(two).verdict.tolist() == ["not shown after Holm's correction"] * 2
    table = analysis.answers_table(verdicts)
    assert list(table.columns) == ["easy", "hard"] and table.loc["1. tuning raises accuracy, CoT", "hard"] == "raises accuracy"


def test_time_to_correct_divides_the_mean_latency_by_the_accuracy():
    table = analysis.time_to_correct({"CoT": [1.0, 3.0], "CoD + spec": [0.5, 0.5]}, {"CoT": 0.5, "CoD + spec": 0.0})
    assert table["seconds per correct answer"].iloc[0] == 4.0 and math.isnan(table["seconds per correct answer"].iloc[1])


def test_most_missed_counts_pairs_and_verdict_line_reads_one_question_on_one_level():
    missed = pd.DataFrame(
        {"draft token": ["3", "3", "+"], "target token": ["6", "6", "-"], "missed class": ["digits", "digits", "operators"]}
    )
    top = analysis.most_missed(missed, n=1)
    assert top.to_dict("records") == [{"pair": "'3' → '6'", "missed class": "digits", "misses": 2}]
    verdicts = pd.DataFrame(
        [
            {"question": "2a. speculation (K = 5) is faster, CoT", "level": "easy", "verdict": "faster", "estimate": "1.9x"},
            {"question": "2a. speculation (K = 5) is faster, CoD", "level": "easy", "verdict": "not shown", "estimate": "1.1x"},
            {"question": "2a. speculation (K = 5) is faster, CoD", "level": "hard", "verdict": "faster", "estimate": "2.0x"},
        ]
    )
    assert analysis.verdict_line(verdicts, "2a.", "easy") == "CoT faster (1.9x); CoD not shown (1.1x)"


def _seed_verdicts(effects: dict, verdicts: dict | None = None, half_width: float = 0.0392):
    """Verdicts of one seed: {(question, level): effect}, each with a 95 % interval of ± half_width."""
    return pd.DataFrame(
        [
            {
                "question": q,
                "level": lv,
                "verdict": (verdicts or {}).get((q, lv), "v"),
                "effect": e,
                "effect_low": e - half_width,
                "effect_high": e + half_width,
            }
            for (q, lv), e in effects.items()
        ]
    )


def test_across_seeds_gives_each_verdicts_effect_per_seed_and_whether_its_direction_holds():
    acc, tok = ("3c. CoD is as accurate as CoT", "easy"), ("3a. CoD answers are shorter", "easy")
    by_seed = {
        0: _seed_verdicts({acc: 0.10, tok: -0.3}, {acc: "more accurate"}),
        1: _seed_verdicts({acc: -0.02, tok: -0.2}, {acc: "as accurate (within 5%)"}),
        2: _seed_verdicts({acc: 0.04, tok: -0.4}),
    }
    table = analysis.across_seeds(by_seed).set_index("question")
    assert list(table.columns[1:4]) == ["seed 0", "seed 1", "seed 2"]
    assert table.loc[acc[0], "spread"] == pytest.approx(0.12) and not table.loc[acc[0], "same direction"]
    assert table.loc[tok[0], "same direction"] and table.loc[tok[0], "same verdict"] and not table.loc[acc[0], "same verdict"]
    assert table.loc[acc[0], "verdict (seed 0)"] == "more accurate"
    unmoved = analysis.across_seeds({0: _seed_verdicts({acc: 0.0}), 1: _seed_verdicts({acc: 0.01})})
    assert unmoved["same direction"].iloc[0] is None  # an effect of 0 has no direction to keep


def test_variance_split_sets_the_spread_across_seeds_against_the_problems_standard_error():
    acc = ("3c. CoD is as accurate as CoT", "easy")
    by_seed = {seed: _seed_verdicts({acc: e}, half_width=1.96 * 0.02) for seed, e in enumerate([0.0, 0.02, 0.04])}
    by_seed[0] = pd.concat([by_seed[0], _seed_verdicts({("1. tuning raises accuracy, CoT", "easy"): 0.5})])  # not a CoD - CoT question
    row = analysis.variance_split(by_seed).iloc[0]
    assert row.question == acc[0] and len(analysis.variance_split(by_seed)) == 1
    assert row["sd across seeds (training runs)"] == pytest.approx(0.02) and row["se within a seed (problems)"] == pytest.approx(0.02)
    assert row["share from training runs"] == pytest.approx(0.5) and row["mean effect"] == pytest.approx(0.02)
