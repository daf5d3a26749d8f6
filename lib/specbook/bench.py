"""Timing: forward-pass costs, decoding sweeps through any engine, request-by-request timing, and
`make bench` (`python -m specbook.bench`).

Rules for every number here: warm up before timing (a discarded call), interleave the
configurations being compared in rounds (so that drift of a shared machine hits all of them
alike), report medians, and compare only runs measured together. `interleaved` times whole runs
in rounds, `timed_requests` single requests in turn (per-request speedups, chapter 04).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

import torch
from tqdm import tqdm

from specbook import lossless, metrics, specdec
from specbook.engines import Sampling, Speculative


def interleaved(runs: dict[Hashable, Callable[[], object]], rounds: int, warmup: int = 1) -> dict[Hashable, list]:
    """Call every run `warmup` times in turn to warm up (the results are discarded), then all of them
    in turn, `rounds` times. Returns each run's results, one per round, so that ratios can be taken
    within a round."""
    for _ in range(warmup):
        for run in runs.values():
            run()
    results = {name: [] for name in runs}
    for _ in range(rounds):  # the runs show their own progress; a bar around theirs would nest
        for name, run in runs.items():
            results[name].append(run())
    return results


def timed_requests(
    engine,
    prompts: list,
    sampling: Sampling,
    configs: dict[str, Speculative | None],
    rounds: int = 1,
    per_request: bool = True,
    desc: str = "timed",
) -> dict[str, list]:
    """Every prompt through every configuration of `engine`, one request at a time, `rounds` times.
    per_request: the configurations take turns on each request, so that drift of the machine hits
    all of them alike, after one discarded warm-up request each (compiling, first-call costs).
    Otherwise configuration after configuration, each warmed up first: vLLM fixes speculation when
    it starts an engine, so turns per request would restart it every time. Request i is seeded with
    sampling.seed + i in every configuration and round, so each round writes the same tokens; a
    request's generation is its median round's (`_median_round`), and `round_latencies_s` keeps
    each round's latency. Returns each configuration's generations, in
    the order of `prompts`."""
    made = {name: [[] for _ in prompts] for name in configs}
    if per_request:
        for speculative in configs.values():
            engine.generate(prompts[:1], sampling, speculative)
        for i, prompt in enumerate(tqdm(prompts, desc=desc, leave=False)):
            seeded = dataclasses.replace(sampling, seed=sampling.seed + i)
            for _ in range(rounds):
                for name, speculative in configs.items():
                    made[name][i] += engine.generate([prompt], seeded, speculative)
    else:
        for _ in range(rounds):
            for name, speculative in configs.items():
                engine.generate(prompts[:1], sampling, speculative)
                for i, g in enumerate(engine.generate(prompts, sampling, speculative)):  # seeds sampling.seed + i
                    made[name][i].append(g)
    return {name: [_median_round(rounds_of_one) for rounds_of_one in per_prompt] for name, per_prompt in made.items()}


def _median_round(generations: list):
    """One request's generation from its median round by latency (the lower middle of an even
    count), whole: its time to first token and its pass times come from the round its latency
    comes from, so that a step's parts add up to the step. `round_latencies_s` keeps every round's latency."""
    middle = sorted(generations, key=lambda g: g.latency_s)[(len(generations) - 1) // 2]
    return dataclasses.replace(middle, round_latencies_s=[g.latency_s for g in generations])


@torch.inference_mode()
def forward_ms(model, context: int, n_tokens: int, repeats: int, warmup: int = 3, seed: int = 0, static_cache: bool | None = None) -> float:
    """Median milliseconds of one forward pass over n_tokens new tokens after `context` cached
    ones: n_tokens = 1 is a decoding step, K + 1 a verification pass. Each pass is a call of the
    decoder's own cache, rolled back after it as the decoder rolls back: `specdec.CachedModel`, or
    with `static_cache` (None: on CUDA) `specdec.StaticCachedModel`, whose passes after the prompt
    are CUDA graphs on a GPU (captured in the warm-up)."""
    gen = torch.Generator().manual_seed(seed)
    prefix, new = (torch.randint(0, model.config.vocab_size, (n,), generator=gen).tolist() for n in (context, n_tokens))
    static = model.device.type == "cuda" if static_cache is None else static_cache
    cached = specdec.static_cached(model, "timing", context + n_tokens) if static else specdec.CachedModel(model)
    cached.forward(prefix)
    sync = torch.cuda.synchronize if model.device.type == "cuda" else (lambda: None)
    times = []
    for i in range(warmup + repeats):
        sync()
        start = time.perf_counter()
        cached.forward(new)
        sync()
        if i >= warmup:
            times.append(time.perf_counter() - start)
        cached.keep(context)
    return 1000 * statistics.median(times)


PAUSE_S = 0.005  # about a target pass of the tiny profile on a 2-core CPU: idle that long, does the draft's next pass slow?


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


def step_costs(target, draft, ks: list[int], context: int, repeats: int, rounds: int = 3, static_cache: bool | None = None) -> StepCosts:
    """Target step, draft step and the target's verify passes for each K, taking turns over `rounds`
    (`static_cache`: as `forward_ms`)."""
    runs = {
        "target": lambda: forward_ms(target, context, 1, repeats, static_cache=static_cache),
        "draft": lambda: forward_ms(draft, context, 1, repeats, static_cache=static_cache),
        **{k: (lambda k=k: forward_ms(target, context, k + 1, repeats, static_cache=static_cache)) for k in ks},
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


def draft_pass_in_the_loop(target, draft, context: int, k: int, repeats: int, pause_s: float = PAUSE_S, seed: int = 0) -> dict[str, float]:
    """Median milliseconds of one draft pass (one token after `context`) where the decoder's loop
    runs it: back to back with the draft's own passes (what `step_costs` measures), first after the
    target's (K + 1)-token verify pass, each of the K passes after that verify pass, and after
    `pause_s` seconds of doing nothing. What a pass costs beyond back to back there, the step-cost
    model leaves out (a likely cause: the target's pass, or whatever ran during the pause, displaced
    what the processor's caches held for the draft). Every pass is rolled back, as in `forward_ms`."""
    gen = torch.Generator().manual_seed(seed)
    prefix, verify = (torch.randint(0, target.config.vocab_size, (n,), generator=gen).tolist() for n in (context, k + 1))
    tgt, drf = specdec.CachedModel(target), specdec.CachedModel(draft)
    tgt.forward(prefix)
    drf.forward(prefix)
    sync = torch.cuda.synchronize if target.device.type == "cuda" else (lambda: None)

    def draft_passes(n: int) -> list[float]:
        times = []
        for _ in range(n):
            sync()
            start = time.perf_counter()
            drf.forward(verify[:1])
            sync()
            times.append(time.perf_counter() - start)
            drf.keep(context)
        return times

    def after_verify() -> list[float]:
        tgt.forward(verify)
        sync()
        tgt.keep(context)
        return draft_passes(k)

    def after_pause() -> list[float]:
        time.sleep(pause_s)
        return draft_passes(1)

    runs = {"back to back": lambda: draft_passes(k), "after verify": after_verify, "after a pause": after_pause}
    timed = interleaved(runs, repeats, warmup=3)

    def ms(times: list[float]) -> float:
        return 1000 * statistics.median(times)

    return {
        "back to back": ms([t for r in timed["back to back"] for t in r]),
        "first after verify": ms([r[0] for r in timed["after verify"]]),
        "each after verify": ms([t for r in timed["after verify"] for t in r]),
        "after a pause": ms([r[0] for r in timed["after a pause"]]),
    }


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


class _Pairs:
    """Runs (engine, speculation) pairs as one engine's configurations, so that `timed_requests`
    has the engines, too, take turns on each request."""

    def generate(self, prompts, sampling, pair, batch_size=1):
        engine, speculative = pair
        return engine.generate(prompts, sampling, speculative, batch_size)


def against_model(sweep_rows: list[dict], costs: dict[str, StepCosts], k_alpha: int):
    """`sweep`'s runs beside the speedup model: per draft and K, the step costs c and v(K), the
    acceptance measured, tokens per target pass measured and predicted by E(α, K) with α taken
    from the run at K = `k_alpha`, and the speedup measured and predicted, E / (K·c + v(K))."""
    import pandas as pd

    sweep = pd.DataFrame(sweep_rows)
    rows = []
    for name, c in costs.items():
        runs = sweep[sweep.draft == name].set_index("k")
        alpha = runs.loc[k_alpha, "alpha"]
        for k, run in runs.iterrows():
            rows.append(
                {
                    "draft": name,
                    "K": k,
                    "c": c.c,
                    "v(K)": c.v[k],
                    "acceptance rate": run["acceptance_rate"],
                    "alpha (this K)": run["alpha"],
                    "tokens/step": run["mean_acceptance_length"],
                    "E(alpha_K1, K)": metrics.expected_tokens_per_step(alpha, k),
                    "speedup": run["speedup"],
                    "predicted speedup": metrics.predicted_speedup(alpha, k, c.c, c.v[k]),
                }
            )
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> None:
    """`make bench`: the CoD target of one level and its distilled draft (chapters 02 and 03), alone
    and speculative at every K of the profile's `bench.ks`, greedy, on the same test questions, through
    the native engine eager and compiled and through transformers' assisted generation, every
    engine and configuration taking turns on each request. Prints one table: speed, speedup over the same
    engine alone, acceptance, the measured step costs and the speedup they predict."""
    from specbook import evaluation, profiles, rationales, training
    from specbook.engines import NativeEngine, TransformersEngine
    from specbook.paths import artifacts
    from specbook.profiles import LEVELS
    from specbook.runinfo import seed_everything, stamp
    from specbook.stats import bootstrap_median_ratio

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--profile", default="tiny")
    parser.add_argument("--level", default=LEVELS[0], choices=LEVELS)
    args = parser.parse_args(argv)
    P = profiles.load(args.profile)
    B, A = P.bench, artifacts(args.profile)
    seed_everything(P.seed)
    adapter = A.require(A.target("cod", args.level) / "adapter_model.safetensors", made_by="02_training").parent
    target_path = training.merge(adapter, A.merged(adapter))
    draft_folder = A.require(A.draft("distilled", "cod", args.level) / "manifest.json", made_by="03_distillation").parent
    draft_path = training.merge(draft_folder, A.merged(draft_folder))
    rows = rationales.load_rows(A, args.level, "test")[: B.bench_prompts]
    engines = {
        "native eager": NativeEngine.load(str(target_path)),
        "native compiled": NativeEngine.load(str(target_path), compile=True),
        "transformers": TransformersEngine.load(str(target_path)),
    }
    prompts = evaluation.prompts(engines["native eager"].tokenizer, rows, "cod")
    sampling = Sampling(max_new_tokens=B.max_new_tokens)  # greedy
    configs = {"alone": None, **{f"K={k}": Speculative("draft_model", k, str(draft_path)) for k in B.ks}}
    prompt_ids = [engines["native eager"].tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    context = sum(map(len, prompt_ids)) // len(prompts)
    costs = {}
    for name in ("native eager", "native compiled"):  # transformers runs the eager models
        engine = engines[name]
        costs[name] = step_costs(
            engine.model, engine.draft_model(configs[f"K={B.ks[0]}"]), B.ks, context, P.theory.timing_repeats, rounds=5
        )
    costs["transformers"] = costs["native eager"]
    pairs = {(name, config): (engine, spec) for name, engine in engines.items() for config, spec in configs.items()}
    timed = timed_requests(_Pairs(), prompts, sampling, pairs, B.rounds, desc="engines x configurations")  # engines take turns too
    made = {name: {config: timed[name, config] for config in configs} for name in engines}

    print(
        f"specbook bench · {stamp(args.profile)} · {torch.get_num_threads()} threads · CoD target + distilled draft, {args.level}, "
        f"greedy, {len(prompts)} test questions, at most {B.max_new_tokens} tokens, configurations in turn per request, "
        f"latency = the median round of {B.rounds}"
    )
    print("speedup: median over requests of latency alone / latency speculative on the same engine [bootstrap 95 %]")
    print("predicted: E(alpha, K) / (K c + v(K)) from the step costs measured here; efficiency = speedup / predicted")
    print("decode eff.: the same after the first step (which also reads the prompt, a pass the model leaves out)")
    print("same/tie/bug: requests whose tokens are those of the same engine alone; that part at a numerical near-tie; at a mismatch")
    print(
        f"{'engine':<16} {'config':<6} {'tok/s':>7} {'speedup':>20} {'accept':>7} {'alpha':>6} {'draft ms':>9} {'target ms':>10} "
        f"{'verify ms':>10} {'predicted':>9} {'effic.':>7} {'decode eff.':>11} {'same/tie/bug':>12}"
    )
    for name, runs in made.items():
        c = costs[name]
        alone = [g.latency_s for g in runs["alone"]]
        alone_counts = metrics.summarize(runs["alone"])
        for config, generations in runs.items():
            m = metrics.summarize(generations)
            kinds = lossless.shares(lossless.classify_all(engines[name].model, prompt_ids, runs["alone"], generations))
            line = f"{name:<16} {config:<6} {m['tokens_per_s']:7.1f}"
            same = "/".join(f"{round(kinds[kind] * len(prompts))}" for kind in lossless.KINDS).rjust(12)
            if configs[config] is None:
                print(f"{line} {'1.00':>20} {'':>7} {'':>6} {'':>9} {c.target_ms:10.2f} {'':>10} {'':>9} {'':>7} {'':>11} {same}")
                continue
            k = configs[config].k
            speedup, low, high = bootstrap_median_ratio(alone, [g.latency_s for g in generations], seed=P.seed)
            predicted = metrics.predicted_speedup(m["alpha"], k, c.c, c.v[k])
            decode_efficiency = metrics.decode_speedup(m, alone_counts) / predicted
            print(
                f"{line} {f'{speedup:.2f} [{low:.2f}-{high:.2f}]':>20} {m['acceptance_rate']:7.2f} {m['alpha']:6.3f} {c.draft_ms:9.2f} "
                f"{c.target_ms:10.2f} {c.verify_ms[k]:10.2f} {predicted:9.2f} {speedup / predicted:7.2f} {decode_efficiency:11.2f} {same}"
            )
    print(
        f"a draft pass where the loop runs it (ms, median; K = {B.k}): back to back, as the step costs above; the first and each "
        f"of the K after the target's verify pass; after a {PAUSE_S * 1000:.0f} ms pause (beyond back to back: what step costs leave out):"
    )
    spec = Speculative("draft_model", B.k, str(draft_path))
    for name in ("native eager", "native compiled"):
        engine = engines[name]
        passes = draft_pass_in_the_loop(engine.model, engine.draft_model(spec), context, B.k, P.theory.timing_repeats)
        print(f"  {name:<16} " + " · ".join(f"{where} {ms:.2f}" for where, ms in passes.items()))
    print(
        "how much faster than transformers' assisted generation: its latency / the native decoder's, "
        "same pair and K (median per-request ratio [bootstrap 95 %]):"
    )
    print(f"  {'config':<6} {'native eager':>20} {'native compiled (as the book runs it)':>38}")
    for config, spec in configs.items():
        if spec is not None:
            theirs = [g.latency_s for g in made["transformers"][config]]
            cells = []
            for name in ("native eager", "native compiled"):
                ratio, low, high = bootstrap_median_ratio(theirs, [g.latency_s for g in made[name][config]], seed=P.seed)
                cells.append(f"{ratio:.2f}x [{low:.2f}-{high:.2f}]")
            print(f"  {config:<6} {cells[0]:>20} {cells[1]:>38}")


if __name__ == "__main__":
    main()
