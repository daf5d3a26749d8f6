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
#   machine's drift hits all alike (`specbook.bench.timed_requests`); the median over requests with a
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

import shutil
import time

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

from specbook import analysis, benchmarking, figures, findings, lossless, pretraining, profiles, results, runlock, specdec
from specbook.paths import artifacts
from specbook.profiles import LEVELS
from specbook.runinfo import seed_everything, stamp
from specbook.styles import LABELS, STYLES

P = profiles.load(profile)
seed_everything(P.seed)
A = artifacts(profile)
runlock.hold(profile)  # one run of a profile at a time: a second stops here, naming this one
B = P.bench
chapter_start = time.perf_counter()
print(stamp(profile), "· engine:", P.engine.kind, "(compiled)" if P.engine.compile else "")

# %% [markdown]
# ## The models
#
# The base target and the six tuned targets of chapter 02; for each tuned target the drafts of
# chapter 03 and the base draft (pretrained, not tuned). `benchmarking.Models` finds them on disk
# and loads them as the profile's engine needs them: each tuned target is its base with chapter
# 02's adapter, merged for the in-process engines (vLLM serves the adapter itself).

# %%
models = benchmarking.Models(P, A)
tests = benchmarking.test_sets(A)
timing_rows = {level: tests[level][: B.timing_rows] for level in LEVELS}
print("targets: base +", ", ".join(f"{LABELS[s]} × {len(LEVELS)} levels" for s in STYLES))
print("drafts per target:", "; ".join(f"{level}: {', '.join(d)}" for level, d in models.drafts.items()))

# %% [markdown]
# Every measurement below is kept on disk with what it was made from (`Models.cached`): a re-run
# reuses it until the settings, the models' weights, this machine or the code change. This run
# writes every results file again, from those caches, so that none is left from older code.

# %%
shutil.rmtree(A.results, ignore_errors=True)

# %% [markdown]
# ## Accuracy: every target alone on the whole test set
#
# Greedy, `bench.max_new_tokens` at most, in batches of `engine.batch_size` on the in-process
# engine run eagerly (compiling pays for one request at a time, not for batches). The base target
# is asked with the CoT prompt, as in chapter 02. Truncated answers (cut at the cap) count as
# wrong and are shown. Whether a batch changes a greedy answer is checked further down, against
# the same questions answered one at a time.

# %%
accuracy = benchmarking.every_target_alone(models, tests)

# %% [markdown]
# Accuracy of every target alone, with its 95 % interval and the answers cut at the token cap:

# %%
display(benchmarking.accuracy_table(accuracy).round(3))
print(f"greedy, whole test set, at most {B.max_new_tokens} new tokens ·", stamp(profile))

# %% [markdown]
# ## Step costs, measured in this run
#
# The speedup model's inputs, from the models as the engine runs them (compiled where the profile
# compiles): c = the draft's decoding step / the target's, and v(K) = the target's verify pass of
# K + 1 tokens / its 1-token step, at a context of a typical prompt plus half an answer (medians of
# `theory.timing_repeats` passes, target and draft taking turns over five rounds). Costs depend on
# the architecture, not the weights: one pair, the first level's CoD target and its distilled
# draft, stands for all. vLLM runs its own kernels and schedules: there its measured speedups
# stand without the in-process cost model.

# %%
first = LEVELS[0]
costs = benchmarking.step_costs(models, timing_rows[first], accuracy[first, "cod"]["runs"].mean_tokens, level=first, style="cod")
if costs is not None:
    v = pd.DataFrame({"verify K+1 tokens (ms)": costs.verify_ms, "v(K) = verify / step": costs.v})
    display(v.T.rename(columns=lambda k: f"K={k}").round(3))
    print(f"target step {costs.target_ms:.2f} ms, draft step {costs.draft_ms:.2f} ms: c = {costs.c:.3f} ·", stamp(profile))

# %% [markdown]
# ## Speculative decoding, request by request
#
# For each level and tuned target, on its timed questions: the target alone, then with each draft at
# K = `bench.k`, with prompt lookup (n ≤ `bench.ngram_max`), and for the CoD target with its
# distilled draft at every K of `bench.ks`, all greedy (`Models.configs`).
#
# Every request is timed in `bench.rounds` rounds, the configurations taking turns within each
# round (`specbook.bench.timed_requests`), so that the machine's drift hits all alike. A
# request's record is its median round's (the faster of the middle two when the rounds are even:
# a round that ran, whose time to first token and pass times go with its latency), and each
# round's own speedup is kept: a run whose rounds disagree by more than `results.UNSTABLE_SPREAD`
# of their median is marked unstable.
#
# Each run is graded, compared token by token with the target alone, set beside the model's
# prediction (`results.timed_metrics`) and written to `data/<profile>/results/`. The timed
# questions are the first `bench.timing_rows` of each level (three rounds of every configuration
# must fit the chapter's time budget), so a speedup's interval is wide; accuracy always uses the
# whole test set.

# %%
for level in LEVELS:
    for style in STYLES:
        configs = models.configs(style, level)
        used = [models.target(style, level), *(s.draft for s in configs.values() if s is not None and s.draft is not None)]
        settings = {"rows": [r["id"] for r in timing_rows[level]], "style": style, "max_new_tokens": B.max_new_tokens, "rounds": B.rounds}
        settings["configs"] = {f"{draft} K={k}": str(s) for (draft, k), s in configs.items()}
        measure = lambda style=style, level=level: benchmarking.timed(models, style, level, timing_rows[level])  # noqa: E731
        made = models.cached(f"timed_{level}_{style}", measure, settings, used)
        benchmarking.write_timed(A, level, style, made, configs, costs, P.seed, P.engine.kind)

# %% [markdown]
# Every timed run, beside its prediction and its losslessness check. Speedup = the median
# per-request latency ratio with its bootstrap 95 % interval; spread = (max − min) / median of the
# rounds' speedups.

# %%
R = results.Results(A.results)
runs = R.runs
timed_table = runs[runs.request_set == "timed"].assign(target=lambda t: t.target.map(LABELS))
by = timed_table.set_index(["level", "target", "draft", "k"])
display(timed_table[list(results.TIMED_COLUMNS)].rename(columns=results.TIMED_COLUMNS).round(3))
print(
    f"greedy, batch 1, {B.timing_rows} timed questions per level, {B.rounds} rounds each; unstable: spread above {results.UNSTABLE_SPREAD}"
)
print(results.provenance_line(timed_table))

# %% [markdown]
# ## The reference run's speculative configurations on the whole test set
#
# The reference run measured each tuned target with its distilled draft (K = `bench.k`) on every
# test problem, and so does this chapter: greedy, one request at a time (the native decoder
# speculates one request at a time), graded like the targets alone.
#
# Each answer is compared token for token with the target's own answer from the accuracy run
# above, which was made in batches. Where the two differ, the target answers that question again
# alone, one request at a time (`benchmarking.whole_test_set`): that tells a batching difference
# (the target's own greedy answer moved with its batch) from a speculative one (a bug).

# %%
whole = benchmarking.every_target_with_its_draft(models, tests, accuracy)

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
hardest = whole[LEVELS[-1], "cod"]["speculative"].generations
example = next((g for g in hardest if g.rejections), hardest[0])
example_steps = specdec.steps(example.token_ids, example.step_accepts, example.rejections)
print(tests[LEVELS[-1]][hardest.index(example)]["question"])
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
# tokens are nearly tied the two outputs may part (`lossless`).
#
# Every output that differs is classified at its first differing token, from the target's own
# logits there: a **near-tie** when both tokens' logits lie within `lossless.TIE_ULPS` units in the
# last place of the top logit (a rounding difference), else a **mismatch**: a bug in the decoder,
# which stops this chapter with the requests listed.

# %%
speculative_runs = runs[(runs.k > 0) & (runs.temperature == 0)]
parted = speculative_runs[speculative_runs.identical_to_plain < 1.0]
if len(parted):
    display(parted[["run", "requests", "identical_to_plain", "near_tie", "mismatch", "near_tie_ids", "mismatch_ids"]])
mismatched = speculative_runs[speculative_runs.mismatch > 0]
if len(mismatched):
    listed = "; ".join(f"{r.run}: {', '.join(map(str, r.mismatch_ids))}" for r in mismatched.itertuples())
    raise AssertionError(
        f"{len(mismatched)} greedy speculative runs wrote other tokens than the target alone where no near-tie explains it (a decoder bug): {listed}"
    )

# %% [markdown]
# Batching can change a greedy answer too (another summation order in the batched pass), and the
# accuracy runs rest on batches. The timed questions, answered one at a time by each target alone,
# are compared with the same questions' batched answers:

# %%
batching = benchmarking.batching_table(A, by, accuracy, whole)
display(batching)
requests_by_kind = benchmarking.requests_by_kind(speculative_runs)
print(
    f"{int(speculative_runs.requests.sum())} greedy speculative requests in {len(speculative_runs)} runs:",
    ", ".join(f"{n} {kind}" for kind, n in requests_by_kind.items()),
    f"(near-tie: within {lossless.TIE_ULPS} ulps of the top logit) ·",
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
# model's pass costs more in the loop than alone, a likely cause is that the other model's pass has
# just displaced its weights and activations from the CPU's caches. `make bench` measures it on your
# machine: a draft pass back to back, first after the target's verify pass, and after a short pause.

# %%
ledger = None
if costs is not None:
    ledger = pd.DataFrame(
        {
            "level": level,
            "target": LABELS[style],
            **results.step_ledger(by.loc[(level, LABELS[style], "distilled", B.k)], by.loc[(level, LABELS[style], "alone", 0)], costs, B.k),
        }
        for level in LEVELS
        for style in STYLES
    )
    display(ledger.round(3))
    print(f"distilled drafts, K = {B.k}; measured steps: seconds per target pass after the first ·", stamp(profile))

# %% [markdown]
# ## The reference run's five configurations
#
# Accuracy and tokens from the whole test set (each speculative configuration measured there too,
# above), acceptance and speedup from the timed questions, K = `bench.k`: the table chapter 05 sets
# beside the reference run's.

# %%
display(benchmarking.reference_table(accuracy, whole, by, B.k).round(3))
print(f"K = {B.k} ·", stamp(profile))

# %% [markdown]
# ## Which draft: tuned, not tuned, or none at all
#
# Each tuned target with every draft at K = `bench.k` and with prompt lookup: the speedup with its
# interval, and the acceptance that explains it. A hatched bar is an unstable run (its rounds
# disagree). The control drafts (teacher data and white box, chapter 03) exist only on
# `distill.control_levels`: no bar elsewhere.

# %%
at_k = timed_table[(timed_table.k == B.k) & (timed_table.draft != "alone")]
fig = figures.speedup_by_draft(at_k, B.k)
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
fig = figures.k_sweep(sweep, B.k)
figures.save(fig, profile, "04_k_sweep")
plt.show()

# %% [markdown]
# The best K is chosen and measured on the same requests here, so its speedup is optimistic;
# chapter 05 chooses it on half of the requests and reports it on the other half. A best K at the
# largest K swept is compared with the K before it on the same requests: faster beyond noise, the
# best may lie beyond the sweep; not, and the curve has flattened, where which K is best is chance.

# %%
best_k = {level: int(sweep[sweep.level == level].set_index("k").speedup.idxmax()) for level in LEVELS}
at_edge = {level: analysis.sweep_edge(R, level, B.ks, P.seed) for level, k in best_k.items() if k == max(B.ks)}
print("best K by measured speedup:", ", ".join(f"{level} {k}" for level, k in best_k.items()), "·", stamp(profile))
for level, edge in at_edge.items():
    said = "still rising: the best may lie beyond" if edge["rising"] else "not shown faster: the sweep has reached a plateau"
    print(
        f"{level}: the largest K swept; K = {edge['last']} against K = {edge['before']} on the same requests: "
        f"{edge['ratio']:.2f}x [{edge['low']:.2f}-{edge['high']:.2f}], {said}"
    )

# %% [markdown]
# ## Sampling at temperature `bench.sampled_temperature`: does accuracy stay?
#
# The CoD target alone and with its distilled draft answer the first `bench.sampled_rows` test
# questions of each level by sampling (the target alone in batches, the speculative decoder one
# request at a time: other random numbers, so the answers differ one by one but follow the same
# distribution if the decoder is lossless).
#
# A test that fails to find a difference would not show that there is none, so the check is an
# *equivalence* test, paired by problem: the 95 % interval of the accuracy difference must lie
# inside ±`analysis.AS_ACCURATE_MARGIN` (two one-sided tests at 2.5 % each,
# `analysis.equivalent_accuracy`). Beside them, the acceptance rate sampled and greedy.

# %%
sampled = []
for level in LEVELS:
    rows = tests[level][: B.sampled_rows]
    settings = {"rows": [r["id"] for r in rows], "temperature": B.sampled_temperature, "k": B.k, "max_new_tokens": B.max_new_tokens}
    sample = lambda level=level, rows=rows: benchmarking.sampled(models, level, rows)  # noqa: E731
    made = models.cached(f"sampled_{level}", sample, settings, [models.target("cod", level), models.draft("distilled", "cod", level)])
    benchmarking.write_sampled(A, level, made, B.k, B.sampled_temperature, P.engine.kind)
    sampled.append(benchmarking.sampled_row(level, made["runs"], by.loc[(level, "CoD", "distilled", B.k), "acceptance_rate"]))
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
    load = benchmarking.throughput_sweep(models, first, timing_rows[first])
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
    ledger=ledger,
    sampled=sampled,
    minutes=(time.perf_counter() - chapter_start) / 60,
)
display(Markdown(summary))

# %% [markdown]
# ## Exercises
#
# 1. Time the CoD pair at K = 1 and K = 8. Where does the measured speedup leave the prediction,
#    and which of c, v(K) and α explains it?
# 2. Compile the target (`engine.compile`). Which gets faster, the target alone or speculation?
# 3. Take the coloured answer above: which kinds of token does the draft miss? Check your guess
#    against chapter 05's rejection analysis.
#
# ## References
#
# - Leviathan, Kalman, Matias. *Fast Inference from Transformers via Speculative Decoding.* ICML 2023. [arXiv:2211.17192](https://arxiv.org/abs/2211.17192)
# - Saxena. *Prompt Lookup Decoding.* 2023. [github.com/apoorvumang/prompt-lookup-decoding](https://github.com/apoorvumang/prompt-lookup-decoding)
# - Kwon et al. *Efficient Memory Management for Large Language Model Serving with PagedAttention* (vLLM). SOSP 2023. [arXiv:2309.06180](https://arxiv.org/abs/2309.06180)
# - Li et al. *EAGLE-3: Scaling up Inference Acceleration of Large Language Models via Training-Time Test.* 2025. [arXiv:2503.01840](https://arxiv.org/abs/2503.01840)
