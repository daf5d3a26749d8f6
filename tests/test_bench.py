"""The timing helpers: one interleaved timer with a discarded warm-up, step costs as medians of
per-round ratios, sweeps through any engine, request-by-request timing, and `make bench` (speed
itself is not asserted)."""

import statistics

import pytest
import torch

from specbook import bench, models
from specbook.engines import Generation, NativeEngine, Sampling, TransformersEngine


def test_interleaved_warms_up_then_takes_turns():
    calls = []
    runs = {name: (lambda name=name: calls.append(name) or len(calls)) for name in ("a", "b")}
    results = bench.interleaved(runs, rounds=3)
    assert calls == ["a", "b"] * 4  # one discarded warm-up call each, then three rounds in turn
    assert results == {"a": [3, 5, 7], "b": [4, 6, 8]}


@pytest.mark.parametrize("engine_class", [NativeEngine, TransformersEngine])
def test_sweep_through_an_engine(engine_class, tiny_model):
    target = tiny_model(64, 0, layers=2, logit_scale=4.0)
    drafts = {"early exit": models.early_exit_draft(target, 1), "self": target}
    prompts = [[1, 2, 3, 4], [5, 6, 7]]
    rows = bench.sweep(engine_class(target), drafts, prompts, ks=[1, 3], sampling=Sampling(max_new_tokens=9), rounds=2)
    assert [(r["draft"], r["k"]) for r in rows] == [("none", 0), ("early exit", 1), ("early exit", 3), ("self", 1), ("self", 3)]
    assert rows[0]["speedup"] == 1.0 and rows[0]["proposed"] == 0 and rows[0]["tokens"] == 18
    assert [r["acceptance_rate"] for r in rows[3:]] == [1.0, 1.0]  # a draft identical to the target is always accepted
    # 9 tokens per prompt: K=1 emits 2 per pass four times, then 1; K=3 emits 4 twice, then 1
    assert [r["mean_acceptance_length"] for r in rows[3:]] == [1.8, 3.0]
    assert all(r["tokens"] == 18 for r in rows)


def test_step_costs_are_medians_of_per_round_ratios(tiny_model):
    target = tiny_model(64, 0, layers=2)
    costs = bench.step_costs(target, models.early_exit_draft(target, 1), ks=[2], context=8, repeats=3, rounds=3)
    rounds = costs.rounds
    assert len(rounds) == 3 and costs.target_ms == statistics.median(r["target_ms"] for r in rounds) > 0
    assert costs.c == statistics.median(r["draft_ms"] / r["target_ms"] for r in rounds)
    assert set(costs.v) == {2} and costs.v[2] == statistics.median(r["verify_ms"][2] / r["target_ms"] for r in rounds)
    assert torch.is_grad_enabled()  # timing does not leave autograd switched off


def test_a_draft_pass_in_the_loop_is_timed_back_to_back_after_the_verify_pass_and_after_a_pause(tiny_model, monkeypatch):
    target = tiny_model(64, 0, layers=2)
    draft = models.early_exit_draft(target, 1)
    calls = {"target": [], "draft": [], "pauses": []}
    target.register_forward_hook(lambda module, args, kwargs, out: calls["target"].append(kwargs["input_ids"].shape[-1]), with_kwargs=True)
    draft.register_forward_hook(lambda module, args, kwargs, out: calls["draft"].append(kwargs["input_ids"].shape[-1]), with_kwargs=True)
    monkeypatch.setattr(bench.time, "sleep", calls["pauses"].append)
    passes = bench.draft_pass_in_the_loop(target, draft, context=8, k=2, repeats=4, pause_s=0.25)
    assert list(passes) == ["back to back", "first after verify", "each after verify", "after a pause"]
    assert all(ms > 0 for ms in passes.values())
    rounds = 3 + 4  # warm-up rounds, then timed ones
    assert calls["target"] == [8] + [3] * rounds  # the prompt, then one K + 1 verify pass per round
    assert calls["draft"] == [8] + [1] * rounds * (2 + 2 + 1)  # per round: K back to back, K after verifying, 1 after the pause
    assert calls["pauses"] == [0.25] * rounds


def test_timed_requests_take_turns_per_request_and_keep_median_latencies():
    calls = []

    class Clock:
        """A fake engine: records each call; request i in config x takes (i + 1) * x seconds, plus the round."""

        def generate(self, prompts, sampling, speculative=None, batch_size=1):
            calls.append((prompts[0], speculative, sampling.seed))
            rounds_seen = sum(c[:2] == (prompts[0], speculative) for c in calls)
            return [Generation("", [prompts[0]], "stop", latency_s=(prompts[0] + 1) * speculative + rounds_seen, ttft_s=0.5)]

    out = bench.timed_requests(Clock(), [0, 1], Sampling(max_new_tokens=4, seed=10), {"a": 1, "b": 2}, rounds=3)
    # warm-up on the first prompt, then per request each configuration in turn, three rounds
    assert calls[:2] == [(0, 1, 10), (0, 2, 10)]
    assert calls[2:8] == [(0, 1, 10), (0, 2, 10)] * 3 and calls[8:] == [(1, 1, 11), (1, 2, 11)] * 3
    # request 0 in "a": rounds 2, 3, 4 after the warm-up (latency 1 + round): median 1 + 3
    assert [g.latency_s for g in out["a"]] == [4, 2 + 2] and [g.latency_s for g in out["b"]] == [2 + 3, 4 + 2]
    assert [g.token_ids for g in out["a"]] == [[0], [1]] and all(g.ttft_s == 0.5 for g in out["b"])


def test_timed_requests_config_after_config_for_engines_that_fix_speculation_at_start():
    calls = []

    class Engine:
        def generate(self, prompts, sampling, speculative=None, batch_size=1):
            calls.append((tuple(prompts), speculative))
            return [Generation("", [p], "stop", latency_s=speculative + 0.1 * len(calls)) for p in prompts]

    out = bench.timed_requests(Engine(), [0, 1], Sampling(max_new_tokens=4), {"a": 1, "b": 2}, rounds=2, per_request=False)
    # each configuration warmed up on the first prompt, then all prompts in one pass; twice
    assert calls == [((0,), 1), ((0, 1), 1), ((0,), 2), ((0, 1), 2)] * 2
    # of two rounds (1.2 s and 1.6 s), the lower middle: a round that ran, not an average of two
    assert [g.latency_s for g in out["a"]] == pytest.approx([1.2] * 2)
    assert [g.round_latencies_s for g in out["a"]] == [pytest.approx([1.2, 1.6])] * 2
    assert [g.token_ids for g in out["b"]] == [[0], [1]]


def test_a_request_keeps_its_median_round_whole_so_that_a_steps_parts_add_up():
    rounds = [
        Generation("", [1], "stop", latency_s=0.9, ttft_s=0.1, draft_s=0.3, target_s=0.4),
        Generation("", [1], "stop", latency_s=0.5, ttft_s=0.2, draft_s=0.1, target_s=0.1),
        Generation("", [1], "stop", latency_s=0.7, ttft_s=0.3, draft_s=0.2, target_s=0.15),
    ]
    median = bench._median_round(rounds)
    assert (median.latency_s, median.ttft_s, median.draft_s, median.target_s) == (0.7, 0.3, 0.2, 0.15)
    assert median.round_latencies_s == [0.9, 0.5, 0.7]  # in round order


def test_make_bench_names_the_chapter_that_builds_its_models(output_root):
    with pytest.raises(FileNotFoundError, match=r"make run-all PROFILE=smoke NB=02"):
        bench.main(["--profile", "smoke"])


def test_the_gpu_bench_runs_every_part_on_small_models_on_a_cpu(output_root, capsys):
    """A smoke of `make gpu-bench`'s code (its times mean nothing here): steps against the floor, c,
    v(K), predicted speedups at assumed alphas (no chapter 04 results), the native decoder against
    transformers end to end with no mismatch, and where the trained pair would come from."""
    from specbook import gpu_bench

    gpu_bench.main(
        ["--shapes", "small", "--device", "cpu", "--ks", "1", "3", "--k", "3", "--repeats", "2", "--rounds", "1"]
        + ["--prompts", "2", "--new-tokens", "8", "--context", "16", "--profile", "smoke"]
    )
    out = capsys.readouterr().out
    assert "bandwidth no GPU: the H100 SXM's 3.35 TB/s assumed" in out and "static cache (no graphs off CUDA)" in out
    assert "alpha from assumed: no chapter 04 results on smoke" in out and out.count("assumed ") >= 2
    assert "v(K) = verify pass / target step, static: K=1" in out and "native against assisted, same pair and K:" in out
    assert "native speculative against native alone: 2 identical / 0 near-tie / 0 mismatch" in out
    assert "no trained smoke CoD pair for easy" in out and "goals" not in out  # goals are for the real shapes
