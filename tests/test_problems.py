import json

from specbook import problems
from specbook.problems import Problem
from specbook.profiles import GsmSymbolic, HubLevel, LegCounting, Problems

BOUNDS = {"easy": [1, 2], "medium": [3, 3], "hard": [4, 99]}


def test_levels_and_steps():
    assert problems.solution_steps("a\n\nb <<1+1=2>>2\n#### 2") == ["a", "b <<1+1=2>>2"]
    assert [problems.level_of(n, BOUNDS) for n in (1, 2, 3, 4, 9, 0)] == ["easy", "easy", "medium", "hard", "hard", None]


def _pool():
    """Four templates per level, ten variants each, as GSM-Symbolic would give them."""
    pool = []
    for li, level in enumerate(("easy", "medium", "hard")):
        for t in range(4):
            for v in range(10):
                pool.append(Problem(f"t{li}{t}-v{v}", level, f"question {li} {t} {v}", "1", "", "gsm_symbolic", group=f"t{li}{t}"))
    return pool


def test_gsm_split_has_two_labelled_test_sets_and_no_leakage():
    cfg = Problems("gsm_symbolic", train_per_level=20, test_per_level=5, gsm_symbolic=GsmSymbolic(None, 10, 1.0, 1, BOUNDS, None))
    chosen = problems.split(_pool(), cfg, seed=0)
    for level in ("easy", "medium", "hard"):
        rows = [p for p in chosen if p.level == level]
        by_split = {s: [p for p in rows if p.split == s] for s in (problems.TRAIN, problems.TEST_NEW_VARIANTS, problems.TEST_HELD_OUT)}
        assert [len(v) for v in by_split.values()] == [20, 5, 5]
        held_out = {p.group for p in by_split[problems.TEST_HELD_OUT]}
        assert len(held_out) == 1 and held_out.isdisjoint({p.group for p in by_split[problems.TRAIN]})
        assert {p.group for p in by_split[problems.TEST_NEW_VARIANTS]} <= {p.group for p in by_split[problems.TRAIN]}
    train = [p.to_row() for p in chosen if p.split == problems.TRAIN]
    test = [p.to_row() for p in chosen if p.split != problems.TRAIN]
    assert problems.leaked(train, test) == []
    assert problems.leaked(train, train[:2]) == [train[0]["id"], train[1]["id"]]
    # same seed, same split
    again = problems.split(_pool(), cfg, seed=0)
    assert [(p.id, p.split) for p in again] == [(p.id, p.split) for p in chosen]


def test_leg_counting_levels_by_animal_kinds():
    cfg = LegCounting(kinds_per_level={"easy": [1, 2], "medium": [3, 4], "hard": [5, 6]}, max_count=10)
    pool, report = problems.leg_counting_problems(cfg, per_level=30, seed=0)
    assert [r["unique"] for r in report] == [30, 30, 30]
    for p in pool:
        low, high = cfg.kinds_per_level[p.level]
        assert low <= len(p.meta["animals"]) <= high
        assert p.question.startswith("How many legs are there in total if you have ")
        assert "Your task" not in p.question
    assert len({p.question for p in pool}) == len(pool)


def test_gsm_symbolic_generation_is_cached_and_slow_templates_are_reported(tmp_path):
    cfg = GsmSymbolic(
        templates=[1, 4], variants_per_template=5, seconds_per_template=30, held_out_templates=0, steps_per_level=BOUNDS, max_number=None
    )
    pool, report = problems.gsm_symbolic_problems(cfg, seed=0, cache_dir=tmp_path)
    assert [r["status"] for r in report] == ["ok", "ok"] and len(pool) == 10
    assert all(p.solution.endswith(p.answer) and "####" in p.solution for p in pool)
    cached = sorted((tmp_path / "gsm_symbolic").glob("*.json"))
    assert len(cached) == 2
    # a cached result is used as is: tamper with it and see the tampered question come back
    data = json.loads(cached[0].read_text())
    data["variants"][0]["question"] = "From the cache?"
    cached[0].write_text(json.dumps(data))
    again, _ = problems.gsm_symbolic_problems(cfg, seed=0, cache_dir=tmp_path)
    assert "From the cache?" in {p.question for p in again}
    # a template that cannot finish within its bound is skipped and reported
    slow = GsmSymbolic([40], 50, 0.5, 0, BOUNDS, None)
    pool, report = problems.gsm_symbolic_problems(slow, seed=0, cache_dir=tmp_path)
    assert pool == [] and report[0]["status"] == "timeout"


# Rows as the Hub serves them (openai/gsm8k 'main'; EleutherAI/hendrycks_math).
GSM8K_ROW = {
    "question": "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
    "How many clips did Natalia sell altogether in April and May?",
    "answer": "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n"
    "Natalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.\n#### 72",
}
MATH_ROW = {
    "problem": "If $x^2 = 4$ and $x < 0$, what is $x$?",
    "level": "Level 2",
    "type": "Algebra",
    "solution": "The solutions of $x^2=4$ are $\\pm 2$; the negative one is $\\boxed{-2}$.",
}


def test_hub_rows_become_problems():
    gsm = HubLevel("openai/gsm8k", ["main"], "train", "test", "question", "answer", "gsm8k", {})
    p = problems.hub_row_to_problem(GSM8K_ROW, "easy", gsm, "train", 7)
    assert (p.id, p.answer, p.split) == ("easy-train-7", "72", problems.TRAIN)
    math = HubLevel(
        "EleutherAI/hendrycks_math", ["algebra"], "train", "test", "problem", "solution", "boxed", {"level": ["Level 1", "Level 2"]}
    )
    p = problems.hub_row_to_problem(MATH_ROW, "medium", math, "test", 0)
    assert (p.answer, p.split, p.meta) == ("-2", problems.TEST, {"level": "Level 2"})
    assert problems.hub_row_to_problem({**MATH_ROW, "solution": "no box"}, "medium", math, "test", 1) is None
