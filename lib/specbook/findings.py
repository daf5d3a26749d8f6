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
    side = "above" if (beyond > 0).all() else "below" if (beyond < 0).all() else "on both sides of"
    side = f"{side} the prediction at every K > {k_alpha}" if side != "on both sides of" else "on both sides of the prediction"
    alpha = results.groupby("K")["alpha (this K)"].mean()
    trend = "rises" if alpha.is_monotonic_increasing else "falls" if alpha.is_monotonic_decreasing else "moves"
    return (
        f"is off the measured tokens per target pass by up to {gap.abs().max():.2f} tokens ({relative:.0%}); the measurement "
        f"sits {side}, and α estimated at each K {trend} with K ({alpha.iloc[0]:.2f} at K = {alpha.index[0]}, "
        f"{alpha.iloc[-1]:.2f} at K = {alpha.index[-1]}): acceptance here is not the independent draw the model assumes"
    )


def theory(
    *,
    hw_name,
    step_ms,
    ridge,
    intensity,
    verify16,
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
    failed = "" if correct >= reject else f"; below {reject}: a failure to investigate"
    wrong = lossless[lossless.residual != "correct"]
    wrong_text = "; ".join(f"{r.decoder} at K = {r.K}: p = {r['p-value']:.2g}" for _, r in wrong.iterrows())
    caught = (wrong["p-value"] < reject).all()
    best = results.loc[results["speedup"].idxmax()]
    pays = (
        "speculation already pays with these untrained pairs"
        if best["speedup"] > 1
        else "no configuration beats the target alone here: speculation pays only when α is high and c and v are low"
    )
    verify = (
        ": small models on a CPU are not purely memory-bound, so verification is not free here"
        if pass5 > 1.1
        else ": verification costs about one step here too"
    )
    return f"""
- **Memory-bound.** A Qwen3-14B decoding step does {intensity:.1f} FLOP per byte against the {hw_name}'s ridge point of
  {ridge:.0f}: its roofline time is {step_ms:.1f} ms per token, and a 16-token verify pass costs {verify16:.2f}x a step.
  On this CPU the {layers}-layer target's 5-token pass costs {pass5:.2f}x and its 17-token pass {pass17:.2f}x a step{verify}.
- **Lossless.** Whole sequences sampled by the decoders with the correct residual fit the target's exact joint
  distribution (lowest chi-square p = {correct:.3g}, {samples} samples each{failed});
  with a wrong residual they {"are rejected at every K" if caught else "are not rejected at every K at this sample size"} ({wrong_text}).
- **Model vs measurement.** With α estimated at K = {k_alpha}, E(α̂, K) {_model_fit(results, k_alpha)}.
- **Step costs.** The cut draft costs c = {c_here:.2f} of a target step here, where its share of the bytes read is
  {c_bytes_here:.2f}: the rest is per-call overhead. By bytes alone Qwen3-0.6B / Qwen3-14B gives c = {c_gpu:.3f}.
- **Speed here.** The best configuration, {best["draft"]} at K = {best["K"]}, runs at {best["speedup"]:.2f}x the target alone
  (predicted {best["predicted speedup"]:.2f}x): {pays}. Chapters 02–04 train and measure real pairs.

*{stamp}*
"""
