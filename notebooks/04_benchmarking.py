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
# - **Accuracy** on the whole test set of each level, every target alone, in batches (greedy
#   answers do not depend on batching). Greedy speculative decoding writes the target's own tokens,
#   so its accuracy is the target's: checked, not assumed, on every timed request (the share of
#   outputs identical token for token must be 100 %; a difference is a bug and is listed).
# - **Speedup** = the target-alone latency / the speculative latency of the same request, same engine
#   and settings, one request at a time, the configurations taking turns on each request so that the
#   machine's drift hits all alike (`bench.timed_requests`); the median over requests with a
#   bootstrap 95 % interval. Timing runs on the first `bench.timing_rows` test questions of a level.
# - Beside it the **prediction** E(α, K) / (K·c + v(K)) of chapter 00, from the run's own α and the
#   step costs c and v(K) measured in this run, and **efficiency** = measured / predicted: the share
#   of the model's speedup the decoder delivers. The model leaves out the prompt's pass (the
#   target's, which speculation does not shorten, and the draft's own), which weighs most on short
#   answers; the **decode speedup** leaves it out too (tokens per second after the first step,
#   `metrics.decode_speedup`), so **decode efficiency** = decode speedup / predicted is what the
#   decoder loses to per-step work the model does not count.
# - Every run writes `data/<profile>/results/<run>.csv` (a row per request: tokens, finish reason,
#   correctness, time to first token, latency, draft tokens proposed and accepted, accepts per
#   position) and `<run>.json` (its metrics, with profile, commit, config hash, engine, library
#   versions and hardware).

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
import time
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

from specbook import bench, distillation, engines, evaluation, figures, metrics, profiles, rationales, results, stages, stats, training
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
base_target = str(A.base_model("target")) if P.models.kind == "train" else P.models.target
base_draft = str(A.require(A.base_model("draft"), made_by="02_training")) if P.models.kind == "train" else P.models.draft
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


DRAFTS = ["base", *distillation.METHODS]  # the reference run's draft is "distilled"
print("targets: base +", ", ".join(f"{LABELS[s]} × {len(LEVELS)} levels" for s in STYLES), "· drafts per target:", ", ".join(DRAFTS))


def cached(name, compute, params, models_used):
    """A measurement of this chapter, reused while its settings, the models' weights, this machine
    and the code are unchanged: {"runs": compute(), "provenance": where and when it was made}."""
    weights = [f for m in models_used if Path(m).is_dir() for f in sorted(Path(m).glob("*.safetensors"))]  # Hub ids: by name
    code = [NOTEBOOKS / "04_benchmarking.py", *lib_sources("bench", "engines", "evaluation", "metrics", "models", "specdec", "results")]
    params = {**params, "models": [str(m) for m in models_used], "engine": dataclasses.asdict(P.engine), "machine": machine()}
    made = lambda: {"runs": compute(), "provenance": results.provenance(P, P.engine.kind, params)}  # noqa: E731
    return stages.cached(A.cached("04_benchmarking", name), params, made, inputs=code + weights)


# %% [markdown]
# ## Accuracy: every target alone on the whole test set
#
# Greedy, `bench.max_new_tokens` at most, in batches of `engine.batch_size` on the in-process
# engine run eagerly (compiling pays for one request at a time, not for batches). Truncated
# answers (cut at the cap) count as wrong and are shown.

# %%
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
        results.write(
            A.results, f"accuracy_{level}_{target}", results.request_rows(s), results.run_metrics(s), accuracy[level, target]["provenance"]
        )

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
# distilled draft at every K of `bench.ks`, all greedy. Each run is graded, compared token by token
# with the target alone, and written to `data/<profile>/results/`.


# %%
def configs_for(style, level):
    out = {"alone": None}
    out.update({f"{m} K={B.k}": Speculative("draft_model", B.k, draft_path(m, style, level)) for m in DRAFTS})
    out[f"n-gram K={B.k}"] = Speculative("ngram", B.k, ngram_max=B.ngram_max)
    if style == "cod":
        out.update({f"distilled K={k}": Speculative("draft_model", k, draft_path("distilled", style, level)) for k in B.ks if k != B.k})
    return out


def timed(style, level):
    configs = configs_for(style, level)
    engine = engine_for(style, level)
    rows = timing_rows[level]
    prompts = evaluation.prompts(engine.tokenizer, rows, style)
    sampling = Sampling(max_new_tokens=B.max_new_tokens)
    per_request = P.engine.kind != "vllm"  # vLLM restarts its engine to change speculation: one configuration after another
    made = bench.timed_requests(engine, prompts, sampling, configs, per_request=per_request, desc=f"{LABELS[style]} {level}")
    return {name: evaluation.grade(rows, generations) for name, generations in made.items()}


def predicted(spec, m):
    """E(alpha, K) / (K c + v(K)) for a draft model; None for prompt lookup (it proposes 0 to K
    tokens a step at no draft cost, which the model does not describe) or without measured costs."""
    if costs is None or spec is None or spec.method != "draft_model" or spec.k not in costs.v:
        return None
    return metrics.predicted_speedup(m["alpha"], spec.k, costs.c, costs.v[spec.k])


rows_out = []
for level in LEVELS:
    for style in STYLES:
        configs = configs_for(style, level)
        used = [target_path(style, level), *(s.draft for s in configs.values() if s is not None and s.draft is not None)]
        settings = {
            "rows": [r["id"] for r in timing_rows[level]],
            "style": style,
            "configs": {n: str(s) for n, s in configs.items()},
            "max_new_tokens": B.max_new_tokens,
        }
        run = cached(f"timed_{level}_{style}", lambda style=style, level=level: timed(style, level), settings, used)
        plain = run["runs"]["alone"]
        plain_counts = metrics.summarize(plain.generations)
        for name, s in run["runs"].items():
            m = results.run_metrics(s, plain if configs[name] is not None else None)
            if configs[name] is not None:
                ratio, low, high = stats.bootstrap_median_ratio(
                    [g.latency_s for g in plain.generations], [g.latency_s for g in s.generations], seed=P.seed
                )
                m.update(speedup=ratio, speedup_ci=[low, high], predicted_speedup=predicted(configs[name], m))
                m["decode_speedup"] = metrics.decode_speedup(m, plain_counts)
                m["efficiency"] = ratio / m["predicted_speedup"] if m["predicted_speedup"] else None
                m["decode_efficiency"] = m["decode_speedup"] / m["predicted_speedup"] if m["predicted_speedup"] else None
            run_name = f"{level}_{style}_{name.replace(' K=', '_k').replace('-', '')}"
            results.write(
                A.results,
                run_name,
                results.request_rows(s, plain if configs[name] is not None else None),
                m,
                {**run["provenance"], "config": name},
            )
            spec = configs[name]
            rows_out.append(
                {
                    "level": level,
                    "target": LABELS[style],
                    "config": name,
                    "method": "alone" if spec is None else ("n-gram" if spec.method == "ngram" else name.split(" ")[0]),
                    "k": 0 if spec is None else spec.k,
                    "speedup": m.get("speedup", 1.0),
                    "speedup low": m.get("speedup_ci", [1.0, 1.0])[0],
                    "speedup high": m.get("speedup_ci", [1.0, 1.0])[1],
                    "predicted": m.get("predicted_speedup"),
                    "efficiency": m.get("efficiency"),
                    "decode speedup": m.get("decode_speedup", 1.0),
                    "decode efficiency": m.get("decode_efficiency"),
                    "decode step (ms)": 1000 * m["decode_step_s"],
                    "decode draft (ms)": 1000 * m["decode_draft_s"],
                    "decode verify (ms)": 1000 * m["decode_target_s"],
                    "prompt pass share": sum(g.ttft_s for g in s.generations) / sum(g.latency_s for g in s.generations),
                    "identical": m.get("identical_to_plain", 1.0),
                    "acceptance rate": m["acceptance_rate"],
                    "mean acceptance length": m["mean_acceptance_length"],
                    "alpha": m["alpha"],
                    "accuracy (timed)": m["accuracy"],
                    "tokens per answer": m["tokens_per_request"],
                    "truncated": m["truncated"],
                    "latency median (s)": m["latency_median_s"],
                    "latency p90 (s)": m["latency_p90_s"],
                    "ttft median (ms)": 1000 * m["ttft_median_s"],
                    "tokens/s": m["tokens_per_s"],
                    "differing ids": m.get("differing_ids", []),
                }
            )
timed_table = pd.DataFrame(rows_out)
by = timed_table.set_index(["level", "target", "config"])
display(timed_table.drop(columns=["differing ids"]).round(3))
print(
    f"greedy, batch 1, {B.timing_rows} timed questions per level, speedup = median per-request latency ratio [bootstrap 95 %] ·",
    stamp(profile),
)

# %% [markdown]
# ### Lossless: identical outputs
#
# Greedy speculative decoding must write exactly what the target writes alone. Any request where it
# did not is listed here with its configuration: a bug in the decoder, never noise.

# %%
different = timed_table[timed_table.identical < 1.0]
if len(different):
    display(different[["level", "target", "config", "identical", "differing ids"]])
    raise AssertionError(f"{len(different)} greedy speculative runs wrote other tokens than the target alone: see the table above")
speculative_runs = timed_table[timed_table.k > 0]
print(f"all {len(speculative_runs)} speculative runs × {B.timing_rows} requests wrote the target's own tokens (100 % identical)")

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
# comparing tokens, rolling the caches back), each beside what the step costs above predict. A
# model's pass costs more in the loop than alone when the other model's pass has just displaced its
# weights and activations from the CPU's caches; the decoder's own work is what the model leaves out.

# %%
if costs is not None:
    ledger = []
    for level in LEVELS:
        for style in STYLES:
            plain_row = by.loc[(level, LABELS[style], "alone")]
            r = by.loc[(level, LABELS[style], f"distilled K={B.k}")]
            ledger.append(
                {
                    "level": level,
                    "target": LABELS[style],
                    "E(α, K)": metrics.expected_tokens_per_step(r["alpha"], B.k),
                    "tokens per pass": r["mean acceptance length"],
                    "step, model (ms)": B.k * costs.draft_ms + costs.verify_ms[B.k],
                    "step, measured (ms)": r["decode step (ms)"],
                    "draft passes, model (ms)": B.k * costs.draft_ms,
                    "draft passes, in the loop (ms)": r["decode draft (ms)"],
                    "verify, model (ms)": costs.verify_ms[B.k],
                    "verify, in the loop (ms)": r["decode verify (ms)"],
                    "decoder's own (ms)": r["decode step (ms)"] - r["decode draft (ms)"] - r["decode verify (ms)"],
                    "target step, model (ms)": costs.target_ms,
                    "target step, measured (ms)": plain_row["decode step (ms)"],
                    "prompt pass share, alone": plain_row["prompt pass share"],
                    "prompt pass share, speculative": r["prompt pass share"],
                    "efficiency": r["efficiency"],
                    "decode efficiency": r["decode efficiency"],
                }
            )
    ledger = pd.DataFrame(ledger)
    display(ledger.round(3))
    print(f"distilled drafts, K = {B.k}; measured steps: seconds per target pass after the first ·", stamp(profile))

# %% [markdown]
# ## The reference run's five configurations
#
# Accuracy from the whole test set (a speculative configuration's is its target's: its outputs are
# identical, as checked above), acceptance and speedup from the timed questions, K = `bench.k`.

# %%
reference = []
for level in LEVELS:
    reference.append(
        {
            "level": level,
            "configuration": "base target",
            "accuracy": accuracy[level, "base"]["runs"].accuracy,
            "tokens per answer": accuracy[level, "base"]["runs"].mean_tokens,
        }
    )
    for style in STYLES:
        s = accuracy[level, style]["runs"]
        reference.append(
            {"level": level, "configuration": f"{LABELS[style]} target", "accuracy": s.accuracy, "tokens per answer": s.mean_tokens}
        )
    for style in STYLES:
        r = by.loc[(level, LABELS[style], f"distilled K={B.k}")]
        reference.append(
            {
                "level": level,
                "configuration": f"{LABELS[style]} target + distilled draft",
                "accuracy": accuracy[level, style]["runs"].accuracy,
                "tokens per answer": accuracy[level, style]["runs"].mean_tokens,
                "acceptance rate": r["acceptance rate"],
                "mean acceptance length": r["mean acceptance length"],
                "speedup": r["speedup"],
                "95 % interval": f"{r['speedup low']:.2f}-{r['speedup high']:.2f}",
                "predicted": r["predicted"],
                "efficiency": r["efficiency"],
                "decode speedup": r["decode speedup"],
                "decode efficiency": r["decode efficiency"],
            }
        )
reference = pd.DataFrame(reference)
display(reference.round(3))
print(f"K = {B.k} ·", stamp(profile))

# %% [markdown]
# ## Which draft: trained, untrained, or none at all
#
# Each tuned target with every draft at K = `bench.k` and with prompt lookup: the speedup with its
# interval, and the acceptance that explains it.

# %%
METHOD_LABELS = {
    "base": "untrained base draft",
    "distilled": "distilled",
    "teacher_data": "teacher data",
    "white_box": "white box",
    "n-gram": "prompt lookup (n-gram)",
}
METHOD_COLORS = {"base": figures.COLORS["base"], **dict(zip([*distillation.METHODS, "n-gram"], figures.PALETTE[2:], strict=False))}
at_k = timed_table[(timed_table.k == B.k) & (timed_table.method != "alone")]
methods = list(METHOD_LABELS)
fig, axes = plt.subplots(1, len(STYLES), figsize=(12, 3.8), sharey=True)
width = 0.8 / len(methods)
for ax, style in zip(axes, STYLES, strict=True):
    for j, method in enumerate(methods):
        part = at_k[(at_k.target == LABELS[style]) & (at_k.method == method)].set_index("level").loc[list(LEVELS)]
        x = [i + (j - (len(methods) - 1) / 2) * width for i in range(len(LEVELS))]
        errors = [part.speedup - part["speedup low"], part["speedup high"] - part.speedup]
        ax.bar(x, part.speedup, width, yerr=errors, capsize=2, color=METHOD_COLORS[method], label=METHOD_LABELS[method])
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
# the prediction from the run's α and the measured costs. Right: tokens per target pass against the
# i.i.d. model's E(α, K) at the α measured at K = `bench.k`.

# %%
sweep = timed_table[(timed_table.target == "CoD") & (timed_table.method == "distilled")].sort_values("k")
fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
for i, level in enumerate(LEVELS):
    part = sweep[sweep.level == level]
    color = figures.PALETTE[i]
    axes[0].errorbar(
        part.k,
        part.speedup,
        yerr=[part.speedup - part["speedup low"], part["speedup high"] - part.speedup],
        marker="o",
        capsize=2,
        color=color,
        label=f"{level}, measured",
    )
    if part.predicted.notna().any():
        axes[0].plot(part.k, part.predicted, "--", color=color, label=f"{level}, predicted")
    alpha = part[part.k == B.k].alpha.iloc[0]
    ks = range(1, max(B.ks) + 1)
    axes[1].plot(part.k, part["mean acceptance length"], "o", color=color, label=f"{level}, measured")
    axes[1].plot(
        ks, [metrics.expected_tokens_per_step(alpha, k) for k in ks], "-", color=color, alpha=0.6, label=f"{level}, E(α = {alpha:.2f}, K)"
    )
axes[0].axhline(1.0, color="0.3", lw=0.8)
axes[0].set(xlabel="K (draft tokens per step)", ylabel="speedup over the target alone", title="CoD target + distilled draft")
axes[1].set(xlabel="K (draft tokens per step)", ylabel="tokens per target pass", title="Acceptance length against E(α, K)")
for ax in axes:
    figures.integer_ticks((ax, "x"))
    ax.legend(fontsize=7)
fig.tight_layout()
figures.save(fig, profile, "04_k_sweep")
plt.show()
best_k = {level: int(sweep[sweep.level == level].set_index("k").speedup.idxmax()) for level in LEVELS}
at_edge = [level for level, k in best_k.items() if k == max(B.ks)]
print(
    "best K by measured speedup:",
    ", ".join(f"{level} {k}" for level, k in best_k.items()),
    f"({', '.join(at_edge)}: the largest K swept, so the best may lie beyond)" if at_edge else "",
    "·",
    stamp(profile),
)

# %% [markdown]
# ## Sampling at temperature `bench.sampled_temperature`: lossless, so accuracy stays
#
# The CoD target alone and with its distilled draft answer the first `bench.sampled_rows` test
# questions of each level by sampling (the target alone in batches, the speculative decoder one
# request at a time: other random numbers, so the answers differ one by one but follow the same
# distribution if the decoder is lossless). The
# two accuracies must not differ beyond noise: a two-sided test on the two proportions. Acceptance
# falls at a temperature above 0 (the target's choice is no longer its argmax).

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

    run = cached(f"sampled_{level}", sample, settings, [target_path("cod", level), draft])
    alone, spec = run["runs"]["alone"], run["runs"]["speculative"]
    for name, s in run["runs"].items():
        t = f"{B.sampled_temperature:g}".replace(".", "")
        results.write(
            A.results, f"{level}_cod_{name}_t{t}", results.request_rows(s), results.run_metrics(s), {**run["provenance"], "config": name}
        )
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
            "acceptance rate, greedy": by.loc[(level, "CoD", f"distilled K={B.k}"), "acceptance rate"],
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
ref = by.xs(f"distilled K={B.k}", level="config")
cod_best = {level: by.loc[(level, "CoD", f"distilled K={best_k[level]}")] for level in LEVELS}
efficiency = timed_table[["efficiency", "decode efficiency"]].dropna()


def interval(r):
    return f"{r['speedup']:.2f}x [{r['speedup low']:.2f}-{r['speedup high']:.2f}]"


faster = [level for level in LEVELS if cod_best[level]["speedup low"] > 1.0]
minutes = (time.perf_counter() - chapter_start) / 60
lines = [
    f"Profile `{profile}`, engine {P.engine.kind}{' (compiled)' if P.engine.compile else ''}, greedy, {B.timing_rows} timed questions per level ({stamp(profile)}):",
    *(
        f"- **{level}**: CoD target + distilled draft at K = {B.k}: {interval(ref.loc[(level, 'CoD')])}, "
        f"at its best K = {best_k[level]}{' (the largest swept)' if level in at_edge else ''}: {interval(cod_best[level])} (acceptance {cod_best[level]['acceptance rate']:.2f}); "
        f"CoT target + distilled draft at K = {B.k}: {interval(ref.loc[(level, 'CoT')])}. "
        f"Accuracy CoD {accuracy[level, 'cod']['runs'].accuracy:.2f} vs CoT {accuracy[level, 'cot']['runs'].accuracy:.2f} "
        f"vs base {accuracy[level, 'base']['runs'].accuracy:.2f} on {accuracy[level, 'cod']['runs'].n} questions."
        for level in LEVELS
    ),
    f"- Levels where the CoD pair at its best K is faster than the target alone with 95 % confidence (interval above 1): "
    f"{len(faster)} of {len(LEVELS)}{' (' + ', '.join(faster) + ')' if faster else ''}.",
    f"- Greedy speculative outputs identical to the target's: {speculative_runs.identical.mean():.0%} of runs "
    f"({len(speculative_runs)} runs × {B.timing_rows} requests).",
]
if len(efficiency):
    lines.append(
        f"- Efficiency (measured / predicted speedup) over the {len(efficiency)} draft-model runs: median "
        f"{efficiency.efficiency.median():.2f} end to end (range {efficiency.efficiency.min():.2f}-{efficiency.efficiency.max():.2f}), "
        f"{efficiency['decode efficiency'].median():.2f} after the first step (range {efficiency['decode efficiency'].min():.2f}-"
        f"{efficiency['decode efficiency'].max():.2f}); c = {costs.c:.3f} measured in this run."
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
lines += [
    f"- At temperature {B.sampled_temperature}: the smallest p-value of the accuracy difference is {worst['p (two proportions)']:.2f} "
    f"({worst.level}: {worst['accuracy alone']:.2f} alone vs {worst['accuracy speculative']:.2f} speculative); "
    + (
        "no level's difference is significant at 0.05."
        if worst["p (two proportions)"] >= 0.05
        else "a difference significant at 0.05: look at that level."
    ),
    f"- This run of the chapter took {minutes:.1f} minutes (measurements already made are reused, not repeated).",
]
display(Markdown("\n".join(lines)))
