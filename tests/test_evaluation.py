"""Scoring an engine's answers: the prompt format of training, the strict checker, the interval."""

import pytest

from specbook import evaluation, stats, tokens
from specbook.engines import Generation
from specbook.prompts import STUDENT_SYSTEM, chat_prompt


class Replies:
    """An engine that answers each question from a table and records the prompts it got."""

    def __init__(self, tokenizer, replies):
        self.tokenizer, self.replies, self.prompts = tokenizer, replies, []

    def generate(self, prompts, sampling, speculative=None, batch_size=1):
        self.prompts += prompts
        out = []
        for p in prompts:
            text = next(v for k, v in self.replies.items() if k in p)
            out.append(Generation(text=text, token_ids=list(range(len(text.split()))), finish_reason="stop", latency_s=0.0))
        return out


def test_score_checks_every_answer_strictly():
    tok = tokens.train_tokenizer(["How many legs? Answer: 8"] * 20, vocab_size=300, split_digits=True)
    rows = [
        {"id": "a", "question": "2 dogs?", "answer": "8"},
        {"id": "b", "question": "1 duck?", "answer": "2"},
        {"id": "c", "question": "3 cats?", "answer": "12"},
    ]
    engine = Replies(tok, {"2 dogs": "dog 2*4=8\nAnswer: 8", "1 duck": "duck 1*2=2\nAnswer: 2.0", "3 cats": "3*4=12"})
    result = evaluation.score(engine, rows, "cod", max_new_tokens=16)
    assert engine.prompts[0] == chat_prompt(tok, STUDENT_SYSTEM["cod"], "2 dogs?")  # the training format, exactly
    assert [a["correct"] for a in result.answers] == [True, True, False]  # no answer line: wrong, not guessed
    assert [a["predicted"] for a in result.answers] == ["8", "2.0", None]
    assert (result.n, result.correct, result.accuracy) == (3, 2, pytest.approx(2 / 3))
    assert (result.ci_low, result.ci_high) == stats.wilson_interval(2, 3)
    assert result.mean_tokens == pytest.approx((4 + 4 + 1) / 3)
