"""Timing: forward-pass costs, decoding sweeps, and `make bench` (`python -m specbook.bench`).

Rules for every number here: warm up before timing, interleave the configurations being compared
in rounds (so that drift of a shared machine hits all of them alike), report medians, and
compare only runs measured together.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
from tqdm import tqdm

from specbook import metrics, specdec


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


def step_costs(target, draft, ks: list[int], context: int, repeats: int, rounds: int = 3) -> dict:
    """The speedup model's inputs, measured: c = draft step / target step, and v(K) = the
    target's (K+1)-token verify pass / its 1-token step. The passes take turns in `rounds` rounds;
    times are medians over rounds and each ratio the median of its per-round ratios."""
    per_round = []
    for _ in range(rounds):
        target_ms, draft_ms = forward_ms(target, context, 1, repeats), forward_ms(draft, context, 1, repeats)
        per_round.append({"target_ms": target_ms, "draft_ms": draft_ms,
                          "verify_ms": {k: forward_ms(target, context, k + 1, repeats) for k in ks}})
    median = statistics.median
    return {"target_ms": median(r["target_ms"] for r in per_round), "draft_ms": median(r["draft_ms"] for r in per_round),
            "c": median(r["draft_ms"] / r["target_ms"] for r in per_round),
            "verify_ms": {k: median(r["verify_ms"][k] for r in per_round) for k in ks},
            "v": {k: median(r["verify_ms"][k] / r["target_ms"] for r in per_round) for k in ks}, "rounds": per_round}


def sweep(target, drafts: dict, prompts: list[list[int]], ks: list[int], temperature: float, max_new_tokens: int,
          rounds: int, seed: int = 0) -> list[dict]:
    """Decode every prompt with the target alone (K = 0) and with each draft at each K, in
    `rounds` interleaved rounds. One row per (draft, K): the counters (identical every round:
    decoding is seeded) and the median over rounds of tokens/s and of the speedup over the
    plain run of the same round."""
    configs = [("none", None, 0)] + [(name, d, k) for name, d in drafts.items() for k in ks]
    per_round = []
    for _ in tqdm(range(rounds), desc="rounds", leave=False):
        results = {}
        for name, draft, k in tqdm(configs, desc="configurations", leave=False):
            results[name, k] = metrics.summarize(
                specdec.generate(target, draft, p, k=k, max_new_tokens=max_new_tokens, temperature=temperature,
                                 seed=seed + i) for i, p in enumerate(prompts))
        per_round.append(results)
    rows = []
    for name, _, k in configs:
        summary = dict(per_round[-1][name, k])
        summary["tokens_per_s"] = statistics.median(r[name, k]["tokens_per_s"] for r in per_round)
        summary["speedup"] = statistics.median(r[name, k]["tokens_per_s"] / r["none", 0]["tokens_per_s"] for r in per_round)
        rows.append({"draft": name, "k": k, **summary})
    return rows


def interleaved(runs: dict, rounds: int) -> dict:
    """For each zero-argument callable in `runs` (each returns generations): its last summary
    (`metrics.summarize`) with the median tokens/s over interleaved rounds, after a warm-up call."""
    for run in runs.values():
        run()
    summaries = {name: [] for name in runs}
    for _ in tqdm(range(rounds), desc="rounds", leave=False):
        for name, run in runs.items():
            summaries[name].append(metrics.summarize(run()))
    return {name: {**s[-1], "tokens_per_s": statistics.median(x["tokens_per_s"] for x in s)} for name, s in summaries.items()}


def main(argv: list[str] | None = None) -> None:
    """Speed of the lib's decoding paths against each other and against transformers, on the
    profile's chapter-00 models (an untrained target, a draft cut from its first layers)."""
    from specbook import models, profiles
    from specbook.runinfo import seed_everything, stamp

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--profile", default="tiny")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    P = profiles.load(args.profile)
    T = P.theory
    seed_everything(P.seed)
    target = models.untrained(T.target, T.vocab_size, P.seed, T.logit_scale)
    draft = specdec.early_exit_draft(target, T.draft_layers[0])
    k = T.ks[len(T.ks) // 2]
    gen = torch.Generator().manual_seed(P.seed)
    prompts = [torch.randint(0, T.vocab_size, (T.prompt_tokens,), generator=gen).tolist() for _ in range(T.prompts)]
    n = T.max_new_tokens

    def native(d, kk):
        return lambda: [specdec.generate(target, d, p, k=kk, max_new_tokens=n) for p in prompts]

    def hf(assistant):
        def run():
            out = []
            for p in prompts:
                ids = torch.tensor([p])
                start = time.perf_counter()
                with torch.inference_mode():
                    new = target.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n,
                                          do_sample=False, top_k=None, top_p=None, temperature=None, pad_token_id=0,
                                          assistant_model=assistant)[0, len(p):]
                out.append(specdec.SpeculativeResult(new.tolist(), "length", latency_s=time.perf_counter() - start))
            return out
        return run

    draft.generation_config.num_assistant_tokens = k
    draft.generation_config.num_assistant_tokens_schedule = "constant"
    draft.generation_config.assistant_confidence_threshold = 0.0
    costs = step_costs(target, draft, [k], context=T.prompt_tokens, repeats=T.timing_repeats)
    speed = interleaved({"native plain": native(None, 0), f"native K={k}": native(draft, k),
                         "transformers plain": hf(None), f"transformers assisted K={k}": hf(draft)}, args.rounds)
    print(f"specbook bench · {stamp(args.profile)} · {torch.get_num_threads()} threads · greedy, "
          f"{len(prompts)} prompts x {n} tokens, median of {args.rounds} interleaved rounds")
    print(f"target {costs['target_ms']:.2f} ms/step, draft ({T.draft_layers[0]} of {T.target.layers} layers) "
          f"{costs['draft_ms']:.2f} ms/step: c = {costs['c']:.3f}; verify {k + 1} tokens = {costs['v'][k]:.2f} steps")
    for name, s in speed.items():
        print(f"  {name:<28} {s['tokens_per_s']:8.1f} tok/s   {s['mean_acceptance_length']:.2f} tokens per target pass")
    speed = {name: s["tokens_per_s"] for name, s in speed.items()}
    print(f"ratio  native K={k} / native plain:                 {speed[f'native K={k}'] / speed['native plain']:.2f}x")
    print(f"ratio  transformers assisted / transformers plain:  "
          f"{speed[f'transformers assisted K={k}'] / speed['transformers plain']:.2f}x")
    print(f"ratio  native plain / transformers plain:           {speed['native plain'] / speed['transformers plain']:.2f}x")
    print(f"ratio  native K={k} / transformers assisted K={k}:    "
          f"{speed[f'native K={k}'] / speed[f'transformers assisted K={k}']:.2f}x")


if __name__ == "__main__":
    main()
