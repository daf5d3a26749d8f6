"""The sentences that close a chapter, computed from the numbers they describe (a sentence never
says "matches" whatever the gap): each function takes a chapter's results and returns Markdown."""

from __future__ import annotations


def _model_fit(results, k_alpha: int) -> str:
    """How E(α̂, K) compares with the measured tokens per target pass, and in which direction."""
    gap = results["tokens/step"] - results["E(alpha_K1, K)"]  # measured minus predicted
    relative = (gap.abs() / results["tokens/step"]).max()
    if relative <= 0.05:
        return f"is within {gap.abs().max():.2f} tokens ({relative:.0%}) of the measured tokens per target pass for every K and draft"
    beyond = gap[results["K"] > k_alpha]
    if len(beyond) and (beyond > 0).all():
        side = f"above the prediction at every K > {k_alpha}"
    elif len(beyond) and (beyond < 0).all():
        side = f"below the prediction at every K > {k_alpha}"
    else:
        side = "on both sides of the prediction"
    alpha = results.groupby("K")["alpha (this K)"].mean()
    spread = alpha.max() - alpha.min()
    if spread <= 0.02:
        return (
            f"is off the measured tokens per target pass by up to {gap.abs().max():.2f} tokens ({relative:.0%}); the measurement "
            f"sits {side}, while α estimated at each K, averaged over the drafts, stays within {spread:.2f}"
        )
    trend = "rises" if alpha.is_monotonic_increasing else "falls" if alpha.is_monotonic_decreasing else "moves"
    return (
        f"is off the measured tokens per target pass by up to {gap.abs().max():.2f} tokens ({relative:.0%}); the measurement "
        f"sits {side}, and α estimated at each K, averaged over the drafts, {trend} with K ({alpha.iloc[0]:.2f} at K = {alpha.index[0]}, "
        f"{alpha.iloc[-1]:.2f} at K = {alpha.index[-1]}): acceptance here depends on K, which the independent-draw model does not allow"
    )


def theory(
    *,
    hw_name,
    step_ms,
    ridge,
    intensity,
    verify17,
    layers,
    pass5,
    pass17,
    lossless,
    reject,
    samples,
    results,
    k_alpha,
    c_here,
    c_bytes_here,
    c_gpu,
    stamp,
) -> str:
    """Chapter 00's summary. `lossless`: chi-square p-values, one row per decoder and K, with a
    'residual' column ('correct' or the wrong one's name); `results`: `bench.against_model`'s table."""
    correct = lossless[lossless.residual == "correct"]["p-value"].min()
    fit = (
        f"fit the target's exact joint distribution (lowest chi-square p = {correct:.3g}, {samples} samples each)"
        if correct >= reject
        else f"include a rejection (lowest chi-square p = {correct:.3g} < {reject}, {samples} samples each): draw more samples, "
        "and look for a bug if it stays"
    )
    wrong = lossless[lossless.residual != "correct"]
    wrong_text = "; ".join(f"{r.decoder} at K = {r.K}: p = {r['p-value']:.2g}" for _, r in wrong.iterrows())
    caught = (wrong["p-value"] < reject).all()
    best = results.loc[results["speedup"].idxmax()]
    pays = (
        f"the best of {len(results)} configurations, each timed once, so an optimistic estimate"
        if best["speedup"] > 1
        else "no configuration beats the target alone here: speculation pays only when α is high and c and v are low"
    )
    if c_here > 1.1 * c_bytes_here:
        overhead = ": the rest is per-call overhead, which a small model cannot hide"
    elif c_here < 0.9 * c_bytes_here:
        overhead = ": less than its share of the bytes: at this size a step's time does not follow the bytes it reads"
    else:
        overhead = ": about what its weights predict, so per-call overhead is small at this size"
    verify = (
        ": small models on a CPU are not purely memory-bound, so verification is not free here"
        if pass5 > 1.1
        else ": verification costs about one step here too"
    )
    return f"""
- **Memory-bound.** A Qwen3-14B decoding step does {intensity:.1f} FLOP per byte against the {hw_name}'s ridge point of
  {ridge:.0f}: its roofline time is {step_ms:.1f} ms per token, and a 17-token verify pass costs {verify17:.2f}x a step.
  On this CPU the {layers}-layer target's 5-token pass costs {pass5:.2f}x and its 17-token pass {pass17:.2f}x a step{verify}.
- **Lossless.** Whole sequences sampled by the decoders with the correct residual {fit};
  with a wrong residual they {"are rejected at every K" if caught else "are not rejected at every K at this sample size"} ({wrong_text}).
- **Model vs measurement.** With α estimated at K = {k_alpha}, E(α̂, K) {_model_fit(results, k_alpha)}.
- **Step costs.** The cut draft costs c = {c_here:.2f} of a target step here, against its share of the bytes read,
  {c_bytes_here:.2f}{overhead}. By bytes alone Qwen3-0.6B / Qwen3-14B gives c = {c_gpu:.3f}.
- **Speed here.** The best configuration, {best["draft"]} at K = {best["K"]}, runs at {best["speedup"]:.2f}x the target alone
  in tokens per second (predicted {best["predicted speedup"]:.2f}x): {pays}. Chapters 02–04 train and measure real pairs.

*{stamp}*
"""


def _share(rows, accepted) -> tuple[int, int, list[str]]:
    """How many verdict rows say what `accepted(verdict)` accepts, of how many, and the others as 'level target: verdict'."""
    ok = rows.verdict.map(accepted)
    others = [f"{r.level}{' ' + r.question.rsplit(', ', 1)[-1] if ', ' in r.question else ''}: {r.verdict}" for r in rows[~ok].itertuples()]
    return int(ok.sum()), len(rows), others


def answers(verdicts, speedups, token_ratios, k: int, seed_table=None) -> str:
    """The book's three answers in three sentences, counted from chapter 05's verdicts, and with seed
    runs (`analysis.across_seeds`) a fourth: which of the verdicts keep their direction in every seed."""

    from specbook.analysis import primary

    def rows(prefix):
        return primary(verdicts)[lambda v: v.question.str.startswith(prefix)]

    def but(others):
        return f" (the others: {'; '.join(others)})" if others else ""

    tuned = _share(rows("1."), lambda v: v == "raises accuracy")
    faster = _share(rows("2a."), lambda v: v == "faster")
    same = _share(rows("2b."), lambda v: v == "changes nothing (every answer identical)")
    shorter = _share(rows("3a."), lambda v: v == "shorter")
    accepted = _share(rows("3b."), lambda v: v == "better accepted")
    accurate = _share(rows("3c."), lambda v: v.startswith(("as accurate", "more accurate")))
    speedups, ratio = list(speedups), list(token_ratios)
    return (
        f"1. **Fine-tuning raises accuracy** in {tuned[0]} of {tuned[1]} comparisons (level × CoT/CoD){but(tuned[2])}.\n"
        f"2. **Speculation (K = {k}) is faster** in {faster[0]} of {faster[1]} (speedups {min(speedups):.2f}–"
        f"{max(speedups):.2f}x){but(faster[2])}, and **changes no answer** in {same[0]} of {same[1]}{but(same[2])}.\n"
        f"3. **CoD answers are shorter** on {shorter[0]} of {shorter[1]} levels (CoD / CoT tokens {min(ratio):.2f}–{max(ratio):.2f}); "
        f"CoD drafts are **better accepted** on {accepted[0]} of {accepted[1]}{but(accepted[2])}; CoD is **as accurate** as CoT "
        f"on {accurate[0]} of {accurate[1]}{but(accurate[2])}.\n" + across_seeds(seed_table)
    )


def across_seeds(seed_table) -> str:
    """Which verdicts keep their direction in every seed (`analysis.across_seeds`), or that they rest on one."""
    if seed_table is None:
        return "\nEach answer rests on one training run (one seed): `make seeds` repeats the pipeline under others.\n"
    seeds = [c.removeprefix("seed ") for c in seed_table.columns if c.startswith("seed ")]
    directed = seed_table[seed_table["same direction"].notna()]
    held = directed["same direction"].astype(bool)
    flipped = "; ".join(f"{r.question} ({r.level})" for r in directed[~held].itertuples()) or "none"
    same = seed_table["same verdict"]
    return (
        f"\n**Across {len(seeds)} seeds** ({', '.join(seeds)}; everything trained anew, the same problems): of the verdicts that "
        f"rest on the whole test set, {int(same.sum())} of {len(same)} are the same in every seed, and {int(held.sum())} of "
        f"{len(held)} with a direction keep it in every seed; those whose direction changes: {flipped}.\n"
    )


def caveats(
    *, base_at_cap: dict, cap: int, reference_base_tokens: dict, reference_longest: float, timing_rows: int, rounds: int, seeds: list
) -> str:
    """What a reader must know before trusting the answers, with this run's numbers."""
    at_cap = ", ".join(f"{level} {share:.0%}" for level, share in base_at_cap.items())
    theirs = ", ".join(f"{level} {tokens:.0f}" for level, tokens in reference_base_tokens.items())
    mostly = min(base_at_cap.values()) >= 0.5
    one_seed = (
        "**One seed.** One pair of base models, one fine-tune per target, one draft per target: a verdict here is a property "
        "of this training run until it holds across seeds (`make seeds`)."
    )
    across = (
        f"**{len(seeds)} seeds, one timing.** Accuracy, tokens and acceptance are read under seeds {', '.join(map(str, seeds))} "
        "(below); the timings, and the verdicts on speed, come from the main run's seed alone."
    )
    format_first = "**Question 1 measures the answer format here.**" if mostly else "**Question 1 and the answer format.**"
    return f"""
- {format_first} The base target's answers that stop at the {cap}-token cap: {at_cap}. A truncated answer scores only
  if it stated its answer before the cap. The reference run's base answers average {theirs} tokens, against {reference_longest:.0f}
  for the longest answers in that run (its cap): its base accuracy is measured on answers cut short too.
- **CoD's brevity is partly built in.** Chapter 01 keeps a training row only when its CoD is shorter than its CoT, so the
  targets learn from shorter CoD by construction; question 3a asks how much shorter, not whether.
- **Timings rest on {timing_rows} requests per level**, each timed in {rounds} rounds; the best K is chosen on half of them
  and measured on the other half. Accuracy uses the whole test set.
- **Two speedup estimators.** This book's speedup is the median per-request latency ratio at batch 1; the reference's is
  a ratio of tokens per second over its whole run, with requests decoded in batches. They differ in what they average
  and in the batch size, where verification is no longer free.
- {one_seed if len(seeds) == 1 else across}
"""


def reference_summary(reference, k: int) -> str:
    """The published reference run in one sentence, every number read from data/reference_run.csv."""

    def row(level, target, speculative):
        return reference[(reference.level == level) & (reference.target == target) & (reference.speculative == speculative)].iloc[0]

    levels = list(dict.fromkeys(reference.level))
    accuracy = "; ".join(
        f"{lv} {100 * row(lv, 'base', 0).accuracy:.1f} → {100 * row(lv, 'cot', 0).accuracy:.1f} → {100 * row(lv, 'cod', 0).accuracy:.1f} %"
        for lv in levels
    )
    speedups = [row(lv, t, 1).tokens_per_s / row(lv, t, 0).tokens_per_s for lv in levels for t in ("cot", "cod")]
    acceptance = [row(lv, t, 1).acceptance_rate for lv in levels for t in ("cot", "cod")]
    ratios = {lv: row(lv, "cod", 0).tokens_per_answer / row(lv, "cot", 0).tokens_per_answer for lv in levels}
    shorter = ", ".join(f"{lv} {100 * abs(1 - r):.0f} % {'shorter' if r < 1 else 'longer'}" for lv, r in ratios.items())
    return (
        f"The published reference run (Qwen3-14B target, Qwen3-0.6B draft, K = {k}, vLLM) reports accuracy base → CoT → CoD of "
        f"{accuracy}; speedups of {min(speedups):.2f}-{max(speedups):.2f}x (tokens per second) at acceptance rates of "
        f"{min(acceptance):.2f}-{max(acceptance):.2f}; and CoD answers against CoT: {shorter}."
    )


def benchmarking(
    *,
    profile,
    P,
    by,
    best_k,
    at_edge,
    accuracy,
    whole,
    speculative_runs,
    requests_by_kind,
    batching,
    timed_table,
    costs,
    ledger,
    sampled,
    minutes,
) -> str:
    """Chapter 04's summary: per level the CoD and CoT pairs' speedups (at K = bench.k and the CoD
    pair's best K) and accuracies; losslessness and batching; timing stability; efficiency and where
    a step's time goes; sampling. `accuracy`, `whole`: {(level, target): evaluation.Score}."""
    from specbook import results
    from specbook.profiles import LEVELS
    from specbook.runinfo import stamp

    cod_best = {level: by.loc[(level, "CoD", "distilled", best_k[level])] for level in LEVELS}
    timed_spec = timed_table[timed_table.k > 0]
    efficiency = timed_spec[["efficiency", "decode_efficiency"]].dropna()

    def interval(r):
        return f"{r['speedup']:.2f}x [{r['speedup_low']:.2f}-{r['speedup_high']:.2f}]" + (" (unstable)" if r["unstable"] else "")

    def edge_note(edge):  # `analysis.sweep_edge` of a level whose best K is the largest swept
        if edge is None:
            return ""
        return " (the largest swept, " + ("still rising)" if edge["rising"] else f"not shown faster than K = {edge['before']})")

    faster = [level for level in LEVELS if cod_best[level]["speedup_low"] > 1.0]
    lines = [
        f"Profile `{profile}`, engine {P.engine.kind}{' (compiled)' if P.engine.compile else ''}, greedy, {P.bench.timing_rows} timed questions per level, {P.bench.rounds} rounds ({stamp(profile)}):",
        *(
            f"- **{level}**: CoD target + distilled draft at K = {P.bench.k}: {interval(by.loc[(level, 'CoD', 'distilled', P.bench.k)])}, "
            f"at its best K = {best_k[level]}{edge_note(at_edge.get(level))}: {interval(cod_best[level])} (acceptance {cod_best[level]['acceptance_rate']:.2f}); "
            f"CoT target + distilled draft at K = {P.bench.k}: {interval(by.loc[(level, 'CoT', 'distilled', P.bench.k)])}. "
            f"Accuracy on {accuracy[level, 'cod'].n} questions: CoD {accuracy[level, 'cod'].accuracy:.2f} alone, "
            f"{whole[level, 'cod'].accuracy:.2f} speculative; CoT {accuracy[level, 'cot'].accuracy:.2f} alone, "
            f"{whole[level, 'cot'].accuracy:.2f} speculative; base {accuracy[level, 'base'].accuracy:.2f}."
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
            f"- Where a step's time goes (distilled drafts, K = {P.bench.k}, medians over the {len(ledger)} pairs): measured "
            f"{med['step, measured (ms)']:.2f} ms against {med['step, model (ms)']:.2f} ms modelled; the draft's passes "
            f"{med['draft passes, in the loop (ms)']:.2f} ms in the loop against {med['draft passes, model (ms)']:.2f} ms alone, the verify "
            f"pass {med['verify, in the loop (ms)']:.2f} against {med['verify, model (ms)']:.2f} ms, the decoder's own work "
            f"{own:.2f} ms."
        )
    lower = int((sampled["acceptance rate"] < sampled["acceptance rate, greedy"]).sum())
    lines += [
        f"- At temperature {P.bench.sampled_temperature}, speculative against alone, paired by problem: "
        + "; ".join(f"{r.level} Δ {r.difference:+.3f} [{r.low:+.3f}, {r.high:+.3f}], {r.verdict}" for r in sampled.itertuples())
        + f". Acceptance sampled is below acceptance greedy on {lower} of {len(sampled)} levels "
        f"({', '.join(f'{lv} {a:.2f} vs {g:.2f}' for lv, a, g in zip(sampled.level, sampled['acceptance rate'], sampled['acceptance rate, greedy'], strict=True))}).",
        f"- This run of the chapter took {minutes:.1f} minutes (measurements already made are reused, not repeated).",
    ]
    return "\n".join(lines)


def training(checks, costs, step_costs, costs_setting, P, profile) -> str:
    """Chapter 02's summary: per level the first accuracy check (base, CoT, CoD, whether the tuned
    targets beat the base beyond the intervals) and the answers' lengths; the step-cost ratio c."""
    from specbook.profiles import LEVELS
    from specbook.runinfo import stamp
    from specbook.styles import LABELS, STYLES

    by = checks.set_index(["level", "target"])

    def tuned_vs_base(level):
        """Which tuned targets beat the base with their 95 % intervals apart: a conservative, unpaired first look (chapter 05
        tests the same question paired, by McNemar's test, on the whole test set)."""
        base = by.loc[(level, "base")]
        verdicts = []
        for style in STYLES:
            tuned = by.loc[(level, style)]
            if tuned.ci_low > base.ci_high:
                verdicts.append(f"{LABELS[style]} beats the base")
            elif tuned.ci_high < base.ci_low:
                verdicts.append(f"{LABELS[style]} falls below the base")
            else:
                verdicts.append(f"{LABELS[style]} and the base overlap")
        cot, cod = by.loc[(level, "cot")], by.loc[(level, "cod")]
        if cod.ci_high < cot.ci_low:
            verdicts.append("CoD below CoT")
        elif cod.ci_low > cot.ci_high:
            verdicts.append("CoD above CoT")
        else:
            verdicts.append("CoT and CoD overlap")
        return ", ".join(verdicts) + f" at n = {int(base.n)}"

    def lengths(level):
        cot, cod = by.loc[(level, "cot")], by.loc[(level, "cod")]
        ratio = cod["mean tokens"] / cot["mean tokens"]
        text = (
            f"the CoD target writes {cod['mean tokens']:.0f} tokens per answer against {cot['mean tokens']:.0f} for CoT "
            f"({ratio:.2f}x, {'fewer' if ratio < 1 else 'not fewer'})"
        )
        if cot.truncated or cod.truncated:
            text += (
                f"; {int(cot.truncated)} CoT and {int(cod.truncated)} CoD answers of {int(cot.n)} stopped at the cap of "
                f"{P.sft.max_new_tokens} tokens, so these means understate how long they would write"
            )
        return text

    lines = [
        f"- **{level}**: base {by.loc[(level, 'base')].accuracy:.0%}, CoT {by.loc[(level, 'cot')].accuracy:.0%}, "
        f"CoD {by.loc[(level, 'cod')].accuracy:.0%} ({tuned_vs_base(level)}); {lengths(level)}."
        for level in LEVELS
    ]
    return "\n".join(
        [
            f"Profile `{profile}`, {P.sft.check_rows} test problems per level, greedy ({stamp(profile)}):",
            *lines,
            f"- Draft/target decoding step cost c = {costs.c:.3f} (1/{1 / costs.c:.1f}) on this machine, {costs_setting} "
            f"({costs.draft_ms:.2f} vs {costs.target_ms:.2f} ms; eager: c = {step_costs['eager'].c:.3f}).",
        ]
    )


def time_to_correct(table, levels, labels) -> str:
    """The CoD pair's seconds per correct answer against CoT alone and against the CoT pair, per
    level (`analysis.time_to_correct`'s rows with a level column); said so where either has no correct answer."""
    import math

    per = table.set_index(["level", "configuration"])["seconds per correct answer"]

    def ratio(level, a, b):
        x, y = per[level, a], per[level, b]
        return f"{level} {x / y:.2f}x" if math.isfinite(x) and math.isfinite(y) else f"{level}: no correct answer to time"

    cod_spec, cot, cot_spec = f"{labels['cod']} + spec", labels["cot"], f"{labels['cot']} + spec"
    return (
        f"Seconds per correct answer, {cod_spec} over {cot} alone: {', '.join(ratio(lv, cod_spec, cot) for lv in levels)}; "
        f"over {cot_spec}: {', '.join(ratio(lv, cod_spec, cot_spec) for lv in levels)}."
    )


def analysis(*, profile: str, source: str, verdicts, rates, missed: dict, speed_table, labels: dict, levels, minutes: float) -> str:
    """Chapter 05's summary: each level's verdicts question by question, what the drafts miss, the unstable timings."""
    from specbook.analysis import verdict_line

    lines = [f"Profile `{profile}`, {source}:"]
    for level in levels:
        said = {q: verdict_line(verdicts, q, level) for q in ("1.", "2a.", "2b.", "3a.", "3b.", "3c.")}
        lines.append(
            f"- **{level}**: tuning raises accuracy? {said['1.']}. Speculation faster? {said['2a.']}. Unchanged? {said['2b.']}. "
            f"CoD shorter? {said['3a.']}. Better accepted? {said['3b.']}. As accurate? {said['3c.']}."
        )
    for style, label in labels.items():
        part = rates[rates.target == label].sort_values("share of misses", ascending=False)
        shares = ", ".join(f"{r['class']} {r['share of misses']:.0%}" for _, r in part.iterrows())
        lines.append(f"- What the {label} drafts miss, by share of all misses: {shares} ({len(missed[style])} misses).")
    lines += [
        f"- Unstable timings among the speculative runs shown: {int(speed_table.unstable.sum())} of {len(speed_table)}.",
        f"- This run of the chapter took {minutes * 60:.0f} seconds (it reads results; it measures nothing).",
    ]
    return "\n".join(lines)


def readme_results(
    *, profile: str, source: str, verdicts, accuracy_table, speed_table, tokens_table, reference, k: int, reference_k: int, seed_table=None
) -> str:
    """The README's results section (`make readme-results`): the answers, the headline table and the reference run in brief."""
    from specbook.analysis import headline_table

    headline = headline_table(accuracy_table, speed_table, tokens_table)
    return "\n\n".join(
        [
            f"Profile `{profile}` · {source}.",
            answers(verdicts, speed_table.speedup, tokens_table["CoD / CoT"], k, seed_table),
            f"Accuracy (greedy, whole test set, 95 % Wilson interval); speedup at K = {k} (median per-request latency ratio, "
            "bootstrap 95 % interval) and acceptance rate of each tuned target with its distilled draft:\n\n"
            + headline.to_markdown(index=False),
            reference_summary(reference, reference_k),
            "Every table, verdict and caveat: chapter 05 (`notebooks/05_analysis.ipynb`, or the site: `make book`).",
        ]
    )


def distillation(results, D, profile: str, minutes: float) -> str:
    """Chapter 03's summary: each draft's acceptance rate against the base draft's, per level and
    target, and the distilled CoD drafts against the CoT ones. `results`: a row per (level, style, draft)."""
    from specbook.analysis import DRAFT_LABELS
    from specbook.distillation import methods
    from specbook.profiles import LEVELS
    from specbook.runinfo import stamp
    from specbook.styles import LABELS, STYLES

    by = results.set_index(["level", "style", "draft"])["acceptance rate"]

    def best_and_gain(level, style):
        base = by[level, style, "base"]
        rates = {m: by[level, style, m] for m in methods(D, level)}
        text = f"{LABELS[style]}: base draft {base:.2f}, " + ", ".join(f"{DRAFT_LABELS[m]} {rates[m]:.2f}" for m in rates)
        if len(rates) == 1:
            return text
        above = sum(rate > base for rate in rates.values())
        return text + f" (best: {DRAFT_LABELS[max(rates, key=rates.get)]}; {above} of {len(rates)} trained drafts above the base draft)"

    cod = {level: by[level, "cod", "distilled"] for level in LEVELS}
    cot_vs_cod = "; ".join(f"{level}: CoD {cod[level]:.2f} vs CoT {by[level, 'cot', 'distilled']:.2f}" for level in LEVELS)
    return "\n".join(
        [
            f"Profile `{profile}`, K = {D.k}, greedy, acceptance rate = accepted / proposed draft tokens on "
            f"{D.test_rows} held-out test questions per level ({stamp(profile)}):",
            *(f"- **{level}**: " + "; ".join(best_and_gain(level, style) for style in STYLES) + "." for level in LEVELS),
            f"- Distilled drafts, CoD against CoT: {cot_vs_cod}.",
            f"- Lowest acceptance of a distilled CoD draft over the levels: {min(cod.values()):.2f} ({min(cod, key=cod.get)}).",
            f"- This run of the chapter took {minutes:.1f} minutes (stages already built are reused, not rebuilt).",
        ]
    )


def datasets(stats, stamp: str, built_at: str) -> str:
    """Chapter 01's summary, a line per level (`stats`: the build report's levels, indexed by level):
    rows kept, CoD's tokens against CoT's, and what the shorter-CoD filter dropped."""
    lines = []
    for level, row in stats.iterrows():
        dropped = int(row.dropped_cod_not_shorter)
        line = (
            f"- **{level}**: {int(row.kept)} training rows kept of {int(row.train_candidates)}; CoD averages "
            f"{row.cod_mean_tokens:.1f} tokens against {row.cot_mean_tokens:.1f} for CoT ({100 * (1 - row.cod_over_cot):.0f} % fewer)"
        )
        if dropped:
            line += (
                f", after dropping the {dropped} problems whose CoD was not shorter than their CoT (a filter: the kept rows are "
                "shorter by construction, so that part of CoD's brevity is a property of the rationales kept, not a finding)."
            )
        else:
            line += "; the filter that keeps only rows whose CoD is shorter dropped none here."
        lines.append(line)
    return "\n".join(lines) + f"\n\n*{stamp} · datasets built at commit {built_at}*"
