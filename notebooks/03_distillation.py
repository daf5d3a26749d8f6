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
# # 03 · Distillation: every tuned target teaches its own draft
#
# In this chapter you will
# - let each tuned target write the training data of its own draft;
# - train drafts three ways (on the target's answers, on the teacher's, on the target's logits);
# - measure how often each target accepts its draft's tokens, position by position.
#
# > **Distillation**: training a small model on what a large one writes (its tokens) or on its
# > whole next-token distributions (white box: DistillSpec, Zhou et al. 2024; GKD, Agarwal et al. 2024).
# > **Acceptance rate**: accepted draft tokens / proposed draft tokens, as vLLM counts it.
#
# Speculative decoding pays only when the draft writes what the target would have written: with
# a draft step costing c target steps and a verify pass of K tokens costing v(K), the speedup is
# E(α, K) / (K·c + v(K)) (chapter 00), and chapter 02 measured c and v on this machine. The one
# number training can move is α, the chance that the target accepts a draft token. So each of the
# six tuned targets of chapter 02 writes the training data of its own draft:
#
# 1. the target answers its level's training questions, greedy, in the exact chat format it was
#    tuned with; the rows (question, text, tokens, finish reason, correct or not) are kept in
#    `data/<profile>/distilled/<style>_<level>/` as they are made, and a target too weak to teach
#    (too few answers that end in an answer line, too many cut at the length cap) stops the chapter;
# 2. drafts for each target, all from the same base draft, all by chapter 02's training code with
#    the draft's own settings (`draft_sft`): the distilled one for every target, the two controls for
#    the targets of `distill.control_levels` (every level where the profile names none):
#    - **distilled** (the reference run's recipe): fine-tuned on what its target wrote;
#    - **teacher data** (a control): fine-tuned on chapter 01's rationales for the same questions,
#      which the target itself was tuned on: what the target's own wording adds;
#    - **white box** (DistillSpec, GKD): trained on the target's own answers to match the target's
#      whole next-token distribution (forward KL on the target's logits), not only its argmax;
# 3. each draft's acceptance against its target on held-out test questions, through the native
#    engine, greedy, at K = `distill.k`, beside the base draft (pretrained, not tuned).
#
# Chapter 04 times what these acceptance rates buy.

# %% tags=["remove-input"]
from specbook.figures import where_we_are

where_we_are("03")

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
import time

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display
from matplotlib.ticker import ScalarFormatter

from specbook import (
    analysis,
    distillation,
    engines,
    evaluation,
    figures,
    findings,
    metrics,
    pretraining,
    profiles,
    rationales,
    runlock,
    stages,
    training,
)
from specbook.engines import Speculative
from specbook.paths import NOTEBOOKS, artifacts, lib_sources
from specbook.profiles import LEVELS
from specbook.runinfo import seed_everything, stamp
from specbook.styles import LABELS, STYLES

# %% tags=["hide-input"]
P = profiles.load(profile)
seed_everything(P.seed)
A = artifacts(profile)
runlock.hold(profile)  # one run of a profile at a time: a second stops here, naming this one
D = P.distill
chapter_start = time.perf_counter()
print(stamp(profile), "· training backend:", training.backend())

# %% [markdown]
# ## The targets answer their training questions
#
# Each target answers the first `distill.questions_per_level` questions it was tuned on (the held-out
# rows of chapter 02 excluded), `samples_per_question` times, at `temperature` (greedy here, as in
# the reference run), capped at `max_new_tokens`, in batches of `engine.batch_size` (greedy answers do
# not depend on batching). On the GPU profile vLLM serves each target as its base model with the
# LoRA adapter of chapter 02 on top (a `LoRARequest`), so no 14B copy is merged to disk for this.

# %%
tokenizer = pretraining.base_tokenizer(P, A)
base_draft = pretraining.base_model_path(P, A, "draft")
base_target = pretraining.base_model_path(P, A, "target")
splits = {level: {name: rationales.load_rows(A, level, name) for name in ("train_cot", "train_cod", "test")} for level in LEVELS}

# %% [markdown]
# Each tuned target is its base with chapter 02's adapter: vLLM serves the adapter on the base, the
# in-process engines load a merged copy.


# %%
def adapter(style, level):
    return A.require(A.target(style, level) / "adapter_model.safetensors", made_by="02_training").parent


def target_engine(style, level, cfg=P.engine):
    """The tuned target on the profile's engine: vLLM serves the adapter on its base, the in-process engines load the merged copy."""
    if cfg.kind == "vllm":
        return engines.make(cfg, base_target, P.seed, lora=str(adapter(style, level)))
    return engines.make(cfg, str(training.merge(adapter(style, level), A.merged(adapter(style, level)))), P.seed)


# %% [markdown]
# Each target answers the questions it was tuned on, greedy, in batches; the rows go to disk as
# they are made, so a stopped run resumes where it stopped.

# %%
answers, quality = {}, []
for level in LEVELS:
    for style in STYLES:
        tuned_on, _ = training.target_rows(splits[level][f"train_{style}"], P.sft, level)
        questions = tuned_on[: D.questions_per_level]
        directory = A.distilled(style, level)
        start = time.perf_counter()
        answers[style, level] = distillation.answer(
            target_engine(style, level), str(adapter(style, level)), questions, style, D, directory, P.seed, P.engine.batch_size
        )
        made = stages.Stage(directory, {}).manifest()
        quality.append(
            {
                "level": level,
                "style": style,
                **distillation.quality(answers[style, level]),
                "correct answers": sum(a["correct"] for a in answers[style, level]),
                "minutes": (time.perf_counter() - start) / 60,
                "made at": made["commit"],
            }
        )
gate = quality

# %% [markdown]
# What each target wrote: the share that reached an answer line, the share cut at the length cap,
# the share right, and the answers' mean length.

# %%
quality = pd.DataFrame(quality).rename(
    columns={"answered": "share answered", "truncated": "share truncated", "correct": "share correct", "mean_tokens": "mean tokens"}
)
display(quality.round(3))
print(stamp(profile))

# %% [markdown]
# One answer of each style, as its draft will read it:

# %%
for style in STYLES:
    a = answers[style, LEVELS[0]][0]
    print(f"--- {LABELS[style]} target, {LEVELS[0]}: {a['question']}\n{a['text']}\n(finish: {a['finish_reason']}, correct: {a['correct']})")

# %% [markdown]
# The quality gate (`distill.min_answered`, `distill.max_truncated`): a target whose answers rarely
# reach an answer line, or often stop at the length cap, would teach its draft to ramble; the
# chapter stops and names it instead. Correctness is shown but not gated: a draft is judged by how
# often it agrees with its target, right or wrong.

# %%
for row in gate:
    distillation.check_quality(row, D, f"{A.target(row['style'], row['level'])}")
print(f"every target passes: answered >= {D.min_answered:.0%}, truncated <= {D.max_truncated:.0%}")

# %% [markdown]
# ## The drafts
#
# A control answers its question on one level as well as on three, so a profile may train the two
# controls on some levels only (`distill.control_levels`; tiny: medium, which saves about 8 of the
# 12 control fine-tunes' time; the other levels get their distilled draft alone, which is the one
# chapter 04 benchmarks on every level).
#
# All start from the base draft of chapter 02 and train with `training.finetune`, the code that
# tuned the targets, with the draft's settings (`draft_sft`; tiny: every weight trained,
# `lora: null`, as a draft of a few hundred thousand parameters needs no adapter; full: LoRA, as in
# the reference run). The last `draft_sft.eval_rows` rows are held out for the evaluation
# loss. `distill.correct_only` picks the distilled draft's rows: all the target wrote, or only its
# correct answers; the table shows both counts. The white-box draft's loss is the KL divergence
# from the target's next-token distribution to the draft's, on the target's own answers
# (`training.distillation_loss`, a small loss in the lib: TRL's `GKDTrainer` is experimental and
# reads chat messages, not the book's pre-tokenized rows). The target's distribution at each answer
# token is kept as its `training.TEACHER_TOP_K` most likely tokens, computed in the first epoch and
# reused after, so the white-box draft costs little more than the others.

# %%
drafts, trained = {}, []
for level in LEVELS:
    for style in STYLES:
        for method in distillation.methods(D, level):
            rows = distillation.draft_rows(method, answers[style, level], splits[level][f"train_{style}"], D.correct_only)
            train_rows, eval_rows = training.split_held_out(rows, P.draft_sft.eval_rows)
            folder = A.draft(method, style, level)
            teacher = str(adapter(style, level)) if method == "white_box" else None
            r = training.finetune(base_draft, tokenizer, train_rows, eval_rows, style, P.draft_sft, folder, P.seed, teacher=teacher)
            drafts[style, level, method] = str(training.merge(folder, A.merged(folder)))
            trained.append(
                {
                    "level": level,
                    "style": style,
                    "draft": method,
                    "train rows": r["train_rows"],
                    "target's correct rows": sum(a["correct"] for a in answers[style, level]),
                    "minutes": r["seconds"] / 60,
                    "final train loss": r["curve"][-1]["loss"],
                    "eval loss": r["eval_curve"][-1]["eval_loss"],
                    "built at": r["built_at"],
                    "curve": r["curve"],
                    "eval_curve": r["eval_curve"],
                }
            )
trained = pd.DataFrame(trained)
display(trained.drop(columns=["curve", "eval_curve"]).round(3))
print("eval loss: cross-entropy on the held-out rows (distilled, teacher data); KL from the target (white box).", stamp(profile))

# %%
METHOD_LABELS = analysis.DRAFT_LABELS
METHOD_COLORS = {"base": figures.COLORS["base"], **dict(zip(distillation.METHODS, figures.PALETTE[2:], strict=False))}
LINESTYLES = {"cot": "--", "cod": "-"}  # the training curves share a panel per level

fig, axes = plt.subplots(1, len(LEVELS), figsize=(12, 3.6), sharey=True)
for ax, level in zip(axes, LEVELS, strict=True):
    for row in trained[trained.level == level].itertuples():
        curve = row.curve
        ax.plot(
            [c["step"] for c in curve],
            [c["loss"] for c in curve],
            LINESTYLES[row.style],
            color=METHOD_COLORS[row.draft],
            label=f"{METHOD_LABELS[row.draft]}{' (KL)' if row.draft == 'white_box' else ''}, {LABELS[row.style]}",
        )
    ax.set(title=f"Draft training, {level}", xlabel="step", yscale="log")
    ax.yaxis.set_major_formatter(ScalarFormatter())
    figures.integer_ticks((ax, "x"))
axes[0].set_ylabel("train loss, log scale\n(cross-entropy; white box: KL)")
fig.legend(*axes[0].get_legend_handles_labels(), loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
fig.tight_layout()
figures.save(fig, profile, "03_draft_training")
plt.show()

# %% [markdown]
# ## What each draft buys: acceptance against its target
#
# The first `distill.test_rows` test questions of each level (never trained on by target or draft),
# greedy, through the profile's engine with speculation at K = `distill.k`, one request at a time.
# The in-process engine runs eagerly here: compiled and eager decoding write the same tokens with the
# same counters on the test suite's small models (`tests/test_engines.py`; not re-measured here), and
# compiling every draft would cost minutes (chapter 04 times them compiled). K = `distill.k` here may
# differ from chapter 04's K = `bench.k`, and acceptance depends on K. Per draft: the
# acceptance rate (accepted / proposed draft tokens, vLLM's definition), the mean acceptance length
# (tokens per target pass), the share of steps that accepted the i-th draft token, and α
# (`metrics.estimate_alpha`) with E(α, K), the tokens per step the i.i.d. model expects.


# %%
def cached(name, compute, params, models_used):
    """A measurement of this chapter (`stages.measured`)."""
    code = [NOTEBOOKS / "03_distillation.py", *lib_sources("engines", "evaluation", "metrics", "models", "specdec")]
    return stages.measured(A.cached("03_distillation", name), compute, params, models_used, code, engine=P.engine)


# %% [markdown]
# One engine per target; each of its drafts speculates on the same questions in turn.


# %%
def acceptance(style, level, rows):
    """Each draft's speculative run on `rows` (one engine for the target, the drafts in turn)."""
    engine = target_engine(style, level, dataclasses.replace(P.engine, compile=False))
    out = {}
    for name in ["base", *distillation.methods(D, level)]:
        draft = base_draft if name == "base" else drafts[style, level, name]
        speculative = Speculative("draft_model", D.k, draft=draft)
        out[name] = metrics.summarize(evaluation.score(engine, rows, style, D.max_new_tokens, speculative=speculative).generations)
    return out


results = []
for level in LEVELS:
    test_rows = splits[level]["test"][: D.test_rows]
    for style in STYLES:
        used = [str(adapter(style, level)), base_draft, *(drafts[style, level, m] for m in distillation.methods(D, level))]
        measured = cached(
            f"acceptance_{style}_{level}",
            lambda style=style, level=level, rows=test_rows: acceptance(style, level, rows),
            {"rows": test_rows, "style": style, "k": D.k, "max_new_tokens": D.max_new_tokens},
            used,
        )
        for name, m in measured.items():
            results.append(
                {
                    "level": level,
                    "style": style,
                    "draft": name,
                    "acceptance rate": m["acceptance_rate"],
                    "mean acceptance length": m["mean_acceptance_length"],
                    "alpha": m["alpha"],
                    "E(alpha, K)": metrics.expected_tokens_per_step(m["alpha"], D.k),
                    **{f"position {i + 1}": p for i, p in enumerate(m["per_position"])},
                    "requests": m["requests"],
                    "tokens": m["tokens"],
                }
            )
results = pd.DataFrame(results)
display(results.round(3))
print(f"K = {D.k}, greedy, {D.test_rows} test questions per level ·", stamp(profile))

# %% [markdown]
# The same acceptance, position by position: the share of target passes that kept the i-th draft
# token, a panel per target and level, a line per draft.

# %%
fig = figures.acceptance_by_position(results, D.k, profile)
figures.save(fig, profile, "03_acceptance_by_position")
plt.show()

# %% [markdown]
# ## Summary and takeaways

# %%
minutes = (time.perf_counter() - chapter_start) / 60
display(Markdown(findings.distillation(results, D, profile, minutes)))

# %% [markdown]
# ## Exercises
#
# 1. Train the distilled draft on half of its target's answers. How much acceptance does it lose?
# 2. Compare the base draft's and the distilled draft's acceptance by position (the figure above):
#    where does distillation help most, early or late in a step?
# 3. Why can a draft trained on the teacher's data (the control) accept about as well as the
#    distilled one here? Look at how close the target's answers are to chapter 01's rationales.
#
# ## References
#
# - Hinton, Vinyals, Dean. *Distilling the Knowledge in a Neural Network.* 2015. [arXiv:1503.02531](https://arxiv.org/abs/1503.02531)
# - Kim, Rush. *Sequence-Level Knowledge Distillation.* EMNLP 2016. [arXiv:1606.07947](https://arxiv.org/abs/1606.07947)
# - Zhou et al. *DistillSpec: Improving Speculative Decoding via Knowledge Distillation.* ICLR 2024. [arXiv:2310.08461](https://arxiv.org/abs/2310.08461)
# - Agarwal et al. *On-Policy Distillation of Language Models: Learning from Self-Generated Mistakes* (GKD). ICLR 2024. [arXiv:2306.13649](https://arxiv.org/abs/2306.13649)
