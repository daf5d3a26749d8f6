"""The offline base models: domain text that holds no rationale and no test question, pretraining
that learns, and base models reused while nothing they depend on changes."""

import dataclasses
import os
import re

import pytest
from conftest import tiny_shape

from specbook import engines, pretraining, problems, profiles, tokens
from specbook.paths import Artifacts
from specbook.pretraining import Documents
from specbook.profiles import GsmSymbolic, LegCounting, Problems
from specbook.template_rules import equation_holds

BOUNDS = {"easy": [1, 2], "medium": [3, 3], "hard": [4, 99]}


def test_domain_texts_are_disjoint_and_hold_no_rationale(tmp_path):
    artifacts = Artifacts(tmp_path)
    legs = LegCounting(kinds_per_level={"easy": [1, 2], "medium": [3, 4], "hard": [5, 6]}, max_count=10)
    cfg = Problems("leg_counting", train_per_level=20, test_per_level=5, leg_counting=legs)
    chosen = problems.split(problems.load(cfg, seed=0, cache_dir=artifacts.cache)[0], cfg, seed=0)
    questions = {p.question for p in chosen}
    docs = pretraining.domain_texts(cfg, per_level=40, seed=0, artifacts=artifacts, exclude_questions=questions, exclude_groups=set())
    variants = [d for d in docs if d.startswith("How many legs")]
    assert len(variants) == 120 and not {d.split("\n")[0] for d in variants} & questions
    assert all(re.fullmatch(r"Answer: \d+", d.split("\n")[1]) for d in variants)  # the answer line, no worked steps
    assert any("A duck has 2 legs." in d for d in docs)  # the generator's own table
    # drills: bare equations, a product per line and from the second line a running addition
    drills = [d for d in docs if d[0].isdigit()]
    lines = [line for d in drills for line in d.split("\n")]
    assert len(drills) == 40 and all(re.fullmatch(r"[\d *+=;]+", line) for line in lines)
    equations = [e for line in lines for e in line.split("; ")]
    assert all(equation_holds(e) for e in equations)
    assert all(re.fullmatch(r"\d+ ?\* ?\d+ ?= ?\d+", line.split("; ")[0]) for line in lines)
    assert all(re.fullmatch(r"\d+ ?\+ ?\d+ ?= ?\d+", line.split("; ")[1]) for d in drills for line in d.split("\n")[1:])
    assert any(" * " in line for line in lines) and any("*" in line and " " not in line for line in lines)  # both spacings
    # a held-out GSM-Symbolic template stays unseen
    gsm = Problems("gsm_symbolic", 1, 1, gsm_symbolic=GsmSymbolic([1, 4], 5, 30, 0, BOUNDS, None))
    pool, _ = problems.gsm_symbolic_problems(gsm.gsm_symbolic, seed=0, cache_dir=artifacts.cache)
    kept = pretraining.domain_texts(
        gsm, per_level=100, seed=0, artifacts=artifacts, exclude_questions=set(), exclude_groups={pool[0].group}
    )
    assert kept and not [d for d in kept if d.split("\n")[0] in {p.question for p in pool if p.group == pool[0].group}]
    assert all("####" in d for d in kept)


def test_pretraining_lowers_the_loss_and_base_models_are_reused(tmp_path):
    rows = [(f"How many legs are there in total if you have {n} ducks?", str(2 * n)) for n in range(1, 11)]
    tok = tokens.train_tokenizer([f"{q} {a}" for q, a in rows] * 5, vocab_size=300, split_digits=True)
    smoke = profiles.load("smoke")
    pre = dataclasses.replace(smoke.models.pretrain, seq_len=32, target_steps=40, draft_steps=20)
    profile = dataclasses.replace(
        smoke, models=dataclasses.replace(smoke.models, target_shape=tiny_shape(), draft_shape=tiny_shape(), pretrain=pre)
    )
    artifacts = Artifacts(tmp_path)
    docs = Documents([f"{q}\n{a}" for q, a in rows], questions=0)
    built = pretraining.base_models(profile, artifacts, tok, docs)
    curve = built["target"]["curve"]
    assert curve[-1]["loss"] < curve[0]["loss"] - 0.5
    assert [c["step"] for c in built["draft"]["curve"]] == [10, 20]
    loaded = engines.NativeEngine.load(built["target"]["path"])  # loads like any Hub model, tokenizer included
    assert loaded.model.config.num_hidden_layers == 1 and loaded.eos == {tok.eos_token_id}
    weights = artifacts.base_model("target") / "model.safetensors"
    mtime = os.path.getmtime(weights)
    again = pretraining.base_models(profile, artifacts, tok, docs)
    assert again["target"]["curve"] == curve and os.path.getmtime(weights) == mtime
    changed = pretraining.base_models(profile, artifacts, tok, Documents(docs.texts[::-1], 0))
    assert changed["target"]["curve"] != curve and os.path.getmtime(weights) > mtime  # other documents: retrained


def test_hub_profiles_train_no_base_model(tmp_path):
    full = profiles.load("full")
    assert pretraining.documents(full, Artifacts(tmp_path)) == Documents([], 0)
    assert pretraining.base_models(full, Artifacts(tmp_path), None, Documents([], 0)) == {
        "target": {"path": "Qwen/Qwen3-14B"},
        "draft": {"path": "Qwen/Qwen3-0.6B"},
    }


@pytest.mark.parametrize("name", ["full", "gpu-smoke"])
def test_later_chapters_load_a_hub_profiles_base_models_by_id_with_no_folder_written(name, tmp_path):
    """Chapters 03 and 04 once required chapter 02's pretrained draft folder, which a Hub profile never writes."""
    hub = profiles.load(name)
    paths = [pretraining.base_model_path(hub, Artifacts(tmp_path), role) for role in ("target", "draft")]
    assert paths == [hub.models.target, hub.models.draft] and not any(tmp_path.iterdir())
    with pytest.raises(FileNotFoundError, match="chapter 02_training makes it"):
        pretraining.base_model_path(profiles.load("smoke"), Artifacts(tmp_path), "draft")
