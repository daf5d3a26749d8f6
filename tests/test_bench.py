"""The timing helpers return well-formed results and `make bench` runs (speed itself is not asserted)."""
import statistics

import torch

from specbook import bench, models, specdec
from specbook.profiles import ModelShape

SHAPE = ModelShape(layers=2, hidden=32, mlp=64, heads=2, kv_heads=1, head_dim=16)


def test_sweep_rows():
    target = models.untrained(SHAPE, 64, seed=0, logit_scale=4.0)
    drafts = {"early exit": specdec.early_exit_draft(target, 1), "self": target}
    prompts = [[1, 2, 3, 4], [5, 6, 7]]
    rows = bench.sweep(target, drafts, prompts, ks=[1, 3], temperature=1.0, max_new_tokens=9, rounds=2)
    assert [(r["draft"], r["k"]) for r in rows] == [("none", 0), ("early exit", 1), ("early exit", 3), ("self", 1), ("self", 3)]
    assert rows[0]["speedup"] == 1.0 and rows[0]["proposed"] == 0 and rows[0]["tokens"] == 18
    assert [r["acceptance_rate"] for r in rows[3:]] == [1.0, 1.0]  # a draft identical to the target is always accepted
    assert all(r["tokens"] == 18 for r in rows)


def test_step_costs_are_positive_medians():
    target = models.untrained(SHAPE, 64, seed=0)
    costs = bench.step_costs(target, specdec.early_exit_draft(target, 1), ks=[2], context=8, repeats=3, rounds=3)
    rounds = costs["rounds"]
    assert len(rounds) == 3 and costs["target_ms"] == statistics.median(r["target_ms"] for r in rounds) > 0
    assert costs["c"] == statistics.median(r["draft_ms"] / r["target_ms"] for r in rounds)
    assert set(costs["v"]) == {2} and costs["v"][2] == statistics.median(r["verify_ms"][2] / r["target_ms"] for r in rounds)
    assert torch.is_grad_enabled()  # timing does not leave autograd switched off


def test_make_bench_runs_on_smoke(capsys):
    bench.main(["--profile", "smoke", "--rounds", "1"])
    out = capsys.readouterr().out
    assert "profile smoke" in out and out.count("ratio") == 4
