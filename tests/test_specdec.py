"""The speculative decoder is lossless: greedy output equals the target's own, and sampled
sequences follow the target's joint distribution (a chi-square test that fails for a wrong residual).
Every test that runs a model runs on the CPU and, wherever a GPU is at hand, on it too (`device`)."""

from types import SimpleNamespace

import pytest
import torch

from specbook import lossless, specdec
from specbook.stats import chi_square_p

VOCAB = 12


class Contrarian(torch.nn.Module):
    """A draft that always proposes the target's second choice: greedy never accepts it."""

    def __init__(self, target):
        super().__init__()
        self.inner, self.config, self.device = target, target.config, target.device

    def forward(self, **kwargs):
        logits = self.inner(**kwargs).logits.clone()
        top2 = logits.topk(2, dim=-1).indices
        logits.scatter_(-1, top2[..., :1], float("-inf"))
        return SimpleNamespace(logits=logits)


@pytest.fixture(params=[False, True], ids=["dynamic cache", "static cache"])
def static(request):
    """The decoder's two caches: grown as tokens come (a CPU's), or allocated once and rolled back
    by position (a GPU's, here without CUDA graphs): every test below passes through both."""
    return request.param


@pytest.fixture(scope="module")
def target(tiny_model, device):
    return tiny_model(VOCAB, 0, layers=2, device=device)


@pytest.fixture(scope="module")
def draft(tiny_model, device):
    return tiny_model(VOCAB, 1, device=device)


def reference_greedy(model, prompt, n):
    ids = torch.tensor([prompt], device=model.device)
    out = model.generate(
        ids,
        attention_mask=torch.ones_like(ids),
        max_new_tokens=n,
        do_sample=False,
        top_k=None,
        top_p=None,
        temperature=None,
        eos_token_id=None,
        pad_token_id=0,
    )
    return out[0, len(prompt) :].tolist()


@pytest.mark.parametrize("k", [1, 2, 3, 5, 8])
def test_greedy_equals_the_target_alone(target, draft, k, static):
    for seed in range(6):
        prompt = torch.randint(0, VOCAB, (3 + seed,), generator=torch.Generator().manual_seed(seed)).tolist()
        expected = reference_greedy(target, prompt, 20)
        assert specdec.generate(target, None, prompt, k=0, max_new_tokens=20, static_cache=static).token_ids == expected
        assert specdec.generate(target, draft, prompt, k=k, max_new_tokens=20, static_cache=static).token_ids == expected


def test_the_decoding_time_is_split_between_the_two_models_and_the_decoder(target, draft):
    if target.device.type != "cpu":
        pytest.skip("the decoder times its models' passes on a CPU only (elsewhere a call returns before its kernels run)")
    r = specdec.generate(target, draft, [1, 2, 3], k=3, max_new_tokens=20)
    decoding = r.latency_s - r.ttft_s  # after the first step
    assert r.steps > 2 and 0 < r.draft_s and 0 < r.target_s and r.draft_s + r.target_s < decoding
    plain = specdec.generate(target, None, [1, 2, 3], k=0, max_new_tokens=20)
    assert plain.draft_s < plain.target_s / 10  # no draft: only the timer's own reading


def test_greedy_with_drafts_that_always_agree_or_always_disagree(target, static):
    prompt = [1, 2, 3]
    expected = reference_greedy(target, prompt, 10)
    agree = specdec.generate(target, target, prompt, k=4, max_new_tokens=10, static_cache=static)
    disagree = specdec.generate(target, Contrarian(target), prompt, k=4, max_new_tokens=5, static_cache=static)
    assert agree.token_ids == expected and disagree.token_ids == expected[:5]
    # hand-computed accounting: 10 tokens as 4 accepted + bonus, twice
    assert (agree.steps, agree.proposed, agree.accepted, agree.accepted_at) == (2, 8, 8, [2, 2, 2, 2])
    assert agree.tested_at == [2, 2, 2, 2]
    # one token per step; near the end only what can still be emitted is proposed: 4+3+2+1+0
    assert (disagree.steps, disagree.proposed, disagree.accepted, disagree.accepted_at) == (5, 10, 0, [0, 0, 0, 0])
    assert disagree.tested_at == [4, 0, 0, 0]  # the last step proposed nothing: no position was tested


def test_stops_at_eos(target, static):
    prompt = [1, 2, 3]
    full = reference_greedy(target, prompt, 12)
    eos = full[4]
    result = specdec.generate(target, target, prompt, k=3, max_new_tokens=12, eos_token_ids={eos}, static_cache=static)
    assert result.token_ids == full[: full.index(eos) + 1] and result.finish_reason == "stop"


def test_prompt_lookup_proposes_what_followed_the_first_occurrence():
    assert specdec.ngram_proposals([5, 6, 7, 8, 5, 6, 9, 5, 6], k=2, ngram_max=2) == [7, 8]  # (5, 6) first at 0
    assert specdec.ngram_proposals([1, 2, 3, 9, 3], k=4, ngram_max=3) == [9, 3]  # only n = 1 recurs; the sequence ends
    assert specdec.ngram_proposals([1, 2, 3], k=2, ngram_max=3) == []
    assert specdec.ngram_proposals([4], k=2, ngram_max=3) == []


@pytest.mark.parametrize("k", [1, 3])
def test_greedy_prompt_lookup_equals_the_target_alone(target, k, static):
    prompt = [1, 2, 3, 1, 2, 3, 1, 2]
    expected = reference_greedy(target, prompt, 20)
    result = specdec.generate(target, None, prompt, k=k, max_new_tokens=20, ngram_max=3, static_cache=static)
    assert result.token_ids == expected and result.proposed > 0
    assert len(result.token_ids) == result.steps + result.accepted


def test_refuses_models_with_different_vocabularies(target, tiny_model):
    with pytest.raises(specdec.VocabularyMismatch, match=f"target has {VOCAB} tokens, draft has {VOCAB + 1}"):
        specdec.generate(target, tiny_model(VOCAB + 1, 2, device=target.device), [1], k=2, max_new_tokens=2)


# Sampling is tested on whole sequences longer than K + 1, over a binary vocabulary (2^L cells, few
# enough for a chi-square test of the joint distribution): every draft position is tested, rejections
# come after partial acceptances, and bonus tokens are followed by further steps.
BINARY = 2
N_SAMPLES = 1000


@pytest.fixture(scope="module")
def sampling_case(tiny_model, device):
    """A target with spread next-token distributions and a draft sure of its own choices: it agrees
    with the target in some contexts and not in others, so acceptances, partial acceptances and
    rejections are all frequent."""
    target = tiny_model(BINARY, 0, layers=2, logit_scale=2.0, device=device)
    draft = tiny_model(BINARY, 1, logit_scale=8.0, device=device)
    return target, draft, [1, 0]


def sampled_sequences(target, draft, prompt, k, n, static=False, **kwargs):
    """n sequences of k + 2 tokens, one random stream for all (a test of the decoder, not of torch's
    seeding), counted by sequence; and how often the first step accepted some but not all
    proposals, all of them (then a bonus token), and anything past the first draft position."""
    rng = torch.Generator(device=target.device).manual_seed(2024)  # the decoder draws on the model's device
    runs = [
        specdec.generate(target, draft, prompt, k=k, max_new_tokens=k + 2, temperature=1.0, seed=rng, static_cache=static, **kwargs)
        for _ in range(n)
    ]
    return lossless.sequence_counts([r.token_ids for r in runs], BINARY), lossless.branches_taken(runs, k)


def test_the_exact_distribution_multiplies_the_next_token_distributions(sampling_case):
    target, _, prompt = sampling_case
    joint = lossless.sequence_distribution(target, prompt, 3)
    with torch.no_grad():
        logits = [target(torch.tensor([prompt + s], device=target.device)).logits[0, -1] for s in ([], [1], [1, 0])]
    step = [specdec.probabilities(x, 1.0, 1.0) for x in logits]
    assert joint.shape == (2, 2, 2) and joint.sum() == pytest.approx(1.0)
    assert joint[1, 0, 1] == pytest.approx(float(step[0][1] * step[1][0] * step[2][1]))


@pytest.mark.parametrize("k", [2, 4])
def test_sampling_matches_the_target_distribution(sampling_case, k, static):
    target, draft, prompt = sampling_case
    counts, seen = sampled_sequences(target, draft, prompt, k, N_SAMPLES, static)
    assert min(seen.values()) > N_SAMPLES // 10, f"the test must reach every branch of the decoder: {seen}"
    assert chi_square_p(counts, lossless.sequence_distribution(target, prompt, k + 2)) > 1e-3


@pytest.mark.parametrize("k", [2, 4])
def test_the_chi_square_test_catches_a_wrong_residual(sampling_case, k, monkeypatch):
    target, draft, prompt = sampling_case
    # a common slip: after a rejection, resample from p instead of from norm(max(0, p - q))
    monkeypatch.setattr(specdec, "residual_distribution", lambda p, q: p)
    counts, _ = sampled_sequences(target, draft, prompt, k, N_SAMPLES)
    assert chi_square_p(counts, lossless.sequence_distribution(target, prompt, k + 2)) < 1e-3


def test_prompt_lookup_sampling_matches_the_target_distribution(sampling_case, static):
    """Certain proposals (q = 1): accepted with probability p(x), else a draw from p without x."""
    target, _, prompt = sampling_case
    lookup_prompt = prompt * 3  # the prompt's tokens recur, so lookup proposes at every step
    counts, seen = sampled_sequences(target, None, lookup_prompt, 2, N_SAMPLES, static, ngram_max=2)
    assert min(seen.values()) > 0
    assert chi_square_p(counts, lossless.sequence_distribution(target, lookup_prompt, 4)) > 1e-3


def test_top_p_keeps_the_smallest_nucleus():
    probs = specdec.probabilities(torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05])), 1.0, 0.8)
    assert torch.allclose(probs, torch.tensor([0.625, 0.375, 0.0, 0.0], dtype=torch.float64))
    assert specdec.residual_distribution(probs, probs).sum() == 1.0


def test_a_generator_continues_its_stream_across_calls(target, draft, static):
    def draws(rng):
        return [
            specdec.generate(target, draft, [4, 7], k=3, max_new_tokens=6, temperature=1.0, seed=rng, static_cache=static).token_ids
            for _ in range(4)
        ]

    first = draws(torch.Generator(device=target.device).manual_seed(7))
    assert first == draws(torch.Generator(device=target.device).manual_seed(7))  # reproducible from the generator's seed
    assert len({tuple(t) for t in first}) > 1  # each call draws on, it does not restart the stream


@torch.inference_mode()  # as the decoder runs (its caches are inference tensors)
def test_a_static_cache_rolls_back_by_position_and_is_kept_for_the_next_request(target):
    cached = specdec.static_cached(target, "target", need=20)
    assert cached.max_len == 256 and cached.graphs == (target.device.type == "cuda")  # rounded up; graphs only on CUDA
    cached.forward([1, 2, 3, 4, 5])
    keys = [layer.keys.data_ptr() for layer in cached.cache.layers]
    cached.keep(2)
    assert cached.length == 2 and [int(layer.cumulative_length) for layer in cached.cache.layers] == [2] * len(keys)
    cached.forward([3])  # written at position 2, over the stale token
    assert [layer.keys.data_ptr() for layer in cached.cache.layers] == keys and cached.length == 3
    again = specdec.static_cached(target, "target", need=30)
    assert again is cached and again.length == 0  # the same buffers, emptied
    assert specdec.static_cached(target, "draft", need=30) is not cached  # one model may be target and draft
    assert specdec.static_cached(target, "target", need=300).max_len == 512  # too short: a longer one replaces it
    with pytest.raises(ValueError, match="do not fit this static cache of 512"):
        specdec.static_cached(target, "target", need=300).forward(list(range(513)))


def test_the_cache_is_passed_under_the_name_transformers_knows():
    assert specdec.cache_argument("5.17.0") == "past_key_values"  # the GPU environment's
    assert specdec.cache_argument("5.25.0") == "cache"  # renamed there; the old name goes in 5.40


def test_steps_rebuild_each_verification_from_the_record():
    # step 1 accepts 2 and the target corrects the third proposal (9 -> 5); step 2 accepts all (bonus 7);
    # step 3 accepts 1 before the answer ends
    record = specdec.steps([1, 2, 5, 3, 4, 7, 6], [2, 2, 1], [(2, 9, 5)])
    assert record == [specdec.Step([1, 2], 9, 5), specdec.Step([3, 4], None, 7), specdec.Step([6], None, None)]


def test_steps_of_a_real_run_give_back_its_answer(target, draft):
    r = specdec.generate(target, draft, [1, 2, 3], k=3, max_new_tokens=20)
    record = specdec.steps(r.token_ids, r.step_accepts, r.rejections)
    assert [t for s in record for t in [*s.accepted, s.target] if t is not None] == r.token_ids
    assert sum(s.rejected is not None for s in record) == len(r.rejections)
