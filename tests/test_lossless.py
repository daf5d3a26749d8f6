"""Greedy speculative outputs are checked as the dtype allows: identical in float32 on a CPU, a
difference at an exact tie is numerical, and a decoder that accepts one token too many is caught."""

import torch

from specbook import lossless, specdec

VOCAB = 12


def prompts(n):
    gen = torch.Generator().manual_seed(3)
    return [torch.randint(0, VOCAB, (3 + i % 4,), generator=gen).tolist() for i in range(n)]


def test_float32_on_a_cpu_stays_identical(tiny_model):
    target, draft = tiny_model(VOCAB, 0, layers=2).float(), tiny_model(VOCAB, 1).float()
    asked = prompts(8)
    alone = [specdec.generate(target, None, p, k=0, max_new_tokens=16) for p in asked]
    for static in (False, True):
        spec = [specdec.generate(target, draft, p, k=4, max_new_tokens=16, static_cache=static) for p in asked]
        assert sum(s.accepted for s in spec) > 0 and sum(s.rejections != [] for s in spec) > 0  # both paths taken
        assert lossless.shares(lossless.classify_all(target, asked, alone, spec)) == {"identical": 1.0, "near-tie": 0.0, "mismatch": 0.0}


def test_a_difference_at_an_exact_tie_is_numerical(tiny_model):
    target = tiny_model(VOCAB, 0).float()
    prompt = [4, 7, 1]
    with torch.no_grad():
        top, other = target(input_ids=torch.tensor([prompt])).logits[0, -1].topk(2).indices.tolist()
        target.lm_head.weight[other] = target.lm_head.weight[top]  # the two rows equal: the logits tie exactly
    alone = specdec.generate(target, None, prompt, k=0, max_new_tokens=4).token_ids
    assert alone[0] == min(top, other)  # argmax takes the first of tied tokens
    parted = [max(top, other), *alone[1:]]  # the other of the two, as another kernel's rounding could pick
    d = lossless.classify(target, prompt, alone, parted)
    assert (d.kind, d.position, d.alone, d.speculative, d.gap) == ("near-tie", 0, alone[0], parted[0], 0.0)
    third = target(input_ids=torch.tensor([prompt])).logits[0, -1].topk(3).indices[2].item()
    assert lossless.classify(target, prompt, alone, [third, *alone[1:]]).kind == "mismatch"  # not one of the tied two
    assert lossless.classify(target, prompt, alone, alone[:2]).kind == "mismatch"  # stopping early is no tie


def test_a_decoder_that_accepts_one_token_too_many_is_caught(tiny_model, monkeypatch):
    target, draft = tiny_model(VOCAB, 0, layers=2), tiny_model(VOCAB, 1)
    asked = prompts(6)
    alone = [specdec.generate(target, None, p, k=0, max_new_tokens=16) for p in asked]
    correct = specdec.greedy_accepted
    monkeypatch.setattr(specdec, "greedy_accepted", lambda proposals, choices: min(correct(proposals, choices) + 1, len(proposals)))
    buggy = [specdec.generate(target, draft, p, k=4, max_new_tokens=16) for p in asked]
    differences = lossless.classify_all(target, asked, alone, buggy)
    assert lossless.shares(differences)["mismatch"] > 0.5
    try:
        lossless.check(differences, [f"q{i}" for i in range(len(asked))], "planted bug")
    except AssertionError as e:
        assert "a decoder bug" in str(e) and "q0: at token" in str(e)
    else:
        raise AssertionError("the planted bug went unnoticed")


def test_vllms_target_is_read_from_its_weights_once_vllm_has_let_the_gpu_go(tiny_model, tmp_path):
    target = tiny_model(VOCAB, 0)
    target.save_pretrained(tmp_path)

    class Vllm:  # what lossless reads of engines.vllm_engine.VllmEngine: a model path, an adapter, close()
        model, lora, closed = str(tmp_path), None, False

        def close(self):
            self.closed = True

    engine = Vllm()
    loaded = lossless.target_model(engine)
    assert engine.closed and torch.equal(loaded.lm_head.weight, target.lm_head.weight)
