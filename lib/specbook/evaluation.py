"""Accuracy of a model on test problems: one prompt format, the strict checker, a 95 % interval."""

from __future__ import annotations

import math
from dataclasses import dataclass

from specbook.answers import extract_answer, is_correct
from specbook.engines import Generation, Sampling, Speculative
from specbook.prompts import STUDENT_SYSTEM, chat_prompt
from specbook.stats import wilson_interval


@dataclass(frozen=True)
class Score:
    """Accuracy of one model on one set of problems, with what it wrote."""

    n: int
    correct: int
    accuracy: float
    ci_low: float  # 95 % Wilson interval
    ci_high: float
    mean_tokens: float
    answers: list[dict]  # per problem: id, gold, predicted, tokens, finish_reason, text, correct
    generations: list[Generation]


def score(
    engine,
    rows: list[dict],
    style: str,
    max_new_tokens: int,
    speculative: Speculative | None = None,
    batch_size: int = 1,
    temperature: float = 0.0,
    seed: int = 0,
) -> Score:
    """Answers of `engine` to rows (question, answer) under the style's system prompt, greedy unless
    `temperature` > 0 (batch_size > 1: batched, for throughput; see `engines`)."""
    sampling = Sampling(max_new_tokens=max_new_tokens, temperature=temperature, seed=seed)
    return grade(rows, engine.generate(prompts(engine.tokenizer, rows, style), sampling, speculative, batch_size))


def prompts(tokenizer, rows: list[dict], style: str) -> list[str]:
    """The chat prompts of rows (question, answer) under the style's system prompt."""
    return [chat_prompt(tokenizer, STUDENT_SYSTEM[style], r["question"]) for r in rows]


def grade(rows: list[dict], generations: list[Generation]) -> Score:
    """Accuracy of the generations, one per row, by the strict checker."""
    answers = []
    for r, g in zip(rows, generations, strict=True):
        predicted = extract_answer(g.text)
        answers.append(
            {
                "id": r["id"],
                "gold": r["answer"],
                "predicted": predicted,
                "tokens": len(g.token_ids),
                "finish_reason": g.finish_reason,
                "text": g.text,
                "correct": is_correct(predicted, r["answer"]),
            }
        )
    correct = sum(a["correct"] for a in answers)
    low, high = wilson_interval(correct, len(answers))
    return Score(
        n=len(answers),
        correct=correct,
        accuracy=correct / len(answers) if answers else math.nan,
        ci_low=low,
        ci_high=high,
        mean_tokens=sum(a["tokens"] for a in answers) / max(1, len(answers)),
        answers=answers,
        generations=generations,
    )
