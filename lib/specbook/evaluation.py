"""Accuracy of a model on test problems: one prompt format, the strict checker, a 95 % interval."""

from __future__ import annotations

import math

from specbook.answers import extract_answer, is_correct
from specbook.engines import Sampling
from specbook.prompts import STUDENT_SYSTEM, chat_prompt
from specbook.stats import wilson_interval


def score(engine, rows: list[dict], style: str, max_new_tokens: int, speculative=None) -> dict:
    """Greedy answers of `engine` to rows (question, answer) under the style's system prompt."""
    prompts = [chat_prompt(engine.tokenizer, STUDENT_SYSTEM[style], r["question"]) for r in rows]
    generations = engine.generate(prompts, Sampling(max_new_tokens=max_new_tokens), speculative)
    answers = [
        {
            "id": r["id"],
            "gold": r["answer"],
            "predicted": extract_answer(g.text),
            "tokens": len(g.token_ids),
            "finish_reason": g.finish_reason,
            "text": g.text,
        }
        for r, g in zip(rows, generations, strict=True)
    ]
    for a in answers:
        a["correct"] = is_correct(a["predicted"], a["gold"])
    correct = sum(a["correct"] for a in answers)
    low, high = wilson_interval(correct, len(answers))
    return {
        "n": len(answers),
        "correct": correct,
        "accuracy": correct / len(answers) if answers else math.nan,
        "ci_low": low,
        "ci_high": high,
        "mean_tokens": sum(a["tokens"] for a in answers) / max(1, len(answers)),
        "answers": answers,
        "generations": generations,
    }
