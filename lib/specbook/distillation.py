"""Chapter 03: every tuned target writes the training data of its own draft.

`answer` has a target answer its training questions in the exact chat format of chapter 02 and
keeps the rows (question, generated text, tokens, finish reason, correct or not) in a stage:
appended as they are made, resumed after a kill, reused while the target's weights, the questions
and the settings are unchanged. `quality` and `check_quality` are the gate that stops a target too
weak to teach. `draft_rows` turns them (or chapter 01's rationales) into a draft's training rows.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from specbook import engines, jsonl
from specbook.answers import extract_answer, is_correct
from specbook.paths import lib_sources
from specbook.prompts import STUDENT_SYSTEM, chat_prompt
from specbook.stages import Stage

ROWS = "rows.jsonl"
METHODS = ("distilled", "teacher_data", "white_box")  # how a draft is trained (chapter 03)


def methods(cfg, level: str) -> tuple[str, ...]:
    """The drafts trained for a level's targets: the distilled one everywhere, the two controls only
    on `cfg.control_levels` (profile `distill`; None: every level)."""
    if cfg.control_levels is None or level in cfg.control_levels:
        return METHODS
    return METHODS[:1]


class WeakTeacher(ValueError):
    """A target whose answers fail the profile's quality gate (`distill`)."""


def answer(engine, target: str, rows: list[dict], style: str, cfg, directory: str | Path, seed: int, batch_size: int = 1) -> list[dict]:
    """The answers of `engine` (the tuned target at path `target`) to rows (id, question, answer),
    `cfg.samples_per_question` each, under the style's system prompt. Rows are appended to a log in
    `directory` as each batch is made (a killed run resumes with no row lost or repeated) and kept
    in `directory`/rows.jsonl once all are made."""
    weights = sorted(Path(target).glob("*.safetensors")) if Path(target).is_dir() else []
    stage = Stage(
        directory,
        params={
            "target": str(target),
            "style": style,
            "questions": [(r["id"], r["question"]) for r in rows],
            "max_new_tokens": cfg.max_new_tokens,
            "temperature": cfg.temperature,
            "samples_per_question": cfg.samples_per_question,
            "seed": seed,
        },
        inputs=[*weights, *lib_sources("prompts")],  # the chat format
    )
    path = stage.directory / ROWS
    if stage.done():
        return jsonl.read(path)
    work = stage.work_folder("work")  # answers made for other settings are cleared, never resumed
    items = [
        (f"{r['id']}#{j}", chat_prompt(engine.tokenizer, STUDENT_SYSTEM[style], r["question"]))
        for r in rows
        for j in range(cfg.samples_per_question)
    ]
    sampling = engines.Sampling(max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature, seed=seed)
    made = engines.generate_resumable(
        engine, items, sampling, work / "answers.jsonl", desc=f"{style} target answers", batch_size=batch_size
    )
    out = []
    for r in rows:
        for j in range(cfg.samples_per_question):
            g = made[f"{r['id']}#{j}"]
            predicted = extract_answer(g["text"])
            out.append(
                {
                    "id": r["id"],
                    "sample": j,
                    "question": r["question"],
                    "text": g["text"],
                    "tokens": g["tokens"],
                    "finish_reason": g["finish_reason"],
                    "predicted": predicted,
                    "correct": is_correct(predicted, r["answer"]),
                }
            )
    jsonl.write(path, out)
    stage.finish(quality(out), outputs=[path])
    shutil.rmtree(work)
    return out


def quality(rows: list[dict]) -> dict:
    """Shares of a target's answers: with an answer line, cut at max_new_tokens, correct."""
    n = len(rows)
    return {
        "answers": n,
        "answered": sum(r["predicted"] is not None for r in rows) / n,
        "truncated": sum(r["finish_reason"] == "length" for r in rows) / n,
        "correct": sum(r["correct"] for r in rows) / n,
        "mean_tokens": sum(r["tokens"] for r in rows) / n,
    }


def check_quality(q: dict, cfg, target: str) -> None:
    """Stops with the target and its numbers when it fails the gate (`distill.min_answered`, `max_truncated`)."""
    problems = []
    if q["answered"] < cfg.min_answered:
        problems.append(f"{q['answered']:.0%} of its answers end in an answer line (the gate asks {cfg.min_answered:.0%})")
    if q["truncated"] > cfg.max_truncated:
        problems.append(f"{q['truncated']:.0%} stop at max_new_tokens (the gate allows {cfg.max_truncated:.0%})")
    if problems:
        raise WeakTeacher(
            f"target {target} is too weak to teach a draft: {' and '.join(problems)}, over {q['answers']} answers. "
            f"Train it further (profile `sft`, chapter 02), raise distill.max_new_tokens, or relax the gate in the profile's `distill`."
        )


def draft_rows(method: str, answers: list[dict], rationales: list[dict], correct_only: bool) -> list[dict]:
    """A draft's training rows (question, rationale). distilled: what the target wrote (its correct
    answers only with `correct_only`); white_box: all it wrote (the loss is on its distribution);
    teacher_data: chapter 01's rationales (`rationales`, by id) for the same questions."""
    if method == "distilled":
        return [{"question": a["question"], "rationale": a["text"]} for a in answers if a["correct"] or not correct_only]
    if method == "white_box":
        return [{"question": a["question"], "rationale": a["text"]} for a in answers]
    if method == "teacher_data":
        by_id = {r["id"]: r for r in rationales}
        ids = list(dict.fromkeys(a["id"] for a in answers))  # each question once, in order
        return [{"question": by_id[i]["question"], "rationale": by_id[i]["rationale"]} for i in ids]
    raise ValueError(f"unknown draft method {method!r}; choose one of {', '.join(METHODS)}")
