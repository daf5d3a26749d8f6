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
# # 05 · Analysis: the book's answers
#
# In this chapter you will
# - get the book's three answers on each level, each from a paired test;
# - see the tables and figures of the reference run beside this profile's;
# - find out which tokens the drafts miss;
# - see which verdicts hold when everything is trained again under other seeds (`make seeds`).
#
# > **Paired test**: two systems compared on the same problems, problem by problem (McNemar's exact
# > test for right/wrong, Wilcoxon's signed-rank test for token counts, a bootstrap over problems
# > for differences). **Non-inferiority**: CoD is "as accurate" when the whole interval of its
# > accuracy difference to CoT lies above −margin.
#
# The book asks three questions on each level: does fine-tuning on reasoning traces raise accuracy;
# does speculative decoding cut generation time without changing what the target writes; does
# training on Chain of Draft instead of Chain of Thought cut tokens, raise draft acceptance and keep
# accuracy? This chapter answers them from what chapters 01-04 wrote (`data/<profile>/results/`,
# read back with `results.Results`): it trains, generates and times nothing, and runs in seconds
# (`make figures` re-renders it alone).
#
# - The reference run's three tables per level (accuracy, speed, tokens) with this profile's
#   numbers beside the published ones (`data/reference_run.csv`: Qwen3-14B and Qwen3-0.6B on
#   GSM8K and MATH, vLLM): another scale, another data set, another machine; set side by side to
#   compare the shape of the results, not their size.
# - A verdict per question and level, each from a named test on paired data, by the rules of
#   `specbook.analysis`, written before the first run with one exception (marked *amended* where it
#   is used below): 95 %; accuracy compared only on a level both tuned targets learnt; CoD "as accurate" within `analysis.AS_ACCURATE_MARGIN`; the best K chosen on half
#   of the timed requests and reported on the other half; an unstable timing said so.
# - Where the drafts miss: at every rejection the target's token, by class and by position in the answer.

# %% tags=["remove-input"]
from specbook.figures import where_we_are

where_we_are("05")

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

import json
import time

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display
from transformers import AutoTokenizer

from specbook import analysis, distillation, engines, figures, findings, profiles, results, runlock, seeds
from specbook.paths import REFERENCE_K, REFERENCE_RUN, artifacts
from specbook.profiles import LEVELS
from specbook.runinfo import seed_everything, stamp
from specbook.styles import LABELS, STYLES

P = profiles.load(profile)
seed_everything(P.seed)
A = artifacts(profile)
runlock.hold(profile)  # one run of a profile at a time: a second stops here, naming this one
B = P.bench
chapter_start = time.perf_counter()
A.analysis.mkdir(parents=True, exist_ok=True)

# %% [markdown]
# Chapter 04's results, read back (`results.Results`): `R.run(...)` is one run's row of metrics,
# `R.requests(...)` its requests, `R.paired(a, b, column)` one column of two runs matched problem
# by problem. Beside them the reference run's published numbers, and the tokenizer that reads the
# drafts' misses.

# %%
R = results.Results(A.results)
SOURCE = results.provenance_line(R.runs)  # under every table and figure: the results it shows
reference = pd.read_csv(REFERENCE_RUN, comment="#")
tokenizer = AutoTokenizer.from_pretrained(A.base_model("target") if P.models.kind == "train" else P.models.target)
EOS = engines.eos_token_ids(None, tokenizer)
print(stamp(profile), "·", len(R.runs), "runs of chapter 04 ·", SOURCE)

# %% [markdown]
# ## The answers
#
# First the verdicts, then the numbers behind them. Each verdict is one question on one level,
# from one test on paired data (the same problems under both systems), decided at 95 %.
#
# Question 1: does fine-tuning raise accuracy? The base and each tuned target on the same
# problems, by McNemar's exact test. A tuned target has *learnt* a level when it beats the base and
# the lower end of its accuracy interval lies above the margin of question 3c
# (`analysis.AS_ACCURATE_MARGIN`, printed with the answers).

# %%
verdicts, learnt = analysis.tuning_verdicts(R)

# %% [markdown]
# Question 2a: is speculation faster? Each tuned target with its distilled draft at K = `bench.k`:
# "faster" when the bootstrap interval of its speedup lies above 1.

# %%
for level in LEVELS:
    for style in STYLES:
        r = R.run(level, style, "distilled", B.k, "timed")
        verdicts.append(analysis.speculation_faster(level, LABELS[style], B.k, r.speedup, r.speedup_low, r.speedup_high, r.unstable))

# %% [markdown]
# And the CoD pair at its best K. Choosing the best K of `bench.ks` and reporting it on the same
# requests would flatter it, so the K is chosen on the even-numbered timed requests and its speedup
# reported on the odd-numbered ones (`analysis.best_k_verdict`).

# %%
for level in LEVELS:
    verdicts.append(analysis.best_k_verdict(R, level, B.ks, P.seed))

# %% [markdown]
# Question 2b: does speculation leave the answers as they were? Every answer with the draft against
# the target's own, token for token, and the accuracies paired by problem.

# %%
verdicts += analysis.unchanged_verdicts(R, B.k)

# %% [markdown]
# Question 3: CoD against CoT on the same problems: tokens (3a, Wilcoxon signed-rank), acceptance
# of their distilled drafts (3b, paired bootstrap), accuracy (3c, non-inferiority at the margin
# fixed in `specbook.analysis`, judged only where both targets learnt the level).
#
# **Amended rule.** The second condition of "learnt" (the interval above the margin) was added after
# the book's first tiny run had been read, not before it: that run had called barely-learnt targets
# "as accurate" within a margin larger than their accuracies. Every 3c verdict depends on it (the
# site's notes page has the story).

# %%
verdicts += analysis.cod_verdicts(R, B.k, learnt)

# %% [markdown]
# The answers, one row per question (and target), one column per level. Where a p-value decides a
# verdict, it is Holm-corrected within its question first (`analysis.with_holm`, explained below):

# %%
verdicts = analysis.with_holm(pd.DataFrame(verdicts))
verdicts.to_csv(A.analysis / "verdicts.csv", index=False)
display(analysis.answers_table(verdicts))
print(f"95 % throughout; margin for 'as accurate': {analysis.AS_ACCURATE_MARGIN:.0%} ·", SOURCE)

# %% [markdown]
# Each of those verdicts comes from one training run: one pair of base models, one fine-tune per
# target, one draft per target. `make seeds` runs the pipeline again under other seeds (the same
# problems and test set, everything trained anew; `specbook.seeds`), and every verdict that does
# not rest on timings is then read under each seed. The seed runs found for this profile:

# %%
by_seed, seed_runs = seeds.verdicts_by_seed(profile, B.k)
seed_table = analysis.across_seeds(by_seed) if len(by_seed) > 1 else None
print(f"seeds read: {', '.join(map(str, by_seed))} (seed {P.seed}: this run)", *seed_runs, sep="\n  ")

# %% [markdown]
# In three sentences, counted from those verdicts (the speedups and token ratios are the tables'
# below):

# %%
speedups = [R.run(lv, st, "distilled", B.k, "timed").speedup for lv in LEVELS for st in STYLES]
token_ratios = [R.run(lv, "cod").tokens_per_request / R.run(lv, "cot").tokens_per_request for lv in LEVELS]
display(Markdown(findings.answers(verdicts, speedups, token_ratios, B.k, seed_table)))

# %% [markdown]
# ### Before trusting them
#
# Each caveat below is measured on this run, where it can be: how many base answers stop at the
# token cap, the reference run's base answers beside its own cap, and how few requests the timings
# rest on.

# %%
base_at_cap = {lv: (R.requests(lv, "base").finish_reason == "length").mean() for lv in LEVELS}
reference_base = {lv: analysis.reference_row(reference, lv, "base").tokens_per_answer for lv in LEVELS}
said = findings.caveats(
    base_at_cap=base_at_cap,
    cap=B.max_new_tokens,
    reference_base_tokens=reference_base,
    reference_longest=reference.tokens_per_answer.max(),
    timing_rows=B.timing_rows,
    rounds=B.rounds,
    seeds=list(by_seed),
)
display(Markdown(said))

# %% [markdown]
# ### Across seeds
#
# Each verdict's effect under every seed (a difference in the test's own direction, or a speedup
# minus 1: 0 is no effect), its spread, and whether its verdict and its direction are the same in
# every seed. A decided verdict that flips between seeds belongs to a training run, not to CoD; an
# effect near zero may flip by chance (with three seeds, one time in four):

# %%
if seed_table is None:
    print(f"one seed ({P.seed}): every verdict above rests on one training run; `make seeds PROFILE={profile}` adds others")
else:
    seed_table.to_csv(A.analysis / "seeds.csv", index=False)
    display(seed_table.round(3))
    print("same direction: None where the main run's effect is 0, which has no direction (the count is in the answers above) ·", SOURCE)

# %% [markdown]
# Where the spread of CoD's differences from CoT comes from: from training runs (their standard
# deviation across seeds, on the same problems) or from the problems (the standard error of the
# paired bootstrap within a seed: what another draw of test problems would move). With few seeds
# the first is itself uncertain (3 seeds: 2 degrees of freedom).

# %%
if seed_table is not None:
    display(analysis.variance_split(by_seed).round(3))

# %% [markdown]
# ### Many tests at once
#
# The chapter gives one verdict per question, level and target, each at 95 %: by chance alone,
# some of so many could come out significant. Where a p-value decides a verdict (questions 1 and
# 3a), it is adjusted by Holm's method within its question, across levels and targets, which keeps
# the chance of any false rejection in the question below 5 %; a verdict whose adjusted p is 0.05
# or more says "not shown after Holm's correction". The other verdicts come from 95 % intervals,
# one per verdict, not adjusted: read them one at a time.

# %%
holm_changes = verdicts[verdicts.verdict == "not shown after Holm's correction"]
with pd.option_context("display.max_colwidth", 120):
    display(verdicts.round(4))
print(f"{len(verdicts)} verdicts, {int(verdicts.p.notna().sum())} with a p-value; {len(holm_changes)} not shown after Holm's correction")
for r in holm_changes.itertuples():
    print(f"  not shown after Holm: {r.question} ({r.level})")

# %% [markdown]
# The margin for "as accurate", `analysis.AS_ACCURATE_MARGIN`, is the largest loss a user would
# trade for CoD's shorter answers. It must also be wider than what a level's test set can resolve,
# or "as accurate" could never be shown; much wider, and a visibly worse target would pass. What a
# level resolves is the half-width of the paired interval that decides 3c:

# %%
for lv in LEVELS:
    interval = analysis.equivalent_accuracy(*R.paired(R.requests(lv, "cot"), R.requests(lv, "cod"), "correct"))
    print(f"{lv}: CoD's accuracy minus CoT's, 95 % paired interval ±{100 * (interval['high'] - interval['low']) / 2:.1f} points")
print(f"margin: {100 * analysis.AS_ACCURATE_MARGIN:.0f} points")

# %% [markdown]
# ## The reference run's tables, at this scale
#
# Accuracy with its 95 % Wilson interval on the whole test set (the reference run's intervals from
# its own counts), for the five configurations of the reference run: the base target, each tuned
# target alone and with its distilled draft at K = `bench.k` (`analysis.accuracy_table`).

# %%
accuracy_table = analysis.accuracy_table(R, reference, B.k)
accuracy_table.to_csv(A.analysis / "accuracy.csv", index=False)
display(accuracy_table.round(3))
print(f"greedy, whole test set; reference: Qwen3-14B (+ Qwen3-0.6B), K = {REFERENCE_K}, vLLM ·", SOURCE)

# %% [markdown]
# Side by side: this book's accuracies and the reference run's, each with its interval. The shape
# is what compares (which configuration beats which), not the size: another scale, another data set.

# %%
fig = figures.accuracy_beside_reference(accuracy_table, profile)
figures.save(fig, profile, "05_accuracy")
plt.show()

# %% [markdown]
# Speed: each tuned target with its distilled draft at K = `bench.k`, timed request by request
# against the target alone (median per-request latency ratio, bootstrap 95 % interval; the spread of
# the rounds' own speedups beside it; unstable above `results.UNSTABLE_SPREAD`). The reference
# run's speedup is another estimator, its ratio of tokens per second over a whole batch: the two
# agree when every request speeds up alike.

# %%
speed_table = analysis.speed_table(R, reference, B.k)
speed_table.to_csv(A.analysis / "speed.csv", index=False)
display(speed_table.round(3))
print(
    f"greedy, batch 1, K = {B.k}, {B.timing_rows} timed questions per level in {B.rounds} rounds (unstable: spread above {results.UNSTABLE_SPREAD})"
)
print("acceptance on the whole test set ·", SOURCE)

# %% [markdown]
# Tokens: mean tokens per answer on the whole test set. The base target answers in the CoT format it
# was asked for.

# %%
tokens_table = analysis.tokens_table(R, reference)
tokens_table.to_csv(A.analysis / "tokens.csv", index=False)
display(tokens_table.round(3))
print("mean tokens per answer, greedy, whole test set ·", SOURCE)

# %% [markdown]
# ### Time to a correct answer
#
# What a user wants is right answers. Seconds of generation per correct answer = the mean latency
# of the timed requests over the accuracy on the whole test set, for each tuned target alone and
# with its draft (greedy: asking again gives the same answer, so this is a cost per correct answer
# over the test set, not a wait). A point estimate from two measurements, not a test.

# %%
time_table = analysis.time_table(R, B.k)
time_table.to_csv(A.analysis / "time_to_correct.csv", index=False)
display(time_table.round(3))
print(findings.time_to_correct(time_table, LEVELS, LABELS))

# %% [markdown]
# ## What the numbers look like
#
# Left, a box per target and level: its middle line is the median answer on the whole test set,
# the box holds half of them. Right, one line per tuned target and level: how often the i-th draft
# token of a step was kept (distilled drafts, K = `bench.k`, whole test set). A draft token is
# tested only when all before it were kept, so the curves can only fall.

# %%
per_position = {(lv, st): R.run(lv, st, "distilled", B.k).per_position for lv in LEVELS for st in STYLES}
fig = figures.lengths_and_positions(analysis.answer_lengths(R), per_position, B.k)
figures.save(fig, profile, "05_lengths_and_positions")
plt.show()

# %% [markdown]
# Left: speedup against K for the CoD target and its distilled draft (timed requests; a hollow
# marker is an unstable run), the model's prediction E(α, K) / (K·c + v(K)) from chapter 04's step
# costs dashed beside it. Where the measured points leave the prediction, the decoder loses time the
# model does not count (chapter 04's "where the efficiency goes" splits it). Right: the latency of
# every timed request alone and with the distilled draft at K = `bench.k`.

# %%
sweep = R.runs[(R.runs.request_set == "timed") & (R.runs.target == "cod") & (R.runs.draft == "distilled")]
fig = figures.speedup_and_latency(sweep, analysis.latencies(R, B.k), B.k)
figures.save(fig, profile, "05_speedup_and_latency")
plt.show()

# %% [markdown]
# The drafts compared on the same timed requests at K = `bench.k`: untrained (the base draft),
# trained on the teacher's rationales, distilled from the target's own answers, distilled white box
# (the target's next-token distributions), and prompt lookup (no draft model), on the levels where
# chapter 03 trained every draft (`distill.control_levels`), so that each bar averages the same levels.

# %%
every_draft = [level for level in LEVELS if distillation.methods(P.distill, level) == distillation.METHODS]
runs = R.runs
at_k = runs[(runs.request_set == "timed") & (runs.k == B.k) & (runs.draft != "alone") & runs.level.isin(every_draft)]
columns = ["level", "target", "draft", "speedup", "speedup_low", "speedup_high", "unstable", "acceptance_rate"]
drafts_table = at_k[columns].assign(target=lambda t: t.target.map(LABELS), draft=lambda t: t.draft.map(analysis.DRAFT_LABELS))
display(drafts_table.round(3))

# %% [markdown]
# The same, drawn: a bar per draft and target, averaged over those levels.

# %%
fig = figures.drafts_compared(drafts_table, B.k, every_draft)
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
# the answers (`analysis.misses`).

# %%
missed, rates = {}, []
for style in STYLES:
    missed[style], style_rates = analysis.misses(R, style, B.k, tokenizer, EOS)
    rates.append(style_rates.assign(target=LABELS[style]))
rates = pd.concat(rates, ignore_index=True)
rates.to_csv(A.analysis / "misses_by_class.csv", index=False)
display(rates.round(3))

# %% [markdown]
# The same misses drawn: by class, against how often each class occurs (left), and by where they
# fall in the answer (right: position / answer length).

# %%
fig = figures.misses_drawn(rates, missed)
figures.save(fig, profile, "05_misses")
plt.show()

# %% [markdown]
# The draft's most frequent mistakes, as pairs of its token and the target's:

# %%
most_missed = pd.concat([analysis.most_missed(missed[style]).assign(target=LABELS[style]) for style in STYLES], ignore_index=True)
display(most_missed)
print("draft token → target token at a rejection, whole test set, all levels ·", SOURCE)

# %% [markdown]
# ## Summary and takeaways

# %%
minutes = (time.perf_counter() - chapter_start) / 60
labels = {style: LABELS[style] for style in STYLES}
summary = findings.analysis(
    profile=profile,
    source=SOURCE,
    verdicts=verdicts,
    rates=rates,
    missed=missed,
    speed_table=speed_table,
    labels=labels,
    levels=LEVELS,
    minutes=minutes,
)
display(Markdown(summary))

# %% [markdown]
# The README's results section is generated from this chapter (`make readme-results`): the file
# below holds its answers and headline numbers as Markdown, stamped with the results' profile,
# config and commit.

# %%
report = findings.readme_results(
    profile=profile,
    source=SOURCE,
    verdicts=verdicts,
    accuracy_table=accuracy_table,
    speed_table=speed_table,
    tokens_table=tokens_table,
    reference=reference,
    k=B.k,
    reference_k=REFERENCE_K,
    seed_table=seed_table,
)
(A.analysis / "results.md").write_text(report + "\n")
(A.analysis / "summary.json").write_text(json.dumps({"profile": profile, "source": SOURCE, "findings": summary}, indent=1) + "\n")
print(f"written: {A.analysis / 'results.md'}")

# %% [markdown]
# ## Exercises
#
# 1. Holm's correction runs within each question here. Which verdicts would change if the family
#    were every verdict that carries a p-value?
# 2. Set `analysis.AS_ACCURATE_MARGIN` to 0.02. Which "as accurate" verdicts survive?
# 3. Read the base targets' answers: how many stop at the token cap? What does that say about
#    question 1 at this scale, and about the reference run's base accuracy?
#
# ## References
#
# - McNemar. *Note on the sampling error of the difference between correlated proportions.* Psychometrika 1947. [doi:10.1007/BF02295996](https://doi.org/10.1007/BF02295996)
# - Wilcoxon. *Individual Comparisons by Ranking Methods.* Biometrics Bulletin 1945. [doi:10.2307/3001968](https://doi.org/10.2307/3001968)
# - Efron, Tibshirani. *An Introduction to the Bootstrap.* 1993. [doi:10.1201/9780429246593](https://doi.org/10.1201/9780429246593)
# - Holm. *A Simple Sequentially Rejective Multiple Test Procedure.* Scand. J. Statistics 1979. [jstor:4615733](https://www.jstor.org/stable/4615733)
# - Xu et al. *Chain of Draft: Thinking Faster by Writing Less.* 2025. [arXiv:2502.18600](https://arxiv.org/abs/2502.18600)
