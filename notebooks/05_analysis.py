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
# # 05 · Analysis: the book's answers
#
# The book asks three questions on each level: does fine-tuning on reasoning traces raise accuracy;
# does speculative decoding cut generation time without changing what the target writes; does
# training on Chain of Draft instead of Chain of Thought cut tokens, raise draft acceptance and keep
# accuracy? This chapter answers them from what chapters 01-04 wrote (`data/<profile>/results/`,
# read with `results.load_runs`): it trains, generates and times nothing, and runs in seconds
# (`make figures` re-renders it alone).
#
# - The reference run's three tables per level (accuracy, speed, tokens) with this profile's
#   numbers beside the published ones (`data/reference_run.csv`: Qwen3-14B and Qwen3-0.6B on
#   GSM8K and MATH, vLLM): another scale, another data set, another machine; set side by side to
#   compare the shape of the results, not their size.
# - A verdict per question and level, each from a named test on paired data, by rules fixed before
#   any result is read (`specbook.analysis`): 95 %; accuracy compared only on a level both tuned
#   targets learnt; CoD "as accurate" within `analysis.AS_ACCURATE_MARGIN`; the best K chosen on half
#   of the timed requests and reported on the other half; an unstable timing said so.
# - Where the drafts miss: at every rejection the target's token, by class and by position in the answer.

# %% tags=["parameters"]
# The scale of the whole book, one of notebooks/params/*.yaml. Switch it here, or run headless with
# `make run-all PROFILE=smoke` (add NB=05 for this chapter; `make figures` re-renders it alone). This
# chapter on 2 CPU cores, once chapter 04 has run:
#   smoke  CI's check that every cell runs: seconds
#   tiny   the default, offline on any CPU: seconds
#   full   one GPU (Qwen3-14B, Qwen3-0.6B, vLLM): seconds, once chapter 04 has run (hours)
profile = "tiny"  # smoke | tiny | full (see above)

# %%
from specbook.runinfo import quiet_known_warnings

quiet_known_warnings()  # first: some libraries warn as they load

import functools
import json
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from IPython.display import Markdown, display
from transformers import AutoTokenizer

from specbook import analysis, distillation, engines, figures, profiles, results, stats
from specbook.paths import REFERENCE_RUN, artifacts
from specbook.profiles import LEVELS
from specbook.runinfo import seed_everything, stamp
from specbook.styles import LABELS, STYLES

P = profiles.load(profile)
seed_everything(P.seed)
A = artifacts(profile)
B = P.bench
chapter_start = time.perf_counter()
runs = results.load_runs(A.results)
SOURCE = results.provenance_line(runs)  # under every table and figure: the results it shows
reference = pd.read_csv(REFERENCE_RUN, comment="#")
tokenizer = AutoTokenizer.from_pretrained(A.base_model("target") if P.models.kind == "train" else P.models.target)
EOS = engines.eos_token_ids(None, tokenizer)
A.analysis.mkdir(parents=True, exist_ok=True)
engine = runs.engine.iloc[0]
print(stamp(profile), "·", len(runs), "runs of chapter 04 ·", SOURCE)


runs_by_name = runs.set_index("run")


def run_of(level, target, draft="alone", k=0, request_set="all"):
    """One run's row of the table of runs."""
    return runs_by_name.loc[results.Run(level, target, draft, k, 0.0, engine, request_set).name]


@functools.cache  # several sections read the same runs: each file once
def requests_of(level, target, draft="alone", k=0, request_set="all"):
    """One run's requests, in the test set's order."""
    return results.load_requests(A.results, results.Run(level, target, draft, k, 0.0, engine, request_set).name)


def paired(a, b, column):
    """One column of two runs' requests, matched problem by problem."""
    both = a[["id", column]].merge(b[["id", column]], on="id", suffixes=("_a", "_b"), validate="one_to_one")
    return both[f"{column}_a"].to_numpy(), both[f"{column}_b"].to_numpy()


def ref(level, target, speculative=0):
    return reference[(reference.level == level) & (reference.target == target) & (reference.speculative == speculative)].iloc[0]


# %% [markdown]
# ## The reference run's tables, at this scale
#
# Accuracy with its 95 % Wilson interval on the whole test set (the reference run's intervals from
# its own counts), for the five configurations of the reference run: the base target, each tuned
# target alone and with its distilled draft at K = `bench.k`.

# %%
CONFIGS = [("base", "alone"), ("cot", "alone"), ("cot", "distilled"), ("cod", "alone"), ("cod", "distilled")]


def config_label(target, draft):
    name = "base" if target == "base" else LABELS[target]
    return name + (" + spec" if draft != "alone" else "")


accuracy_table = []
for level in LEVELS:
    for target, draft in CONFIGS:
        r = run_of(level, target, draft, B.k if draft != "alone" else 0)
        theirs = ref(level, target, int(draft != "alone"))
        their_low, their_high = stats.wilson_interval(round(theirs.accuracy * theirs.requests), int(theirs.requests))
        accuracy_table.append(
            {
                "level": level,
                "configuration": config_label(target, draft),
                "accuracy": r.accuracy,
                "low": r.accuracy_low,
                "high": r.accuracy_high,
                "questions": int(r.requests),
                "reference accuracy": theirs.accuracy,
                "reference low": their_low,
                "reference high": their_high,
                "reference questions": int(theirs.requests),
            }
        )
accuracy_table = pd.DataFrame(accuracy_table)
accuracy_table.to_csv(A.analysis / "accuracy.csv", index=False)
display(accuracy_table.round(3))
print("greedy, whole test set; reference: Qwen3-14B (+ Qwen3-0.6B), K = 5, vLLM ·", SOURCE)

fig, axes = plt.subplots(1, 2, figsize=(12, 3.8), sharey=True)
width = 0.8 / len(CONFIGS)
for ax, prefix, title in [
    (axes[0], "", f"this book ({profile} profile)"),
    (axes[1], "reference ", "reference run (Qwen3-14B, GSM8K / MATH)"),
]:
    for j, (target, draft) in enumerate(CONFIGS):
        part = accuracy_table[accuracy_table.configuration == config_label(target, draft)].set_index("level").loc[list(LEVELS)]
        x = np.arange(len(LEVELS)) + (j - (len(CONFIGS) - 1) / 2) * width
        value = part[f"{prefix}accuracy"]
        errors = [value - part[f"{prefix}low"], part[f"{prefix}high"] - value]
        color = figures.COLORS["base" if target == "base" else target]
        ax.bar(
            x, value, width, yerr=errors, capsize=2, color=color, alpha=1.0 if draft == "alone" else 0.55, label=config_label(target, draft)
        )
    ax.set(title=title, xticks=range(len(LEVELS)), xticklabels=LEVELS, ylim=(0, 1))
axes[0].set_ylabel("accuracy (95 % interval)")
fig.legend(*axes[0].get_legend_handles_labels(), loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
fig.tight_layout()
figures.save(fig, profile, "05_accuracy")
plt.show()

# %% [markdown]
# Speed: each tuned target with its distilled draft at K = `bench.k`, timed request by request
# against the target alone (median per-request latency ratio, bootstrap 95 % interval; the spread of
# the rounds' own speedups beside it); the reference run's speedup is its ratio of tokens per second.
# Tokens: mean tokens per answer on the whole test set.

# %%
speed_table, tokens_table = [], []
for level in LEVELS:
    for style in STYLES:
        r = run_of(level, style, "distilled", B.k, "timed")
        theirs_alone, theirs_spec = ref(level, style, 0), ref(level, style, 1)
        speed_table.append(
            {
                "level": level,
                "target": LABELS[style],
                "speedup": r.speedup,
                "low": r.speedup_low,
                "high": r.speedup_high,
                "spread of rounds": r.round_spread,
                "unstable": r.unstable,
                "acceptance rate": run_of(level, style, "distilled", B.k).acceptance_rate,  # the whole test set
                "reference speedup": theirs_spec.tokens_per_s / theirs_alone.tokens_per_s,
                "reference acceptance rate": theirs_spec.acceptance_rate,
            }
        )
    tokens = {target: run_of(level, target).tokens_per_request for target in ["base", *STYLES]}
    theirs = {target: ref(level, target).tokens_per_answer for target in ["base", *STYLES]}
    tokens_table.append(
        {
            "level": level,
            **{f"{'base' if t == 'base' else LABELS[t]} tokens": v for t, v in tokens.items()},
            "CoD / CoT": tokens["cod"] / tokens["cot"],
            **{f"reference {'base' if t == 'base' else LABELS[t]}": v for t, v in theirs.items()},
            "reference CoD / CoT": theirs["cod"] / theirs["cot"],
        }
    )
speed_table, tokens_table = pd.DataFrame(speed_table), pd.DataFrame(tokens_table)
speed_table.to_csv(A.analysis / "speed.csv", index=False)
tokens_table.to_csv(A.analysis / "tokens.csv", index=False)
display(speed_table.round(3))
print(
    f"greedy, batch 1, K = {B.k}, {B.timing_rows} timed questions per level in {B.rounds} rounds (unstable: rounds' speedups spread more "
    f"than {results.UNSTABLE_SPREAD:.0%} of their median); acceptance on the whole test set ·",
    SOURCE,
)
display(tokens_table.round(3))
print("mean tokens per answer, greedy, whole test set; the base target answers in the CoT format it was asked for ·", SOURCE)

# %% [markdown]
# ## Verdicts
#
# Each row is one question on one level, its verdict, the test that gave it and the estimate.
# 1: base vs tuned target on the same problems (McNemar). 2a: the speedup's interval (and the best K,
# chosen on the even-numbered timed requests, reported on the odd-numbered ones). 2b: every answer of
# the speculative run against the target's own, and the paired accuracy difference. 3a-c: the CoT
# and CoD targets on the same problems: tokens (Wilcoxon signed-rank), acceptance of their distilled
# drafts (paired bootstrap), accuracy (non-inferiority at the margin fixed in `specbook.analysis`,
# judged only where both targets learnt the level: each beats the base, and its interval's lower end
# lies above the margin; that second condition was added after the first tiny run, see `analysis`).

# %%
verdicts, learnt = [], {}
for level in LEVELS:
    base = requests_of(level, "base")
    for style in STYLES:
        v = analysis.fine_tuning(level, LABELS[style], *paired(base, requests_of(level, style), "correct"))
        verdicts.append(v)
        learnt[level, style] = analysis.learnt(v, requests_of(level, style).correct)
for level in LEVELS:
    for style in STYLES:
        r = run_of(level, style, "distilled", B.k, "timed")
        verdicts.append(analysis.speculation_faster(level, LABELS[style], B.k, r.speedup, r.speedup_low, r.speedup_high, r.unstable))
    alone = requests_of(level, "cod", request_set="timed")
    by_k = {k: requests_of(level, "cod", "distilled", k, "timed") for k in B.ks}
    best = analysis.best_k_held_out(alone.latency_s, {k: t.latency_s for k, t in by_k.items()}, seed=P.seed)
    verdicts.append(
        analysis.speculation_faster(
            level,
            f"CoD at the best K = {best['k']} (chosen on {best['chosen_on']} requests, measured on {best['reported_on']} others)",
            best["k"],
            best["speedup"],
            best["low"],
            best["high"],
            bool(run_of(level, "cod", "distilled", best["k"], "timed").unstable),
        )
    )
    for style in STYLES:
        spec = run_of(level, style, "distilled", B.k)
        verdicts.append(
            analysis.speculation_unchanged(
                level,
                LABELS[style],
                spec.identical_to_plain,
                spec.near_tie,
                *paired(requests_of(level, style), requests_of(level, style, "distilled", B.k), "correct"),
            )
        )
for level in LEVELS:
    cot, cod = requests_of(level, "cot"), requests_of(level, "cod")
    verdicts.append(analysis.cod_shorter(level, *paired(cot, cod, "tokens")))
    cot_spec, cod_spec = requests_of(level, "cot", "distilled", B.k), requests_of(level, "cod", "distilled", B.k)
    accepted_cot, accepted_cod = paired(cot_spec, cod_spec, "accepted")
    proposed_cot, proposed_cod = paired(cot_spec, cod_spec, "proposed")
    verdicts.append(analysis.cod_better_accepted(level, (accepted_cot, proposed_cot), (accepted_cod, proposed_cod)))
    both = learnt[level, "cot"] and learnt[level, "cod"]
    verdicts.append(analysis.cod_as_accurate(level, *paired(cot, cod, "correct"), learnt=both))
verdicts = pd.DataFrame(verdicts)
verdicts.to_csv(A.analysis / "verdicts.csv", index=False)
with pd.option_context("display.max_colwidth", 120):
    display(verdicts.round(4))
print(f"95 % throughout; margin for 'as accurate': {analysis.AS_ACCURATE_MARGIN:.0%} ·", SOURCE)

# %% [markdown]
# ## What the numbers look like
#
# Token lengths of every answer on the whole test set, the base target beside the tuned ones; and
# the acceptance rate by draft position of each tuned target's distilled draft (K = `bench.k`,
# whole test set): the share of target passes whose i-th draft token was kept.

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
lengths = pd.concat(
    [
        requests_of(level, t)[["tokens"]].assign(level=level, target="base" if t == "base" else LABELS[t])
        for level in LEVELS
        for t in ["base", *STYLES]
    ]
)
palette = {"base": figures.COLORS["base"], **{LABELS[s]: figures.COLORS[s] for s in STYLES}}
sns.boxplot(data=lengths, x="level", y="tokens", hue="target", order=list(LEVELS), palette=palette, ax=axes[0], fliersize=2)
axes[0].set(title="Tokens per answer", ylabel="tokens (whole test set)")
axes[0].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
for i, level in enumerate(LEVELS):
    for style, marker in zip(STYLES, "os", strict=False):
        rates = run_of(level, style, "distilled", B.k).per_position
        axes[1].plot(
            range(1, len(rates) + 1),
            rates,
            marker=marker,
            color=figures.PALETTE[i],
            ls="-" if style == "cod" else "--",
            label=f"{level}, {LABELS[style]}",
        )
axes[1].set(
    title=f"Acceptance by draft position, K = {B.k}", xlabel="draft position", ylabel="share of passes that kept it", ylim=(0, 1.02)
)
figures.integer_ticks((axes[1], "x"))
axes[1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
fig.tight_layout()
figures.save(fig, profile, "05_lengths_and_positions")
plt.show()

# %% [markdown]
# Speedup against K for the CoD target and its distilled draft (timed requests; a hollow marker is
# an unstable run), the model's prediction E(α, K) / (K·c + v(K)) from chapter 04's step costs
# beside it, and the latency of every timed request alone and with the distilled draft at K = `bench.k`.

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
sweep = runs[(runs.request_set == "timed") & (runs.target == "cod") & (runs.draft == "distilled")]
figures.speedup_against_k(axes[0], sweep)
axes[0].set(title="CoD target + distilled draft")
axes[0].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
latency = pd.concat(
    [
        requests_of(level, style, draft, k, "timed")[["latency_s"]].assign(
            level=level, run=f"{LABELS[style]} {'alone' if draft == 'alone' else 'spec'}"
        )
        for level in LEVELS
        for style in STYLES
        for draft, k in [("alone", 0), ("distilled", B.k)]
    ]
)
sns.boxplot(data=latency, x="level", y="latency_s", hue="run", order=list(LEVELS), ax=axes[1], fliersize=2)
axes[1].set(title=f"Latency per request, alone and with the distilled draft (K = {B.k})", ylabel="seconds (median of the rounds)")
axes[1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
fig.tight_layout()
figures.save(fig, profile, "05_speedup_and_latency")
plt.show()

# %% [markdown]
# The drafts compared on the same timed requests at K = `bench.k`: untrained (the base draft),
# trained on the teacher's rationales, distilled from the target's own answers, distilled white box
# (the target's next-token distributions), and prompt lookup (no draft model), on the levels where
# chapter 03 trained every draft (`distill.control_levels`), so that each bar averages the same levels.

# %%
DRAFT_LABELS = {
    "base": "untrained",
    "teacher_data": "teacher data",
    "distilled": "distilled",
    "white_box": "white box",
    "ngram": "prompt lookup",
}
every_draft = [level for level in LEVELS if distillation.methods(P.distill, level) == distillation.METHODS]
at_k = runs[(runs.request_set == "timed") & (runs.k == B.k) & (runs.draft != "alone") & runs.level.isin(every_draft)]
drafts_table = at_k[["level", "target", "draft", "speedup", "speedup_low", "speedup_high", "unstable", "acceptance_rate"]].assign(
    target=lambda t: t.target.map(LABELS), draft=lambda t: t.draft.map(DRAFT_LABELS)
)
display(drafts_table.round(3))
fig, axes = plt.subplots(1, 2, figsize=(12, 3.8), sharey=False)
for ax, column, title in [(axes[0], "speedup", f"Speedup at K = {B.k}"), (axes[1], "acceptance_rate", f"Acceptance rate at K = {B.k}")]:
    sns.barplot(
        data=drafts_table,
        x="draft",
        y=column,
        hue="target",
        order=list(DRAFT_LABELS.values()),
        palette={LABELS[s]: figures.COLORS[s] for s in STYLES},
        errorbar=None,
        ax=ax,
    )
    ax.set(title=f"{title}, mean over {', '.join(every_draft)}", xlabel="", ylabel=column.replace("_", " "))
    ax.tick_params(axis="x", labelsize=8)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
axes[0].axhline(1.0, color="0.3", lw=0.8)
fig.tight_layout()
figures.save(fig, profile, "05_drafts")
plt.show()
print("timed requests; per level in the table above ·", SOURCE)

# %% [markdown]
# ## What the drafts miss
#
# At every rejection the decoder kept the draft's token and the token the target wrote instead
# (chapter 04's whole-test-set runs, distilled drafts, K = `bench.k`). A miss is read by the class of
# the target's token: digits, operators, words, formatting (spaces, new lines, punctuation) or the
# end of the answer; "misses per 100 tokens" sets the misses against how often the class occurs in
# the answers. Right: where in the answer the misses fall (position / answer length).

# %%
missed, rates = {}, []
for style in STYLES:
    parts, counts = [], dict.fromkeys(analysis.TOKEN_CLASSES, 0)
    for level in LEVELS:
        spec = requests_of(level, style, "distilled", B.k)
        parts.append(analysis.rejections(spec, tokenizer, EOS).assign(level=level))
        for c, n in analysis.class_counts(spec, tokenizer, EOS).items():
            counts[c] += n
    missed[style] = pd.concat(parts, ignore_index=True)
    rates.append(analysis.miss_rates(missed[style], counts).assign(target=LABELS[style]))
rates = pd.concat(rates, ignore_index=True)
rates.to_csv(A.analysis / "misses_by_class.csv", index=False)
display(rates.round(3))
fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
sns.barplot(
    data=rates, x="class", y="misses per 100 tokens", hue="target", palette={LABELS[s]: figures.COLORS[s] for s in STYLES}, ax=axes[0]
)
axes[0].set(title="Misses by the class of the target's token", xlabel="")
axes[0].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
bins = np.linspace(0, 1, 11)
for style in STYLES:
    if len(missed[style]):
        axes[1].hist(
            missed[style]["relative position"],
            bins=bins,
            histtype="step",
            lw=1.5,
            density=True,
            color=figures.COLORS[style],
            label=LABELS[style],
        )
    else:
        figures.note_degenerate(axes[1], f"no rejection in the {LABELS[style]} runs")
axes[1].set(title="Where misses fall in the answer", xlabel="position / answer length", ylabel="density")
axes[1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
fig.tight_layout()
figures.save(fig, profile, "05_misses")
plt.show()
most_missed = pd.concat(
    [
        missed[style]
        .assign(pair=lambda t: t["draft token"].map(repr) + " → " + t["target token"].map(repr))
        .groupby(["pair", "missed class"])
        .size()
        .rename("misses")
        .sort_values(ascending=False)
        .head(10)
        .reset_index()
        .assign(target=LABELS[style])
        for style in STYLES
    ],
    ignore_index=True,
)
display(most_missed)
print("draft token → target token at a rejection, whole test set, all levels ·", SOURCE)

# %% [markdown]
# ## What this chapter found


# %%
def verdict_line(question, level):
    """The verdicts of one question on one level, each after what it is about (the question's words past its first comma)."""
    rows = verdicts[(verdicts.question.str.startswith(question)) & (verdicts.level == level)]
    return "; ".join(
        f"{r.question.split(', ', 1)[1] if ', ' in r.question else ''} {r.verdict} ({r.estimate})".strip() for r in rows.itertuples()
    )


top_classes = {
    style: ", ".join(
        f"{r['class']} {r['share of misses']:.0%}"
        for _, r in rates[rates.target == LABELS[style]].sort_values("share of misses", ascending=False).iterrows()
    )
    for style in STYLES
}
minutes = (time.perf_counter() - chapter_start) / 60
lines = [f"Profile `{profile}`, {SOURCE}:"]
for level in LEVELS:
    lines.append(
        f"- **{level}**: tuning raises accuracy? {verdict_line('1.', level)}. Speculation faster? {verdict_line('2a.', level)}. "
        f"Unchanged? {verdict_line('2b.', level)}. CoD shorter? {verdict_line('3a.', level)}. Better accepted? {verdict_line('3b.', level)}. "
        f"As accurate? {verdict_line('3c.', level)}."
    )
lines += [
    *(f"- What the {LABELS[s]} drafts miss, by share of all misses: {top_classes[s]} ({len(missed[s])} misses)." for s in STYLES),
    f"- Unstable timings among the speculative runs shown: {int(speed_table.unstable.sum())} of {len(speed_table)}.",
    f"- This run of the chapter took {minutes * 60:.0f} seconds (it reads results; it measures nothing).",
]
summary = "\n".join(lines)
display(Markdown(summary))

# %% [markdown]
# The README's results section is generated from this chapter's tables (`make readme-results`):
# the file below holds them as Markdown, stamped with the profile, config and commit of the results.


# %%
def markdown_table(table):
    return table.round(3).to_markdown(index=False)


report = "\n\n".join(
    [
        f"Profile `{profile}` · {SOURCE}. Reference: the published run (Qwen3-14B + Qwen3-0.6B, K = 5, vLLM 0.19.1; `data/reference_run.csv`).",
        "**Accuracy** (greedy, whole test set, 95 % Wilson interval)\n\n" + markdown_table(accuracy_table),
        f"**Speed** (K = {B.k}, speedup = median per-request latency ratio, bootstrap 95 % interval)\n\n" + markdown_table(speed_table),
        "**Tokens per answer**\n\n" + markdown_table(tokens_table),
        "**Verdicts** (chapter 05)\n\n" + markdown_table(verdicts),
    ]
)
(A.analysis / "results.md").write_text(report + "\n")
(A.analysis / "summary.json").write_text(json.dumps({"profile": profile, "source": SOURCE, "findings": summary}, indent=1) + "\n")
print(f"written: {A.analysis / 'results.md'}")
