import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from specbook import gemini, jsonl, profiles
from specbook.problems import Problem
from specbook.teachers import GeminiTeacher

RECORDED = Path(__file__).parent / "data" / "gemini_batch_output.jsonl"


class FakeGemini:
    """The slice of google-genai's Client that the batch runner uses, answering like the Batch
    API: upload a JSONL file, create a job from it, report states, serve the output file."""

    def __init__(self, answer, states=("JOB_STATE_PENDING", "JOB_STATE_RUNNING", "JOB_STATE_SUCCEEDED")):
        self.answer, self.states = answer, states
        self.uploads, self.jobs, self.polls = {}, {}, []
        self.files = SimpleNamespace(upload=self._upload, download=self._download)
        self.batches = SimpleNamespace(create=self._create, get=self._get)

    def _upload(self, *, file, config):
        name = f"files/input-{len(self.uploads)}"
        self.uploads[name] = jsonl.read(file)
        assert config.mime_type == "jsonl"
        return SimpleNamespace(name=name)

    def _create(self, *, model, src, config):
        name = f"batches/{len(self.jobs)}"
        self.jobs[name] = {"model": model, "requests": self.uploads[src], "polls": 0}
        return SimpleNamespace(name=name, state=SimpleNamespace(name="JOB_STATE_PENDING"))

    def _get(self, *, name):
        job = self.jobs[name]
        state = self.states[min(job["polls"], len(self.states) - 1)]
        job["polls"] += 1
        self.polls.append(name)
        return SimpleNamespace(
            name=name, state=SimpleNamespace(name=state), dest=SimpleNamespace(file_name=f"files/out-{name}"), error=None
        )

    def _download(self, *, file):
        job = self.jobs[file.removeprefix("files/out-")]
        lines = []
        for r in job["requests"]:
            text = self.answer(r)
            response = {"candidates": [{"content": {"parts": [{"text": text}], "role": "model"}, "finishReason": "STOP"}]}
            lines.append(json.dumps({"key": r["key"], "response": response}))
        return "\n".join(lines).encode()


def echo(request):
    return "echo: " + request["request"]["contents"][0]["parts"][0]["text"]


def _requests(keys):
    return [gemini.build_request(k, "system", f"question {k}", 0.0, 64) for k in keys]


def test_request_format():
    assert gemini.build_request("p1", "Be brief.", "2+2?", 0.0, 128) == {
        "key": "p1",
        "request": {
            "contents": [{"role": "user", "parts": [{"text": "2+2?"}]}],
            "system_instruction": {"parts": [{"text": "Be brief."}]},
            "generation_config": {"temperature": 0.0, "max_output_tokens": 128},
        },
    }


def test_the_full_profiles_request_asks_its_model_for_minimal_thinking():
    """The request the full profile's teacher sends, as google-genai's own types read it."""
    from google.genai import types

    cfg = profiles.load("full").teacher
    request = gemini.build_request("p1", "Be brief.", "2+2?", cfg.temperature, cfg.max_new_tokens, cfg.thinking)["request"]
    config = types.GenerationConfig.model_validate(request["generation_config"])  # unknown fields are refused
    assert config.thinking_config.thinking_level == types.ThinkingLevel.MINIMAL and config.max_output_tokens == cfg.max_new_tokens
    # not the retired gemini-3.5-flash (its requests are routed to another model); no temperature: Gemini 3.6
    # deprecates the sampling parameters and the Gemini 3 guide keeps the default for maths
    assert cfg.model == "gemini-3.6-flash" and "temperature" not in request["generation_config"] and config.temperature is None
    budget = gemini.build_request("p1", "s", "u", 0.0, 64, thinking=0)["request"]["generation_config"]
    assert types.GenerationConfig.model_validate(budget).thinking_config.thinking_budget == 0  # Gemini 2.5: no thinking


def test_recorded_results_are_parsed_by_key():
    rows = [gemini.parse_result_line(json.loads(line)) for line in RECORDED.read_text().splitlines()]
    assert rows == [
        {"key": "gsm-1", "text": "He has 16 - 3 = 13 eggs left.\nAnswer: 13"},
        {"key": "gsm-2", "text": "6 * 2 = 12 inches.\nAnswer: 12"},  # the thought part is left out
        {"key": "gsm-3", "error": "empty response (SAFETY)"},
        {"key": "gsm-4", "error": "Request contains an invalid argument."},
    ]


def test_missing_api_key_says_how_to_fix_it(monkeypatch):
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    with pytest.raises(gemini.MissingApiKey, match=r"GEMINI_API_KEY is not set.*teacher.kind: template"):
        gemini.make_client()


def test_run_polls_with_backoff_and_joins_by_key(tmp_path):
    client, sleeps = FakeGemini(echo, states=("JOB_STATE_PENDING",) * 5 + ("JOB_STATE_SUCCEEDED",)), []
    runner = gemini.BatchRunner(client, "gemini-x", tmp_path, poll_seconds=10, sleep=sleeps.append, log=lambda m: None)
    out = runner.run(_requests(["b", "a"]))
    assert out == {"b": {"key": "b", "text": "echo: question b"}, "a": {"key": "a", "text": "echo: question a"}}
    assert sleeps == [10, 20, 40, 80, 80]  # doubling, capped at 8x
    assert client.jobs["batches/0"]["model"] == "gemini-x"
    assert not (tmp_path / "job.json").exists()


def test_finished_keys_are_never_resubmitted(tmp_path):
    client = FakeGemini(echo)
    runner = gemini.BatchRunner(client, "m", tmp_path, 1, sleep=lambda s: None, log=lambda m: None)
    runner.run(_requests(["a", "b"]))
    out = runner.run(_requests(["a", "b", "c"]))
    assert [r["key"] for r in client.jobs["batches/1"]["requests"]] == ["c"]
    assert set(out) == {"a", "b", "c"}
    runner.run(_requests(["a", "b", "c"]))
    assert len(client.jobs) == 2  # nothing left to submit


def test_a_crash_while_polling_resumes_the_same_job(tmp_path):
    client = FakeGemini(echo, states=("JOB_STATE_RUNNING", "JOB_STATE_RUNNING", "JOB_STATE_SUCCEEDED"))

    def crash(seconds):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        gemini.BatchRunner(client, "m", tmp_path, 1, sleep=crash, log=lambda m: None).run(_requests(["a", "b"]))
    assert json.loads((tmp_path / "job.json").read_text())["job"] == "batches/0"
    out = gemini.BatchRunner(client, "m", tmp_path, 1, sleep=lambda s: None, log=lambda m: None).run(_requests(["a", "b"]))
    assert len(client.jobs) == 1 and set(out) == {"a", "b"}


def test_a_failed_job_raises_and_the_next_run_resubmits(tmp_path):
    client = FakeGemini(echo, states=("JOB_STATE_FAILED",))
    runner = gemini.BatchRunner(client, "m", tmp_path, 1, sleep=lambda s: None, log=lambda m: None)
    with pytest.raises(gemini.BatchFailed, match="JOB_STATE_FAILED"):
        runner.run(_requests(["a"]))
    client.states = ("JOB_STATE_SUCCEEDED",)
    assert set(runner.run(_requests(["a"]))) == {"a"}
    assert len(client.jobs) == 2


def test_gemini_teacher_summarises_only_correct_cots(tmp_path):
    def answer(request):
        user = request["request"]["contents"][0]["parts"][0]["text"]
        if "Step-by-step solution" in user:  # the CoD pass
            return "16-3=13\nAnswer: 13"
        return "She has 16 - 3 = 13 eggs.\nAnswer: 13" if "eggs" in user else "It is 5.\nAnswer: 5"

    client = FakeGemini(answer)
    teacher = GeminiTeacher("m", tmp_path, 0.0, 256, 1, client=client, sleep=lambda s: None)
    problems = [Problem("e", "easy", "16 eggs, 3 eaten: how many eggs?", "13", "", "x"), Problem("w", "easy", "What is 2+2?", "4", "", "x")]
    written = teacher.write(problems)
    assert [r["key"] for r in client.jobs["batches/1"]["requests"]] == ["e"]
    assert written["e"].cod == "16-3=13\nAnswer: 13"
    assert written["w"].cot == "It is 5.\nAnswer: 5" and written["w"].cod is None
