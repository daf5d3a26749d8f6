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
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 · Benchmarking: every target alone and with its draft
#
# In this chapter you will
# - grade every target, alone and with its draft, on the whole test set of each level;
# - time speculation against the target alone, request by request, and set it beside the model of chapter 00;
# - watch real speculative steps: which draft tokens the target kept, which it replaced.
#
# > **Speedup**: the target alone's latency over the speculative latency on the same request.
# > **Prompt lookup**: a draft without a model, which proposes the tokens that followed the last
# > few tokens' previous occurrence in the prompt (an n-gram match).
# > **Bootstrap interval**: the spread of a statistic over many resamplings of the requests (drawn
# > with replacement); its middle 95 % is the interval.
# > **Efficiency**: measured speedup / the speedup chapter 00's model predicts from the same run's α, c and v.
#
# The reference run's five configurations on each level: the base target, the CoT target, the CoD
# target, and each tuned target with its distilled draft as a speculative decoder, K = `bench.k`.
# Beyond it, on the same requests: the tuned targets with the base draft (pretrained, not tuned), with the
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

# %% tags=["remove-input"]
from specbook.figures import where_we_are

where_we_are("04")

# %% tags=["parameters"]
# The scale of the whole book, one of notebooks/params/*.yaml. Switch it here, or run headless with
# `make run-all PROFILE=smoke` (add NB=02 for one chapter):
#   smoke  CI's check that every cell runs (tiny models, a few dozen problems)
#   tiny   the default, offline on any CPU (small models trained here)
#   full   one GPU (Qwen3-14B, Qwen3-0.6B, Gemini, vLLM)
profile = "tiny"  # smoke | tiny | full

# %% tags=["hide-input"]
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
    analysis,
    bench,
    distillation,
    engines,
    evaluation,
    figures,
    findings,
    lossless,
    metrics,
    pretraining,
    profiles,
    rationales,
    results,
    specdec,
    stages,
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
# chapter 03 and the base draft (pretrained, not tuned).

# %%
base_target = pretraining.base_model_path(P, A, "target")
base_draft = pretraining.base_model_path(P, A, "draft")
tests = {level: rationales.load_rows(A, level, "test") for level in LEVELS}

# %% [markdown]
# Each tuned target is its base with chapter 02's adapter, merged for the in-process engines (vLLM
# serves the adapter itself); each draft comes from chapter 03.


# %%
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


# %% [markdown]
# The drafts each target is timed with: the pretrained base draft of chapter 02 (never tuned on
# answers), and chapter 03's distilled draft with its controls where they were trained.

# %%
DRAFTS = {level: ["base", *distillation.methods(P.distill, level)] for level in LEVELS}  # the reference run's draft is "distilled"
print("targets: base +", ", ".join(f"{LABELS[s]} × {len(LEVELS)} levels" for s in STYLES))
print("drafts per target:", "; ".join(f"{level}: {', '.join(d)}" for level, d in DRAFTS.items()))

# %% [markdown]
# Every measurement below is kept on disk with what it was made from: a re-run reuses it until the
# settings, the models' weights, this machine or the code change.


# %%
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

# %% [markdown]
# Accuracy of every target alone, with its 95 % interval and the answers cut at the token cap:

# %%
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
# the first `bench.timing_rows` of each level (three rounds of every configuration must fit the
# chapter's time budget), so a speedup's
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


# %% [markdown]
# Each configuration's run is graded, compared with the target alone request by request, set
# beside the model's prediction (`results.timed_metrics`) and written to `data/<profile>/results/`.

# %%
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
        for (draft, k), s in scores.items():
            spec = configs[draft, k]
            m = results.timed_metrics(plain, s, spec, differences.get((draft, k)), costs, seed=P.seed)
            run = results.Run(level, style, draft, k, 0.0, P.engine.kind, "timed")
            results.write(A.results, run, s, m, made["provenance"], plain if spec is not None else None, differences.get((draft, k)))

# %% [markdown]
# Every timed run, beside its prediction and its losslessness check:

# %%
runs = results.load_runs(A.results)
timed_table = runs[runs.request_set == "timed"].assign(target=lambda t: t.target.map(LABELS))
by = timed_table.set_index(["level", "target", "draft", "k"])
display(timed_table[list(results.TIMED_COLUMNS)].rename(columns=results.TIMED_COLUMNS).round(3))
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


# %% [markdown]
# Each tuned target with its distilled draft, on every level:

# %%
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
# %% [markdown]
# Accuracy with speculation, and how many answers are identical to the target's own:

# %%
runs = results.load_runs(A.results)
whole_table = runs[(runs.request_set == "all") & (runs.k > 0)].assign(target=lambda t: t.target.map(LABELS))
display(whole_table[list(results.WHOLE_COLUMNS)].rename(columns=results.WHOLE_COLUMNS).round(3))
print(f"greedy, K = {B.k}, whole test set, one request at a time ·", results.provenance_line(whole_table))

# %% [markdown]
# ### Speculation, step by step
#
# What those acceptance rates look like in one answer: the first answer on the hardest level in
# which the CoD target rejected a draft token, its first verifications one per line. Green: draft
# tokens the target accepted; red: the draft's rejected token; blue: the target's own token (its
# correction after a red one, else the bonus after all K were accepted). The in-process engines
# record every step; vLLM reports counts only, and this view then says so.

# %%
tokenizer = pretraining.base_tokenizer(P, A)
shown_level = LEVELS[-1]
example = next(
    (g for g in whole[shown_level, "cod"]["speculative"].generations if g.rejections),
    whole[shown_level, "cod"]["speculative"].generations[0],
)
example_steps = specdec.steps(example.token_ids, example.step_accepts, example.rejections)
print(tests[shown_level][whole[shown_level, "cod"]["speculative"].generations.index(example)]["question"])
figures.steps_html(example_steps, lambda t: tokenizer.decode([t]), limit=12)

# %% [markdown]
# The whole answer, each token coloured by who wrote it: the draft (accepted) or the target.

# %%
figures.answer_html(example_steps, lambda t: tokenizer.decode([t]))

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

# %% [markdown]
# Batching can change a greedy answer too (another summation order in the batched pass). The timed
# questions, answered one at a time, are compared with the same questions' batched answers:

# %%
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
            ledger.append({"level": level, "target": LABELS[style], **results.step_ledger(r, plain_row, costs, B.k)})
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
# ## Which draft: tuned, not tuned, or none at all
#
# Each tuned target with every draft at K = `bench.k` and with prompt lookup: the speedup with its
# interval, and the acceptance that explains it. A hatched bar is an unstable run (its rounds
# disagree).

# %%
METHOD_LABELS = analysis.DRAFT_LABELS
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
# distribution if the decoder is lossless). A test that fails to find a difference would not show
# that there is none, so the check is an *equivalence* test, paired by problem: the 95 % interval of
# the accuracy difference must lie inside ±`analysis.AS_ACCURATE_MARGIN` (two one-sided tests at
# 2.5 % each, `analysis.equivalent_accuracy`). Beside them, the acceptance rate sampled and greedy.

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
    same = analysis.equivalent_accuracy([a["correct"] for a in alone.answers], [a["correct"] for a in spec.answers])
    sampled.append(
        {
            "level": level,
            "questions": alone.n,
            "accuracy alone": alone.accuracy,
            "accuracy speculative": spec.accuracy,
            "difference": same["difference"],
            "low": same["low"],
            "high": same["high"],
            "verdict": same["verdict"],
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
# ## Summary and takeaways

# %%
minutes = (time.perf_counter() - chapter_start) / 60
summary = findings.benchmarking(
    profile=profile,
    P=P,
    by=by,
    best_k=best_k,
    at_edge=at_edge,
    accuracy={key: made["runs"] for key, made in accuracy.items()},
    whole={key: runs_of["speculative"] for key, runs_of in whole.items()},
    speculative_runs=speculative_runs,
    requests_by_kind=requests_by_kind,
    batching=batching,
    timed_table=timed_table,
    costs=costs,
    ledger=ledger if costs is not None else None,
    sampled=sampled,
    minutes=minutes,
)
display(Markdown(summary))

# %% [markdown]
# ## Exercises
#
# 1. Time the CoD pair at K = 1 and K = 8. Where does the measured speedup leave the prediction,
#    and which of c, v(K) and α explains it?
# 2. Compile the target (`bench.compile`). Which gets faster, the target alone or speculation?
# 3. Take the coloured answer above: which kinds of token does the draft miss? Check your guess
#    against chapter 05's rejection analysis.
#
# ## References
#
# - Leviathan, Kalman, Matias. *Fast Inference from Transformers via Speculative Decoding.* ICML 2023. [arXiv:2211.17192](https://arxiv.org/abs/2211.17192)
# - Saxena. *Prompt Lookup Decoding.* 2023. [github.com/apoorvumang/prompt-lookup-decoding](https://github.com/apoorvumang/prompt-lookup-decoding)
# - Kwon et al. *Efficient Memory Management for Large Language Model Serving with PagedAttention* (vLLM). SOSP 2023. [arXiv:2309.06180](https://arxiv.org/abs/2309.06180)
# - Li et al. *EAGLE-3: Scaling up Inference Acceleration of Large Language Models via Training-Time Test.* 2025. [arXiv:2503.01840](https://arxiv.org/abs/2503.01840)
