"""`make gpu-bench`: the book's decoder on a GPU against the memory floor, with nothing to download.

Builds a target and a draft at the real shapes (Qwen3-14B and Qwen3-0.6B, `roofline`) from their
configs, with random bf16 weights on the GPU: a step's time does not depend on what the weights
hold. Prints, for each model, the 1-token step eager (`specdec.CachedModel`) and through the static
cache with CUDA graphs (`specdec.StaticCachedModel`) beside its HBM floor (weights + KV cache read
once / the card's bandwidth); c = draft step / target step; v(K) = verify pass / target step; the
speedup those predict at the acceptance chapter 04 measured for the book's distilled CoD drafts
(assumed values where no tiny results exist, and said so); the capture and warm-up time. Then end
to end, greedy, batch 1, the same pair and K through the native decoder and through transformers'
assisted generation (random weights: few proposals accepted, so this compares the decoders' cost
per step, not a speedup), and, where the tiny profile's chapters have run, its trained CoD target
alone against it with its distilled draft: a real acceptance on a GPU.

`--shapes small --device cpu` runs every part on small models on a CPU, eagerly (what `make test`
does, to keep the code working; its times mean nothing).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from specbook import bench, lossless, metrics, models, roofline, specdec
from specbook.engines import NativeEngine, Sampling, Speculative, TransformersEngine
from specbook.profiles import ModelShape
from specbook.runinfo import stamp

SMALL = (
    roofline.Architecture("small target", ModelShape(layers=4, hidden=128, mlp=256, heads=4, kv_heads=2, head_dim=32), 512, False),
    roofline.Architecture("small draft", ModelShape(layers=2, hidden=64, mlp=128, heads=2, kv_heads=1, head_dim=32), 512, True),
)
ASSUMED_ALPHAS = (0.8, 0.9)  # where no chapter 04 results exist


def bandwidth(device: torch.device, given: float | None) -> tuple[float, str]:
    """The card's memory bandwidth (bytes/s) and where the figure comes from."""
    if given is not None:
        return given * 1e9, f"{given:g} GB/s, as given"
    if device.type != "cuda":
        return roofline.H100_SXM.bandwidth, "no GPU: the H100 SXM's 3.35 TB/s assumed"
    name = torch.cuda.get_device_name(device)
    for card in (roofline.H200, roofline.H100_PCIE, roofline.H100_SXM):
        if card.name.split()[0] in name and all(word in name for word in card.name.split()[1:]):
            return card.bandwidth, f"{name}: {card.bandwidth / 1e12:.2f} TB/s ({card.name} datasheet)"
    return roofline.H100_SXM.bandwidth, f"{name}: unknown card, the H100 SXM's 3.35 TB/s assumed (give --bandwidth)"


def build(arch: roofline.Architecture, device: torch.device, dtype: torch.dtype, seed: int):
    """A Qwen3 model of `arch`'s shape with random weights, made on `device` in `dtype` (no fp32 copy first)."""
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    config = models.qwen3_config(arch.shape, arch.vocab, tie_word_embeddings=arch.tied_embeddings)
    with torch.device(device):
        return AutoModelForCausalLM.from_config(config, dtype=dtype).eval()


def floor_ms(arch: roofline.Architecture, n_tokens: int, context: int, bytes_per_s: float) -> float:
    return 1000 * roofline.forward_cost(arch, n_tokens, context)["bytes"] / bytes_per_s


def measured_alphas(profile: str) -> tuple[list[tuple[str, float]], str]:
    """The per-position acceptance (alpha) chapter 04 measured for each level's distilled CoD draft at
    the profile's K (its run files, read as they are: no pandas needed on a GPU machine), or
    ASSUMED_ALPHAS where it has not run."""
    import json

    from specbook import profiles
    from specbook.paths import artifacts

    k = profiles.load(profile).bench.k
    runs = [json.loads(p.read_text()) for p in sorted(artifacts(profile).results.glob("*.json")) if p.name != "manifest.json"]
    chosen = [r for r in runs if (r["target"], r["draft"], r["k"], r["request_set"]) == ("cod", "distilled", k, "timed")]
    if chosen:
        return [(r["level"], r["metrics"]["alpha"]) for r in chosen], f"chapter 04 on {profile}, distilled CoD drafts, K = {k}"
    return [("assumed", a) for a in ASSUMED_ALPHAS], f"assumed: no chapter 04 results on {profile}"


def capture_s(target, draft, ks: list[int], context: int) -> float:
    """Seconds to capture (and warm up) every graph a decoding run at these K needs: the target's
    1-token step and verify passes, the draft's step and two-token catch-up (eager passes where there are no graphs)."""
    sync = torch.cuda.synchronize if target.device.type == "cuda" else (lambda: None)
    start = time.perf_counter()
    with torch.inference_mode():
        for model, lengths in ((target, [1, *(k + 1 for k in ks)]), (draft, [1, 2])):
            cached = specdec.static_cached(model, "timing", context + max(lengths))
            cached.forward(list(range(context)))
            for n in lengths:
                cached.forward(list(range(n)))
                cached.keep(context)
    sync()
    return time.perf_counter() - start


def timed(engine, prompts: list, sampling: Sampling, configs: dict, rounds: int) -> dict:
    """Each configuration's generations, request by request in turn (`bench.timed_requests`)."""
    return bench.timed_requests(engine, prompts, sampling, configs, rounds=rounds, desc="end to end")


def median_latency(generations) -> float:
    return statistics.median(g.latency_s for g in generations)


def tokens_per_s(generations) -> float:
    return sum(len(g.token_ids) for g in generations) / sum(g.latency_s for g in generations)


def kinds(engine, prompts, alone, speculative) -> str:
    """How many speculative outputs are identical to the target alone's, parted at a near-tie, or mismatched."""
    share = lossless.shares(lossless.classify_runs(engine, prompts, alone, {"speculative": speculative})["speculative"])
    return " / ".join(f"{round(share[kind] * len(alone))} {kind}" for kind in lossless.KINDS)


def random_pair_section(args, device, dtype, bytes_per_s):
    target_arch, draft_arch = (roofline.QWEN3_14B, roofline.QWEN3_0_6B) if args.shapes == "real" else SMALL
    start = time.perf_counter()
    target, draft = build(target_arch, device, dtype, 0), build(draft_arch, device, dtype, 1)
    print(f"built {target_arch.name} and {draft_arch.name} ({dtype}, random weights) in {time.perf_counter() - start:.1f} s")
    capture = capture_s(target, draft, args.ks, args.context)
    print(f"capture and warm-up of both models' graphs: {capture:.1f} s")
    costs = {
        static: bench.step_costs(target, draft, args.ks, args.context, args.repeats, rounds=args.rounds, static_cache=static)
        for static in (False, True)
    }
    target_floor, draft_floor = (floor_ms(a, 1, args.context, bytes_per_s) for a in (target_arch, draft_arch))
    print(f"\n1-token steps at context {args.context} (median of {args.rounds} rounds of {args.repeats}):")
    static_is = "static cache + CUDA graphs" if device.type == "cuda" else "static cache (no graphs off CUDA)"
    print(f"eager: a growing cache, each kernel launched from Python; static: {static_is}")
    print(f"{'':<28} {'eager ms':>9} {'static ms':>10} {'floor ms':>9} {'static / floor':>15}")
    for role, arch, arch_floor in (("target", target_arch, target_floor), ("draft", draft_arch, draft_floor)):
        eager, static = getattr(costs[False], f"{role}_ms"), getattr(costs[True], f"{role}_ms")
        print(f"{role + ' ' + arch.name:<28} {eager:9.2f} {static:10.2f} {arch_floor:9.3f} {static / arch_floor:15.2f}")
    print(f"c = draft / target: eager {costs[False].c:.3f}, static {costs[True].c:.3f}")
    print("v(K) = verify pass / target step, static: " + ", ".join(f"K={k} {costs[True].v[k]:.3f}" for k in args.ks))
    alphas, source = measured_alphas(args.profile)
    print(f"\npredicted speedup E(alpha, K) / (K c + v(K)) with the static c and v, alpha from {source}:")
    print(f"{'':<10} {'alpha':>6} " + " ".join(f"{f'K={k}':>7}" for k in args.ks))
    for name, alpha in alphas:
        predicted = [metrics.predicted_speedup(alpha, k, costs[True].c, costs[True].v[k]) for k in args.ks]
        print(f"{name:<10} {alpha:6.3f} " + " ".join(f"{p:7.2f}" for p in predicted))

    k = args.k
    gen = torch.Generator().manual_seed(0)
    prompts = [torch.randint(0, target_arch.vocab, (args.context,), generator=gen).tolist() for _ in range(args.prompts)]
    sampling = Sampling(max_new_tokens=args.new_tokens)
    target.generation_config.eos_token_id = draft.generation_config.eos_token_id = None  # every answer its full length
    speculative = Speculative("draft_model", k, draft)
    native_engine = NativeEngine(target)
    native = timed(native_engine, prompts, sampling, {"alone": None, "speculative": speculative}, args.rounds)
    assisted = timed(TransformersEngine(target), prompts, sampling, {"speculative": speculative}, 1)
    print(f"\nend to end, greedy, batch 1, {args.prompts} prompts of {args.context} tokens, {args.new_tokens} new tokens, K = {k}:")
    for name, generations in (
        ("native alone", native["alone"]),
        ("native speculative", native["speculative"]),
        ("transformers assisted", assisted["speculative"]),
    ):
        m = metrics.summarize(generations)
        accept = f"acceptance {m['acceptance_rate']:.2f}" if m["proposed"] else ""
        print(f"  {name:<22} {median_latency(generations):8.3f} s median  {tokens_per_s(generations):8.1f} tok/s  {accept}")
    faster = median_latency(assisted["speculative"]) / median_latency(native["speculative"])
    print(f"  native against assisted, same pair and K: {faster:.2f}x faster (median latency)")
    print(f"  native speculative against native alone: {kinds(native_engine, prompts, native['alone'], native['speculative'])}")
    if args.shapes == "real":
        static = costs[True]
        goals = [  # (goal, measured, met)
            ("target step <= 1.5x its floor", static.target_ms / target_floor, static.target_ms <= 1.5 * target_floor),
            ("draft step <= 1.5 ms", static.draft_ms, static.draft_ms <= 1.5),
            ("c <= 0.2", static.c, static.c <= 0.2),
            *([(f"v({k}) <= 1.15", static.v[k], static.v[k] <= 1.15)] if k in static.v else []),
            ("capture and warm-up <= 60 s", capture, capture <= 60),
            ("native >= 2x assisted", faster, faster >= 2),
        ]
        print("\ngoals (issue 24): " + "; ".join(f"{goal}: {value:.3g} {'met' if met else 'missed'}" for goal, value, met in goals))
    del target, draft
    models.free_memory()


def trained_pair_section(args, device):
    """The profile's trained CoD target and distilled draft of one level (chapters 02-03), if they exist."""
    from specbook import evaluation, profiles, rationales, training
    from specbook.paths import artifacts
    from specbook.stats import bootstrap_median_ratio

    P, A = profiles.load(args.profile), artifacts(args.profile)
    target_adapter, draft_folder = A.target("cod", args.level), A.draft("distilled", "cod", args.level)
    if not ((target_adapter / "adapter_model.safetensors").exists() and (draft_folder / "manifest.json").exists()):
        print(f"\nno trained {args.profile} CoD pair for {args.level} ({target_adapter} and {draft_folder}): run chapters 02-03 first")
        return
    target_path = training.merge(target_adapter, A.merged(target_adapter))
    draft_path = training.merge(draft_folder, A.merged(draft_folder))
    engine = NativeEngine.load(str(target_path))
    rows = rationales.load_rows(A, args.level, "test")[: args.prompts * 3]
    prompts = evaluation.prompts(engine.tokenizer, rows, "cod")
    sampling = Sampling(max_new_tokens=P.bench.max_new_tokens)
    configs = {"alone": None, "speculative": Speculative("draft_model", P.bench.k, str(draft_path))}
    made = timed(engine, prompts, sampling, configs, args.rounds)
    ratio, low, high = bootstrap_median_ratio([g.latency_s for g in made["alone"]], [g.latency_s for g in made["speculative"]])
    m = metrics.summarize(made["speculative"])
    print(
        f"\n{args.profile} CoD pair, {args.level}, on {device.type}: {len(prompts)} test questions, greedy, K = {P.bench.k}, "
        f"{args.rounds} rounds: speedup {ratio:.2f}x [{low:.2f}-{high:.2f}], acceptance {m['acceptance_rate']:.3f}, "
        f"alpha {m['alpha']:.3f}, {tokens_per_s(made['alone']):.0f} tok/s alone, "
        f"{tokens_per_s(made['speculative']):.0f} speculative; {kinds(engine, prompts, made['alone'], made['speculative'])}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shapes", choices=("real", "small"), default="real", help="Qwen3-14B / 0.6B, or small models (a smoke test)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--context", type=int, default=128, help="tokens in the KV cache when a step is timed; the prompts' length")
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 2, 3, 4, 5, 6, 8])
    parser.add_argument("--k", type=int, default=5, help="K of the end-to-end comparison")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--prompts", type=int, default=3)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--bandwidth", type=float, default=None, help="the card's memory bandwidth in GB/s (default: from its name)")
    parser.add_argument("--profile", default="tiny", help="whose chapter 04 alpha and trained CoD pair to use")
    parser.add_argument("--level", default="easy")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    bytes_per_s, source = bandwidth(device, args.bandwidth)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"specbook gpu-bench · {stamp(args.profile)} · {name} · torch {torch.__version__} · bandwidth {source}")
    random_pair_section(args, device, dtype, bytes_per_s)
    trained_pair_section(args, device)


if __name__ == "__main__":
    main()
