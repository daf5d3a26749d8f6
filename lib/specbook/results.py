"""What chapter 04 writes: one CSV of requests and one JSON of metrics per run, with provenance.

A run is one configuration (a target alone, or with a draft or prompt lookup at one K, at one
temperature) on one level's test questions. `<run>.csv` holds a row per request (tokens, finish
reason, correctness, time to first token, latency, draft tokens proposed and accepted, accepts
per draft position); `<run>.json` the run's metrics and where they came from: profile, commit,
config hash, engine, library versions and hardware. Truncated answers are counted, never dropped.
"""

from __future__ import annotations

import csv
import datetime
import json
import math
from importlib import metadata
from pathlib import Path

import numpy as np

from specbook import metrics, profiles
from specbook.evaluation import Score
from specbook.runinfo import commit, machine

LIBRARIES = ("torch", "transformers", "peft", "trl", "vllm", "unsloth")


def request_rows(score: Score, plain: Score | None = None) -> list[dict]:
    """One row per request. `plain`: the target alone on the same requests (greedy), for the
    column saying whether the speculative output is identical token for token."""
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
        rows.append(row)
    return rows


def run_metrics(score: Score, plain: Score | None = None) -> dict:
    """Accuracy with its 95 % interval, tokens, truncations, the speculative counters (`metrics.summarize`),
    latency median and p90, and, against `plain`, the share of outputs identical to it and the ids that differ."""
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
    }
    if plain is not None:
        differ = [
            a["id"] for a, g, p in zip(score.answers, score.generations, plain.generations, strict=True) if g.token_ids != p.token_ids
        ]
        out["identical_to_plain"] = (score.n - len(differ)) / score.n if score.n else math.nan
        out["differing_ids"] = differ
    return out


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


def write(directory: str | Path, run: str, rows: list[dict], run_metrics: dict, source: dict) -> Path:
    """`directory`/<run>.csv (the rows) and <run>.json (metrics and provenance); returns the JSON's path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    columns = list(dict.fromkeys(key for row in rows for key in row))  # every row's keys, first seen first
    with open(directory / f"{run}.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows(rows)
    path = directory / f"{run}.json"
    record = _strict({"run": run, "metrics": run_metrics, "provenance": source})
    path.write_text(json.dumps(record, indent=1, allow_nan=False) + "\n")
    return path


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
