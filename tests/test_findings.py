"""The sentences that close chapters are counted from the numbers they describe."""

import pandas as pd

from specbook import findings
from specbook.paths import REFERENCE_RUN


def test_the_three_answers_count_the_verdicts_and_name_the_exceptions():
    verdicts = pd.DataFrame(
        [
            {"question": "1. tuning raises accuracy, CoT", "level": "easy", "verdict": "raises accuracy"},
            {"question": "1. tuning raises accuracy, CoD", "level": "easy", "verdict": "not shown"},
            {"question": "2a. speculation (K = 5) is faster, CoD", "level": "easy", "verdict": "faster"},
            {"question": "2a. speculation (K = 8) is faster, CoD at the best K = 8", "level": "easy", "verdict": "slower"},
            {"question": "2b. speculation changes nothing, CoD", "level": "easy", "verdict": "changes nothing (every answer identical)"},
            {"question": "3a. CoD answers are shorter", "level": "easy", "verdict": "shorter"},
            {"question": "3b. CoD drafts are better accepted", "level": "easy", "verdict": "worse accepted"},
            {"question": "3c. CoD is as accurate as CoT", "level": "easy", "verdict": "as accurate (within 5%)"},
        ]
    )
    text = findings.answers(verdicts, [1.5, 2.0], [0.6], k=5)
    assert "raises accuracy** in 1 of 2 comparisons (level × CoT/CoD) (the others: easy CoD: not shown)" in text
    assert "faster** in 1 of 1 (speedups 1.50–2.00x)" in text  # the best-K row is not a primary test
    assert "better accepted** on 0 of 1 (the others: easy: worse accepted)" in text and "as accurate** as CoT on 1 of 1" in text


def test_the_reference_run_in_one_sentence_comes_from_its_csv():
    text = findings.reference_summary(pd.read_csv(REFERENCE_RUN, comment="#"), 5)
    assert (
        "easy 24.9 → 75.5 → 92.2 %" in text and "CoD answers against CoT: easy 16 % shorter, medium 27 % shorter, hard 2 % shorter" in text
    )
    assert "speedups of 1.41-1.64x" in text


def test_the_answers_say_which_verdicts_keep_their_direction_across_seeds_or_that_they_rest_on_one():
    assert "rests on one training run (one seed)" in findings.across_seeds(None)
    rows = [
        ("3a. CoD answers are shorter", "easy", -3.0, -2.0, True, True),
        ("3b. CoD drafts are better accepted", "hard", 0.03, -0.01, False, False),
        ("2b. speculation changes nothing, CoD", "hard", 0.0, 0.01, None, True),  # no direction to keep
    ]
    columns = ["question", "level", "seed 0", "seed 4", "same direction", "same verdict"]
    text = findings.across_seeds(pd.DataFrame(rows, columns=columns))
    assert "**Across 2 seeds** (0, 4;" in text and "2 of 3 are the same in every seed, and 1 of 2 with a direction" in text
    assert "direction changes: 3b. CoD drafts are better accepted (hard)." in text
