"""Chapter 04's records: a row per request, a run's metrics, and files that say where they came from."""

import csv
import json
import math

import pytest

from specbook import lossless, profiles, results, stages
from specbook.engines import Generation
from specbook.evaluation import grade

ROWS = [{"id": "q1", "answer": "12"}, {"id": "q2", "answer": "7"}, {"id": "q3", "answer": "5"}]


def generations(accepted_at=(2, 1), second="Answer: 8"):
    return [
        Generation(
            "2 * 6 = 12\nAnswer: 12",
            [5, 6, 7, 8],
            "stop",
            0.2,
            0.05,
            steps=2,
            proposed=4,
            accepted=2,
            accepted_at=[1, 1],
            draft_s=0.03,
            target_s=0.1,
        ),
        Generation(second, [5, 9], "stop", latency_s=0.1, ttft_s=0.04, steps=1, proposed=2, accepted=1, accepted_at=[1, 0]),
        Generation(
            "5 + 5 + 5", [1, 1, 1, 1, 1, 1], "length", latency_s=0.4, ttft_s=0.06, steps=5, proposed=10, accepted=1, accepted_at=[1, 0]
        ),
    ]


def test_request_rows_carry_every_counter_and_the_comparison_with_the_target_alone():
    plain = grade(ROWS, generations())
    spec = grade(ROWS, generations(second="Answer: 7"))
    spec.generations[1].token_ids = [5, 10]
    rows = results.request_rows(spec, plain)
    assert rows[0] == {
        "id": "q1",
        "gold": "12",
        "predicted": "12",
        "correct": True,
        "tokens": 4,
        "finish_reason": "stop",
        "ttft_s": 0.05,
        "latency_s": 0.2,
        "steps": 2,
        "proposed": 4,
        "accepted": 2,
        "draft_s": 0.03,
        "target_s": 0.1,
        "accepted_at_1": 1,
        "accepted_at_2": 1,
        "identical_to_plain": True,
    }
    assert [r["identical_to_plain"] for r in rows] == [True, False, True]
    assert [r["finish_reason"] for r in rows] == ["stop", "stop", "length"]  # a truncated answer stays, counted
    assert "identical_to_plain" not in results.request_rows(plain)[0]


def test_run_metrics():
    plain = grade(ROWS, generations())
    spec = grade(ROWS, generations(second="Answer: 7"))
    spec.generations[1].token_ids = [5, 10]
    m = results.run_metrics(spec, plain)
    assert (m["requests"], m["correct"], m["truncated"]) == (3, 2, 1)
    assert m["accuracy"] == 2 / 3 and 0 < m["accuracy_ci"][0] < 2 / 3 < m["accuracy_ci"][1] < 1
    assert m["identical_to_plain"] == 2 / 3 and m["differing_ids"] == ["q2"]
    assert (m["proposed"], m["accepted"], m["steps"]) == (16, 4, 8) and m["acceptance_rate"] == 0.25
    assert m["latency_median_s"] == 0.2 and math.isclose(m["latency_p90_s"], 0.36)  # numpy's linear interpolation
    assert m["tokens_per_request"] == 12 / 3 and math.isclose(m["tokens_per_s"], 12 / 0.7)
    assert "near_tie" not in m  # no classification asked for


def test_run_metrics_and_rows_carry_the_kind_of_each_difference():
    plain = grade(ROWS, generations())
    spec = grade(ROWS, generations(second="Answer: 7"))
    kinds = [lossless.Difference("identical"), lossless.Difference("near-tie", 1, 9, 10, 0.01, 0.06), lossless.Difference("identical")]
    m = results.run_metrics(spec, plain, kinds)
    assert (m["near_tie"], m["mismatch"], m["near_tie_ids"], m["mismatch_ids"]) == (1 / 3, 0.0, ["q2"], [])
    assert [r["lossless"] for r in results.request_rows(spec, plain, kinds)] == ["identical", "near-tie", "identical"]


RUN = results.Run("easy", "cod", "distilled", 2, 0.0, "native", "timed")


def test_a_run_is_written_as_csv_jsonl_and_json_with_its_fields_and_provenance(tmp_path):
    s = grade(ROWS, generations())
    s.generations[0].step_accepts, s.generations[0].rejections, s.generations[0].round_latencies_s = [1, 1], [(1, 9, 6)], [0.2, 0.3, 0.1]
    P = profiles.load("smoke")
    source = results.provenance(P, "native", {"k": 2})
    path = results.write(tmp_path / "results", RUN, s, results.run_metrics(s), source)
    assert path.name == "easy_cod_distilled_k2_t0_timed.json"
    record = json.loads(path.read_text())
    assert record["run"] == RUN.name and record["metrics"]["accuracy"] == 1 / 3
    assert (record["level"], record["target"], record["draft"], record["k"], record["temperature"]) == ("easy", "cod", "distilled", 2, 0.0)
    assert (record["engine"], record["request_set"]) == ("native", "timed") and record["metrics"]["alpha"] is not None
    p = record["provenance"]
    assert p["profile"] == "smoke" and p["config_hash"] == profiles.config_hash(P) and p["engine"] == "native"
    assert p["commit"] and p["settings"] == {"k": 2} and {"torch", "transformers"} <= set(p["versions"])
    assert {"cpu", "cores", "torch_threads"} <= set(p["machine"])
    with open(tmp_path / "results" / f"{RUN.name}.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["id"] for r in rows] == ["q1", "q2", "q3"] and rows[2]["finish_reason"] == "length"
    requests = results.load_requests(tmp_path / "results", RUN.name)
    first = requests.iloc[0]
    assert first.text == "2 * 6 = 12\nAnswer: 12" and first.token_ids == [5, 6, 7, 8] and first.correct
    assert first.step_accepts == [1, 1] and first.rejections == [[1, 9, 6]] and first.round_latencies_s == [0.2, 0.3, 0.1]
    assert list(requests.id) == ["q1", "q2", "q3"] and requests.iloc[2].rejections == []


def test_runs_load_as_one_table_with_their_fields(tmp_path):
    s = grade(ROWS, generations())
    source = results.provenance(profiles.load("smoke"), "native", {})
    alone = results.Run("easy", "cod", "alone", 0, 0.0, "native", "timed")
    results.write(tmp_path, alone, s, results.run_metrics(s), source)
    sampled = results.Run("easy", "cod", "alone", 0, 0.7, "native", "sampled")  # once a name collision (`easy_cod_alone`)
    results.write(tmp_path, sampled, s, results.run_metrics(s), source)
    results.write(tmp_path, RUN, s, {**results.run_metrics(s, s), **results.speedup(s, s)}, source)
    runs = results.load_runs(tmp_path).set_index("run")
    assert len(runs) == 3 and runs.loc[RUN.name, "speedup"] == 1.0 and runs.loc[RUN.name, "identical_to_plain"] == 1.0
    assert runs.loc[sampled.name, "temperature"] == 0.7 and runs.loc[alone.name, "draft"] == "alone"
    assert runs.loc[RUN.name, "accuracy_low"] < 1 / 3 < runs.loc[RUN.name, "accuracy_high"]
    assert "profile smoke" in results.provenance_line(runs) and "commit " in results.provenance_line(runs)
    with pytest.raises(FileNotFoundError, match="chapter 04 writes them"):
        results.load_runs(tmp_path / "empty")


def test_a_run_is_named_by_its_fields_and_refuses_what_cannot_be():
    assert results.Run("hard", "cot", "ngram", 5, 0.7, "native", "all").name == "hard_cot_ngram_k5_t07_all"
    with pytest.raises(ValueError, match="request_set is 'some'"):
        results.Run("easy", "cod", "alone", 0, 0.0, "native", "some")
    with pytest.raises(ValueError, match="a target alone has k = 0"):
        results.Run("easy", "cod", "alone", 5, 0.0, "native", "all")


def test_speedup_keeps_each_rounds_ratio_and_marks_a_run_whose_rounds_disagree():
    plain, spec = grade(ROWS, generations()), grade(ROWS, generations())
    for g in plain.generations:
        g.round_latencies_s = [2.0, 2.0, 2.0]
    for g, rounds in zip(spec.generations, ([1.0, 1.0, 1.0], [1.0, 1.0, 0.8], [1.0, 1.0, 1.0]), strict=True):
        g.round_latencies_s = rounds
    steady = results.speedup(plain, spec)
    assert steady["speedup_rounds"] == [2.0, 2.0, 2.0] and steady["round_spread"] == 0.0 and not steady["unstable"]
    spec.generations[1].round_latencies_s = [1.0, 1.0, 0.5]
    spec.generations[2].round_latencies_s = [1.0, 1.0, 0.5]  # round 3: twice as fast on most requests
    shaky = results.speedup(plain, spec)
    assert shaky["speedup_rounds"] == [2.0, 2.0, 4.0] and shaky["round_spread"] == 1.0 and shaky["unstable"]


def test_a_value_that_is_not_a_number_is_written_as_null(tmp_path):
    s = grade(ROWS[:1], [Generation("Answer: 12", [1], "stop", latency_s=0.1)])  # plain: no draft, so no acceptance rate
    path = results.write(tmp_path, results.Run("easy", "cod", "alone", 0, 0.0, "native", "all"), s, results.run_metrics(s), {})
    assert json.loads(path.read_text())["metrics"]["acceptance_rate"] is None  # strict JSON: no NaN


def test_results_reads_a_run_its_requests_and_pairs_two_runs_by_problem(tmp_path):
    s = grade(ROWS, generations())
    source = results.provenance(profiles.load("smoke"), "native", {})
    alone = results.Run("easy", "cod", "alone", 0, 0.0, "native", "timed")
    results.write(tmp_path, alone, s, results.run_metrics(s), source)
    results.write(tmp_path, RUN, s, {**results.run_metrics(s, s), **results.speedup(s, s)}, source)
    R = results.Results(tmp_path)
    assert R.engine == "native" and R.run("easy", "cod", "distilled", 2, "timed").speedup == 1.0
    a, b = R.requests("easy", "cod", request_set="timed"), R.requests("easy", "cod", "distilled", 2, "timed")
    assert R.requests("easy", "cod", request_set="timed") is a  # each file read once
    first, second = R.paired(a, b.iloc[::-1], "correct")  # matched by id, whatever the order
    assert list(first) == list(second) == [True, False, False]


def test_a_results_file_changed_after_chapter_04_wrote_it_is_refused(tmp_path):
    s = grade(ROWS, generations())
    results.write(tmp_path, RUN, s, results.run_metrics(s), results.provenance(profiles.load("smoke"), "native", {}))
    assert len(results.load_runs(tmp_path)) == 1  # the folder's manifest is not a run
    csv_path = tmp_path / f"{RUN.name}.csv"
    csv_path.write_text(csv_path.read_text().replace("q1", "q9"))
    with pytest.raises(stages.DamagedArtifact, match=f"{RUN.name}.csv is damaged"):
        results.load_runs(tmp_path)
