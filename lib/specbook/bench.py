"""Timing: forward-pass costs, decoding sweeps through any engine, and `make bench`
(`python -m specbook.bench`).

Rules for every number here: warm up before timing (a discarded call), interleave the
configurations being compared in rounds (so that drift of a shared machine hits all of them
alike), report medians, and compare only runs measured together. `interleaved` is the one timer.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

import torch

from specbook import metrics
from specbook.engines import Sampling, Speculative


def interleaved(runs: dict[Hashable, Callable[[], object]], rounds: int) -> dict[Hashable, list]:
    """Call every run once to warm up (the result is discarded), then all of them in turn, `rounds`
    times. Returns each run's results, one per round, so that ratios can be taken within a round."""
    for run in runs.values():
        run()
    results = {name: [] for name in runs}
    for _ in range(rounds):  # the runs show their own progress; a bar around theirs would nest
        for name, run in runs.items():
            results[name].append(run())
    return results


@torch.inference_mode()
def forward_ms(model, context: int, n_tokens: int, repeats: int, warmup: int = 3, seed: int = 0) -> float:
    """Median milliseconds of one forward pass over n_tokens new tokens after `context` cached
    ones: n_tokens = 1 is a decoding step, K + 1 a verification pass."""
    from transformers import DynamicCache

    vocab, device = model.config.vocab_size, model.device
    gen = torch.Generator().manual_seed(seed)
    cache = DynamicCache(config=model.config)
    prefix = torch.randint(0, vocab, (1, context), generator=gen).to(device)
    model(input_ids=prefix, past_key_values=cache, use_cache=True)
    new = torch.randint(0, vocab, (1, n_tokens), generator=gen).to(device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    times = []
    for i in range(warmup + repeats):
        sync()
        start = time.perf_counter()
        model(input_ids=new, past_key_values=cache, use_cache=True)
        sync()
        if i >= warmup:
            times.append(time.perf_counter() - start)
        cache.crop(-n_tokens)
    return 1000 * statistics.median(times)


@dataclass(frozen=True)
class StepCosts:
    """The speedup model's inputs, measured: c = draft step / target step and v(K) = the target's
    (K+1)-token verify pass / its 1-token step, each the median of its per-round ratios."""

    target_ms: float  # median over rounds
    draft_ms: float
    c: float
    verify_ms: dict[int, float]  # by K
    v: dict[int, float]  # by K
    rounds: list[dict]  # per round: target_ms, draft_ms, verify_ms


def step_costs(target, draft, ks: list[int], context: int, repeats: int, rounds: int = 3) -> StepCosts:
    """Target step, draft step and the target's verify passes for each K, taking turns over `rounds`."""
    runs = {
        "target": lambda: forward_ms(target, context, 1, repeats),
        "draft": lambda: forward_ms(draft, context, 1, repeats),
        **{k: (lambda k=k: forward_ms(target, context, k + 1, repeats)) for k in ks},
    }
    timed = interleaved(runs, rounds)
    per_round = [
        {"target_ms": timed["target"][i], "draft_ms": timed["draft"][i], "verify_ms": {k: timed[k][i] for k in ks}} for i in range(rounds)
    ]
    median = statistics.median
    return StepCosts(
        target_ms=median(r["target_ms"] for r in per_round),
        draft_ms=median(r["draft_ms"] for r in per_round),
        c=median(r["draft_ms"] / r["target_ms"] for r in per_round),
        verify_ms={k: median(r["verify_ms"][k] for r in per_round) for k in ks},
        v={k: median(r["verify_ms"][k] / r["target_ms"] for r in per_round) for k in ks},
        rounds=per_round,
    )


def sweep(engine, drafts: dict, prompts: list, ks: list[int], sampling: Sampling, rounds: int) -> list[dict]:
    """Generate every prompt with the target alone (K = 0) and with each draft at each K, through
    `engine`, in interleaved rounds. One row per (draft, K): the counters of the last round (every
    round decodes the same: requests are seeded) and the medians over rounds of tokens/s and of
    the speedup over the plain run of the same round."""
    configs = {("none", 0): None, **{(name, k): Speculative("draft_model", k, draft) for name, draft in drafts.items() for k in ks}}
    timed = interleaved(
        {key: (lambda s=spec: metrics.summarize(engine.generate(prompts, sampling, s))) for key, spec in configs.items()}, rounds
    )
    plain = timed["none", 0]
    rows = []
    for (name, k), summaries in timed.items():
        rows.append(
            {
                "draft": name,
                "k": k,
                **summaries[-1],
                "tokens_per_s": statistics.median(s["tokens_per_s"] for s in summaries),
                "speedup": statistics.median(s["tokens_per_s"] / p["tokens_per_s"] for s, p in zip(summaries, plain, strict=True)),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    """Speed of the native engine against transformers' generate(), plain and speculative, on the
    profile's chapter-00 models (an untrained target, a draft cut from its first layers)."""
    from specbook import models, profiles
    from specbook.engines import NativeEngine, TransformersEngine
    from specbook.runinfo import seed_everything, stamp

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--profile", default="tiny")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    P = profiles.load(args.profile)
    T = P.theory
    seed_everything(P.seed)
    target = models.untrained(T.target, T.vocab_size, P.seed, T.logit_scale)
    draft = models.early_exit_draft(target, T.draft_layers[0])
    k = T.ks[len(T.ks) // 2]
    gen = torch.Generator().manual_seed(P.seed)
    prompts = [torch.randint(0, T.vocab_size, (T.prompt_tokens,), generator=gen).tolist() for _ in range(T.prompts)]
    sampling = Sampling(max_new_tokens=T.max_new_tokens)  # greedy
    speculative = Speculative("draft_model", k, draft)
    native, hf = NativeEngine(target), TransformersEngine(target)
    configs = {
        "native plain": (native, None),
        f"native K={k}": (native, speculative),
        "transformers plain": (hf, None),
        f"transformers assisted K={k}": (hf, speculative),
    }
    costs = step_costs(target, draft, [k], context=T.prompt_tokens, repeats=T.timing_repeats)
    timed = interleaved(
        {name: (lambda e=e, s=s: metrics.summarize(e.generate(prompts, sampling, s))) for name, (e, s) in configs.items()}, args.rounds
    )
    speed = {name: statistics.median(s["tokens_per_s"] for s in summaries) for name, summaries in timed.items()}
    print(
        f"specbook bench · {stamp(args.profile)} · {torch.get_num_threads()} threads · greedy, "
        f"{len(prompts)} prompts x {T.max_new_tokens} tokens, median of {args.rounds} interleaved rounds"
    )
    print(
        f"target {costs.target_ms:.2f} ms/step, draft ({T.draft_layers[0]} of {T.target.layers} layers) "
        f"{costs.draft_ms:.2f} ms/step: c = {costs.c:.3f}; verify {k + 1} tokens = {costs.v[k]:.2f} steps"
    )
    for name, summaries in timed.items():
        print(f"  {name:<28} {speed[name]:8.1f} tok/s   {summaries[-1]['mean_acceptance_length']:.2f} tokens per target pass")
    print(f"ratio  native K={k} / native plain:                 {speed[f'native K={k}'] / speed['native plain']:.2f}x")
    print(f"ratio  transformers assisted / transformers plain:  {speed[f'transformers assisted K={k}'] / speed['transformers plain']:.2f}x")
    print(f"ratio  native plain / transformers plain:           {speed['native plain'] / speed['transformers plain']:.2f}x")
    print(f"ratio  native K={k} / transformers assisted K={k}:    {speed[f'native K={k}'] / speed[f'transformers assisted K={k}']:.2f}x")


if __name__ == "__main__":
    main()
