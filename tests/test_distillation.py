import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from specbook import distillation, engines, jsonl, tokens, training
from specbook.profiles import Distill

CFG = Distill(questions_per_level=6, max_new_tokens=40, correct_only=False, min_answered=0.5, max_truncated=0.5, test_rows=2)
QUESTIONS = [
    {"id": f"q{i}", "question": f"A farm has {i} cows and {i + 1} ducks. How many legs?", "answer": str(6 * i + 2)} for i in range(6)
]


@pytest.fixture(scope="module")
def saved_target(tmp_path_factory, tiny_model):
    """A small random model saved with its tokenizer, as chapter 02 saves a merged target."""
    tok = tokens.train_tokenizer([q["question"] + " Answer: 12 legs" for q in QUESTIONS] * 10, vocab_size=300, split_digits=True)
    path = tmp_path_factory.mktemp("models") / "target"
    tiny_model(len(tok), 0, layers=2, logit_scale=4.0, eos_token_id=tok.eos_token_id).save_pretrained(path)
    tok.save_pretrained(path)
    return path


# Run in a child process so that it can be killed for real, part-way.
CHILD = """
import sys
from specbook import distillation, engines
from specbook.profiles import Distill
import json
cfg = Distill(**json.loads(sys.argv[3]))
engine = engines.NativeEngine.load(sys.argv[1])
slow = engine.generate
def generate(*a, **kw):
    import time; out = slow(*a, **kw); time.sleep(float(sys.argv[5])); return out
engine.generate = generate
distillation.answer(engine, sys.argv[1], json.loads(sys.argv[4]), "cod", cfg, sys.argv[2], seed=0, batch_size=2)
"""


def _child(target, directory, sleep):
    args = [sys.executable, "-c", CHILD, str(target), str(directory), json.dumps(CFG.__dict__), json.dumps(QUESTIONS), str(sleep)]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_a_killed_distillation_resumes_with_no_row_lost_or_repeated(saved_target, tmp_path):
    directory = tmp_path / "cod_easy"
    log = directory / "work" / "answers.jsonl"
    child = _child(saved_target, directory, sleep=30)  # each batch of 2 then waits: the kill lands between batches
    deadline = time.time() + 120
    while not (log.exists() and jsonl.read_log(log)) and time.time() < deadline:
        time.sleep(0.2)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    partial = jsonl.read_log(log)
    assert 0 < len(partial) < len(QUESTIONS) and not (directory / distillation.ROWS).exists()
    engine = engines.NativeEngine.load(str(saved_target))
    calls = []
    original = engine.generate
    engine.generate = lambda prompts, *a, **kw: calls.append(len(prompts)) or original(prompts, *a, **kw)
    rows = distillation.answer(engine, str(saved_target), QUESTIONS, "cod", CFG, directory, seed=0, batch_size=2)
    assert sum(calls) == len(QUESTIONS) - len(partial)  # only what the killed run had not made
    assert [r["id"] for r in rows] == [q["id"] for q in QUESTIONS]
    whole = distillation.answer(
        engines.NativeEngine.load(str(saved_target)), str(saved_target), QUESTIONS, "cod", CFG, tmp_path / "whole", 0, 2
    )
    assert rows == whole  # the same rows as an uninterrupted run, to the byte
    assert (directory / distillation.ROWS).read_bytes() == (tmp_path / "whole" / distillation.ROWS).read_bytes()
    assert jsonl.read(directory / distillation.ROWS) == rows and not (directory / "work").exists()
    for row, q in zip(rows, QUESTIONS, strict=True):
        assert row["question"] == q["question"] and row["finish_reason"] in ("stop", "length") and row["tokens"] > 0
        assert row["correct"] is False or row["predicted"] is not None
    calls.clear()
    assert distillation.answer(engine, str(saved_target), QUESTIONS, "cod", CFG, directory, seed=0, batch_size=2) == rows
    assert calls == []  # finished: nothing generated again


def _row(text, finish="stop", correct=False, predicted=None, qid="q0", tokens_=5):
    return {
        "id": qid,
        "question": "Q?",
        "text": text,
        "tokens": tokens_,
        "finish_reason": finish,
        "predicted": predicted,
        "correct": correct,
    }


def test_quality_and_the_gate_name_the_target_and_its_numbers():
    rows = [
        _row("a\nAnswer: 3", predicted="3", correct=True),
        _row("b\nAnswer: 4", predicted="4"),
        _row("c c c", finish="length"),
        _row("d", tokens_=9),
    ]
    q = distillation.quality(rows)
    assert q == {"answers": 4, "answered": 0.5, "truncated": 0.25, "correct": 0.25, "mean_tokens": 6.0}
    distillation.check_quality(q, Distill(1, 8, False, min_answered=0.5, max_truncated=0.25, test_rows=1), "target_cod_easy")
    with pytest.raises(distillation.WeakTeacher) as err:
        distillation.check_quality(q, Distill(1, 8, False, min_answered=0.6, max_truncated=0.2, test_rows=1), "target_cod_hard")
    message = str(err.value)
    assert "target_cod_hard is too weak" in message and "50% of its answers end in an answer line (the gate asks 60%)" in message
    assert "25% stop at max_new_tokens (the gate allows 20%)" in message and "over 4 answers" in message


def test_draft_rows_per_method():
    answers = [_row("x\nAnswer: 1", correct=True, qid="a"), _row("y", qid="b")]
    rationales = [{"id": "b", "question": "QB", "rationale": "rb"}, {"id": "a", "question": "QA", "rationale": "ra"}]
    assert distillation.draft_rows("distilled", answers, rationales, correct_only=False) == [
        {"question": "Q?", "rationale": "x\nAnswer: 1"},
        {"question": "Q?", "rationale": "y"},
    ]
    assert distillation.draft_rows("distilled", answers, rationales, correct_only=True) == [{"question": "Q?", "rationale": "x\nAnswer: 1"}]
    assert distillation.draft_rows("white_box", answers, rationales, correct_only=True) == distillation.draft_rows(
        "distilled", answers, rationales, correct_only=False
    )
    assert distillation.draft_rows("teacher_data", answers, rationales, correct_only=False) == [
        {"question": "QA", "rationale": "ra"},
        {"question": "QB", "rationale": "rb"},
    ]
    with pytest.raises(ValueError, match="unknown draft method 'black_box'"):
        distillation.draft_rows("black_box", answers, rationales, False)


def test_distillation_loss_is_the_forward_kl_on_the_rationale_tokens():
    torch.manual_seed(0)
    student, teacher = torch.randn(2, 4, 5), torch.randn(2, 4, 5)
    labels = torch.tensor([[-100, -100, 3, 1], [-100, 2, 0, -100]])  # position t's logits predict label t+1
    positions = [(0, 1), (0, 2), (1, 0), (1, 1)]
    # the whole vocabulary: the exact KL
    loss = training.distillation_loss(student, *training.teacher_top_k(teacher, labels, 5), labels)
    by_hand = []
    for b, t in positions:
        p, q = teacher[b, t].softmax(-1), student[b, t].softmax(-1)
        by_hand.append(float((p * (p / q).log()).sum()))
    assert math.isclose(float(loss), sum(by_hand) / 4, rel_tol=1e-6)
    # the teacher's top 2, renormalised, against the student's probabilities of those two tokens
    logprobs, ids = training.teacher_top_k(teacher, labels, 2)
    assert ids.tolist() == [teacher[b, t].topk(2).indices.tolist() for b, t in positions]
    by_hand = []
    for b, t in positions:
        top = teacher[b, t].topk(2).indices
        p, q = teacher[b, t, top].softmax(-1), student[b, t].softmax(-1)[top]
        by_hand.append(float((p * (p / q).log()).sum()))
    assert math.isclose(float(training.distillation_loss(student, logprobs, ids, labels)), sum(by_hand) / 4, rel_tol=1e-6)
    assert float(training.distillation_loss(teacher, logprobs, ids, labels)) > 0  # the student's tail holds mass the top 2 lack
    assert float(training.distillation_loss(teacher, *training.teacher_top_k(teacher, labels, 5), labels)) == pytest.approx(0.0, abs=1e-6)


VOCAB = 16
SEQUENCES = {  # token ids, and how many leading tokens are prompt (no loss)
    "a": ([1, 2, 3, 4, 5, 6], 2),
    "b": ([7, 8, 9, 10], 1),
    "c": ([11, 12, 13, 14, 15], 3),
}


def padded(names):
    """A padded batch of these sequences, as TRL collates without padding_free."""
    width = max(len(SEQUENCES[n][0]) for n in names)
    ids, labels, mask = [], [], []
    for n in names:
        seq, prompt = SEQUENCES[n]
        pad = width - len(seq)
        ids.append(seq + [0] * pad)
        labels.append([-100] * prompt + seq[prompt:] + [-100] * pad)
        mask.append([1] * len(seq) + [0] * pad)
    return {"input_ids": torch.tensor(ids), "labels": torch.tensor(labels), "attention_mask": torch.tensor(mask)}


def flattened(names):
    """The same sequences padding-free: one row, positions starting again at 0, no attention mask."""
    rows = [SEQUENCES[n] for n in names]
    return {
        "input_ids": torch.tensor([[t for seq, _ in rows for t in seq]]),
        "labels": torch.tensor([[x for seq, p in rows for x in [-100] * p + seq[p:]]]),
        "position_ids": torch.tensor([[i for seq, _ in rows for i in range(len(seq))]]),
    }


def white_box(teacher):
    return training._distillation_trainer(object, teacher, k=4)()  # compute_loss needs nothing of a Trainer


def test_the_white_box_teacher_runs_once_per_sequence_in_padding_free_batches(tiny_model, monkeypatch):
    """Unsloth trains padding-free: each epoch flattens other sequences together. Keyed by sequence,
    the teacher's top k are computed in the first epoch only, and are what a padded batch gets."""
    teacher, student = tiny_model(VOCAB, 0), tiny_model(VOCAB, 1, logit_scale=4.0)
    calls = []
    original = training.teacher_top_k
    monkeypatch.setattr(training, "teacher_top_k", lambda *a: calls.append(1) or original(*a))
    trainer = white_box(teacher)
    first = [trainer.compute_loss(student, flattened(names)) for names in (["a", "b"], ["c"])]
    assert len(calls) == 2 and all(loss > 0 for loss in first)
    again = trainer.compute_loss(student, flattened(["c", "a"]))  # another epoch, another composition
    assert len(calls) == 2
    assert float(again) == pytest.approx(float(white_box(teacher).compute_loss(student, padded(["c", "a"]))), rel=1e-9)


def test_accumulated_white_box_losses_add_up_to_the_mean_over_all_their_tokens(tiny_model):
    """With gradient accumulation the Trainer passes num_items_in_batch (every rationale token of the
    step) and leaves the losses undivided: each batch's loss is its summed KL over that count."""
    teacher, student = tiny_model(VOCAB, 0), tiny_model(VOCAB, 1, logit_scale=4.0)
    whole = float(white_box(teacher).compute_loss(student, padded(["a", "b", "c"])))  # one batch: the mean over its 9 tokens
    tokens_per_step = sum(len(seq) - prompt for seq, prompt in SEQUENCES.values())
    halves = [white_box(teacher).compute_loss(student, padded(names), num_items_in_batch=tokens_per_step) for names in (["a"], ["b", "c"])]
    assert tokens_per_step == 9 and float(sum(halves)) == pytest.approx(whole, rel=1e-6)  # the loss is summed in float32
