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
# # 00 · Theory: speculative decoding from scratch
#
# A large model writes one token per forward pass, and at batch size 1 each pass is limited by
# reading the weights from memory, not by arithmetic. Speculative decoding (Leviathan et al. 2023;
# Chen et al. 2023) lets a small **draft** model guess K tokens, then has the **target** check all
# K in a single pass. Accepted guesses are free tokens; a rejection costs one resampled token. Done
# right, the output has exactly the target's distribution.
#
# This chapter
# 1. estimates why decoding is memory-bound (a roofline for Qwen3-14B, and a measurement here),
# 2. writes the algorithm out in full, then uses the lib's version (`specbook.specdec`),
# 3. shows losslessness with histograms and chi-square tests, including the textbook residual that fails,
# 4. plots the speedup model E(α, K), and
# 5. measures acceptance against K on small models beside the model's prediction.
#
# The fine-tuned targets and their distilled drafts are measured in chapter 04; here the models
# are *untrained* Qwen3-architecture models, because the point is the mechanics, and no chapter
# before this one has trained anything.

# %% tags=["parameters"]
# The scale of the whole book, one of notebooks/params/*.yaml. Switch it here, or run headless with
# `make run-all PROFILE=smoke` (add NB=02 for one chapter). Chapters 00-02 on 2 CPU cores, from nothing:
#   smoke  CI's check that every cell runs (tiny models, a few dozen problems): about 1 minute
#   tiny   the default, offline on any CPU (small models trained here): `make run-all` prints each chapter's minutes
#   full   one GPU (Qwen3-14B, Qwen3-0.6B, Gemini, vLLM): hours; not run yet
profile = "tiny"  # smoke | tiny | full (see above)

# %%
from specbook.runinfo import quiet_known_warnings

quiet_known_warnings()  # first: some libraries warn as they load

import dataclasses
import json

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import Markdown, display

from specbook import bench, figures, lossless, metrics, models, profiles, roofline, specdec, stages, stats
from specbook.engines import NativeEngine, Sampling
from specbook.paths import NOTEBOOKS, artifacts, lib_sources
from specbook.profiles import ModelShape
from specbook.runinfo import machine, seed_everything, stamp

P = profiles.load(profile)
T = P.theory
seed_everything(P.seed)
torch.set_grad_enabled(False)
A = artifacts(profile)
OUT = A.theory
OUT.mkdir(parents=True, exist_ok=True)
print(stamp(profile), f"· torch threads {torch.get_num_threads()}")


def cached(name, compute):
    """A measurement of this chapter, reused while the profile, this machine and the code are unchanged."""
    code = [NOTEBOOKS / "00_theory.py", *lib_sources("bench", "engines", "metrics", "models", "specdec")]
    params = {"theory": dataclasses.asdict(T), "seed": P.seed, "machine": machine()}
    return stages.cached(A.cached("00_theory", name), params, compute, inputs=code)


# %% [markdown]
# ## 1 · Why decoding is memory-bound
#
# One forward pass over n new tokens multiplies every weight matrix by n vectors: about
# 2 FLOPs per weight per token, while each weight (2 bytes in bf16) is read once whatever n is.
# At n = 1 that is ~1 FLOP per byte. An H100 does 989 TFLOP/s but reads only 3.35 TB/s, so it
# needs ~295 FLOPs per byte to be busy: a batch-1 decoding step leaves >99 % of its arithmetic
# idle, and checking K + 1 tokens in one pass costs about the same time as generating one.
# `specbook.roofline` counts the bytes and FLOPs of a Qwen3 pass (weights, KV cache, attention),
# with the parameter count checked against transformers' own models in the tests.

# %%
CONTEXT = 512  # tokens already in the KV cache: a question plus part of an answer
hw = roofline.H100_SXM
tiny_target = roofline.Architecture("this profile's target", T.target, T.vocab_size, tied_embeddings=False)
archs = [roofline.QWEN3_14B, roofline.QWEN3_0_6B, tiny_target]
rows = []
for a in archs:
    cost = roofline.forward_cost(a, 1, CONTEXT)
    rows.append(
        {
            "model": a.name,
            "parameters (M)": roofline.parameters(a) / 1e6,
            "GB read per step": cost["bytes"] / 1e9,
            "FLOPs per byte": cost["intensity"],
            "memory time (ms)": cost["bytes"] / hw.bandwidth * 1e3,
            "compute time (ms)": cost["flops"] / hw.flops * 1e3,
            "max tokens/s at batch 1": 1 / roofline.forward_time(a, hw, 1, CONTEXT),
        }
    )
display(
    pd.DataFrame(rows)
    .set_index("model")
    .style.format(
        {
            "parameters (M)": "{:,.2f}",
            "GB read per step": "{:.4f}",
            "FLOPs per byte": "{:.2f}",
            "memory time (ms)": "{:.4f}",
            "compute time (ms)": "{:.4f}",
            "max tokens/s at batch 1": "{:,.0f}",
        }
    )
)
c_gpu = roofline.forward_time(roofline.QWEN3_0_6B, hw, 1, CONTEXT) / roofline.forward_time(roofline.QWEN3_14B, hw, 1, CONTEXT)
print(
    f"{hw.name}, context {CONTEXT}, bf16. Ridge point {roofline.ridge_point(hw):.0f} FLOPs/byte. "
    f"Roofline draft/target step-cost ratio c for Qwen3-0.6B / Qwen3-14B: {c_gpu:.3f}"
)

# %% [markdown]
# The same question on this machine, measured rather than modelled: the time of one forward pass
# of this profile's target over n new tokens, relative to a 1-token step (median of
# `timing_repeats` passes after warm-up, with `prompt_tokens` tokens cached; the pass sizes take
# turns over three rounds and each ratio is the median of its per-round ratios).

# %%
target = models.untrained(T.target, T.vocab_size, P.seed, T.logit_scale)
ns = [1, 2, 3, 5, 9, 17]
# an n-token pass is the verify pass of K = n - 1 proposals: bench.step_costs measures it (the draft is incidental here)
pass_costs = cached(
    "pass_costs",
    lambda: bench.step_costs(
        target,
        models.early_exit_draft(target, T.draft_layers[0]),
        [n - 1 for n in ns[1:]],
        context=T.prompt_tokens,
        repeats=T.timing_repeats,
    ),
)
measured_ms = {1: pass_costs.target_ms, **{k + 1: ms for k, ms in pass_costs.verify_ms.items()}}
measured_ratio = {1: 1.0, **{k + 1: v for k, v in pass_costs.v.items()}}
gpu_ratio = {
    n: roofline.forward_time(roofline.QWEN3_14B, hw, n, CONTEXT) / roofline.forward_time(roofline.QWEN3_14B, hw, 1, CONTEXT)
    for n in [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]
}
fig, ax = plt.subplots(figsize=(6.5, 3.8))
ax.plot(list(gpu_ratio), list(gpu_ratio.values()), "o-", label=f"Qwen3-14B on {hw.name} (roofline)")
ax.plot(ns, [measured_ratio[n] for n in ns], "s-", label=f"{T.target.layers}-layer target on this CPU (measured)")
ax.plot([1, 1024], [1, 1024], ":", color="0.6", label="cost proportional to tokens")
ax.set(
    xscale="log",
    yscale="log",
    xlabel="new tokens in one forward pass",
    ylabel="time / time of a 1-token step",
    title=f"A 16-token pass: {gpu_ratio[16]:.2f}x a step on the {hw.name} roofline, {measured_ratio[17]:.2f}x (17 tokens) here",
)
ax.legend(loc="upper left", fontsize=8)
figures.save(fig, profile, "00_roofline")
plt.show()
print({n: round(ms, 2) for n, ms in measured_ms.items()}, "ms")

# %% [markdown]
# ## 2 · The algorithm, written out
#
# Each step: the draft proposes K tokens one at a time, sampling from its distribution q; the
# target computes its distribution p at all K positions (and one more) in **one** forward pass;
# proposals are accepted left to right, token x with probability min(1, p(x) / q(x)). At the first
# rejection, one token is drawn from the **residual** norm(max(0, p − q)) with a fresh random number,
# and the step ends. If all K are accepted, the target's distribution after them gives a bonus token.
#
# The version below recomputes every forward pass from scratch, for clarity. `residual` is a
# parameter so that the next section can try the one printed in some blog posts,
# `relu(p − q · r)` (r the acceptance draw), which is **wrong**.


# %%
def next_token_probs(model, ids, temperature):
    logits = model(input_ids=torch.tensor([ids])).logits[0, -1].double()
    return torch.softmax(logits / temperature, dim=-1)


def correct_residual(p, q, r):
    return (p - q).clamp_min(0) / (p - q).clamp_min(0).sum()


def textbook_residual(p, q, r):  # the wrong one: do not use
    return (p - q * r).clamp_min(0) / (p - q * r).clamp_min(0).sum()


def speculative_decode(target, draft, prompt, k, n_new, temperature, rng, residual=correct_residual):
    seq = list(prompt)
    while len(seq) - len(prompt) < n_new:
        proposals, qs = [], []
        for _ in range(k):  # 1. the draft proposes k tokens, one at a time
            q = next_token_probs(draft, seq + proposals, temperature)
            proposals.append(int(torch.multinomial(q, 1, generator=rng)))
            qs.append(q)
        # 2. the target scores every proposal, plus one position more, in one forward pass
        logits = target(input_ids=torch.tensor([seq + proposals])).logits[0, -(k + 1) :].double()
        ps = torch.softmax(logits / temperature, dim=-1)
        for i, x in enumerate(proposals):  # 3. accept left to right with probability min(1, p/q)
            r = torch.rand((), generator=rng, dtype=torch.float64).item()
            if r < min(1.0, (ps[i, x] / qs[i][x]).item()):
                seq.append(x)
            else:  # 4. rejected: a fresh draw from the residual, and the step ends
                seq.append(int(torch.multinomial(residual(ps[i], qs[i], r), 1, generator=rng)))
                break
        else:  # 5. all k accepted: the target's next distribution gives one token more
            seq.append(int(torch.multinomial(ps[k], 1, generator=rng)))
    return seq[len(prompt) :][:n_new]


# %% [markdown]
# The lib's `specdec.generate` is the same algorithm with KV caches (rolled back past rejected
# tokens), top-p, EOS and stop handling, and counters. A first check on a toy pair (the
# models of section 3): with temperature → 0 the distributions become one-hot, acceptance means
# "the draft's token is the target's argmax", and the output must equal the target's own greedy
# decoding, token for token in float64 (`lossless.classify` says whether an output that differs
# parted at a numerical near-tie, as bf16 on a GPU can, or at a mismatch: a bug; chapter 04
# applies it to every speculative answer).

# %%
TOY = ModelShape(layers=1, hidden=32, mlp=64, heads=2, kv_heads=1, head_dim=16)
toy_target_scale, toy_draft_scale = T.lossless_logit_scales
toy_target = models.untrained(TOY, T.lossless_vocab, P.seed, toy_target_scale).double()
toy_draft = models.untrained(TOY, T.lossless_vocab, P.seed + 1, toy_draft_scale).double()
prompt = [1, 2, 3]
alone = specdec.generate(toy_target, None, prompt, k=0, max_new_tokens=12)
lib = specdec.generate(toy_target, toy_draft, prompt, k=3, max_new_tokens=12)
written = speculative_decode(toy_target, toy_draft, prompt, 3, 12, 1e-4, torch.Generator().manual_seed(0))
print("target alone, greedy:   ", alone.token_ids)
print("lib, K=3, greedy:       ", lib.token_ids, f"({lib.accepted}/{lib.proposed} draft tokens accepted)")
print("written out, T=1e-4:    ", written)
difference = lossless.classify(toy_target, prompt, alone.token_ids, lib.token_ids)  # identical, near-tie or mismatch
print("lib against the target alone:", difference.kind)
lossless.check([difference], ["the toy prompt"], "the lib's greedy decoder")
assert written == alone.token_ids

# %% [markdown]
# ## 3 · Losslessness, seen and tested
#
# A toy pair with a vocabulary small enough to draw: a target, and a draft that is confident
# about the wrong tokens (its head scaled by the second of `lossless_logit_scales`, the target's
# by the first), so that rejections and the residual matter. From one prompt, each decoder samples `lossless_samples` continuations of two tokens
# at temperature 1. The target's exact distributions are computed by enumeration: position 1 is
# p(x₁), position 2 is Σ p(x₁) p(x₂ | x₁). A chi-square goodness-of-fit test compares each
# histogram with the exact distribution (`stats.chi_square_p`: cells with fewer than 5 expected samples pooled).

# %%
V, N = T.lossless_vocab, T.lossless_samples
p1 = next_token_probs(toy_target, prompt, 1.0)
p2 = sum(p1[x] * next_token_probs(toy_target, prompt + [x], 1.0) for x in range(V))
exact = {1: p1.numpy(), 2: p2.numpy()}
q1 = next_token_probs(toy_draft, prompt, 1.0)
print(f"draft acceptance at position 1, sum of min(p, q): {torch.minimum(p1, q1).sum():.3f}")

samplers = {
    "target alone (lib, K=0)": lambda rng: specdec.generate(toy_target, None, prompt, 0, 2, temperature=1.0, seed=rng).token_ids,
    "speculative (lib, K=3)": lambda rng: specdec.generate(toy_target, toy_draft, prompt, 3, 2, temperature=1.0, seed=rng).token_ids,
    "speculative (written out, K=3)": lambda rng: speculative_decode(toy_target, toy_draft, prompt, 3, 2, 1.0, rng),
    "textbook residual relu(p - q·r)": lambda rng: speculative_decode(toy_target, toy_draft, prompt, 3, 2, 1.0, rng, textbook_residual),
}


def draw_samples():
    samples = {}
    for name, sample in samplers.items():
        rng = torch.Generator().manual_seed(P.seed)  # one stream per sampler, continued across its N samples
        samples[name] = np.array([sample(rng) for _ in range(N)])
    return samples


samples = cached("lossless_samples", draw_samples)

tests = pd.DataFrame(
    {
        name: {f"p-value, position {pos}": stats.chi_square_p(np.bincount(s[:, pos - 1], minlength=V), exact[pos]) for pos in (1, 2)}
        for name, s in samples.items()
    }
).T
display(tests.style.format("{:.3g}"))
print(stamp(profile))

# %%
REJECT = 0.001  # a p-value below this rejects "same distribution as the target"
lossless_ok = tests.drop(index="textbook residual relu(p - q·r)").min().min()
textbook_p = tests.loc["textbook residual relu(p - q·r)"].min()
verdict = (
    (
        f"speculative sampling is consistent with the target's distribution (p ≥ {lossless_ok:.2g})"
        if lossless_ok >= REJECT
        else "a correct decoder failed the test (investigate)"
    )
    + "; "
    + (
        f"the textbook residual does not (p = {textbook_p:.1g})"
        if textbook_p < REJECT
        else f"the textbook residual is not rejected at {N} samples"
    )
)
fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), sharey=True)
width = 0.8 / len(samples)
for ax, pos in zip(axes, (1, 2), strict=True):
    ax.bar(np.arange(V), exact[pos], width=0.9, color="0.85", label="target, exact")
    for j, (name, s) in enumerate(samples.items()):
        freq = np.bincount(s[:, pos - 1], minlength=V) / len(s)
        ax.plot(np.arange(V) - 0.4 + width * (j + 0.5), freq, "o", ms=4, label=name)
    ax.set(xlabel=f"token at position {pos} (id)", xticks=range(V))
axes[0].set_ylabel(f"share of {N} samples")
fig.legend(*axes[0].get_legend_handles_labels(), loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
fig.suptitle(verdict[0].upper() + verdict[1:])
fig.tight_layout()
figures.save(fig, profile, "00_losslessness")
plt.show()

# %% [markdown]
# ## 4 · The speedup model
#
# If each draft token is accepted independently with probability α, a step emits
# E(α, K) = (1 − α^(K+1)) / (1 − α) tokens on average (the accepted run plus the target's own
# token). A step costs K draft steps and one verify pass; in units of a target step,
# K·c + v, where c is the draft/target step-cost ratio and v the verify pass relative to a
# 1-token step (v ≈ 1 while memory-bound). Predicted speedup: E(α, K) / (K·c + v).

# %%
alphas = [0.5, 0.6, 0.7, 0.8, 0.9]
ks = np.arange(0, 11)
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
for a in alphas:
    axes[0].plot(ks, [metrics.expected_tokens_per_step(a, int(k)) for k in ks], "o-", ms=3, label=f"α = {a}")
    axes[1].plot(ks[1:], [metrics.predicted_speedup(a, int(k), c_gpu) for k in ks[1:]], "o-", ms=3, label=f"α = {a}")
axes[0].set(xlabel="K (draft tokens per step)", ylabel="E(α, K): tokens per target pass", title="Expected tokens per step")
axes[1].axhline(1, color="0.5", lw=0.8)
axes[1].set(xlabel="K", ylabel="predicted speedup", title=f"E / (K·c + 1), c = {c_gpu:.3f} (Qwen3-0.6B / 14B roofline)")
figures.integer_ticks((axes[0], "x"), (axes[1], "x"))
fig.legend(*axes[0].get_legend_handles_labels(), loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
fig.tight_layout()
figures.save(fig, profile, "00_speedup_model")
plt.show()
best = {a: max(range(1, 11), key=lambda k: metrics.predicted_speedup(a, k, c_gpu)) for a in alphas}
print("best K by alpha at the roofline c:", best)

# %% [markdown]
# ## 5 · A first measurement: acceptance against K
#
# The target is an untrained Qwen3 model of this profile's shape (head scaled ×`logit_scale` so
# that its next-token distributions are not flat). The drafts are cut from it: its first n layers
# with its own final norm and head (self-speculation, as in Draft & Verify and LayerSkip), so they
# share its vocabulary and cost a fraction of a step. Every configuration decodes the same random
# prompts with the same seeds at the profile's temperature, through the native engine
# (`engine.generate`, as every later chapter times), in interleaved timing rounds after a
# discarded warm-up round (`bench.interleaved`).
#
# α is estimated from the per-position counts of the K = 1 run (there it is simply
# accepted / steps; in general the maximum-likelihood estimate accepted / tests, where a position
# is tested only when all before it were accepted). The prediction for every other K uses that α
# and the step costs c and v(K) measured here.

# %%
gen = torch.Generator().manual_seed(P.seed)
prompts = [torch.randint(0, T.vocab_size, (T.prompt_tokens,), generator=gen).tolist() for _ in range(T.prompts)]
drafts = {f"first {n} of {T.target.layers} layers": models.early_exit_draft(target, n) for n in T.draft_layers}
sampling = Sampling(max_new_tokens=T.max_new_tokens, temperature=T.temperature, seed=P.seed)
costs, sweep_rows = cached(
    "sweep",
    lambda: (
        {name: bench.step_costs(target, d, T.ks, context=T.prompt_tokens, repeats=T.timing_repeats) for name, d in drafts.items()},
        bench.sweep(NativeEngine(target), drafts, prompts, T.ks, sampling, rounds=T.rounds),
    ),
)
sweep = pd.DataFrame(sweep_rows)
rows = []
for name in drafts:
    runs = sweep[sweep.draft == name].set_index("k")
    alpha = runs.loc[min(T.ks), "alpha"]
    c = costs[name]
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
results = pd.DataFrame(rows)
results.to_csv(OUT / "acceptance_vs_k.csv", index=False)
(OUT / "step_costs.json").write_text(json.dumps({name: dataclasses.asdict(c) for name, c in costs.items()}, indent=2))
plain = sweep[sweep.draft == "none"].iloc[0]
print(f"target alone: {plain['tokens_per_s']:.0f} tokens/s · {stamp(profile)}")
display(results.round(3))

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
for j, name in enumerate(drafts):
    r = results[results.draft == name]
    color = figures.PALETTE[j]
    axes[0].plot(r["K"], r["tokens/step"], "o", color=color, label=f"{name}: measured")
    axes[0].plot(r["K"], r["E(alpha_K1, K)"], "-", color=color, label=f"{name}: model")
    axes[1].plot(r["K"], r["speedup"], "o", color=color, label=f"{name}: measured")
    axes[1].plot(r["K"], r["predicted speedup"], "-", color=color, label=f"{name}: model")
axes[0].set(xlabel="K", ylabel="tokens per target pass", title="Mean acceptance length (model: E(α̂, K))")
axes[1].axhline(1, color="0.5", lw=0.8)
axes[1].set(xlabel="K", ylabel="tokens/s over the target alone", title="Speedup on this CPU (model: E / (K·c + v))")
figures.integer_ticks((axes[0], "x"), (axes[1], "x"))
if results["acceptance rate"].max() == 0:
    figures.note_degenerate(axes[0], f"no draft token was accepted on the {profile} profile:\nthe curves show the cost of K, not its gain")
fig.legend(*axes[0].get_legend_handles_labels(), loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
fig.tight_layout()
figures.save(fig, profile, "00_acceptance_vs_k")
plt.show()

# %% [markdown]
# ## What this chapter found

# %%
gap = results["tokens/step"] - results["E(alpha_K1, K)"]  # measured minus predicted
relative_gap = (gap.abs() / results["tokens/step"]).max()
beyond = results[results["K"] > min(T.ks)]
side = (
    "above the prediction at every K > 1"
    if (gap[beyond.index] > 0).all()
    else "below the prediction at every K > 1"
    if (gap[beyond.index] < 0).all()
    else "on both sides of the prediction"
)
alpha_by_k = results.groupby("K")["alpha (this K)"].mean()
alpha_trend = "rises" if alpha_by_k.is_monotonic_increasing else "falls" if alpha_by_k.is_monotonic_decreasing else "moves"
best_run = results.loc[results["speedup"].idxmax()]
first = costs[next(iter(drafts))]
model_fit = (
    f"is within {gap.abs().max():.2f} tokens ({relative_gap:.0%}) of the measured tokens per target pass for every K and draft"
    if relative_gap <= 0.05
    else f"is off the measured tokens per target pass by up to {gap.abs().max():.2f} tokens ({relative_gap:.0%}); the measurement "
    f"sits {side}, and α estimated at each K {alpha_trend} with K ({alpha_by_k.iloc[0]:.2f} at K = {alpha_by_k.index[0]}, "
    f"{alpha_by_k.iloc[-1]:.2f} at K = {alpha_by_k.index[-1]}): acceptance here is not the i.i.d. draw the model assumes"
)
speed_verdict = (
    "speculation already pays with these untrained pairs"
    if best_run["speedup"] > 1
    else "no configuration beats the target alone here; speculation pays only when α is high and c and v are low"
)
display(
    Markdown(f"""
- **Memory-bound.** A Qwen3-14B decoding step does {roofline.forward_cost(roofline.QWEN3_14B, 1, CONTEXT)["intensity"]:.1f}
  FLOP per byte against the {hw.name}'s ridge point of {roofline.ridge_point(hw):.0f}: its roofline time is
  {roofline.forward_time(roofline.QWEN3_14B, hw, 1, CONTEXT) * 1e3:.1f} ms per token, and a 16-token verify pass costs
  {gpu_ratio[16]:.2f}x a step. On this CPU the {T.target.layers}-layer target's 5-token pass costs
  {measured_ratio[5]:.2f}x and its 17-token pass {measured_ratio[17]:.2f}x a step{
        ": small models on a CPU are not purely memory-bound, so verification is not free here"
        if measured_ratio[5] > 1.1
        else ": verification costs about one step here too"
    }.
- **Lossless.** Against the target's exact distribution, the lib's decoder, the written-out one and the target
  alone give chi-square p-values of at least {lossless_ok:.3g} ({N} samples){
        "" if lossless_ok >= REJECT else f" (below {REJECT}: a failure to investigate)"
    }; the textbook residual gives {textbook_p:.2g}{", rejected" if textbook_p < REJECT else ", not rejected at this sample size"}.
- **Model vs measurement.** With α estimated at K = 1, E(α̂, K) {model_fit}. The draft cut to {T.draft_layers[0]} layer(s)
  costs c = {first.c:.2f} of a target step here, against {c_gpu:.3f} for Qwen3-0.6B / Qwen3-14B on an H100.
- **Speed here.** The best configuration, {best_run["draft"]} at K = {best_run["K"]}, runs at {best_run["speedup"]:.2f}x
  the target alone (predicted {best_run["predicted speedup"]:.2f}x): {speed_verdict}. Chapters 02–04 measure trained,
  distilled pairs.

*{stamp(profile)}*
""")
)
