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
# # 02 · Training: LoRA fine-tuning of the target on CoT and on CoD
#
# In this chapter you will
# - write a LoRA layer out and see which of the target's weights fine-tuning changes;
# - see one training row with its loss mask: which tokens the target learns to write;
# - fine-tune the target on CoT and, separately, on CoD, and take a first look at accuracy.
#
# > **LoRA** (low-rank adaptation, Hu et al. 2021): a frozen weight W plus a trained update B·A of
# > rank r, scaled by alpha / r; B starts at zero, so the tuned model starts as the base.
# > **Adapter**: the trained A and B matrices (and any module trained whole, `modules_to_save`).
#
# For every difficulty level, the base target is fine-tuned twice with LoRA: once on the Chain of
# Thought rationales of chapter 01 (`train_cot.jsonl`) and once on the Chain of Draft rationales of
# the same problems (`train_cod.jsonl`). Six adapters come out, `target_<style>_<level>`. The
# chapter shows the loss curves and a first accuracy check of base vs CoT vs CoD targets; the full
# benchmark (all test problems, with and without speculation) is chapter 04.
#
# **One chat format, used identically at training and inference**: the style's system prompt
# (`specbook.prompts.STUDENT_SYSTEM`), the question as the user turn, the rationale as the
# assistant turn ending with `<|im_end|>`. The prompt is rendered by the same function the
# engines' callers use (`prompts.chat_prompt`) with Qwen3's thinking switched off
# (`enable_thinking=False`: the real Qwen3 template then places an empty `<think></think>` block
# in the prompt, in training and inference alike, and the rationale is the reasoning). The loss
# falls on the assistant's tokens only (tested: prompt tokens carry label -100 in what the trainer
# feeds the model).

# %% tags=["remove-input"]
from specbook.figures import where_we_are

where_we_are("02")

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


import matplotlib.pyplot as plt
import pandas as pd
import torch
from IPython.display import Markdown, display

from specbook import (
    bench,
    engines,
    evaluation,
    figures,
    findings,
    models,
    pretraining,
    profiles,
    rationales,
    runlock,
    specdec,
    stages,
    training,
)
from specbook.paths import NOTEBOOKS, artifacts, lib_sources
from specbook.profiles import LEVELS
from specbook.runinfo import seed_everything, stamp
from specbook.styles import LABELS, STYLES

# %% tags=["hide-input"]
P = profiles.load(profile)
seed_everything(P.seed)
A = artifacts(profile)
runlock.hold(profile)  # one run of a profile at a time: a second stops here, naming this one
print(stamp(profile), "· training backend:", training.backend())


def cached(name, compute, params, models_used):
    """A measurement of this chapter (`stages.measured`, a timing: per machine)."""
    code = [NOTEBOOKS / "02_training.py", *lib_sources("bench", "engines", "evaluation", "models", "specdec")]
    return stages.measured(A.cached("02_training", name), compute, params, models_used, code, engine=P.engine, per_machine=True)


# %% [markdown]
# ## Where the base models come from
#
# At full scale the base target is Qwen/Qwen3-14B and the draft Qwen/Qwen3-0.6B, from the Hub.
# The offline profiles cannot download them, so they make their own, once: Qwen3-architecture
# models (`Qwen3ForCausalLM`, random init, shapes in the profile) with the tokenizer of chapter 01,
# **pretrained on the domain's text but never on a CoT or CoD rationale**: every question of every
# split (questions only, no answers) plus disjoint problems (not in any train or test split) with
# their solution in the source's own format (GSM-Symbolic: GSM8K's solution with calculator tags and
# `#### answer`; leg counting: the answer line alone, the generator's table of legs per animal, and
# drills of exactly the arithmetic a rationale does: every product of a count and a leg number, and
# running additions of two numbers, as bare equations). Windows of `pretrain.seq_len` tokens (tiny:
# 320, so a whole hard row, prompt and rationale, fits in one; with 128 every hard row's last
# lines lay beyond any position the base model had seen).
# "Untrained base" then means what it means at full scale: it knows the domain's language but was
# never taught the answer format. They are saved with `save_pretrained` under
# `data/<profile>/models/base_{target,draft}` and load exactly as a Hub model does.

# %%
splits = {level: {name: rationales.load_rows(A, level, name) for name in ("train_cot", "train_cod", "test")} for level in LEVELS}
tokenizer = pretraining.base_tokenizer(P, A)
documents = pretraining.documents(P, A)  # none where the base models come from the Hub
base = pretraining.base_models(P, A, tokenizer, documents)
base_target, base_draft = base["target"]["path"], base["draft"]["path"]
if documents.texts:
    n_q = documents.questions
    print(f"{len(documents.texts)} pretraining documents: {n_q} questions, {len(documents.texts) - n_q} disjoint texts")
    for d in documents.texts[:2] + documents.texts[-n_q - 2 : -n_q]:
        print("---\n" + d)
    display(
        pd.DataFrame(
            {
                role: {
                    "parameters (M)": b["parameters"] / 1e6,
                    "tokens seen (M)": b["tokens_seen"] / 1e6,
                    "minutes": b["seconds"] / 60,
                    "final loss": b["curve"][-1]["loss"],
                    "built at": b["built_at"],
                }
                for role, b in base.items()
            }
        ).T
    )
else:
    print(f"base target {base_target}, base draft {base_draft} (Hub)")

# %% [markdown]
# Speculative decoding pays only when the draft is cheap. The draft's decoding step against the
# target's, measured here (medians of `timing_repeats` passes after warm-up, target and draft taking
# turns over three rounds, the prompt length of chapter 00 in the cache), with the models run as the
# profile's engine runs them. A small model on a CPU spends much of a step in per-call overhead
# (Python, kernel launches), which a draft of few layers pays as much as a target of many;
# `torch.compile` (`engine.compile`, applied to target and draft alike) removes much of it. The
# last column is the verify pass of K = 4 proposals against a 1-token step (chapter 00's v(K)).


# %%
def measure_step_costs():
    eager = (models.load_causal_lm(base_target), models.load_causal_lm(base_draft))
    runs = {"eager": eager}
    if P.engine.kind == "native" and P.engine.compile:
        runs["torch.compile"] = tuple(specdec.compiled(m) for m in eager)
    costs = {
        name: bench.step_costs(t, d, [4], context=P.theory.prompt_tokens, repeats=P.theory.timing_repeats) for name, (t, d) in runs.items()
    }
    del eager, runs
    models.free_memory()  # on a GPU the fine-tunes and vLLM need it back
    return costs


timing = {"context": P.theory.prompt_tokens, "repeats": P.theory.timing_repeats}
step_costs = cached("step_costs", measure_step_costs, timing, [base_target, base_draft])
display(
    pd.DataFrame(
        {
            name: {
                "target step (ms)": c.target_ms,
                "draft step (ms)": c.draft_ms,
                "c = draft / target": c.c,
                "target steps per draft step": 1 / c.c,
                "verify K=4 / step": c.v[4],
            }
            for name, c in step_costs.items()
        }
    ).T.round(3)
)
costs_setting = list(step_costs)[-1]  # the way the engine runs them
costs = step_costs[costs_setting]
print(f"as the engine decodes ({costs_setting}): c = {costs.c:.3f} (1/{1 / costs.c:.1f}) · {stamp(profile)}")

# %%
if documents.texts:
    fig, ax = plt.subplots(figsize=(6.5, 3.5))
    for role, b in base.items():
        ax.plot([c["step"] for c in b["curve"]], [c["loss"] for c in b["curve"]], label=f"base {role}")
    ax.set(xlabel="step", ylabel="loss (nats/token)", title="Pretraining the base models on domain text")
    figures.integer_ticks((ax, "x"))
    ax.legend(loc="upper right")
    figures.save(fig, profile, "02_pretraining_loss")
    plt.show()

# %% [markdown]
# ## LoRA, written out
#
# Fine-tuning every weight of a 14B model needs memory for its gradients and optimizer state:
# with Adam in mixed precision about 16 bytes per parameter, eight times the bf16 weights. LoRA
# freezes each chosen weight matrix W (d_out × d_in) and learns a low-rank update instead:
#
# $$h = W x + \frac{\text{lora\_alpha}}{r} B A x, \qquad A \in \mathbb{R}^{r \times d_{in}},\; B \in \mathbb{R}^{d_{out} \times r}.$$
#
# Only A and B train: r · (d_in + d_out) numbers instead of d_in · d_out. B starts at zero, so the
# tuned model starts exactly as the base. The scale `lora_alpha` / r (peft's names) spares
# retuning the learning rate for every r (Hu et al.; rsLoRA argues for `lora_alpha` / √r).


# %%
class LoRALinear(torch.nn.Module):
    def __init__(self, base: torch.nn.Linear, r: int, alpha: float):
        super().__init__()
        self.base = base.requires_grad_(False)  # W stays frozen
        self.A = torch.nn.Parameter(torch.randn(r, base.in_features) / r**0.5)  # any random start (peft: Kaiming-uniform)
        self.B = torch.nn.Parameter(torch.zeros(base.out_features, r))  # zero: starts as the base
        self.scale = alpha / r

    def forward(self, x):
        return self.base(x) + self.scale * (x @ self.A.T @ self.B.T)


# %% [markdown]
# Checked at once, on one 256 × 256 layer with this profile's rank and scale: before training it
# changes nothing; it trains the numbers of A and B only (printed beside the layer's); and with the
# same A and B it computes what peft's LoRA layer computes.

# %%
stream = torch.random.get_rng_state()  # the demo's draws leave the chapter's random stream as it was
torch.manual_seed(P.seed)
layer = torch.nn.Linear(256, 256, bias=False)
lora = LoRALinear(layer, P.sft.lora.r, P.sft.lora.lora_alpha)
x = torch.randn(4, 256)
assert torch.equal(lora(x), layer(x))  # B = 0
trainable = sum(p.numel() for p in lora.parameters() if p.requires_grad)
print(f"r = {P.sft.lora.r}: {trainable:,} trainable numbers against {layer.weight.numel():,} in the layer")

# %%
with torch.no_grad():
    lora.B.normal_()  # as if trained
peft_layer = training.peft_lora_layer(layer, lora.A, lora.B, P.sft.lora.r, P.sft.lora.lora_alpha)
torch.testing.assert_close(peft_layer(x), lora(x))
print("the written-out layer and peft's agree")
torch.random.set_rng_state(stream)

# %% [markdown]
# peft does the same for every matrix the profile names (`sft.lora.target_modules`), and
# `sft.lora.modules_to_save` lists modules trained whole instead (on the offline profiles the
# output head `lm_head`: in earlier runs a small target trained without it learnt the answer
# format far more slowly). This profile's choice:

# %%
print(
    f"LoRA on {P.sft.lora.target_modules} (rank {P.sft.lora.r}, lora_alpha {P.sft.lora.lora_alpha}); trained whole: {list(P.sft.lora.modules_to_save) or 'nothing'}"
)

# %% [markdown]
# ### What the target learns to write
#
# The loss is the usual next-token cross-entropy, but only on the answer: the prompt's tokens
# carry the label -100, which the loss skips. One real training row, as the trainer sees it:

# %%
row = splits[LEVELS[0]]["train_cod"][0]
encoded = training.encode(tokenizer, row["question"], row["rationale"], "cod", P.sft.args.max_length)
figures.loss_mask_html([tokenizer.decode([t]) for t in encoded["input_ids"]], encoded["completion_mask"])

# %% [markdown]
# ## LoRA fine-tuning: six targets
#
# Hyperparameters come from the profile (`sft`); the `full` profile mirrors the reference run
# (r 16, alpha 32, dropout 0, all attention and MLP projections, lr 2e-4 cosine, warm-up 3 %,
# 3 epochs, max length 2048, bf16). The last `eval_rows` training rows of each level are held out
# (never trained on) for the evaluation loss; of the rest a profile may take the first
# `sft.train_rows[level]` (the table below gives each fine-tune's rows and minutes). With
# `sft.curriculum` (tiny) the levels are a curriculum: medium's target of a style goes on training
# easy's adapter of that style, hard's goes on from medium's. Every level writes the same
# per-animal line and only adds more of them, so what easy teaches (copying each animal and its
# count from the question, in order) is what the longer levels need first: tiny tunes easy on
# every training row, in batches of 8 (twice the updates of batches of 16 in the same time). This
# chapter does not test what the curriculum buys (no run without it here), and copying need not
# carry up: a target that copies the animals on easy may still name the wrong animal on hard.
# Whether a target learns to copy them came as a sudden step in earlier runs (the site's notes
# page tells them). Each target is still the base plus one adapter, trained
# on its level after the levels below. A finished adapter is reused unless its base, data,
# settings or the adapter it started from changed.

# %%
reports = {}
for below, level in zip([None, *LEVELS[:-1]], LEVELS, strict=True):
    for style in STYLES:
        train_rows, eval_rows = training.target_rows(splits[level][f"train_{style}"], P.sft, level)
        start_from = A.target(style, below) if P.sft.curriculum and below else None
        reports[style, level] = training.finetune(
            base_target, tokenizer, train_rows, eval_rows, style, P.sft, A.target(style, level), P.seed, start_from=start_from
        )
summary = pd.DataFrame(
    [
        {
            "level": level,
            "style": style,
            "backend": r["backend"],
            "train rows": r["train_rows"],
            "train tokens (k)": r["train_tokens"] / 1e3,
            "minutes": r["seconds"] / 60,
            "final train loss": r["curve"][-1]["loss"],
            "eval loss": r["eval_curve"][-1]["eval_loss"],
            "truncated": r["truncated"],
            "built at": r["built_at"],
        }
        for (style, level), r in reports.items()
    ]
)
display(summary.round(3))
print(stamp(profile))

# %%
fig, axes = plt.subplots(1, len(LEVELS), figsize=(12, 3.6), sharey=True)
for ax, level in zip(axes, LEVELS, strict=True):
    for style in STYLES:
        r = reports[style, level]
        ax.plot(
            [c["step"] for c in r["curve"]], [c["loss"] for c in r["curve"]], color=figures.COLORS[style], label=f"{LABELS[style]} train"
        )
        ax.plot(
            [c["step"] for c in r["eval_curve"]],
            [c["eval_loss"] for c in r["eval_curve"]],
            "o--",
            color=figures.COLORS[style],
            label=f"{LABELS[style]} held-out",
        )
    ax.set(title=f"LoRA fine-tuning, {level}", xlabel="step")
    figures.integer_ticks((ax, "x"))
axes[0].set_ylabel("loss on the rationale (nats/token)")
fig.legend(*axes[0].get_legend_handles_labels(), loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
fig.tight_layout()
figures.save(fig, profile, "02_loss_curves")
plt.show()

# %% [markdown]
# ## A first accuracy check: base vs CoT vs CoD
#
# The first `check_rows` test problems of each level (new problems, never trained on), greedy,
# with the profile's engine (in batches of `engine.batch_size`: greedy answers do not depend on
# batching) and the strict answer checker of chapter 01. The base target is asked
# with the CoT system prompt. The in-process engines load each tuned target merged (adapter folded
# into the weights, saved beside the adapter); vLLM serves the adapter on its base model, so no 14B
# copy is written to disk. Intervals are 95 % Wilson intervals.


# %%
def engine_for(model):
    """model: the base target's path or id, or a tuned target's adapter folder."""
    if model == base_target:
        return engines.make(P.engine, base_target, seed=P.seed)
    if P.engine.kind == "vllm":
        return engines.make(P.engine, base_target, seed=P.seed, lora=str(model))
    return engines.make(P.engine, str(training.merge(model, A.merged(model))), seed=P.seed)


checks = []
for level in LEVELS:
    test_rows = splits[level]["test"][: P.sft.check_rows]
    candidates = [("base", "cot", base_target)] + [(style, style, A.target(style, level)) for style in STYLES]
    for name, style, model in candidates:
        result = cached(
            f"check_{name}_{level}",
            lambda model=model, style=style, rows=test_rows: evaluation.score(
                engine_for(model), rows, style, P.sft.max_new_tokens, batch_size=P.engine.batch_size
            ),
            {"rows": test_rows, "style": style, "max_new_tokens": P.sft.max_new_tokens},
            [model],
        )
        checks.append(
            {
                "level": level,
                "target": name,
                "accuracy": result.accuracy,
                "ci_low": result.ci_low,
                "ci_high": result.ci_high,
                "mean tokens": result.mean_tokens,
                "n": result.n,
                "truncated": sum(a["finish_reason"] == "length" for a in result.answers),  # hit max_new_tokens
                "example": result.answers[0]["text"][:120],
            }
        )
checks = pd.DataFrame(checks)
display(checks.drop(columns="example").round(3))
print(stamp(profile))

# %%
fig, ax = plt.subplots(figsize=(7, 3.6))
width = 0.27
colors = figures.COLORS
for j, name in enumerate(["base", *STYLES]):
    rows = checks[checks.target == name].set_index("level").loc[list(LEVELS)]
    x = [i + (j - 1) * width for i in range(len(LEVELS))]
    ax.bar(x, rows["accuracy"] * 100, width, color=colors[name], label="base target" if name == "base" else f"{LABELS[name]} target")
    ax.errorbar(
        x,
        rows["accuracy"] * 100,
        yerr=[(rows["accuracy"] - rows["ci_low"]) * 100, (rows["ci_high"] - rows["accuracy"]) * 100],
        fmt="none",
        color="black",
        lw=0.8,
        capsize=2,
    )
ax.set(
    xticks=range(len(LEVELS)),
    xticklabels=LEVELS,
    ylabel="accuracy (%)",
    ylim=(0, 100),
    title=f"Quick check: first {P.sft.check_rows} test problems per level",
)
if checks["accuracy"].max() == 0:
    figures.note_degenerate(ax, f"every target scored 0 % on the {profile} profile's {P.sft.check_rows} problems per level")
fig.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
fig.tight_layout()
figures.save(fig, profile, "02_accuracy_check")
plt.show()

# %% [markdown]
# ## Summary and takeaways

# %%
display(Markdown(findings.training(checks, costs, step_costs, costs_setting, P, profile)))

# %% [markdown]
# ## Exercises
#
# 1. Train the easy CoD target with LoRA on the attention and MLP projections only (drop `lm_head`
#    from `sft.lora.modules_to_save`). Expect the token accuracy to stall and the answers to go flat.
# 2. Halve `sft.args.num_train_epochs` for easy. Does accuracy follow the number of passes over the
#    rows or the number of optimizer steps?
# 3. Set the LoRA rank r to 4 and then 64. How many parameters train in each, and what changes in
#    the loss curve?
#
# ## References
#
# - Hu et al. *LoRA: Low-Rank Adaptation of Large Language Models.* ICLR 2022. [arXiv:2106.09685](https://arxiv.org/abs/2106.09685)
# - Qwen Team. *Qwen3 Technical Report.* 2025. [arXiv:2505.09388](https://arxiv.org/abs/2505.09388)
# - Bengio et al. *Curriculum Learning.* ICML 2009. [doi:10.1145/1553374.1553380](https://doi.org/10.1145/1553374.1553380)
