"""Chapter 05's answers: a verdict per question and level, each from a named test on paired data,
and what the drafts miss (the target's token at each rejection, by class and by position).

The rules are fixed here, before any result is read:
- A test decides at 95 % (p < 0.05, or an interval that excludes the null); otherwise "not shown".
- Accuracy is compared only on a level both tuned targets learnt (`learnt`: each beats the base
  target by McNemar's test, and the lower end of its Wilson interval lies above AS_ACCURATE_MARGIN,
  so that losing the margin would be measurable); elsewhere every accuracy comparison is "not
  shown", whatever its interval. (The second condition was added after the first tiny run, whose
  medium targets beat a base at 0 % with 3 and 5.5 % and were then called "as accurate" within a
  margin larger than either accuracy.)
- CoD is "as accurate" as CoT when the 95 % interval of the paired accuracy difference (CoD - CoT)
  lies above -AS_ACCURATE_MARGIN.
- A speedup whose timing rounds disagree (`results.UNSTABLE_SPREAD`) is reported as unstable.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np

from specbook import stats

AS_ACCURATE_MARGIN = 0.05  # five percentage points: the most CoD may lose and still be "as accurate"
# The drafts as chapter 05 names them: the pretrained base draft was never tuned on answers
# ("untrained" for the task), prompt lookup has no draft model at all.
DRAFT_LABELS = {
    "base": "base draft (pretrained, not tuned)",
    "distilled": "distilled",
    "teacher_data": "teacher data",
    "white_box": "white box",
    "ngram": "prompt lookup (n-gram)",
}
TOKEN_CLASSES = ("digits", "operators", "words", "formatting", "end of answer")
_OPERATORS = re.compile(r"^[\s+\-*/=×÷^()<>%]+$")


def _verdict(
    question: str, level: str, verdict: str, test: str, estimate: str, effect: float, interval=(math.nan, math.nan), p: float | None = None
) -> dict:
    """One verdict. `effect`: its size as a signed number in the test's own direction, 0 for no
    effect (a difference, a median paired difference, or a speedup minus 1), with its 95 % interval
    where the test gives one: what `across_seeds` compares."""
    low, high = interval
    return {
        "question": question,
        "level": level,
        "verdict": verdict,
        "test": test,
        "estimate": estimate,
        "effect": float(effect),
        "effect_low": float(low),
        "effect_high": float(high),
        "p": p,
    }


def fine_tuning(level: str, target: str, base: Sequence[bool], tuned: Sequence[bool]) -> dict:
    """Does tuning raise accuracy? Exact McNemar test on the same problems, base vs tuned."""
    p = stats.mcnemar_p(base, tuned)
    a, b = float(np.mean(base)), float(np.mean(tuned))
    verdict = "not shown" if p >= 0.05 else ("raises accuracy" if b > a else "lowers accuracy")
    return _verdict(f"1. tuning raises accuracy, {target}", level, verdict, "McNemar exact, paired", f"{a:.3f} → {b:.3f}", b - a, p=p)


def learnt(fine_tuning_verdict: dict, correct: Sequence[bool]) -> bool:
    """Whether a tuned target learnt its level well enough to compare accuracies: it beats the base
    target (`fine_tuning`) and its Wilson interval's lower end lies above AS_ACCURATE_MARGIN."""
    low, _ = stats.wilson_interval(int(np.sum(correct)), len(correct))
    return fine_tuning_verdict["verdict"] == "raises accuracy" and low > AS_ACCURATE_MARGIN


def speculation_faster(level: str, target: str, k: int, speedup: float, low: float, high: float, unstable: bool) -> dict:
    """Is speculation faster? The bootstrap 95 % interval of the median per-request speedup."""
    verdict = "faster" if low > 1 else ("slower" if high < 1 else "not shown")
    if unstable:
        verdict += " (unstable timing: its rounds disagree)"
    test = "bootstrap 95 % interval, median per-request latency ratio"
    estimate = f"{speedup:.2f}x [{low:.2f}-{high:.2f}]"
    return _verdict(f"2a. speculation (K = {k}) is faster, {target}", level, verdict, test, estimate, speedup - 1, (low - 1, high - 1))


def speculation_unchanged(
    level: str, target: str, identical: float, near_tie: float, alone: Sequence[bool], speculative: Sequence[bool]
) -> dict:
    """Does speculation change what the target writes? The shares of answers identical token for
    token and parted at a numerical near-tie (`lossless`; a mismatch stops chapter 04), and the
    paired accuracy difference with its bootstrap interval."""
    diff, low, high = stats.paired_bootstrap(_mean_difference, alone, speculative)
    if identical == 1:
        verdict = "changes nothing (every answer identical)"
    elif identical + near_tie >= 1 - 1e-9:
        verdict = f"changes nothing but rounding ({near_tie:.1%} of the answers parted at a numerical near-tie)"
    else:
        verdict = f"changed {1 - identical - near_tie:.1%} of the answers beyond rounding"
    test = "identity on every problem, a difference classified where it starts; bootstrap 95 % interval of the paired accuracy difference"
    return _verdict(
        f"2b. speculation changes nothing, {target}",
        level,
        verdict,
        test,
        f"identical {identical:.3f}, near-tie {near_tie:.3f}; Δ acc {diff:+.3f} [{low:+.3f}, {high:+.3f}]",
        diff,
        (low, high),
    )


def cod_shorter(level: str, cot_tokens: Sequence[float], cod_tokens: Sequence[float]) -> dict:
    """Are CoD answers shorter? Wilcoxon signed-rank test on the tokens of both targets' answers to the same problems."""
    p = stats.wilcoxon_p(cod_tokens, cot_tokens)
    ratio = float(np.sum(cod_tokens) / np.sum(cot_tokens))
    shift = float(np.median(np.asarray(cod_tokens, dtype=float) - np.asarray(cot_tokens, dtype=float)))  # the test's own direction
    verdict = "not shown" if p >= 0.05 or shift == 0 else ("shorter" if shift < 0 else "longer")
    estimate = f"CoD / CoT tokens {ratio:.2f}, median paired difference {shift:+.1f}"
    return _verdict("3a. CoD answers are shorter", level, verdict, "Wilcoxon signed-rank, paired", estimate, shift, p=p)


def _acceptance_difference(acc_cot, prop_cot, acc_cod, prop_cod, axis=-1):
    return np.sum(acc_cod, axis=axis) / np.sum(prop_cod, axis=axis) - np.sum(acc_cot, axis=axis) / np.sum(prop_cot, axis=axis)


def cod_better_accepted(level: str, cot: tuple[Sequence[int], Sequence[int]], cod: tuple[Sequence[int], Sequence[int]]) -> dict:
    """Are CoD drafts better accepted? Bootstrap 95 % interval of the acceptance difference (CoD -
    CoT), problems resampled together; each side is (accepted, proposed) per problem."""
    diff, low, high = stats.paired_bootstrap(_acceptance_difference, *cot, *cod)
    verdict = "better accepted" if low > 0 else ("worse accepted" if high < 0 else "not shown")
    test = "bootstrap 95 % interval of the acceptance difference, paired by problem"
    estimate = f"Δ acceptance {diff:+.3f} [{low:+.3f}, {high:+.3f}]"
    return _verdict("3b. CoD drafts are better accepted", level, verdict, test, estimate, diff, (low, high))


def _mean_difference(a, b, axis=-1):
    return np.mean(b, axis=axis) - np.mean(a, axis=axis)


def cod_as_accurate(level: str, cot: Sequence[bool], cod: Sequence[bool], learnt: bool) -> dict:
    """Is CoD as accurate as CoT? Non-inferiority at AS_ACCURATE_MARGIN: the bootstrap 95 % interval
    of the paired difference (CoD - CoT) against -margin, with McNemar's p beside it; only on a level
    both targets learnt."""
    diff, low, high = stats.paired_bootstrap(_mean_difference, cot, cod)
    p = stats.mcnemar_p(cot, cod)
    if not learnt:
        verdict = "not shown: the targets did not both learn this level"
    elif low > 0:
        verdict = "more accurate"
    elif low > -AS_ACCURATE_MARGIN:
        verdict = f"as accurate (within {AS_ACCURATE_MARGIN:.0%})"
    elif high < -AS_ACCURATE_MARGIN:
        verdict = "less accurate"
    elif high < 0:  # below CoT, by a gap the interval cannot place beyond the margin or within it
        verdict = f"less accurate (the gap may be within {AS_ACCURATE_MARGIN:.0%})"
    else:
        verdict = "not shown: the interval is too wide"
    test = f"non-inferiority, margin {AS_ACCURATE_MARGIN:.0%}: bootstrap 95 % interval of the paired difference; McNemar p"
    return _verdict(
        "3c. CoD is as accurate as CoT", level, verdict, test, f"Δ acc {diff:+.3f} [{low:+.3f}, {high:+.3f}]", diff, (low, high), p
    )


def equivalent_accuracy(alone: Sequence[bool], speculative: Sequence[bool], margin: float = AS_ACCURATE_MARGIN) -> dict:
    """Do two sampled runs on the same problems reach the same accuracy? An equivalence test, paired
    by problem: the bootstrap 95 % interval of the difference (speculative - alone) inside ±margin
    says "the same within the margin"; an interval that excludes 0 says they differ; anything else is
    "not shown" (a test that fails to reject is not evidence of no difference)."""
    diff, low, high = stats.paired_bootstrap(_mean_difference, alone, speculative)
    if low > -margin and high < margin:
        verdict = f"the same within {margin:.0%}"
    elif low > 0 or high < 0:
        verdict = "differs"
    else:
        verdict = "not shown: the interval is too wide"
    return {"difference": diff, "low": low, "high": high, "verdict": verdict}


def best_k_held_out(plain: Sequence[float], by_k: dict[int, Sequence[float]], seed: int = 0) -> dict:
    """The best K chosen on the even-numbered timed requests (by median latency ratio) and its
    speedup measured on the odd-numbered ones, with a bootstrap interval: a choice not graded on
    the requests that made it."""
    plain = np.asarray(plain, dtype=float)
    choose = {k: float(np.median(plain[0::2] / np.asarray(lat, dtype=float)[0::2])) for k, lat in by_k.items()}
    k = max(choose, key=choose.get)
    speedup, low, high = stats.bootstrap_median_ratio(plain[1::2], np.asarray(by_k[k], dtype=float)[1::2], seed=seed)
    return {"k": k, "chosen_on": len(plain[0::2]), "reported_on": len(plain[1::2]), "speedup": speedup, "low": low, "high": high}


def token_class(text: str, end_of_answer: bool = False) -> str:
    """digits, operators (+ - * / = and the like), words (any letter), formatting (whitespace,
    punctuation), or end of answer (the end-of-sequence token)."""
    if end_of_answer:
        return "end of answer"
    stripped = text.strip()
    if stripped and stripped.isdigit():
        return "digits"
    if stripped and _OPERATORS.match(stripped):
        return "operators"
    if any(c.isalpha() for c in stripped):
        return "words"
    return "formatting"


def rejections(requests, tokenizer, eos_ids: set[int]):
    """One row per rejection that counts (inside the answer as kept): the position, its share of the
    answer's length, the draft's token and the target's, as text, and the class of the target's
    token (what the draft missed). `requests`: a run's `results.load_requests` table."""
    import pandas as pd

    rows = []
    for r in requests.itertuples(index=False):
        n = len(r.token_ids)
        for position, drafted, wrote in r.rejections:
            if position < n:
                missed = tokenizer.decode([wrote])
                rows.append(
                    {
                        "id": r.id,
                        "position": position,
                        "relative position": position / n,
                        "draft token": tokenizer.decode([drafted]),
                        "target token": missed,
                        "missed class": token_class(missed, wrote in eos_ids),
                    }
                )
    return pd.DataFrame(rows, columns=["id", "position", "relative position", "draft token", "target token", "missed class"])


def class_counts(requests, tokenizer, eos_ids: set[int]) -> dict[str, int]:
    """How many of the answers' tokens fall in each class: the base rate a miss rate is read against."""
    counts = dict.fromkeys(TOKEN_CLASSES, 0)
    for ids in requests.token_ids:
        for t in ids:
            counts[token_class(tokenizer.decode([t]), t in eos_ids)] += 1
    return counts


def miss_rates(missed, counts: dict[str, int]):
    """Per class: the share of all misses, and misses per 100 answer tokens of that class."""
    import pandas as pd

    total = max(1, len(missed))
    per_class = missed["missed class"].value_counts()
    return pd.DataFrame(
        [
            {
                "class": c,
                "misses": int(per_class.get(c, 0)),
                "share of misses": per_class.get(c, 0) / total,
                "answer tokens": counts[c],
                "misses per 100 tokens": 100 * per_class.get(c, 0) / counts[c] if counts[c] else math.nan,
            }
            for c in TOKEN_CLASSES
        ]
    )


def family(question: str) -> str:
    """A verdict's question family ("1", "2a", ... "3c"): the tests one correction runs across."""
    return question.split(".", 1)[0]


# The questions whose verdict a p-value decides; the others are decided by a 95 % interval per
# verdict (3c carries McNemar's p beside its non-inferiority interval, which it does not decide).
DECIDED_BY_P = ("1", "3a")


def with_holm(verdicts):
    """The verdicts with Holm's correction where a p-value decides them (DECIDED_BY_P): each p
    adjusted within its question (across levels and targets), and a verdict whose adjusted p is
    0.05 or more becomes "not shown after Holm's correction"."""
    out = verdicts.assign(**{"p (Holm)": math.nan})
    for name, index in verdicts.groupby(verdicts.question.map(family)).groups.items():
        if name in DECIDED_BY_P:
            out.loc[index, "p (Holm)"] = stats.holm(verdicts.loc[index, "p"].astype(float))
    lost = (out.p < 0.05) & (out["p (Holm)"] >= 0.05)
    out.loc[lost, "verdict"] = "not shown after Holm's correction"
    return out


def primary(verdicts):
    """The verdicts that answer the questions: all but the best-K speedups (a K chosen after the fact)."""
    return verdicts[~verdicts.question.str.contains("best K")]


def answers_table(verdicts):
    """The primary verdicts, one row per question (and target), one column per level."""
    from specbook.profiles import LEVELS

    table = primary(verdicts).pivot_table(index="question", columns="level", values="verdict", aggfunc="first", sort=False)
    return table[[level for level in LEVELS if level in table.columns]]


def time_to_correct(latency_s: dict, accuracy: dict):
    """Seconds per correct answer for each configuration: the mean latency of its timed requests over
    its accuracy on the whole test set (what a user waits, on average, for one right answer; nan
    where no answer was right).
    `latency_s`, `accuracy`: {configuration: value}, same keys."""
    import pandas as pd

    return pd.DataFrame(
        [
            {
                "configuration": name,
                "mean latency (s)": float(np.mean(latency_s[name])),
                "accuracy": accuracy[name],
                "seconds per correct answer": float(np.mean(latency_s[name])) / accuracy[name] if accuracy[name] else math.nan,
            }
            for name in latency_s
        ]
    )


def headline_table(accuracy_table, speed_table, tokens_table):
    """One row per level with what a visitor needs first: each target's accuracy with its interval,
    CoD's tokens over CoT's, and each tuned target's speedup with its interval and acceptance rate."""
    import pandas as pd

    def accuracy(level, configuration):
        r = accuracy_table[(accuracy_table.level == level) & (accuracy_table.configuration == configuration)].iloc[0]
        return f"{100 * r.accuracy:.1f} % [{100 * r.low:.1f}, {100 * r.high:.1f}]"

    def speed(level, target):
        r = speed_table[(speed_table.level == level) & (speed_table.target == target)].iloc[0]
        return f"{r.speedup:.2f}x [{r.low:.2f}, {r.high:.2f}] · {r['acceptance rate']:.2f}"

    rows = []
    for level in tokens_table.level:
        rows.append(
            {
                "level": level,
                "accuracy: base": accuracy(level, "base"),
                "CoT": accuracy(level, "CoT"),
                "CoD": accuracy(level, "CoD"),
                "tokens CoD / CoT": f"{tokens_table[tokens_table.level == level]['CoD / CoT'].iloc[0]:.2f}",
                "speedup · acceptance: CoT": speed(level, "CoT"),
                "CoD ": speed(level, "CoD"),
            }
        )
    return pd.DataFrame(rows)


# The reference run's five configurations: (target, draft) with the draft at K = bench.k, or alone.
CONFIGS = (("base", "alone"), ("cot", "alone"), ("cot", "distilled"), ("cod", "alone"), ("cod", "distilled"))


def config_label(target: str, draft: str) -> str:
    from specbook.styles import LABELS

    return ("base" if target == "base" else LABELS[target]) + (" + spec" if draft != "alone" else "")


def reference_row(reference, level: str, target: str, speculative: int = 0):
    """One row of the reference run (`data/reference_run.csv`)."""
    rows = reference[(reference.level == level) & (reference.target == target) & (reference.speculative == speculative)]
    return rows.iloc[0]


def best_k_verdict(R, level: str, ks: Sequence[int], seed: int) -> dict:
    """Question 2a for the CoD pair at its best K, chosen on half of the timed requests and
    measured on the other half (`best_k_held_out`). R: `results.Results`."""
    alone = R.requests(level, "cod", request_set="timed")
    by_k = {k: R.requests(level, "cod", "distilled", k, "timed").latency_s for k in ks}
    best = best_k_held_out(alone.latency_s, by_k, seed=seed)
    name = f"CoD at the best K = {best['k']} (chosen on {best['chosen_on']} requests, measured on {best['reported_on']} others)"
    unstable = bool(R.run(level, "cod", "distilled", best["k"], "timed").unstable)
    return speculation_faster(level, name, best["k"], best["speedup"], best["low"], best["high"], unstable)


def sweep_edge(R, level: str, ks: Sequence[int], seed: int) -> dict:
    """Whether the CoD pair's largest swept K is faster than the K swept before it, on the same
    timed requests: the median per-request latency ratio (K before / largest K) with its bootstrap
    interval. Rising (the interval above 1), a best K at the edge may lie beyond the sweep; else the
    sweep has reached a plateau, where which K is best is chance."""
    before, last = sorted(ks)[-2:]
    latency = {k: R.requests(level, "cod", "distilled", k, "timed").latency_s for k in (before, last)}
    ratio, low, high = stats.bootstrap_median_ratio(latency[before], latency[last], seed=seed)
    return {"level": level, "before": before, "last": last, "ratio": ratio, "low": low, "high": high, "rising": low > 1}


def tuning_verdicts(R) -> tuple[list[dict], dict]:
    """Question 1 on every level and tuned target (`fine_tuning`: the base and the tuned target on
    the same problems), and which tuned targets learnt their level ({(level, style): `learnt`})."""
    from specbook.profiles import LEVELS
    from specbook.styles import LABELS, STYLES

    verdicts, learnt_levels = [], {}
    for level in LEVELS:
        base = R.requests(level, "base")
        for style in STYLES:
            v = fine_tuning(level, LABELS[style], *R.paired(base, R.requests(level, style), "correct"))
            verdicts.append(v)
            learnt_levels[level, style] = learnt(v, R.requests(level, style).correct)
    return verdicts, learnt_levels


def unchanged_verdicts(R, k: int) -> list[dict]:
    """Question 2b on every level and tuned target: its answers with its distilled draft at K = `k`
    against its own, token for token and in accuracy paired by problem (`speculation_unchanged`)."""
    from specbook.profiles import LEVELS
    from specbook.styles import LABELS, STYLES

    verdicts = []
    for level in LEVELS:
        for style in STYLES:
            spec = R.run(level, style, "distilled", k)
            correct = R.paired(R.requests(level, style), R.requests(level, style, "distilled", k), "correct")
            verdicts.append(speculation_unchanged(level, LABELS[style], spec.identical_to_plain, spec.near_tie, *correct))
    return verdicts


def cod_verdicts(R, k: int, learnt_levels: dict) -> list[dict]:
    """Question 3 on every level, CoD against CoT on the same problems: tokens (3a), the acceptance of
    their distilled drafts at K = `k` (3b), accuracy where both targets learnt the level (3c)."""
    from specbook.profiles import LEVELS

    verdicts = []
    for level in LEVELS:
        cot, cod = R.requests(level, "cot"), R.requests(level, "cod")
        cot_spec, cod_spec = R.requests(level, "cot", "distilled", k), R.requests(level, "cod", "distilled", k)
        accepted, proposed = R.paired(cot_spec, cod_spec, "accepted"), R.paired(cot_spec, cod_spec, "proposed")
        both_learnt = learnt_levels[level, "cot"] and learnt_levels[level, "cod"]
        verdicts.append(cod_shorter(level, *R.paired(cot, cod, "tokens")))
        verdicts.append(cod_better_accepted(level, (accepted[0], proposed[0]), (accepted[1], proposed[1])))
        verdicts.append(cod_as_accurate(level, *R.paired(cot, cod, "correct"), learnt=both_learnt))
    return verdicts


def untimed_verdicts(R, k: int):
    """Every verdict that rests on the whole test set rather than on timings (questions 1, 2b and 3),
    with Holm's correction: what a seed run repeats (`make seeds`)."""
    import pandas as pd

    tuning, learnt_levels = tuning_verdicts(R)
    return with_holm(pd.DataFrame([*tuning, *unchanged_verdicts(R, k), *cod_verdicts(R, k, learnt_levels)]))


def across_seeds(by_seed: dict):
    """Each verdict under every seed ({seed: `untimed_verdicts`}, the main run's first): its effect
    per seed, their spread (max - min), whether its verdict is the same in every seed, and whether
    its direction (the effect's sign) is: None where the main run's effect is exactly 0, which has
    no direction (an unchanged answer, a target that learnt nothing). Near 0 a sign flips by chance."""
    import pandas as pd

    seeds = list(by_seed)
    keyed = {seed: v.set_index(["question", "level"]) for seed, v in by_seed.items()}
    first = keyed[seeds[0]]
    rows = []
    for key in first.index:
        effects = [keyed[seed].loc[key, "effect"] for seed in seeds]
        verdicts = [keyed[seed].loc[key, "verdict"] for seed in seeds]
        rows.append(
            {
                "question": key[0],
                "level": key[1],
                **{f"seed {seed}": effect for seed, effect in zip(seeds, effects, strict=True)},
                "spread": max(effects) - min(effects),
                "same direction": None if effects[0] == 0 else len({np.sign(e) for e in effects}) == 1,
                "same verdict": len(set(verdicts)) == 1,
                f"verdict (seed {seeds[0]})": verdicts[0],
            }
        )
    return pd.DataFrame(rows)


def variance_split(by_seed: dict, questions=("3b.", "3c.")):
    """Where the spread of a CoD - CoT difference comes from, per question and level: from training
    runs (the standard deviation of its effect across seeds, the problems fixed) and from problems
    (the standard error of the paired bootstrap over problems within a seed, taken as its 95 %
    interval's width / 3.92, i.e. as if normal, pooled over seeds as the root of the mean variance),
    and the training runs' share of the two variances, as if the two add independently. With n
    seeds the first rests on n - 1 degrees of freedom: with 3, its own 95 % interval runs from
    about half to six times the value."""
    import pandas as pd

    table = pd.concat([v.assign(seed=seed) for seed, v in by_seed.items()])
    table = table[table.question.str.startswith(tuple(questions))]
    rows = []
    for (question, level), g in table.groupby(["question", "level"], sort=False):
        training = float(np.std(g.effect, ddof=1))
        problems = float(np.sqrt(np.mean(((g.effect_high - g.effect_low) / (2 * 1.96)) ** 2)))
        rows.append(
            {
                "question": question,
                "level": level,
                "seeds": len(g),
                "mean effect": float(np.mean(g.effect)),
                "sd across seeds (training runs)": training,
                "se within a seed (problems)": problems,
                "share from training runs": training**2 / (training**2 + problems**2) if training or problems else math.nan,
            }
        )
    return pd.DataFrame(rows)


def accuracy_table(R, reference, k: int):
    """The reference run's five configurations per level: accuracy with its 95 % Wilson interval,
    this book's and the reference run's (from its own counts)."""
    import pandas as pd

    from specbook.profiles import LEVELS

    rows = []
    for level in LEVELS:
        for target, draft in CONFIGS:
            r = R.run(level, target, draft, k if draft != "alone" else 0)
            theirs = reference_row(reference, level, target, int(draft != "alone"))
            their_low, their_high = stats.wilson_interval(round(theirs.accuracy * theirs.requests), int(theirs.requests))
            rows.append(
                {
                    "level": level,
                    "configuration": config_label(target, draft),
                    "accuracy": r.accuracy,
                    "low": r.accuracy_low,
                    "high": r.accuracy_high,
                    "questions": int(r.requests),
                    "reference accuracy": theirs.accuracy,
                    "reference low": their_low,
                    "reference high": their_high,
                    "reference questions": int(theirs.requests),
                }
            )
    return pd.DataFrame(rows)


def speed_table(R, reference, k: int):
    """Each tuned target with its distilled draft at K = k: the speedup on the timed requests (with
    its interval and the spread of its rounds), acceptance on the whole test set, and the
    reference run's speedup (its ratio of tokens per second) and acceptance."""
    import pandas as pd

    from specbook.profiles import LEVELS
    from specbook.styles import LABELS, STYLES

    rows = []
    for level in LEVELS:
        for style in STYLES:
            r = R.run(level, style, "distilled", k, "timed")
            theirs_alone, theirs_spec = reference_row(reference, level, style, 0), reference_row(reference, level, style, 1)
            rows.append(
                {
                    "level": level,
                    "target": LABELS[style],
                    "speedup": r.speedup,
                    "low": r.speedup_low,
                    "high": r.speedup_high,
                    "spread of rounds": r.round_spread,
                    "unstable": r.unstable,
                    "acceptance rate": R.run(level, style, "distilled", k).acceptance_rate,
                    "reference speedup": theirs_spec.tokens_per_s / theirs_alone.tokens_per_s,
                    "reference acceptance rate": theirs_spec.acceptance_rate,
                }
            )
    return pd.DataFrame(rows)


def tokens_table(R, reference):
    """Mean tokens per answer of every target alone on the whole test set, CoD's over CoT's, and the reference run's."""
    import pandas as pd

    from specbook.profiles import LEVELS
    from specbook.styles import LABELS, STYLES

    def name(target):
        return "base" if target == "base" else LABELS[target]

    rows = []
    for level in LEVELS:
        ours = {t: R.run(level, t).tokens_per_request for t in ["base", *STYLES]}
        theirs = {t: reference_row(reference, level, t).tokens_per_answer for t in ["base", *STYLES]}
        rows.append(
            {
                "level": level,
                **{f"{name(t)} tokens": v for t, v in ours.items()},
                "CoD / CoT": ours["cod"] / ours["cot"],
                **{f"reference {name(t)}": v for t, v in theirs.items()},
                "reference CoD / CoT": theirs["cod"] / theirs["cot"],
            }
        )
    return pd.DataFrame(rows)


def time_table(R, k: int):
    """`time_to_correct` per level for each tuned target alone and with its distilled draft at K = k."""
    import pandas as pd

    from specbook.profiles import LEVELS
    from specbook.styles import LABELS, STYLES

    configs = {
        f"{LABELS[st]}{suffix}": (st, draft, kk) for st in STYLES for suffix, draft, kk in [("", "alone", 0), (" + spec", "distilled", k)]
    }
    parts = []
    for level in LEVELS:
        latency = {name: R.requests(level, *config, "timed").latency_s for name, config in configs.items()}
        accuracy = {name: R.run(level, *config).accuracy for name, config in configs.items()}
        parts.append(time_to_correct(latency, accuracy).assign(level=level))
    return pd.concat(parts, ignore_index=True)


def answer_lengths(R):
    """Tokens of every answer on the whole test set, a row per answer: level, target (label), tokens."""
    import pandas as pd

    from specbook.profiles import LEVELS
    from specbook.styles import LABELS, STYLES

    return pd.concat(
        [
            R.requests(level, t)[["tokens"]].assign(level=level, target="base" if t == "base" else LABELS[t])
            for level in LEVELS
            for t in ["base", *STYLES]
        ],
        ignore_index=True,
    )


def latencies(R, k: int):
    """Latency of every timed request of each tuned target, alone and with its distilled draft at K = k."""
    import pandas as pd

    from specbook.profiles import LEVELS
    from specbook.styles import LABELS, STYLES

    return pd.concat(
        [
            R.requests(level, style, draft, kk, "timed")[["latency_s"]].assign(
                level=level, run=f"{LABELS[style]} {'alone' if draft == 'alone' else 'spec'}"
            )
            for level in LEVELS
            for style in STYLES
            for draft, kk in [("alone", 0), ("distilled", k)]
        ],
        ignore_index=True,
    )


def misses(R, style: str, k: int, tokenizer, eos_ids: set[int]):
    """Every rejection of a tuned target's distilled draft at K = k on the whole test set, all
    levels (`rejections`), and the misses per class against the class's frequency (`miss_rates`)."""
    import pandas as pd

    from specbook.profiles import LEVELS

    parts, counts = [], dict.fromkeys(TOKEN_CLASSES, 0)
    for level in LEVELS:
        spec = R.requests(level, style, "distilled", k)
        parts.append(rejections(spec, tokenizer, eos_ids).assign(level=level))
        for c, n in class_counts(spec, tokenizer, eos_ids).items():
            counts[c] += n
    missed = pd.concat(parts, ignore_index=True)
    return missed, miss_rates(missed, counts)


def most_missed(missed, n: int = 10):
    """The n most frequent (draft token → target token) pairs at a rejection, with the target's class."""
    pairs = missed.assign(pair=lambda t: t["draft token"].map(repr) + " → " + t["target token"].map(repr))
    return pairs.groupby(["pair", "missed class"]).size().rename("misses").sort_values(ascending=False).head(n).reset_index()


def verdict_line(verdicts, question: str, level: str) -> str:
    """The verdicts of one question ("1.", "2a.", ...) on one level, each after what it is about
    (the question's words past its first comma), with its estimate."""
    rows = verdicts[(verdicts.question.str.startswith(question)) & (verdicts.level == level)]
    return "; ".join(
        f"{r.question.split(', ', 1)[1] if ', ' in r.question else ''} {r.verdict} ({r.estimate})".strip() for r in rows.itertuples()
    )
