# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-all
#     formats: ipynb,py:percent
#     notebook_metadata_filter: kernelspec,jupytext,-all
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 · Benchmarking: every target alone and with its draft
#
# The reference run's five configurations on each level: the base target, the CoT target, the CoD
# target, and each tuned target with its distilled draft as a speculative decoder, K = `bench.k`.
# Beyond it, on the same requests: the tuned targets with the untrained base draft, with the
# teacher-data and white-box drafts of chapter 03, and with draft-free prompt lookup (n-gram); a K
# sweep beside the curve E(α, K) predicts; and one sampled temperature besides greedy.
#
# - **Accuracy** on the whole test set of each level: every target alone (in batches; whether a
#   batch changes a greedy answer is checked against answers made one at a time), and each tuned
#   target with its distilled draft (one request at a time), graded alike. Greedy speculative
#   decoding must write the target's own tokens: checked on every request of every run (a
#   difference is a bug and is listed).
# - **Speedup** = the target-alone latency / the speculative latency of the same request, same engine
#   and settings, one request at a time, the configurations taking turns on each request so that the
#   machine's drift hits all alike (`bench.timed_requests`); the median over requests with a
#   bootstrap 95 % interval. Timing runs on the first `bench.timing_rows` test questions of a level,
#   each timed in `bench.rounds` rounds; the spread of the rounds' speedups is kept with each run.
# - Beside it the **prediction** E(α, K) / (K·c + v(K)) of chapter 00, from the run's own α and the
#   step costs c and v(K) measured in this run, and **efficiency** = measured / predicted: the share
#   of the model's speedup the decoder delivers. The model leaves out the prompt's pass (the
#   target's, which speculation does not shorten, and the draft's own), which weighs most on short
#   answers; the **decode speedup** leaves it out too (tokens per second after the first step,
#   `metrics.decode_speedup`), so **decode efficiency** = decode speedup / predicted is what the
#   decoder loses to per-step work the model does not count.
# - Every run writes `data/<profile>/results/<run>.csv` (a row per request: tokens, finish reason,
#   correctness, time to first token, latency, draft tokens proposed and accepted, accepts per
#   position), `<run>.requests.jsonl` (each answer's text and token ids, each step's accepted count,
#   every rejected draft token with the target's token and its position, each round's latency) and
#   `<run>.json` (its level, target, draft, K, temperature, engine and request set; its metrics; its
#   profile, commit, config hash, library versions and hardware). `results.load_runs` reads them
#   all back as one table, here and in chapter 05.

# %% tags=["parameters"]
# The scale of the whole book, one of notebooks/params/*.yaml. Switch it here, or run headless with
# `make run-all PROFILE=smoke` (add NB=04 for this chapter). This chapter on 2 CPU cores, once
# chapter 03 has run (the closing cell prints this run's time):
#   smoke  CI's check that every cell runs (tiny models, a few problems): well under a minute
#   tiny   the default, offline on any CPU (small models trained here): see the closing cell
#   full   one GPU (Qwen3-14B, Qwen3-0.6B, vLLM): hours; not run yet
profile = "tiny"  # smoke | tiny | full (see above)

# %%
from specbook.runinfo import quiet_known_warnings

quiet_known_warnings()  # first: some libraries warn as they load

import dataclasses
import shutil
import time
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

from specbook import (
    bench,
    distillation,
    engines,
    evaluation,
    figures,
    lossless,
    metrics,
    pretraining,
    profiles,
    rationales,
    results,
    stages,
    stats,
    training,
)
from specbook.engines import Sampling, Speculative
from specbook.paths import NOTEBOOKS, artifacts, lib_sources
from specbook.profiles import LEVELS
from specbook.runinfo import machine, seed_everything, stamp
from specbook.styles import LABELS, STYLES

P = profiles.load(profile)
seed_everything(P.seed)
A = artifacts(profile)
B = P.bench
chapter_start = time.perf_counter()
print(stamp(profile), "· engine:", P.engine.kind, "(compiled)" if P.engine.compile else "")

# %% [markdown]
# ## The models
#
# The base target and the six tuned targets of chapter 02; for each tuned target the drafts of
# chapter 03 and the untrained base draft. The in-process engines load each tuned target merged
# with its adapter; vLLM serves the adapter on its base model.

# %%
base_target = pretraining.base_model_path(P, A, "target")
base_draft = pretraining.base_model_path(P, A, "draft")
tests = {level: rationales.load_rows(A, level, "test") for level in LEVELS}


def adapter(style, level):
    return A.require(A.target(style, level) / "adapter_model.safetensors", made_by="02_training").parent


def target_path(style, level):
    """The tuned target as the in-process engines load it (merged), or its adapter for vLLM."""
    return (
        str(adapter(style, level))
        if P.engine.kind == "vllm"
        else str(training.merge(adapter(style, level), A.merged(adapter(style, level))))
    )


def draft_path(method, style, level):
    if method == "base":
        return base_draft
    folder = A.require(A.draft(method, style, level), made_by="03_distillation")
    return str(training.merge(folder, A.merged(folder)))


def engine_for(target, level, cfg=P.engine):
    """target: "base" or a style; on vLLM a tuned target is the base model with its adapter."""
    if target == "base":
        return engines.make(cfg, base_target, P.seed)
    if cfg.kind == "vllm":
        return engines.make(cfg, base_target, P.seed, lora=target_path(target, level))
    return engines.make(cfg, target_path(target, level), P.seed)


DRAFTS = {level: ["base", *distillation.methods(P.distill, level)] for level in LEVELS}  # the reference run's draft is "distilled"
print("targets: base +", ", ".join(f"{LABELS[s]} × {len(LEVELS)} levels" for s in STYLES))
print("drafts per target:", "; ".join(f"{level}: {', '.join(d)}" for level, d in DRAFTS.items()))


def cached(name, compute, params, models_used):
    """A measurement of this chapter, reused while its settings, the models' weights, this machine
    and the code are unchanged: {"runs": compute(), "provenance": where and when it was made}."""
    weights = [f for m in models_used if Path(m).is_dir() for f in sorted(Path(m).glob("*.safetensors"))]  # Hub ids: by name
    code = [
        NOTEBOOKS / "04_benchmarking.py",
        *lib_sources("bench", "engines", "evaluation", "lossless", "metrics", "models", "specdec", "results"),
    ]
    params = {**params, "models": [str(m) for m in models_used], "engine": dataclasses.asdict(P.engine), "machine": machine()}
    made = lambda: {"runs": compute(), "provenance": results.provenance(P, P.engine.kind, params)}  # noqa: E731
    return stages.cached(A.cached("04_benchmarking", name), params, made, inputs=code + weights)


# %% [markdown]
# ## Accuracy: every target alone on the whole test set
#
# Greedy, `bench.max_new_tokens` at most, in batches of `engine.batch_size` on the in-process
# engine run eagerly (compiling pays for one request at a time, not for batches). Truncated
# answers (cut at the cap) count as wrong and are shown. Whether a batch changes a greedy answer
# is checked further down, against the same questions answered one at a time.

# %%
shutil.rmtree(A.results, ignore_errors=True)  # this run writes every result again (from its caches): none is left from older code
accuracy_engine = dataclasses.replace(P.engine, compile=False)
accuracy = {}
for level in LEVELS:
    for target in ["base", *STYLES]:
        style = "cot" if target == "base" else target  # the base target is asked with the CoT prompt, as in chapter 02
        used = [base_target if target == "base" else target_path(target, level)]
        settings = {
            "rows": [r["id"] for r in tests[level]],
            "style": style,
            "max_new_tokens": B.max_new_tokens,
            "batch_size": P.engine.batch_size,
        }
        accuracy[level, target] = cached(
            f"accuracy_{level}_{target}",
            lambda target=target, level=level, style=style: evaluation.score(
                engine_for(target, level, accuracy_engine), tests[level], style, B.max_new_tokens, batch_size=P.engine.batch_size
            ),
            settings,
            used,
        )
        s = accuracy[level, target]["runs"]
        run = results.Run(level, target, "alone", 0, 0.0, P.engine.kind, "all")
        results.write(A.results, run, s, results.run_metrics(s), accuracy[level, target]["provenance"])

table = pd.DataFrame(
    [
        {
            "level": level,
            "target": "base" if target == "base" else LABELS[target],
            "accuracy": (s := accuracy[level, target]["runs"]).accuracy,
            "95 % interval": f"{s.ci_low:.2f}-{s.ci_high:.2f}",
            "questions": s.n,
            "tokens per answer": s.mean_tokens,
            "truncated": sum(a["finish_reason"] == "length" for a in s.answers),
        }
        for (level, target) in accuracy
    ]
)
display(table.round(3))
print(f"greedy, whole test set, at most {B.max_new_tokens} new tokens ·", stamp(profile))

# %% [markdown]
# ## Step costs, measured in this run
#
# The speedup model's inputs, from the models as the engine runs them (compiled where the profile
# compiles): c = the draft's decoding step / the target's, and v(K) = the target's verify pass of
# K + 1 tokens / its 1-token step, at a context of a typical prompt plus half an answer (medians of
# `theory.timing_repeats` passes, target and draft taking turns over five rounds). Costs depend on
# the architecture, not the weights: one pair stands for all.

# %%
level, style = LEVELS[0], "cod"
timing_rows = {lv: tests[lv][: B.timing_rows] for lv in LEVELS}
if P.engine.kind == "vllm":
    costs = None  # vLLM runs its own kernels and schedules: its measured speedups stand without the in-process cost model
    print("vLLM: step costs are not measured in-process; predicted speedups and efficiency are left out")
else:
    engine = engine_for(style, level)
    prompts = evaluation.prompts(engine.tokenizer, timing_rows[level], style)
    prompt_tokens = sum(len(engine.tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts) / len(prompts)
    context = int(prompt_tokens + accuracy[level, style]["runs"].mean_tokens / 2)

    def measure_costs():
        draft = engine.draft_model(Speculative("draft_model", B.k, draft_path("distilled", style, level)))
        return bench.step_costs(engine.model, draft, B.ks, context=context, repeats=P.theory.timing_repeats, rounds=5)

    costs = cached(
        "step_costs",
        measure_costs,
        {"context": context, "ks": B.ks, "repeats": P.theory.timing_repeats},
        [target_path(style, level), draft_path("distilled", style, level)],
    )["runs"]
    display(
        pd.DataFrame({"verify K+1 tokens (ms)": costs.verify_ms, "v(K) = verify / step": costs.v})
        .T.rename(columns=lambda k: f"K={k}")
        .round(3)
    )
    print(
        f"target step {costs.target_ms:.2f} ms, draft step {costs.draft_ms:.2f} ms: c = {costs.c:.3f}; context {context} tokens ·",
        stamp(profile),
    )

# %% [markdown]
# ## Speculative decoding, request by request
#
# For each level and tuned target, on its timed questions: the target alone, then with each draft at
# K = `bench.k`, with prompt lookup (n ≤ `bench.ngram_max`), and for the CoD target with its
# distilled draft at every K of `bench.ks`, all greedy. Every request is timed in `bench.rounds`
# rounds, the configurations taking turns within each round; a request's latency is the median of
# its rounds, and each round's own speedup is kept: a run whose rounds disagree by more than
# `results.UNSTABLE_SPREAD` of their median is marked unstable. Each run is graded, compared token
# by token with the target alone, and written to `data/<profile>/results/`. The timed questions are
# the first `bench.timing_rows` of each level (on tiny 10 of 200, down from 14 when each was timed
# once: three rounds of every configuration must fit the chapter's time budget), so a speedup's
# interval is wide; accuracy always uses the whole test set.


# %%
def configs_for(style, level):
    """The timed configurations by (draft, K): the target alone, every draft and prompt lookup at
    K = bench.k, and for the CoD target its distilled draft at every K of the sweep."""
    out = {("alone", 0): None}
    out.update({(m, B.k): Speculative("draft_model", B.k, draft_path(m, style, level)) for m in DRAFTS[level]})
    out["ngram", B.k] = Speculative("ngram", B.k, ngram_max=B.ngram_max)
    if style == "cod":
        out.update({("distilled", k): Speculative("draft_model", k, draft_path("distilled", style, level)) for k in B.ks if k != B.k})
    return out


def timed(style, level):
    configs = configs_for(style, level)
    engine = engine_for(style, level)
    rows = timing_rows[level]
    prompts = evaluation.prompts(engine.tokenizer, rows, style)
    sampling = Sampling(max_new_tokens=B.max_new_tokens)
    per_request = P.engine.kind != "vllm"  # vLLM restarts its engine to change speculation: one configuration after another
    made = bench.timed_requests(
        engine, prompts, sampling, configs, rounds=B.rounds, per_request=per_request, desc=f"{LABELS[style]} {level}"
    )
    speculative = {key: generations for key, generations in made.items() if configs[key] is not None}
    return {
        "scores": {key: evaluation.grade(rows, generations) for key, generations in made.items()},
        "differences": lossless.classify_runs(engine, prompts, made["alone", 0], speculative),
    }


def predicted(spec, m):
    """E(alpha, K) / (K c + v(K)) for a draft model; None for prompt lookup (it proposes 0 to K
    tokens a step at no draft cost, which the model does not describe) or without measured costs."""
    if costs is None or spec is None or spec.method != "draft_model" or spec.k not in costs.v:
        return None
    return metrics.predicted_speedup(m["alpha"], spec.k, costs.c, costs.v[spec.k])


for level in LEVELS:
    for style in STYLES:
        configs = configs_for(style, level)
        used = [target_path(style, level), *(s.draft for s in configs.values() if s is not None and s.draft is not None)]
        settings = {
            "rows": [r["id"] for r in timing_rows[level]],
            "style": style,
            "configs": {f"{draft} K={k}": str(s) for (draft, k), s in configs.items()},
            "max_new_tokens": B.max_new_tokens,
            "rounds": B.rounds,
        }
        made = cached(f"timed_{level}_{style}", lambda style=style, level=level: timed(style, level), settings, used)
        scores, differences = made["runs"]["scores"], made["runs"]["differences"]
        plain = scores["alone", 0]
        plain_counts = metrics.summarize(plain.generations)
        for (draft, k), s in scores.items():
            spec = configs[draft, k]
            m = results.run_metrics(s, plain if spec is not None else None, differences.get((draft, k)))
            if spec is not None:
                m.update(results.speedup(plain, s, seed=P.seed), predicted_speedup=predicted(spec, m))
                m["decode_speedup"] = metrics.decode_speedup(m, plain_counts)
                m["efficiency"] = m["speedup"] / m["predicted_speedup"] if m["predicted_speedup"] else None
                m["decode_efficiency"] = m["decode_speedup"] / m["predicted_speedup"] if m["predicted_speedup"] else None
            run = results.Run(level, style, draft, k, 0.0, P.engine.kind, "timed")
            results.write(A.results, run, s, m, made["provenance"], plain if spec is not None else None, differences.get((draft, k)))

runs = results.load_runs(A.results)
timed_table = runs[runs.request_set == "timed"].assign(target=lambda t: t.target.map(LABELS))
by = timed_table.set_index(["level", "target", "draft", "k"])
SHOWN = {
    "level": "level",
    "target": "target",
    "draft": "draft",
    "k": "K",
    "speedup": "speedup",
    "speedup_low": "low",
    "speedup_high": "high",
    "round_spread": "spread of rounds",
    "unstable": "unstable",
    "predicted_speedup": "predicted",
    "efficiency": "efficiency",
    "decode_speedup": "decode speedup",
    "decode_efficiency": "decode efficiency",
    "identical_to_plain": "identical",
    "near_tie": "near-tie",
    "mismatch": "mismatch",
    "acceptance_rate": "acceptance rate",
    "mean_acceptance_length": "mean acceptance length",
    "alpha": "alpha",
    "accuracy": "accuracy (timed)",
    "tokens_per_request": "tokens per answer",
    "truncated": "truncated",
    "latency_median_s": "latency median (s)",
    "tokens_per_s": "tokens/s",
}
display(timed_table[list(SHOWN)].rename(columns=SHOWN).round(3))
print(
    f"greedy, batch 1, {B.timing_rows} timed questions per level, {B.rounds} rounds each; speedup = median per-request latency "
    f"ratio [bootstrap 95 %]; spread = (max - min) / median of the rounds' speedups, unstable above {results.UNSTABLE_SPREAD} ·",
    results.provenance_line(timed_table),
)

# %% [markdown]
# ## The reference run's speculative configurations on the whole test set
#
# The reference run measured each tuned target with its distilled draft (K = `bench.k`) on every
# test problem, and so does this chapter: greedy, one request at a time (the native decoder
# speculates one request at a time), graded like the targets alone. Each answer is compared token
# for token with the target's own answer from the accuracy run above, which was made in batches;
# where the two differ, the target answers that question again alone, one request at a time, which
# tells a batching difference (the target's own greedy answer moved with its batch) from a
# speculative one (a bug).


# %%
def whole_test_set(style, level):
    engine = engine_for(style, level)
    spec = evaluation.score(
        engine, tests[level], style, B.max_new_tokens, speculative=Speculative("draft_model", B.k, draft_path("distilled", style, level))
    )
    batched = accuracy[level, style]["runs"].generations
    differ = [i for i, (g, b) in enumerate(zip(spec.generations, batched, strict=True)) if g.token_ids != b.token_ids]
    alone = evaluation.score(engine, [tests[level][i] for i in differ], style, B.max_new_tokens) if differ else None
    # the target's own answers: the batched ones, and where speculation wrote another, its batch-1 answer
    own = list(batched)
    for i, g in zip(differ, alone.generations if differ else [], strict=True):
        own[i] = g
    prompts = evaluation.prompts(engine.tokenizer, tests[level], style)
    differences = lossless.classify_runs(engine, prompts, own, {"speculative": spec.generations})["speculative"]
    return {"speculative": spec, "differ from batched": differ, "own": own, "differences": differences}


whole = {}
for level in LEVELS:
    for style in STYLES:
        draft = draft_path("distilled", style, level)
        settings = {"rows": [r["id"] for r in tests[level]], "style": style, "k": B.k, "max_new_tokens": B.max_new_tokens}
        made = cached(
            f"whole_{level}_{style}",
            lambda style=style, level=level: whole_test_set(style, level),
            settings,
            [target_path(style, level), draft],
        )
        whole[level, style] = made["runs"]
        spec, differ, differences = made["runs"]["speculative"], made["runs"]["differ from batched"], made["runs"]["differences"]
        own = evaluation.grade(tests[level], made["runs"]["own"])
        m = {**results.run_metrics(spec, own, differences), "differ_from_batched": len(differ)}
        run = results.Run(level, style, "distilled", B.k, 0.0, P.engine.kind, "all")
        results.write(A.results, run, spec, m, made["provenance"], own, differences)
runs = results.load_runs(A.results)
whole_table = runs[(runs.request_set == "all") & (runs.k > 0)]
display(
    whole_table[
        [
            "level",
            "target",
            "draft",
            "k",
            "requests",
            "accuracy",
            "accuracy_low",
            "accuracy_high",
            "identical_to_plain",
            "near_tie",
            "mismatch",
            "differ_from_batched",
            "acceptance_rate",
            "mean_acceptance_length",
        ]
    ]
    .assign(target=lambda t: t.target.map(LABELS))
    .rename(
        columns={
            "requests": "questions",
            "accuracy_low": "low",
            "accuracy_high": "high",
            "identical_to_plain": "identical",
            "differ_from_batched": "differ from batched",
        }
    )
    .round(3)
)
print(f"greedy, K = {B.k}, whole test set, one request at a time ·", results.provenance_line(whole_table))

# %% [markdown]
# ### Lossless: the target's own tokens, as far as the dtype allows
#
# Greedy speculative decoding must write what the target writes alone. In float32 on a CPU that
# means token for token. In bf16 on a GPU the verify pass over K + 1 tokens and the target's
# 1-token step run different kernels, which round differently, so where the target's two best
# tokens are nearly tied the two outputs may part (`lossless`). Every output that differs is
# classified at its first differing token, from the target's own logits there: a **near-tie** when
# both tokens' logits lie within `lossless.TIE_ULPS` units in the last place of the top logit (a
# rounding difference), else a **mismatch**: a bug in the decoder, which stops this chapter with
# the requests listed. Beside it, the question the accuracy runs rest on: does a greedy answer
# depend on the batch it was made in? The timed questions were answered by each target alone one
# at a time; the same questions were answered in batches for accuracy.

# %%
speculative_runs = runs[(runs.k > 0) & (runs.temperature == 0)]
parted = speculative_runs[speculative_runs.identical_to_plain < 1.0]
if len(parted):
    display(parted[["run", "requests", "identical_to_plain", "near_tie", "mismatch", "near_tie_ids", "mismatch_ids"]])
mismatched = speculative_runs[speculative_runs.mismatch > 0]
if len(mismatched):
    raise AssertionError(
        f"{len(mismatched)} greedy speculative runs wrote other tokens than the target alone where no near-tie explains it "
        f"(a decoder bug): " + "; ".join(f"{r.run}: {', '.join(map(str, r.mismatch_ids))}" for r in mismatched.itertuples())
    )
batching = []
for level in LEVELS:
    for style in STYLES:
        alone = by.loc[(level, LABELS[style], "alone", 0)]
        one_at_a_time = results.load_requests(A.results, alone.run)
        batched = accuracy[level, style]["runs"].generations[: len(one_at_a_time)]
        same = sum(a == b.token_ids for a, b in zip(one_at_a_time.token_ids, batched, strict=True))
        batching.append(
            {
                "level": level,
                "target": LABELS[style],
                "timed questions": len(one_at_a_time),
                "batched = one at a time": same,
                "whole test set: speculative ≠ batched": len(whole[level, style]["differ from batched"]),
            }
        )
batching = pd.DataFrame(batching)
display(batching)
requests_by_kind = {
    kind: int(round((speculative_runs[column] * speculative_runs.requests).sum()))
    for kind, column in [("identical", "identical_to_plain"), ("near-tie", "near_tie"), ("mismatch", "mismatch")]
}
print(
    f"{int(speculative_runs.requests.sum())} greedy speculative requests in {len(speculative_runs)} runs: "
    + ", ".join(f"{n} {kind}" for kind, n in requests_by_kind.items())
    + f" (near-tie: within {lossless.TIE_ULPS} ulps of the top logit); "
    f"batched answers identical to one-at-a-time answers on {batching['batched = one at a time'].sum()} of "
    f"{batching['timed questions'].sum()} timed questions ·",
    stamp(profile),
)
# %% [markdown]
# ### Where the efficiency goes
#
# The speedup model multiplies two things this run measures separately, so each can be checked:
# tokens per target pass (E(α, K) from the run's α, against the mean acceptance length counted)
# and the cost of a step (K draft steps and a verify pass from the step costs above, against the
# seconds per step the decoder took after its first step, and the same for the target alone). The
# first step also reads the prompt: its share of the latency is what the model leaves out.
#
# The native decoder also times its own passes, so a step's measured time splits three ways: inside
# the draft's K passes, inside the target's verify pass, and the decoder's own work (choosing and
# comparing tokens, rolling the caches back), each beside what the step costs above predict. Where a
# model's pass costs more in the loop than alone, a likely cause (not measured here) is that the
# other model's pass has just displaced its weights and activations from the CPU's caches.

# %%
if costs is not None:
    ledger = []
    for level in LEVELS:
        for style in STYLES:
            plain_row = by.loc[(level, LABELS[style], "alone", 0)]
            r = by.loc[(level, LABELS[style], "distilled", B.k)]
            step, draft_ms, verify_ms = (1000 * r[key] for key in ("decode_step_s", "decode_draft_s", "decode_target_s"))
            ledger.append(
                {
                    "level": level,
                    "target": LABELS[style],
                    "E(α, K)": metrics.expected_tokens_per_step(r["alpha"], B.k),
                    "tokens per pass": r["mean_acceptance_length"],
                    "step, model (ms)": B.k * costs.draft_ms + costs.verify_ms[B.k],
                    "step, measured (ms)": step,
                    "draft passes, model (ms)": B.k * costs.draft_ms,
                    "draft passes, in the loop (ms)": draft_ms,
                    "verify, model (ms)": costs.verify_ms[B.k],
                    "verify, in the loop (ms)": verify_ms,
                    "decoder's own (ms)": step - draft_ms - verify_ms,
                    "target step, model (ms)": costs.target_ms,
                    "target step, measured (ms)": 1000 * plain_row["decode_step_s"],
                    "prompt pass share, alone": plain_row["prompt_pass_share"],
                    "prompt pass share, speculative": r["prompt_pass_share"],
                    "efficiency": r["efficiency"],
                    "decode efficiency": r["decode_efficiency"],
                }
            )
    ledger = pd.DataFrame(ledger)
    display(ledger.round(3))
    print(f"distilled drafts, K = {B.k}; measured steps: seconds per target pass after the first ·", stamp(profile))

# %% [markdown]
# ## The reference run's five configurations
#
# Accuracy and tokens from the whole test set (each speculative configuration measured there too,
# above), acceptance and speedup from the timed questions, K = `bench.k`.

# %%
reference = []
for level in LEVELS:
    for target in ["base", *STYLES]:
        s = accuracy[level, target]["runs"]
        name = "base target" if target == "base" else f"{LABELS[target]} target"
        reference.append({"level": level, "configuration": name, "accuracy": s.accuracy, "tokens per answer": s.mean_tokens})
    for style in STYLES:
        r = by.loc[(level, LABELS[style], "distilled", B.k)]
        spec = whole[level, style]["speculative"]
        reference.append(
            {
                "level": level,
                "configuration": f"{LABELS[style]} target + distilled draft",
                "accuracy": spec.accuracy,
                "tokens per answer": spec.mean_tokens,
                "acceptance rate": r["acceptance_rate"],
                "mean acceptance length": r["mean_acceptance_length"],
                "speedup": r["speedup"],
                "95 % interval": f"{r['speedup_low']:.2f}-{r['speedup_high']:.2f}",
                "unstable": r["unstable"],
                "predicted": r["predicted_speedup"],
                "efficiency": r["efficiency"],
                "decode speedup": r["decode_speedup"],
                "decode efficiency": r["decode_efficiency"],
            }
        )
reference = pd.DataFrame(reference)
display(reference.round(3))
print(f"K = {B.k} ·", stamp(profile))

# %% [markdown]
# ## Which draft: trained, untrained, or none at all
#
# Each tuned target with every draft at K = `bench.k` and with prompt lookup: the speedup with its
# interval, and the acceptance that explains it. A hatched bar is an unstable run (its rounds
# disagree).

# %%
METHOD_LABELS = {
    "base": "untrained base draft",
    "distilled": "distilled",
    "teacher_data": "teacher data",
    "white_box": "white box",
    "ngram": "prompt lookup (n-gram)",
}
METHOD_COLORS = {"base": figures.COLORS["base"], **dict(zip([*distillation.METHODS, "ngram"], figures.PALETTE[2:], strict=False))}
at_k = timed_table[(timed_table.k == B.k) & (timed_table.draft != "alone")]
methods = list(METHOD_LABELS)
fig, axes = plt.subplots(1, len(STYLES), figsize=(12, 3.8), sharey=True)
width = 0.8 / len(methods)
for ax, style in zip(axes, STYLES, strict=True):
    for j, method in enumerate(methods):
        # a control draft exists only on distill.control_levels: no bar elsewhere
        part = at_k[(at_k.target == LABELS[style]) & (at_k.draft == method)].set_index("level").reindex(list(LEVELS))
        x = [i + (j - (len(methods) - 1) / 2) * width for i in range(len(LEVELS))]
        errors = [part.speedup - part.speedup_low, part.speedup_high - part.speedup]
        bars = ax.bar(x, part.speedup, width, yerr=errors, capsize=2, color=METHOD_COLORS[method], label=METHOD_LABELS[method])
        for bar, unstable in zip(bars, part.unstable.fillna(False), strict=True):
            bar.set_hatch("///" if unstable else None)
    ax.axhline(1.0, color="0.3", lw=0.8)
    ax.set(title=f"{LABELS[style]} target, K = {B.k}", xticks=range(len(LEVELS)), xticklabels=LEVELS)
axes[0].set_ylabel("speedup over the target alone\n(median, 95 % interval)")
fig.legend(*axes[0].get_legend_handles_labels(), loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
fig.tight_layout()
figures.save(fig, profile, "04_speedup_by_draft")
plt.show()

# %% [markdown]
# ## How many tokens to draft: the K sweep
#
# The CoD target with its distilled draft at every K. Left: measured speedup with its interval, and
# the prediction from the run's α and the measured costs (an open marker: an unstable run). Right:
# tokens per target pass against the i.i.d. model's E(α, K) at the α measured at K = `bench.k`.

# %%
sweep = timed_table[(timed_table.target == "CoD") & (timed_table.draft == "distilled")].sort_values("k")
fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
figures.speedup_against_k(axes[0], sweep)
axes[0].set(title="CoD target + distilled draft")
for i, level in enumerate(LEVELS):
    part = sweep[sweep.level == level]
    color = figures.PALETTE[i]
    alpha = part[part.k == B.k].alpha.iloc[0]
    ks = range(1, max(B.ks) + 1)
    axes[1].plot(part.k, part.mean_acceptance_length, "o", color=color, label=f"{level}, measured")
    axes[1].plot(
        ks, [metrics.expected_tokens_per_step(alpha, k) for k in ks], "-", color=color, alpha=0.6, label=f"{level}, E(α = {alpha:.2f}, K)"
    )
axes[1].set(xlabel="K (draft tokens per step)", ylabel="tokens per target pass", title="Acceptance length against E(α, K)")
figures.integer_ticks((axes[1], "x"))
for ax in axes:
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # beside the panel: measured curves go anywhere
fig.tight_layout()
figures.save(fig, profile, "04_k_sweep")
plt.show()
best_k = {level: int(sweep[sweep.level == level].set_index("k").speedup.idxmax()) for level in LEVELS}
at_edge = [level for level, k in best_k.items() if k == max(B.ks)]
print(
    "best K by measured speedup (chosen and measured on the same requests, so optimistic; chapter 05 chooses on half and reports on the other):",
    ", ".join(f"{level} {k}" for level, k in best_k.items()),
    f"({', '.join(at_edge)}: the largest K swept, so the best may lie beyond)" if at_edge else "",
    "·",
    stamp(profile),
)

# %% [markdown]
# ## Sampling at temperature `bench.sampled_temperature`: does accuracy stay?
#
# The CoD target alone and with its distilled draft answer the first `bench.sampled_rows` test
# questions of each level by sampling (the target alone in batches, the speculative decoder one
# request at a time: other random numbers, so the answers differ one by one but follow the same
# distribution if the decoder is lossless). The two accuracies must not differ beyond noise: a
# two-sided test on the two proportions. Beside them, the acceptance rate sampled and greedy.

# %%
sampled = []
for level in LEVELS:
    rows = tests[level][: B.sampled_rows]
    draft = draft_path("distilled", "cod", level)
    settings = {"rows": [r["id"] for r in rows], "temperature": B.sampled_temperature, "k": B.k, "max_new_tokens": B.max_new_tokens}

    def sample(level=level, rows=rows, draft=draft):
        engine = engine_for("cod", level)
        kwargs = {"max_new_tokens": B.max_new_tokens, "temperature": B.sampled_temperature, "seed": P.seed}
        return {
            "alone": evaluation.score(engine, rows, "cod", batch_size=P.engine.batch_size, **kwargs),  # batched: the same distribution
            "speculative": evaluation.score(engine, rows, "cod", speculative=Speculative("draft_model", B.k, draft), **kwargs),
        }

    made = cached(f"sampled_{level}", sample, settings, [target_path("cod", level), draft])
    alone, spec = made["runs"]["alone"], made["runs"]["speculative"]
    for run, s in [
        (results.Run(level, "cod", "alone", 0, B.sampled_temperature, P.engine.kind, "sampled"), alone),
        (results.Run(level, "cod", "distilled", B.k, B.sampled_temperature, P.engine.kind, "sampled"), spec),
    ]:
        results.write(A.results, run, s, results.run_metrics(s), made["provenance"])
    m = metrics.summarize(spec.generations)
    sampled.append(
        {
            "level": level,
            "questions": alone.n,
            "accuracy alone": alone.accuracy,
            "accuracy speculative": spec.accuracy,
            "difference": spec.accuracy - alone.accuracy,
            "p (two proportions)": stats.two_proportions_p(alone.correct, alone.n, spec.correct, spec.n),
            "acceptance rate": m["acceptance_rate"],
            "acceptance rate, greedy": by.loc[(level, "CoD", "distilled", B.k), "acceptance_rate"],
            "tokens per answer alone": alone.mean_tokens,
            "tokens per answer speculative": spec.mean_tokens,
        }
    )
sampled = pd.DataFrame(sampled)
display(sampled.round(3))
print(f"temperature {B.sampled_temperature}, K = {B.k}, CoD target + distilled draft ·", stamp(profile))

# %% [markdown]
# ## Throughput under load (vLLM)
#
# Speculation trades spare compute for latency; as more requests are decoded together the spare
# compute shrinks and speculation pays less (the SPEED-Bench question). On vLLM the CoD target of
# the first level runs its timed questions at each concurrency of `bench.concurrency`
# (`max_num_seqs`), alone and with its distilled draft at every K of `bench.ks`: vLLM starts an
# engine for each pair, so one level is swept. The in-process engines decode one request at a time
# and skip this.

# %%
if P.engine.kind == "vllm":
    load = []
    for level in LEVELS[:1]:
        engine = engine_for("cod", level)
        prompts = evaluation.prompts(engine.tokenizer, timing_rows[level], "cod")
        sampling = Sampling(max_new_tokens=B.max_new_tokens)
        for n in B.concurrency:
            alone = engine.throughput(prompts, sampling, None, n)
            for k in B.ks:
                spec = engine.throughput(prompts, sampling, Speculative("draft_model", k, draft_path("distilled", "cod", level)), n)
                load.append(
                    {
                        "level": level,
                        "concurrency": n,
                        "k": k,
                        "tokens/s alone": alone["tokens_per_s"],
                        "tokens/s speculative": spec["tokens_per_s"],
                        "speedup": spec["tokens_per_s"] / alone["tokens_per_s"],
                    }
                )
    load = pd.DataFrame(load)
    display(load.round(3))
    display(
        load.loc[load.groupby(["level", "concurrency"]).speedup.idxmax()][["level", "concurrency", "k", "speedup"]].rename(
            columns={"k": "best K"}
        )
    )
else:
    print(f"the {P.engine.kind} engine decodes one request at a time: no concurrency sweep on the {profile} profile")

# %% [markdown]
# ## What this chapter found

# %%
cod_best = {level: by.loc[(level, "CoD", "distilled", best_k[level])] for level in LEVELS}
timed_spec = timed_table[timed_table.k > 0]
efficiency = timed_spec[["efficiency", "decode_efficiency"]].dropna()


def interval(r):
    return f"{r['speedup']:.2f}x [{r['speedup_low']:.2f}-{r['speedup_high']:.2f}]" + (" (unstable)" if r["unstable"] else "")


faster = [level for level in LEVELS if cod_best[level]["speedup_low"] > 1.0]
minutes = (time.perf_counter() - chapter_start) / 60
lines = [
    f"Profile `{profile}`, engine {P.engine.kind}{' (compiled)' if P.engine.compile else ''}, greedy, {B.timing_rows} timed questions per level, {B.rounds} rounds ({stamp(profile)}):",
    *(
        f"- **{level}**: CoD target + distilled draft at K = {B.k}: {interval(by.loc[(level, 'CoD', 'distilled', B.k)])}, "
        f"at its best K = {best_k[level]}{' (the largest swept)' if level in at_edge else ''}: {interval(cod_best[level])} (acceptance {cod_best[level]['acceptance_rate']:.2f}); "
        f"CoT target + distilled draft at K = {B.k}: {interval(by.loc[(level, 'CoT', 'distilled', B.k)])}. "
        f"Accuracy on {accuracy[level, 'cod']['runs'].n} questions: CoD {accuracy[level, 'cod']['runs'].accuracy:.2f} alone, "
        f"{whole[level, 'cod']['speculative'].accuracy:.2f} speculative; CoT {accuracy[level, 'cot']['runs'].accuracy:.2f} alone, "
        f"{whole[level, 'cot']['speculative'].accuracy:.2f} speculative; base {accuracy[level, 'base']['runs'].accuracy:.2f}."
        for level in LEVELS
    ),
    f"- Levels where the CoD pair at its best K is faster than the target alone with 95 % confidence (interval above 1): "
    f"{len(faster)} of {len(LEVELS)}{' (' + ', '.join(faster) + ')' if faster else ''}; the best K is chosen on the same requests, so this is optimistic.",
    f"- Greedy speculative outputs against the target's own, {int(speculative_runs.requests.sum())} requests in {len(speculative_runs)} runs "
    f"(the whole test set included): {requests_by_kind['identical']} identical, {requests_by_kind['near-tie']} parted at a numerical near-tie, "
    f"{requests_by_kind['mismatch']} mismatched; batched and one-at-a-time answers of the targets alone identical on "
    f"{batching['batched = one at a time'].sum()} of {batching['timed questions'].sum()} timed questions.",
    f"- Timing stability: {int(timed_spec.unstable.sum())} of {len(timed_spec)} timed speculative runs have rounds whose speedups spread "
    f"more than {results.UNSTABLE_SPREAD:.0%} of their median (largest spread {timed_spec.round_spread.max():.2f}).",
]
if len(efficiency):
    lines.append(
        f"- Efficiency (measured / predicted speedup) over the {len(efficiency)} draft-model runs: median "
        f"{efficiency.efficiency.median():.2f} end to end (range {efficiency.efficiency.min():.2f}-{efficiency.efficiency.max():.2f}), "
        f"{efficiency.decode_efficiency.median():.2f} after the first step (range {efficiency.decode_efficiency.min():.2f}-"
        f"{efficiency.decode_efficiency.max():.2f}); c = {costs.c:.3f} measured in this run."
    )
if costs is not None:
    med = ledger.median(numeric_only=True)
    own = med["decoder's own (ms)"]
    lines.append(
        f"- Where a step's time goes (distilled drafts, K = {B.k}, medians over the {len(ledger)} pairs): measured "
        f"{med['step, measured (ms)']:.2f} ms against {med['step, model (ms)']:.2f} ms modelled; the draft's passes "
        f"{med['draft passes, in the loop (ms)']:.2f} ms in the loop against {med['draft passes, model (ms)']:.2f} ms alone, the verify "
        f"pass {med['verify, in the loop (ms)']:.2f} against {med['verify, model (ms)']:.2f} ms, the decoder's own work "
        f"{own:.2f} ms."
    )
worst = sampled.loc[sampled["p (two proportions)"].idxmin()]
lower = int((sampled["acceptance rate"] < sampled["acceptance rate, greedy"]).sum())
lines += [
    f"- At temperature {B.sampled_temperature}: the smallest p-value of the accuracy difference is {worst['p (two proportions)']:.2f} "
    f"({worst.level}: {worst['accuracy alone']:.2f} alone vs {worst['accuracy speculative']:.2f} speculative); "
    + (
        "no level's difference is significant at 0.05."
        if worst["p (two proportions)"] >= 0.05
        else "a difference significant at 0.05: look at that level."
    )
    + f" Acceptance sampled is below acceptance greedy on {lower} of {len(LEVELS)} levels "
    f"({', '.join(f'{lv} {a:.2f} vs {g:.2f}' for lv, a, g in zip(sampled.level, sampled['acceptance rate'], sampled['acceptance rate, greedy'], strict=True))}).",
    f"- This run of the chapter took {minutes:.1f} minutes (measurements already made are reused, not repeated).",
]
display(Markdown("\n".join(lines)))
