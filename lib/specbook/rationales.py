"""Chapter 01's stage: problems -> splits -> teacher CoT and CoD -> checks -> JSONL files.

Writes data/<profile>/datasets/<level>/{train_cot,train_cod,test}.jsonl and a manifest whose
summary is the chapter's report; a re-run with the same profile, inputs and code is skipped.
"""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from specbook import jsonl, teachers, tokens
from specbook import problems as problem_sources
from specbook.answers import extract_answer, is_correct
from specbook.paths import Artifacts
from specbook.profiles import LEVELS, Profile
from specbook.prompts import STUDENT_SYSTEM
from specbook.stages import Stage, file_hash
from specbook.styles import LABELS, STYLES
from specbook.template_rules import leg_rationales

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DROP_REASONS = ("teacher_error", "cot_wrong_answer", "cod_wrong_answer", "cod_not_shorter")
# The stage reruns when any of these change, not only when the profile does.
_CODE = ["answers.py", "problems.py", "prompts.py", "rationales.py", "teachers.py", "template_rules.py", "tokens.py"]


def drop_reason(problem, rationales, cot_tokens: int | None, cod_tokens: int | None) -> str | None:
    """Why a training row cannot be kept, or None: both rationales must state the gold answer
    (strict check) and the CoD must be shorter than its CoT in tokens."""
    if rationales.cot is None:
        return "teacher_error"
    if not is_correct(extract_answer(rationales.cot), problem.answer):
        return "cot_wrong_answer"
    if rationales.cod is None:
        return "teacher_error"
    if not is_correct(extract_answer(rationales.cod), problem.answer):
        return "cod_wrong_answer"
    if cod_tokens >= cot_tokens:
        return "cod_not_shorter"
    return None


def reference_rationale(problem) -> str:
    """Test rows carry the source's own gold solution; leg counting has none, so its CoT."""
    return problem.solution or leg_rationales(problem.meta["animals"], problem.answer).cot


def build(profile: Profile, artifacts: Artifacts, teacher=None) -> dict:
    """Build (or reuse) the datasets of `profile` in `artifacts`; returns the report, with
    `built_at`: the commit whose code produced its numbers (earlier than now when reused)."""
    code_dir = Path(teachers.__file__).parent
    stage = Stage(
        artifacts.datasets,
        params={
            "seed": profile.data_seed,
            "problems": dataclasses.asdict(profile.problems),
            "teacher": dataclasses.asdict(profile.teacher),
            "tokenizer": dataclasses.asdict(profile.tokenizer),
            "code": {name: file_hash(code_dir / name) for name in _CODE},
        },
    )
    if not stage.done():
        report = _build_report(profile, artifacts, teacher)
        stage.finish(report, outputs=[artifacts.root / f for f in report["files"].values()])
    return {**stage.summary(), "built_at": stage.manifest()["commit"]}


def _build_report(profile: Profile, artifacts: Artifacts, teacher) -> dict:
    pool, source_report = problem_sources.load(profile.problems, profile.data_seed, artifacts.cache)
    chosen = problem_sources.split(pool, profile.problems, profile.data_seed)
    train = [p for p in chosen if p.split == problem_sources.TRAIN]
    test = [p for p in chosen if p.split != problem_sources.TRAIN]

    teacher = teacher or teachers.make(profile.teacher, profile.engine, artifacts.teacher, profile.data_seed)
    written = teacher.write(train)

    texts = [p.question for p in chosen] + [t for r in written.values() for t in (r.cot, r.cod) if t]
    texts += [STUDENT_SYSTEM[style] for style in STYLES for _ in train]  # in every training prompt: compress it
    tokenizer = tokens.for_profile(profile.tokenizer, texts, artifacts.tokenizer)

    complete = [p for p in train if written[p.id].cot and written[p.id].cod]
    counts = tokens.count(tokenizer, [t for p in complete for t in (written[p.id].cot, written[p.id].cod)])
    token_counts = {p.id: (counts[2 * i], counts[2 * i + 1]) for i, p in enumerate(complete)}
    kept = defaultdict(list)
    drops = Counter()
    rules = Counter()
    rows_by_rule = Counter()
    for p in train:
        r = written[p.id]
        cot_n, cod_n = token_counts.get(p.id, (None, None))
        reason = drop_reason(p, r, cot_n, cod_n)
        if reason:
            drops[(p.level, reason)] += 1
            continue
        rules.update(r.rules)
        rows_by_rule[_row_rule(r.rules)] += 1
        kept[p.level].append((p, r, cot_n, cod_n))

    base = ("id", "level", "question", "answer", "source", "group")
    files = {}
    for level in LEVELS:
        for style in STYLES:
            path = artifacts.dataset(level, f"train_{style}")
            rows = [
                {
                    **{k: getattr(p, k) for k in base},
                    "style": style,
                    "rationale": getattr(r, style),
                    "rationale_tokens": cot_n if style == "cot" else cod_n,
                }
                for p, r, cot_n, cod_n in kept[level]
            ]
            files[f"{level}/train_{style}"] = str(jsonl.write(path, rows).relative_to(artifacts.root))
        level_test = [p for p in test if p.level == level]
        refs = [reference_rationale(p) for p in level_test]
        test_rows = [
            {**{k: getattr(p, k) for k in base}, "test_set": p.split, "rationale": ref, "rationale_tokens": n}
            for p, ref, n in zip(level_test, refs, tokens.count(tokenizer, refs) if refs else [], strict=True)
        ]
        test_file = jsonl.write(artifacts.dataset(level, "test"), test_rows)
        files[f"{level}/test"] = str(test_file.relative_to(artifacts.root))

    leaks = problem_sources.leaked([p.to_row() for p in train], [p.to_row() for p in test])
    if leaks:
        raise AssertionError(f"{len(leaks)} test questions also appear in training, e.g. {leaks[:3]}")

    report = {
        "source": profile.problems.source,
        "teacher": teacher.name,
        "tokenizer": {"kind": profile.tokenizer.kind, "vocab_size": len(tokenizer)},
        "source_report": source_report,
        "levels": [_level_stats(level, train, test, kept[level], drops) for level in LEVELS],
        "cod_rules_steps": dict(rules),
        "cod_rules_rows": dict(rows_by_rule),
        "examples": {
            level: {"question": kept[level][0][0].question, "cot": kept[level][0][1].cot, "cod": kept[level][0][1].cod}
            for level in LEVELS
            if kept[level]
        },
        "files": files,
    }
    return report


# From the weakest rule to the strongest: a row is labelled by the weakest any of its steps needed.
_ROW_RULES = {
    "note": "some step only a note",
    "inline": "equation taken from the sentence",
    "tag": "calculator tags only",
    "metadata": "written from metadata",
}


def _row_rule(rules: dict) -> str:
    return next((label for name, label in _ROW_RULES.items() if rules.get(name)), "no steps")


def _level_stats(level, train, test, kept, drops) -> dict:
    cot = np.array([c for _, _, c, _ in kept], dtype=float)
    cod = np.array([d for _, _, _, d in kept], dtype=float)
    tests = Counter(p.split for p in test if p.level == level)
    return {
        "level": level,
        "train_candidates": sum(p.level == level for p in train),
        "kept": len(kept),
        **{f"dropped_{reason}": drops[(level, reason)] for reason in DROP_REASONS},
        "cot_mean_tokens": round(float(cot.mean()), 1) if len(cot) else None,
        "cod_mean_tokens": round(float(cod.mean()), 1) if len(cod) else None,
        "cod_over_cot": round(float(cod.sum() / cot.sum()), 3) if len(cot) else None,
        **{f"{name}": n for name, n in sorted(tests.items())},
    }


def load_rows(artifacts: Artifacts, level: str, name: str) -> list[dict]:
    """One dataset file of chapter 01 (name: train_cot, train_cod or test)."""
    return jsonl.read(artifacts.require(artifacts.dataset(level, name), made_by="01_datasets"))


def plot_token_lengths(artifacts: Artifacts) -> Figure:
    """Histograms of rationale length in tokens, CoT against CoD, one panel per level."""
    import matplotlib.pyplot as plt

    from specbook import figures

    fig, axes = plt.subplots(1, len(LEVELS), figsize=(4 * len(LEVELS), 3.2))
    for ax, level in zip(axes, LEVELS, strict=True):
        lengths = {s: [r["rationale_tokens"] for r in load_rows(artifacts, level, f"train_{s}")] for s in STYLES}
        bins = np.linspace(0, max([max(v) for v in lengths.values() if v] + [1]), 30)
        for style in STYLES:
            ax.hist(lengths[style], bins=bins, alpha=0.6, color=figures.COLORS[style], label=LABELS[style])
        means = ", ".join(f"{LABELS[s]} {np.mean(v):.0f}" for s, v in lengths.items() if v)
        ax.set(title=f"{level}: mean {means}" if means else f"{level}: no rows", xlabel="tokens per rationale")
        figures.integer_ticks((ax, "y"))
    axes[0].set_ylabel("training rows")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=len(STYLES), bbox_to_anchor=(0.5, 1.08))
    fig.tight_layout()
    return fig
