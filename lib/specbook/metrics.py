"""Speculative decoding metrics, with vLLM's definitions, and the speedup model of Leviathan et al.

Counters per run: `steps` target verification passes (vLLM: num_drafts), `proposed` draft tokens
(num_draft_tokens), `accepted` draft tokens kept (num_accepted_tokens), `accepted_at[i]` steps
whose draft token at position i was kept (num_accepted_tokens_per_pos).
"""

from __future__ import annotations

import math
import statistics


def acceptance_rate(accepted: int, proposed: int) -> float:
    """Draft acceptance rate = accepted / proposed (vLLM's "draft acceptance rate")."""
    return accepted / proposed if proposed else math.nan


def mean_acceptance_length(accepted: int, steps: int) -> float:
    """Tokens emitted per target pass = 1 + accepted / steps (each step adds one target token)."""
    return 1 + accepted / steps if steps else math.nan


def per_position_rates(accepted_at: list[int], steps: int) -> list[float]:
    """The share of steps whose i-th draft token was accepted; under the i.i.d. model, alpha^(i+1)."""
    return [a / steps if steps else math.nan for a in accepted_at]


def estimate_alpha(accepted_at: list[int], steps: int, tested_at: list[int] | None = None) -> float:
    """Per-token acceptance probability alpha, the maximum-likelihood estimate under the model of
    Leviathan et al. (each draft token accepted independently with probability alpha, tested only
    while all before it were accepted): accepted / tests. `tested_at[i]`: the steps that proposed
    position i after accepting every position before it (near the length cap a step proposes
    fewer than K); without it (vLLM's counters), every step is taken to have proposed K, so that
    position i is tested in the steps that accepted position i-1 (all steps for i = 0). Unlike
    accepted / proposed it does not count the untested tokens after a rejection as failures."""
    tests = sum(tested_at) if tested_at else steps + sum(accepted_at[:-1])
    return sum(accepted_at) / tests if tests else math.nan


def expected_tokens_per_step(alpha: float, k: int) -> float:
    """E(alpha, K) = (1 - alpha^(K+1)) / (1 - alpha): accepted draft tokens plus the target's own."""
    if alpha >= 1.0:
        return k + 1.0
    return (1 - alpha ** (k + 1)) / (1 - alpha)


def predicted_speedup(alpha: float, k: int, c: float, verify_cost: float = 1.0) -> float:
    """Tokens per unit time with speculation over without: E(alpha, K) / (K c + v).

    c = the draft's step cost / the target's step cost; v = the cost of the target's (K+1)-token
    verify pass / its 1-token step. The paper assumes v = 1 (a memory-bound target reads its
    weights once either way); on a CPU v is measurably larger, so the book measures it."""
    return expected_tokens_per_step(alpha, k) / (k * c + verify_cost)


def decode_speedup(speculative: dict, plain: dict) -> float:
    """Tokens per second after the first step, speculative over plain, from two `summarize` results:
    (tokens per pass / seconds per pass) of each. It leaves out the prompt's pass, which speculation
    does not speed up and the speedup model does not count, so it is what the model predicts."""
    return (speculative["mean_acceptance_length"] / speculative["decode_step_s"]) / (
        plain["mean_acceptance_length"] / plain["decode_step_s"]
    )


def summarize(generations) -> dict:
    """Totals and rates over per-request records (`engines.Generation`)."""
    gens = list(generations)
    tokens = sum(len(g.token_ids) for g in gens)
    latency = sum(g.latency_s for g in gens)
    steps = sum(g.steps for g in gens)
    proposed = sum(g.proposed for g in gens)
    accepted = sum(g.accepted for g in gens)
    k = max((len(g.accepted_at) for g in gens), default=0)
    accepted_at = [sum(g.accepted_at[i] for g in gens if i < len(g.accepted_at)) for i in range(k)]
    counted = all(len(g.tested_at) == len(g.accepted_at) for g in gens)  # every engine that ran them counted the tests
    tested_at = [sum(g.tested_at[i] for g in gens if i < len(g.tested_at)) for i in range(k)] if counted else None
    ttfts = [g.ttft_s for g in gens if g.ttft_s is not None]
    timed_steps = [(g.latency_s - g.ttft_s, g.steps - 1) for g in gens if g.ttft_s is not None and g.steps > 1]
    decode_steps = sum(n for _, n in timed_steps)
    split = [g for g in gens if g.ttft_s is not None and g.steps > 1 and g.draft_s is not None]  # engines that time their passes
    split_steps = sum(g.steps - 1 for g in split)
    return {
        "requests": len(gens),
        "tokens": tokens,
        "tokens_per_request": tokens / len(gens) if gens else math.nan,
        "latency_s": latency,
        "tokens_per_s": tokens / latency if latency else math.nan,
        "ttft_median_s": statistics.median(ttfts) if ttfts else math.nan,
        # after the first step (which also reads the prompt): seconds per target pass, for `decode_speedup`
        "decode_step_s": sum(t for t, _ in timed_steps) / decode_steps if decode_steps else math.nan,
        # of which, per step, inside the draft's passes and inside the target's (the rest: the decoder's own work)
        "decode_draft_s": sum(g.draft_s for g in split) / split_steps if split_steps else math.nan,
        "decode_target_s": sum(g.target_s for g in split) / split_steps if split_steps else math.nan,
        "steps": steps,
        "proposed": proposed,
        "accepted": accepted,
        "acceptance_rate": acceptance_rate(accepted, proposed),
        "mean_acceptance_length": mean_acceptance_length(accepted, steps),
        "per_position": per_position_rates(accepted_at, steps),
        "alpha": estimate_alpha(accepted_at, steps, tested_at) if k else math.nan,
    }


def alpha_from_rate(rate: float, k: int) -> float:
    """The per-position acceptance α that gives a draft acceptance rate (accepted / proposed, as vLLM
    counts it) of `rate` at K = k under the independent-acceptance model: (α + α² + … + α^k) / k = rate."""
    if not 0 <= rate <= 1:
        raise ValueError(f"an acceptance rate lies in [0, 1], not {rate}")
    low, high = 0.0, 1.0
    for _ in range(60):  # bisection: the rate rises with α
        mid = (low + high) / 2
        low, high = (mid, high) if sum(mid**i for i in range(1, k + 1)) / k < rate else (low, mid)
    return (low + high) / 2


def reference_against_model(reference, k: int, c: float, verify_cost: float = 1.0):
    """The reference run's speculative rows beside the speedup model: its acceptance rate, the α and
    tokens per step that rate implies at K = k, the speedup predicted with step-cost ratio c, and the
    speedup it measured (tokens/s with its draft over tokens/s alone). `reference`: data/reference_run.csv."""
    import pandas as pd

    alone = reference[reference.speculative == 0].set_index(["level", "target"]).tokens_per_s
    rows = []
    for r in reference[reference.speculative == 1].itertuples():
        alpha = alpha_from_rate(r.acceptance_rate, k)
        rows.append(
            {
                "level": r.level,
                "target": r.target,
                "acceptance rate": r.acceptance_rate,
                "implied α": alpha,
                "tokens/step": 1 + k * r.acceptance_rate,
                "predicted speedup": predicted_speedup(alpha, k, c, verify_cost),
                "measured speedup": r.tokens_per_s / alone[(r.level, r.target)],
            }
        )
    return pd.DataFrame(rows)
