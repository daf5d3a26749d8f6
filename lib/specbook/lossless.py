"""Greedy speculative decoding writes the target's own tokens, as far as the dtype allows.

In exact arithmetic a greedy speculative output equals the target's greedy output. On a GPU in
bf16 it need not: the verify pass over K + 1 tokens and a 1-token step run different kernels,
whose sums round differently, so where the target's two best tokens are nearly tied the argmax can
flip, and the two outputs part there (vLLM documents losslessness "up to the precision limits of
hardware numerics"). A bug parts them anywhere else. So an output that differs is classified at its
first differing position, from the target's own logits on the shared prefix:

- near-tie: both tokens' logits lie within `TIE_ULPS` units in the last place (of the dtype, at
  the top logit) of the top logit: a rounding difference can flip them;
- mismatch: anything else (a token far from the top, or one output stopping where the other goes
  on): a bug, which the chapters stop on.

In float32 or float64 on a CPU the outputs are identical (the tests hold them to it).

Sampled speculative decoding is lossless in distribution: the sequences it writes follow the
target's own distribution. `sequence_distribution` gives that distribution exactly, for a toy
vocabulary, so that a chi-square test can compare a decoder's samples with it (chapter 00 and the
decoder's tests), whole sequences at once rather than one position at a time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

KINDS = ("identical", "near-tie", "mismatch")
# Two logits this many units in the last place apart can swap under another summation order
# (a verify pass against a step); a bug's token is typically many logits' worth away.
TIE_ULPS = 4


@dataclass(frozen=True)
class Difference:
    """How a greedy speculative output compares with the target alone's: `kind` one of KINDS;
    where they part, the position in the answer, each one's token there, the target's top logit
    minus the lower of the two tokens' logits (`gap`), and the tolerance it was held to."""

    kind: str
    position: int | None = None
    alone: int | None = None
    speculative: int | None = None
    gap: float | None = None
    tolerance: float | None = None


def ulp(value: float, dtype: torch.dtype) -> float:
    """The spacing of `dtype`'s numbers at `value` (a unit in the last place): 2^-7 of its power of
    two in bf16, 2^-23 in float32."""
    info = torch.finfo(dtype)
    return info.eps * 2.0 ** math.floor(math.log2(abs(value))) if value else info.tiny


def first_difference(a: list[int], b: list[int]) -> int | None:
    """The first position where two token lists differ (the shorter one's length when it is a
    prefix of the longer), None when they are equal."""
    if a == b:
        return None
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


@torch.inference_mode()
def classify(model, prompt_ids: list[int], alone_ids: list[int], speculative_ids: list[int], ulps: int = TIE_ULPS) -> Difference:
    """Compare a greedy speculative output with the target alone's on the same prompt; where they
    part, read the target's logits after the prompt and the shared prefix (one forward pass of
    `model`, the target, in its own dtype) and call the step a near-tie or a mismatch."""
    j = first_difference(alone_ids, speculative_ids)
    if j is None:
        return Difference("identical")
    a = alone_ids[j] if j < len(alone_ids) else None
    b = speculative_ids[j] if j < len(speculative_ids) else None
    if a is None or b is None:  # one stopped where the other went on with the same tokens: no tie explains that
        return Difference("mismatch", j, a, b)
    ids = torch.tensor([list(prompt_ids) + alone_ids[:j]], device=model.device)
    logits = model(input_ids=ids).logits[0, -1].float()
    top = logits.max().item()
    gap = top - min(logits[a].item(), logits[b].item())
    tolerance = ulps * ulp(top, next(model.parameters()).dtype)
    return Difference("near-tie" if gap <= tolerance else "mismatch", j, a, b, gap, tolerance)


def classify_all(model, prompts_ids: list[list[int]], alone: list, speculative: list) -> list[Difference]:
    """`classify` for each request (generations with `token_ids`, in the same order): the target's
    forward pass only where the outputs differ."""
    return [
        classify(model, p, a.token_ids, s.token_ids) if a.token_ids != s.token_ids else Difference("identical")
        for p, a, s in zip(prompts_ids, alone, speculative, strict=True)
    ]


def shares(differences: list[Difference]) -> dict[str, float]:
    """The share of requests of each kind (identical, near-tie, mismatch)."""
    n = len(differences)
    return {kind: sum(d.kind == kind for d in differences) / n if n else math.nan for kind in KINDS}


def check(differences: list[Difference], ids: list, what: str) -> None:
    """Stop on a mismatch (a decoder bug), naming each request, where it parted and the tokens."""
    bad = [(i, d) for i, d in zip(ids, differences, strict=True) if d.kind == "mismatch"]
    if bad:
        listed = "; ".join(f"{i}: at token {d.position}, alone {d.alone}, speculative {d.speculative}, gap {d.gap}" for i, d in bad)
        raise AssertionError(
            f"{what}: {len(bad)} greedy speculative outputs part from the target alone where no near-tie explains it "
            f"(a decoder bug): {listed}"
        )


def target_model(engine):
    """The engine's target as an in-process transformers model, whose logits `classify` reads: the
    in-process engines' own; for vLLM the same weights (the base with its adapter merged), loaded
    once vLLM has handed the GPU back."""
    if not isinstance(engine.model, str):
        return engine.model
    from specbook import models

    engine.close()
    model = models.load_causal_lm(engine.model)
    if engine.lora is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, engine.lora).merge_and_unload()
    return model


def classify_runs(engine, prompts: list, alone: list, speculative: dict) -> dict:
    """`classify_all` for each speculative run ({key: generations}) against `alone` (the target's
    own generations of the same prompts, text or token ids), with the engine's target; a target is
    loaded only where the engine holds none (vLLM) and some output differs."""
    ids = [engine.tokenizer(p, add_special_tokens=False)["input_ids"] if isinstance(p, str) else list(p) for p in prompts]
    differ = any(a.token_ids != s.token_ids for run in speculative.values() for a, s in zip(alone, run, strict=True))
    model = target_model(engine) if differ else None
    out = {key: classify_all(model, ids, alone, run) for key, run in speculative.items()}
    if model is not None and isinstance(engine.model, str):
        from specbook import models

        del model
        models.free_memory()  # before vLLM starts again
    return out


@torch.inference_mode()
def sequence_distribution(model, prompt_ids: list[int], length: int, temperature: float = 1.0) -> np.ndarray:
    """The target's exact distribution of its next `length` sampled tokens, P(x1..xL | prompt) =
    p(x1 | prompt) · p(x2 | prompt, x1) · ...: an array of shape (V,) * length, every prefix
    enumerated (V^(L-1) sequences at the last depth, one batched forward pass per depth; a toy
    vocabulary only)."""
    from specbook.specdec import probabilities

    prefixes = torch.tensor([list(prompt_ids)], device=model.device)
    joint = torch.ones(1, dtype=torch.float64, device=model.device)
    for _ in range(length):
        p = probabilities(model(input_ids=prefixes).logits[:, -1], temperature, 1.0)  # (prefixes, V)
        vocab = p.shape[-1]
        joint = (joint[:, None] * p).reshape(-1)  # index: prefix * V + next token
        nxt = torch.arange(vocab, device=model.device).repeat(len(prefixes))[:, None]
        prefixes = torch.cat([prefixes.repeat_interleave(vocab, 0), nxt], dim=1)
    return joint.reshape((vocab,) * length).cpu().numpy()


def sequence_counts(samples, vocab: int) -> np.ndarray:
    """How often each whole sequence was sampled: `samples` (n, L) token ids, counted into an array
    of shape (vocab,) * L, the shape `sequence_distribution` gives."""
    samples = np.asarray(samples)
    flat = np.ravel_multi_index(samples.T, (vocab,) * samples.shape[1])
    return np.bincount(flat, minlength=vocab ** samples.shape[1]).reshape((vocab,) * samples.shape[1])


def branches_taken(runs, k: int) -> dict[str, int]:
    """How many of a sampled test's runs (`specdec.generate` results at `k`, longer than k + 1 tokens)
    reached each branch a wrong decoder could get wrong: a first step that accepted some but not all
    proposals, one that accepted all (then a bonus token, and another step), and any acceptance past
    the first draft position."""
    return {
        "partial acceptance, then a rejection": sum(0 < r.step_accepts[0] < k for r in runs),
        "all accepted, a bonus, another step": sum(r.step_accepts[0] == k and len(r.step_accepts) > 1 for r in runs),
        "accepted past draft position 1": sum(sum(r.accepted_at[1:]) > 0 for r in runs),
    }
