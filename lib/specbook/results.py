"""What chapter 04 writes and chapter 05 reads: per run, a CSV of requests, a JSONL of what each
request wrote, and a JSON of metrics with provenance; `load_runs` reads them all back as one table.

A run is one configuration (`Run`: a target alone, or with a draft or prompt lookup at one K, at one
temperature, on one engine) on one set of a level's test questions. `<run>.csv` holds a row per
request (tokens, finish reason, correctness, time to first token, latency, draft tokens proposed
and accepted, accepts per draft position); `<run>.requests.jsonl` per request the answer's text and
token ids, each target pass's accepted count, every rejection (position in the answer, the draft's
token, the target's) and each timing round's latency; `<run>.json` the run's fields, its metrics
and where they came from: profile, commit, config hash, engine, library versions and hardware.
Truncated answers are counted, never dropped.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import json
import math
import statistics
from importlib import metadata
from pathlib import Path

import numpy as np

from specbook import jsonl, lossless, metrics, profiles, stages, stats
from specbook.evaluation import Score
from specbook.runinfo import commit, machine

LIBRARIES = ("torch", "transformers", "peft", "trl", "vllm", "unsloth")
# A timed run whose per-round speedups spread wider than this share of their median is unstable:
# the machine, not the configuration, moved its timing. Set before any run was looked at.
UNSTABLE_SPREAD = 0.10
REQUEST_SETS = ("all", "timed", "sampled")  # the whole test set; the timed questions; the sampled questions


@dataclasses.dataclass(frozen=True)
class Run:
    """What a run is, as fields of its JSON (and, joined, its file name)."""

    level: str
    target: str  # "base", or the style the target was tuned on
    draft: str  # "alone", a draft (the untrained "base" or a distillation method), or "ngram" (prompt lookup)
    k: int  # draft tokens per step; 0 alone
    temperature: float
    engine: str
    request_set: str  # which of a level's test questions: one of REQUEST_SETS

    def __post_init__(self):
        if self.request_set not in REQUEST_SETS:
            raise ValueError(f"request_set is {self.request_set!r}; it must be one of {', '.join(REQUEST_SETS)}")
        if (self.draft == "alone") != (self.k == 0):
            raise ValueError(f"draft {self.draft!r} with k = {self.k}: a target alone has k = 0, a speculative run k >= 1")

    @property
    def name(self) -> str:
        k = f"_k{self.k}" if self.k else ""
        return f"{self.level}_{self.target}_{self.draft}{k}_t{f'{self.temperature:g}'.replace('.', '')}_{self.request_set}"


def request_rows(score: Score, plain: Score | None = None, differences: list[lossless.Difference] | None = None) -> list[dict]:
    """One row per request. `plain`: the target alone on the same requests (greedy), for the
    column saying whether the speculative output is identical token for token; `differences`
    (`lossless.classify_all`), for the column saying what a difference is (identical, near-tie, mismatch)."""
    rows = []
    for i, (a, g) in enumerate(zip(score.answers, score.generations, strict=True)):
        row = {
            "id": a["id"],
            "gold": a["gold"],
            "predicted": a["predicted"],
            "correct": a["correct"],
            "tokens": a["tokens"],
            "finish_reason": a["finish_reason"],
            "ttft_s": g.ttft_s,
            "latency_s": g.latency_s,
            "steps": g.steps,
            "proposed": g.proposed,
            "accepted": g.accepted,
            "draft_s": g.draft_s,
            "target_s": g.target_s,
            **{f"accepted_at_{j + 1}": n for j, n in enumerate(g.accepted_at)},
        }
        if plain is not None:
            row["identical_to_plain"] = g.token_ids == plain.generations[i].token_ids
        if differences is not None:
            row["lossless"] = differences[i].kind
        rows.append(row)
    return rows


def run_metrics(score: Score, plain: Score | None = None, differences: list[lossless.Difference] | None = None) -> dict:
    """Accuracy with its 95 % interval, tokens, truncations, the speculative counters (`metrics.summarize`),
    latency median and p90; against `plain`, the share of outputs identical to it and the ids that
    differ; with `differences` (`lossless.classify_all`), the shares and ids of near-ties and mismatches."""
    latencies = [g.latency_s for g in score.generations]
    out = {
        "requests": score.n,
        "correct": score.correct,
        "accuracy": score.accuracy,
        "accuracy_ci": [score.ci_low, score.ci_high],
        "truncated": sum(a["finish_reason"] == "length" for a in score.answers),
        **metrics.summarize(score.generations),
        "latency_median_s": float(np.median(latencies)) if latencies else math.nan,
        "latency_p90_s": float(np.percentile(latencies, 90)) if latencies else math.nan,
        # the first step's share of the time (it also reads the prompt, which speculation does not shorten)
        "prompt_pass_share": sum(g.ttft_s or 0.0 for g in score.generations) / sum(latencies) if latencies and sum(latencies) else math.nan,
    }
    if plain is not None:
        differ = [
            a["id"] for a, g, p in zip(score.answers, score.generations, plain.generations, strict=True) if g.token_ids != p.token_ids
        ]
        out["identical_to_plain"] = (score.n - len(differ)) / score.n if score.n else math.nan
        out["differing_ids"] = differ
    if differences is not None:
        share = lossless.shares(differences)
        out["near_tie"], out["mismatch"] = share["near-tie"], share["mismatch"]
        for kind in ("near-tie", "mismatch"):
            out[f"{kind.replace('-', '_')}_ids"] = [a["id"] for a, d in zip(score.answers, differences, strict=True) if d.kind == kind]
    return out


def speedup(plain: Score, speculative: Score, seed: int = 0) -> dict:
    """Speedup of `speculative` over `plain` on the same requests: the median per-request latency
    ratio with its bootstrap 95 % interval; and, for requests timed in rounds, each round's own
    median ratio, their spread ((max - min) / median) and whether it exceeds UNSTABLE_SPREAD."""
    a, b = plain.generations, speculative.generations
    ratio, low, high = stats.bootstrap_median_ratio([g.latency_s for g in a], [g.latency_s for g in b], seed=seed)
    rounds = min((len(g.round_latencies_s) for g in [*a, *b]), default=0)
    per_round = [
        statistics.median(p.round_latencies_s[r] / s.round_latencies_s[r] for p, s in zip(a, b, strict=True)) for r in range(rounds)
    ]
    spread = (max(per_round) - min(per_round)) / statistics.median(per_round) if len(per_round) > 1 else math.nan
    return {
        "speedup": ratio,
        "speedup_ci": [low, high],
        "speedup_rounds": per_round,
        "round_spread": spread,
        "unstable": bool(spread > UNSTABLE_SPREAD),
    }


def provenance(profile: profiles.Profile, engine: str, settings: dict) -> dict:
    """Where a run's numbers come from: profile, config hash, commit, engine and its settings,
    library versions, hardware, time."""
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return {
        "profile": profile.name,
        "config_hash": profiles.config_hash(profile),
        "commit": commit(),
        "engine": engine,
        "settings": settings,
        "versions": versions,
        "machine": machine(),
        "made_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def write(
    directory: str | Path,
    run: Run,
    score: Score,
    run_metrics: dict,
    source: dict,
    plain: Score | None = None,
    differences: list[lossless.Difference] | None = None,
) -> Path:
    """`directory`/<name>.csv (`request_rows`), <name>.requests.jsonl (what each request wrote) and
    <name>.json (the run's fields, metrics and provenance); returns the JSON's path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rows = request_rows(score, plain, differences)
    columns = list(dict.fromkeys(key for row in rows for key in row))  # every row's keys, first seen first
    with open(directory / f"{run.name}.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows(rows)
    written = [
        {
            "id": a["id"],
            "text": g.text,
            "token_ids": g.token_ids,
            "step_accepts": g.step_accepts,
            "rejections": [list(r) for r in g.rejections],
            "round_latencies_s": g.round_latencies_s,
        }
        for a, g in zip(score.answers, score.generations, strict=True)
    ]
    jsonl.write(directory / f"{run.name}.requests.jsonl", written)
    path = directory / f"{run.name}.json"
    record = _strict({"run": run.name, **dataclasses.asdict(run), "metrics": run_metrics, "provenance": source})
    stages.write_atomically(path, json.dumps(record, indent=1, allow_nan=False) + "\n")
    stages.record_outputs(directory, [directory / f"{run.name}.csv", directory / f"{run.name}.requests.jsonl", path])
    return path


def load_runs(directory: str | Path):
    """Every run in `directory` as one table (pandas), a row per run: its fields (`Run`), its metrics
    (an interval `x_ci` as `x_low` and `x_high`) and its provenance (profile, config hash, commit)."""
    import pandas as pd

    stages.check_outputs(directory)  # every file as chapter 04 wrote it: a hand edit or a half-written file stops here
    rows = []
    for path in sorted(p for p in Path(directory).glob("*.json") if p.name != stages.MANIFEST):
        record = json.loads(path.read_text())
        if "request_set" not in record:
            raise ValueError(f"{path} has no run fields (written by older code): run chapter 04 again (make run-all NB=04 FORCE=1)")
        row = {"run": record["run"], **{f.name: record[f.name] for f in dataclasses.fields(Run)}}
        for key, value in record["metrics"].items():
            if key.endswith("_ci"):
                row[f"{key[:-3]}_low"], row[f"{key[:-3]}_high"] = value
            else:
                row[key] = value
        row.update({key: record["provenance"].get(key) for key in ("profile", "config_hash", "commit")})
        rows.append(row)
    if not rows:
        raise FileNotFoundError(f"no runs in {directory}: chapter 04 writes them (make run-all NB=04)")
    return pd.DataFrame(rows).sort_values(
        ["request_set", "level", "target", "draft", "k", "temperature"], key=_book_order, ignore_index=True
    )


def _book_order(column):
    """Rows in the book's order: levels easy to hard, the base target before the tuned ones, a target
    alone before its drafts (others keep their own order)."""
    from specbook.distillation import METHODS
    from specbook.profiles import LEVELS
    from specbook.styles import STYLES

    order = {"level": LEVELS, "target": ("base", *STYLES), "draft": ("alone", "base", *METHODS, "ngram"), "request_set": REQUEST_SETS}
    known = order.get(column.name)
    return column.map(lambda v: known.index(v) if v in known else len(known)) if known else column


def load_requests(directory: str | Path, run: str):
    """One run's requests (pandas): the CSV's columns and what each request wrote (`write`)."""
    import pandas as pd

    directory = Path(directory)
    table = pd.read_csv(directory / f"{run}.csv", dtype={"id": str, "gold": str, "predicted": str})
    written = pd.DataFrame(jsonl.read(directory / f"{run}.requests.jsonl")).astype({"id": str})
    return table.merge(written, on="id", validate="one_to_one")


class Results:
    """Chapter 04's runs, as chapter 05 reads them: a run's row, its requests (each file read once),
    and one column of two runs matched problem by problem."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self.runs = load_runs(directory)
        self.engine = self.runs.engine.iloc[0]
        self._by_name = self.runs.set_index("run")
        self._requests = {}

    def run(self, level: str, target: str, draft: str = "alone", k: int = 0, request_set: str = "all"):
        """One run's row of the table of runs."""
        return self._by_name.loc[Run(level, target, draft, k, 0.0, self.engine, request_set).name]

    def requests(self, level: str, target: str, draft: str = "alone", k: int = 0, request_set: str = "all"):
        """One run's requests, in the test set's order."""
        name = Run(level, target, draft, k, 0.0, self.engine, request_set).name
        if name not in self._requests:
            self._requests[name] = load_requests(self.directory, name)
        return self._requests[name]

    @staticmethod
    def paired(a, b, column: str):
        """One column of two runs' requests (`requests`), matched problem by problem: two arrays."""
        both = a[["id", column]].merge(b[["id", column]], on="id", suffixes=("_a", "_b"), validate="one_to_one")
        return both[f"{column}_a"].to_numpy(), both[f"{column}_b"].to_numpy()


def provenance_line(runs) -> str:
    """Where the rows of a `load_runs` table come from: profile, config hash and commit(s)."""
    values = {key: ", ".join(sorted(set(map(str, runs[key])))) for key in ("profile", "config_hash", "commit")}
    return f"results of profile {values['profile']} · config {values['config_hash']} · commit {values['commit']}"


def _strict(value):
    """`value` as strict JSON takes it: numpy numbers as numbers, NaN (a rate over nothing) as null."""
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_strict(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def timed_metrics(plain: Score, score: Score, speculative, differences, costs, seed: int = 0) -> dict:
    """A timed run's metrics (`run_metrics`); for a speculative one also its speedup over `plain`
    (the same requests, taking turns), the speedup E(α, K) / (K·c + v(K)) predicts from the run's α
    and the measured `costs` (None for prompt lookup, which proposes 0 to K tokens at no draft cost,
    or without costs), the decode speedup, and each as a share of the prediction (efficiency)."""
    m = run_metrics(score, plain if speculative is not None else None, differences)
    if speculative is None:
        return m
    modelled = speculative.method == "draft_model" and costs is not None and speculative.k in costs.v
    predicted = metrics.predicted_speedup(m["alpha"], speculative.k, costs.c, costs.v[speculative.k]) if modelled else None
    m.update(speedup(plain, score, seed=seed), predicted_speedup=predicted)
    m["decode_speedup"] = metrics.decode_speedup(m, metrics.summarize(plain.generations))
    m["efficiency"] = m["speedup"] / predicted if predicted else None
    m["decode_efficiency"] = m["decode_speedup"] / predicted if predicted else None
    return m


# The columns of chapter 04's table of timed runs, as shown.
TIMED_COLUMNS = {
    "level": "level",
    "target": "target",
    "draft": "draft",
    "k": "K",
    "speedup": "speedup",
    "speedup_low": "low",
    "speedup_high": "high",
    "round_spread": "spread of rounds",
    "unstable": "unstable",
    "predicted_speedup": "predicted",
    "efficiency": "efficiency",
    "decode_speedup": "decode speedup",
    "decode_efficiency": "decode efficiency",
    "identical_to_plain": "identical",
    "near_tie": "near-tie",
    "mismatch": "mismatch",
    "acceptance_rate": "acceptance rate",
    "mean_acceptance_length": "mean acceptance length",
    "alpha": "alpha",
    "accuracy": "accuracy (timed)",
    "tokens_per_request": "tokens per answer",
    "truncated": "truncated",
    "latency_median_s": "latency median (s)",
    "tokens_per_s": "tokens/s",
}

# The columns of chapter 04's table of speculative runs on the whole test set, as shown.
WHOLE_COLUMNS = {
    "level": "level",
    "target": "target",
    "draft": "draft",
    "k": "k",
    "requests": "questions",
    "accuracy": "accuracy",
    "accuracy_low": "low",
    "accuracy_high": "high",
    "identical_to_plain": "identical",
    "near_tie": "near_tie",
    "mismatch": "mismatch",
    "differ_from_batched": "differ from batched",
    "acceptance_rate": "acceptance_rate",
    "mean_acceptance_length": "mean_acceptance_length",
}


def step_ledger(run, plain, costs, k: int) -> dict:
    """Where a speculative run's time goes, beside the model: tokens per target pass (E(α, K) and
    counted), a step's milliseconds as the step costs predict and as measured after the first step,
    split into the draft's passes, the target's verify pass and the decoder's own work; the target
    alone's step; the prompt pass's share of the latency; and the efficiencies. `run`, `plain`: rows
    of `load_runs` (the speculative run, the target alone on the same requests)."""
    step, draft_ms, verify_ms = (1000 * run[key] for key in ("decode_step_s", "decode_draft_s", "decode_target_s"))
    return {
        "E(α, K)": metrics.expected_tokens_per_step(run["alpha"], k),
        "tokens per pass": run["mean_acceptance_length"],
        "step, model (ms)": k * costs.draft_ms + costs.verify_ms[k],
        "step, measured (ms)": step,
        "draft passes, model (ms)": k * costs.draft_ms,
        "draft passes, in the loop (ms)": draft_ms,
        "verify, model (ms)": costs.verify_ms[k],
        "verify, in the loop (ms)": verify_ms,
        "decoder's own (ms)": step - draft_ms - verify_ms,
        "target step, model (ms)": costs.target_ms,
        "target step, measured (ms)": 1000 * plain["decode_step_s"],
        "prompt pass share, alone": plain["prompt_pass_share"],
        "prompt pass share, speculative": run["prompt_pass_share"],
        "efficiency": run["efficiency"],
        "decode efficiency": run["decode_efficiency"],
    }
