"""Chapter 04's records: a row per request, a run's metrics, and files that say where they came from."""

import csv
import json
import math

from specbook import profiles, results
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


def test_a_run_is_written_as_csv_and_json_with_its_provenance(tmp_path):
    s = grade(ROWS, generations())
    P = profiles.load("smoke")
    source = results.provenance(P, "native", {"k": 2})
    path = results.write(tmp_path / "results", "easy_cod_alone", results.request_rows(s), results.run_metrics(s), source)
    record = json.loads(path.read_text())
    assert record["run"] == "easy_cod_alone" and record["metrics"]["accuracy"] == 1 / 3
    assert record["metrics"]["alpha"] is not None
    p = record["provenance"]
    assert p["profile"] == "smoke" and p["config_hash"] == profiles.config_hash(P) and p["engine"] == "native"
    assert p["commit"] and p["settings"] == {"k": 2} and {"torch", "transformers"} <= set(p["versions"])
    assert {"cpu", "cores", "torch_threads"} <= set(p["machine"])
    with open(tmp_path / "results" / "easy_cod_alone.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["id"] for r in rows] == ["q1", "q2", "q3"] and rows[2]["finish_reason"] == "length"


def test_a_value_that_is_not_a_number_is_written_as_null(tmp_path):
    s = grade(ROWS[:1], [Generation("Answer: 12", [1], "stop", latency_s=0.1)])  # plain: no draft, so no acceptance rate
    path = results.write(tmp_path, "plain", results.request_rows(s), results.run_metrics(s), {})
    assert json.loads(path.read_text())["metrics"]["acceptance_rate"] is None  # strict JSON: no NaN
