"""Chapter 04's plumbing: which models it loads, which configurations it times, its measurements
kept on disk, and the tables it shows. The ideas (timing in turns, the losslessness check, the
speedup model) live in `bench`, `lossless` and `metrics`, and are taught in the chapters."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd

from specbook import (
    analysis,
    bench,
    distillation,
    engines,
    evaluation,
    lossless,
    metrics,
    pretraining,
    rationales,
    results,
    stages,
    training,
)
from specbook.engines import Sampling, Speculative
from specbook.paths import NOTEBOOKS, lib_sources
from specbook.profiles import LEVELS
from specbook.runinfo import machine
from specbook.styles import LABELS, STYLES

CODE = (
    NOTEBOOKS / "04_benchmarking.py",
    *lib_sources("benchmarking", "bench", "engines", "evaluation", "lossless", "metrics", "models", "specdec", "results"),
)


class Models:
    """The base target, the six tuned targets of chapter 02 and the drafts of chapter 03, as the
    profile's engine loads them: merged for the in-process engines, an adapter for vLLM."""

    def __init__(self, P, A):
        self.P, self.A = P, A
        self.base_target = pretraining.base_model_path(P, A, "target")
        self.base_draft = pretraining.base_model_path(P, A, "draft")
        self.drafts = {level: ["base", *distillation.methods(P.distill, level)] for level in LEVELS}

    def adapter(self, style: str, level: str) -> Path:
        return self.A.require(self.A.target(style, level) / "adapter_model.safetensors", made_by="02_training").parent

    def target(self, style: str, level: str) -> str:
        """The tuned target as the engine loads it: merged, or its adapter for vLLM."""
        adapter = self.adapter(style, level)
        return str(adapter) if self.P.engine.kind == "vllm" else str(training.merge(adapter, self.A.merged(adapter)))

    def draft(self, method: str, style: str, level: str) -> str:
        if method == "base":
            return self.base_draft
        folder = self.A.require(self.A.draft(method, style, level), made_by="03_distillation")
        return str(training.merge(folder, self.A.merged(folder)))

    def engine(self, target: str, level: str, cfg=None):
        """target: "base" or a style; on vLLM a tuned target is the base model with its adapter."""
        cfg = cfg or self.P.engine
        if target == "base":
            return engines.make(cfg, self.base_target, self.P.seed)
        if cfg.kind == "vllm":
            return engines.make(cfg, self.base_target, self.P.seed, lora=self.target(target, level))
        return engines.make(cfg, self.target(target, level), self.P.seed)

    def configs(self, style: str, level: str) -> dict:
        """The timed configurations by (draft, K): the target alone, every draft and prompt lookup at
        K = bench.k, and for the CoD target its distilled draft at every K of the sweep."""
        B = self.P.bench
        out = {("alone", 0): None}
        out.update({(m, B.k): Speculative("draft_model", B.k, self.draft(m, style, level)) for m in self.drafts[level]})
        out["ngram", B.k] = Speculative("ngram", B.k, ngram_max=B.ngram_max)
        if style == "cod":
            out.update({("distilled", k): Speculative("draft_model", k, self.draft("distilled", style, level)) for k in B.ks if k != B.k})
        return out

    def cached(self, name: str, compute, settings: dict, models_used: list):
        """A measurement of chapter 04 (`stages.measured`, per machine), with where and when it was
        made: {"runs": compute(), "provenance": ...}."""
        engine = self.P.engine
        full = {**settings, "models": [str(m) for m in models_used], "engine": dataclasses.asdict(engine), "machine": machine()}

        def made():
            return {"runs": compute(), "provenance": results.provenance(self.P, engine.kind, full)}

        directory = self.A.cached("04_benchmarking", name)
        return stages.measured(directory, made, settings, models_used, list(CODE), engine=engine, per_machine=True)


def test_sets(A) -> dict:
    return {level: rationales.load_rows(A, level, "test") for level in LEVELS}


def timed(models: Models, style: str, level: str, rows: list[dict]) -> dict:
    """Every configuration of `models.configs` on the timed rows, taking turns request by request
    (`bench.timed_requests`): graded, and each speculative run's outputs classified against the
    target alone's (`lossless.classify_runs`)."""
    B = models.P.bench
    configs = models.configs(style, level)
    engine = models.engine(style, level)
    prompts = evaluation.prompts(engine.tokenizer, rows, style)
    per_request = models.P.engine.kind != "vllm"  # vLLM restarts its engine to change speculation: one configuration after another
    made = bench.timed_requests(
        engine,
        prompts,
        Sampling(max_new_tokens=B.max_new_tokens),
        configs,
        rounds=B.rounds,
        per_request=per_request,
        desc=f"{LABELS[style]} {level}",
    )
    speculative = {key: generations for key, generations in made.items() if configs[key] is not None}
    return {
        "scores": {key: evaluation.grade(rows, generations) for key, generations in made.items()},
        "differences": lossless.classify_runs(engine, prompts, made["alone", 0], speculative),
    }


def every_target_alone(models: Models, tests: dict) -> dict:
    """The base target and every tuned target alone on each level's whole test set: greedy, at most
    `bench.max_new_tokens`, in batches of `engine.batch_size` on the engine run eagerly (compiling pays
    for one request at a time, not for batches); the base target asked with the CoT prompt. Written
    as results; returns {(level, target): the cached score}."""
    P, B = models.P, models.P.bench
    eager = dataclasses.replace(P.engine, compile=False)
    accuracy = {}
    for level in LEVELS:
        for target in ["base", *STYLES]:
            style = "cot" if target == "base" else target
            model = models.base_target if target == "base" else models.target(target, level)
            score = lambda target=target, level=level, style=style: evaluation.score(  # noqa: E731
                models.engine(target, level, eager), tests[level], style, B.max_new_tokens, batch_size=P.engine.batch_size
            )
            settings = {
                "rows": [r["id"] for r in tests[level]],
                "style": style,
                "max_new_tokens": B.max_new_tokens,
                "batch_size": P.engine.batch_size,
            }
            accuracy[level, target] = models.cached(f"accuracy_{level}_{target}", score, settings, [model])
            write_alone(models.A, level, target, accuracy[level, target], P.engine.kind)
    return accuracy


def every_target_with_its_draft(models: Models, tests: dict, accuracy: dict) -> dict:
    """Each tuned target with its distilled draft at K = `bench.k` on each level's whole test set,
    one request at a time (`whole_test_set`), against its own answers of `every_target_alone`.
    Written as results; returns {(level, style): the cached runs}."""
    B = models.P.bench
    whole = {}
    for level in LEVELS:
        for style in STYLES:
            batched = accuracy[level, style]["runs"].generations
            measure = lambda style=style, level=level, batched=batched: whole_test_set(models, style, level, tests[level], batched)  # noqa: E731
            settings = {"rows": [r["id"] for r in tests[level]], "style": style, "k": B.k, "max_new_tokens": B.max_new_tokens}
            used = [models.target(style, level), models.draft("distilled", style, level)]
            made = models.cached(f"whole_{level}_{style}", measure, settings, used)
            whole[level, style] = made["runs"]
            write_whole(models.A, level, style, made, tests[level], B.k, models.P.engine.kind)
    return whole


def whole_test_set(models: Models, style: str, level: str, rows: list[dict], batched: list) -> dict:
    """The tuned target with its distilled draft at K = bench.k on every row, one request at a time,
    compared token for token with the target's own answers: the batched ones (`batched`), and where
    speculation wrote another, the target's answer made alone, one request at a time (which tells a
    batching difference from a speculative one)."""
    B = models.P.bench
    engine = models.engine(style, level)
    spec = evaluation.score(
        engine, rows, style, B.max_new_tokens, speculative=Speculative("draft_model", B.k, models.draft("distilled", style, level))
    )
    differ = [i for i, (g, b) in enumerate(zip(spec.generations, batched, strict=True)) if g.token_ids != b.token_ids]
    own = list(batched)
    if differ:
        alone = evaluation.score(engine, [rows[i] for i in differ], style, B.max_new_tokens)
        for i, g in zip(differ, alone.generations, strict=True):
            own[i] = g
    prompts = evaluation.prompts(engine.tokenizer, rows, style)
    differences = lossless.classify_runs(engine, prompts, own, {"speculative": spec.generations})["speculative"]
    return {"speculative": spec, "differ from batched": differ, "own": own, "differences": differences}


def sampled(models: Models, level: str, rows: list[dict]) -> dict:
    """The CoD target alone (in batches: the same distribution) and with its distilled draft (one
    request at a time), sampled at bench.sampled_temperature."""
    B = models.P.bench
    engine = models.engine("cod", level)
    kwargs = {"max_new_tokens": B.max_new_tokens, "temperature": B.sampled_temperature, "seed": models.P.seed}
    speculative = Speculative("draft_model", B.k, models.draft("distilled", "cod", level))
    return {
        "alone": evaluation.score(engine, rows, "cod", batch_size=models.P.engine.batch_size, **kwargs),
        "speculative": evaluation.score(engine, rows, "cod", speculative=speculative, **kwargs),
    }


def step_costs(models: Models, rows: list[dict], mean_tokens: float, level: str = LEVELS[0], style: str = "cod"):
    """The speedup model's step costs (`bench.step_costs`) for one pair, at a context of a typical
    prompt of `rows` plus half an answer of `mean_tokens`: costs depend on the architecture, not the
    weights, so one pair stands for all. None on vLLM, which runs its own kernels and schedules."""
    if models.P.engine.kind == "vllm":
        return None
    B, T = models.P.bench, models.P.theory
    engine = models.engine(style, level)
    prompts = evaluation.prompts(engine.tokenizer, rows, style)
    prompt_tokens = sum(len(engine.tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts) / len(prompts)
    context = int(prompt_tokens + mean_tokens / 2)
    draft = models.draft("distilled", style, level)

    def measure():
        draft_model = engine.draft_model(Speculative("draft_model", B.k, draft))
        return bench.step_costs(engine.model, draft_model, B.ks, context=context, repeats=T.timing_repeats, rounds=5)

    settings = {"context": context, "ks": B.ks, "repeats": T.timing_repeats}
    print(f"step costs at a context of {context} tokens ({level} {LABELS[style]} target and its distilled draft)")
    return models.cached("step_costs", measure, settings, [models.target(style, level), draft])["runs"]


def throughput_sweep(models: Models, level: str, rows: list[dict]) -> pd.DataFrame:
    """vLLM only: the CoD target's tokens per second at each concurrency of bench.concurrency, alone
    and with its distilled draft at every K of bench.ks."""
    B = models.P.bench
    engine = models.engine("cod", level)
    prompts = evaluation.prompts(engine.tokenizer, rows, "cod")
    sampling = Sampling(max_new_tokens=B.max_new_tokens)
    out = []
    for n in B.concurrency:
        alone = engine.throughput(prompts, sampling, None, n)["tokens_per_s"]
        for k in B.ks:
            spec = engine.throughput(prompts, sampling, Speculative("draft_model", k, models.draft("distilled", "cod", level)), n)[
                "tokens_per_s"
            ]
            out.append(
                {"level": level, "concurrency": n, "k": k, "tokens/s alone": alone, "tokens/s speculative": spec, "speedup": spec / alone}
            )
    return pd.DataFrame(out)


def write_alone(A, level: str, target: str, made: dict, engine: str) -> None:
    """Results files of a target alone on the whole test set."""
    score = made["runs"]
    results.write(
        A.results, results.Run(level, target, "alone", 0, 0.0, engine, "all"), score, results.run_metrics(score), made["provenance"]
    )


def write_timed(A, level: str, style: str, made: dict, configs: dict, costs, seed: int, engine: str) -> None:
    """Results files of every timed configuration of one target: graded, against the target alone
    request by request, beside the model's prediction (`results.timed_metrics`)."""
    scores, differences = made["runs"]["scores"], made["runs"]["differences"]
    plain = scores["alone", 0]
    for (draft, k), score in scores.items():
        spec = configs[draft, k]
        m = results.timed_metrics(plain, score, spec, differences.get((draft, k)), costs, seed=seed)
        run = results.Run(level, style, draft, k, 0.0, engine, "timed")
        results.write(A.results, run, score, m, made["provenance"], plain if spec is not None else None, differences.get((draft, k)))


def write_whole(A, level: str, style: str, made: dict, rows: list[dict], k: int, engine: str) -> None:
    """Results files of a tuned target with its distilled draft on the whole test set, against its own answers."""
    spec, differences = made["runs"]["speculative"], made["runs"]["differences"]
    own = evaluation.grade(rows, made["runs"]["own"])
    m = {**results.run_metrics(spec, own, differences), "differ_from_batched": len(made["runs"]["differ from batched"])}
    results.write(A.results, results.Run(level, style, "distilled", k, 0.0, engine, "all"), spec, m, made["provenance"], own, differences)


def write_sampled(A, level: str, made: dict, k: int, temperature: float, engine: str) -> None:
    """Results files of the sampled runs of one level: the CoD target alone and with its distilled draft."""
    for draft, kk, score in [("alone", 0, made["runs"]["alone"]), ("distilled", k, made["runs"]["speculative"])]:
        run = results.Run(level, "cod", draft, kk, temperature, engine, "sampled")
        results.write(A.results, run, score, results.run_metrics(score), made["provenance"])


def accuracy_table(accuracy: dict) -> pd.DataFrame:
    """Accuracy of every target alone ({(level, target): cached score}), its interval and the answers cut at the cap."""
    rows = []
    for (level, target), made in accuracy.items():
        s = made["runs"]
        rows.append(
            {
                "level": level,
                "target": "base" if target == "base" else LABELS[target],
                "accuracy": s.accuracy,
                "95 % interval": f"{s.ci_low:.2f}-{s.ci_high:.2f}",
                "questions": s.n,
                "tokens per answer": s.mean_tokens,
                "truncated": sum(a["finish_reason"] == "length" for a in s.answers),
            }
        )
    return pd.DataFrame(rows)


def batching_table(A, by, accuracy: dict, whole: dict) -> pd.DataFrame:
    """For each tuned target: its timed questions answered one at a time against the same questions'
    batched answers, and how many whole-test-set speculative answers differ from the batched ones."""
    rows = []
    for level in LEVELS:
        for style in STYLES:
            one_at_a_time = results.load_requests(A.results, by.loc[(level, LABELS[style], "alone", 0)].run)
            batched = accuracy[level, style]["runs"].generations[: len(one_at_a_time)]
            rows.append(
                {
                    "level": level,
                    "target": LABELS[style],
                    "timed questions": len(one_at_a_time),
                    "batched = one at a time": sum(a == b.token_ids for a, b in zip(one_at_a_time.token_ids, batched, strict=True)),
                    "whole test set: speculative ≠ batched": len(whole[level, style]["differ from batched"]),
                }
            )
    return pd.DataFrame(rows)


def requests_by_kind(speculative_runs) -> dict[str, int]:
    """Greedy speculative requests, counted by how their output compares with the target alone's."""
    columns = {"identical": "identical_to_plain", "near-tie": "near_tie", "mismatch": "mismatch"}
    return {kind: int(round((speculative_runs[c] * speculative_runs.requests).sum())) for kind, c in columns.items()}


def reference_table(accuracy: dict, whole: dict, by, k: int) -> pd.DataFrame:
    """The reference run's five configurations per level: accuracy and tokens on the whole test
    set, acceptance and speedup (with the model's prediction) from the timed questions."""
    rows = []
    for level in LEVELS:
        for target in ["base", *STYLES]:
            s = accuracy[level, target]["runs"]
            name = "base target" if target == "base" else f"{LABELS[target]} target"
            rows.append({"level": level, "configuration": name, "accuracy": s.accuracy, "tokens per answer": s.mean_tokens})
        for style in STYLES:
            r = by.loc[(level, LABELS[style], "distilled", k)]
            spec = whole[level, style]["speculative"]
            rows.append(
                {
                    "level": level,
                    "configuration": f"{LABELS[style]} target + distilled draft",
                    "accuracy": spec.accuracy,
                    "tokens per answer": spec.mean_tokens,
                    "acceptance rate": r["acceptance_rate"],
                    "mean acceptance length": r["mean_acceptance_length"],
                    "speedup": r["speedup"],
                    "95 % interval": f"{r['speedup_low']:.2f}-{r['speedup_high']:.2f}",
                    "unstable": r["unstable"],
                    "predicted": r["predicted_speedup"],
                    "efficiency": r["efficiency"],
                    "decode speedup": r["decode_speedup"],
                    "decode efficiency": r["decode_efficiency"],
                }
            )
    return pd.DataFrame(rows)


def sampled_row(level: str, made: dict, greedy_acceptance: float) -> dict:
    """One level's sampled run: both accuracies, the paired equivalence test, acceptance sampled and greedy."""
    alone, spec = made["alone"], made["speculative"]
    same = analysis.equivalent_accuracy([a["correct"] for a in alone.answers], [a["correct"] for a in spec.answers])
    return {
        "level": level,
        "questions": alone.n,
        "accuracy alone": alone.accuracy,
        "accuracy speculative": spec.accuracy,
        **{key: same[key] for key in ("difference", "low", "high", "verdict")},
        "acceptance rate": metrics.summarize(spec.generations)["acceptance_rate"],
        "acceptance rate, greedy": greedy_acceptance,
        "tokens per answer alone": alone.mean_tokens,
        "tokens per answer speculative": spec.mean_tokens,
    }
