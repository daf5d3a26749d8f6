"""Gemini Batch API (google-genai): build request JSONL, upload, create the batch, poll with
backoff, download and join results by key. Resumable: finished keys live in results.jsonl, the
job in flight in job.json, so a restarted run never resubmits finished work and picks up a job
that is still running.

File formats (Gemini API batch mode): each input line is {"key": ..., "request":
GenerateContentRequest}; each output line is {"key": ..., "response": GenerateContentResponse}
or {"key": ..., "error"/"status": {...}}.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from specbook import jsonl

if TYPE_CHECKING:
    from google import genai

TERMINAL = {"JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED"}


class MissingApiKey(RuntimeError):
    pass


class BatchFailed(RuntimeError):
    pass


def api_key() -> str:
    key = os.environ.get("GEMINI_API_KEY") or os.environ.get("GOOGLE_API_KEY")
    if not key:
        raise MissingApiKey(
            "GEMINI_API_KEY is not set. Create a key at https://aistudio.google.com/apikey and "
            "`export GEMINI_API_KEY=...` before running, or set `teacher.kind: template` (offline) "
            "or `teacher.kind: local` in the profile."
        )
    return key


def make_client() -> genai.Client:
    from google import genai

    return genai.Client(api_key=api_key())


THINKING_LEVELS = ("minimal", "low", "medium", "high")


def thinking_config(thinking: str | int) -> dict:
    """Gemini's `thinking_config` for the profile's `teacher.thinking`: a level for Gemini 3 models
    (`THINKING_LEVELS`), a token budget for Gemini 2.5 (0: none); unset, the model's default applies.
    Thought tokens count against `max_output_tokens`: a model left to think at length writes an empty
    or cut answer, so the book asks for as little as the model allows and the rationale is the answer."""
    if isinstance(thinking, str):
        return {"thinking_level": thinking.upper()}
    return {"thinking_budget": thinking}


def build_request(
    key: str, system: str, user: str, temperature: float | None, max_output_tokens: int, thinking: str | int | None = None
) -> dict:
    """One line of a batch's input file: the key and a GenerateContentRequest. `temperature` None:
    none sent, the model's default (what Gemini 3 models take: their sampling parameters are deprecated)."""
    generation_config = {"max_output_tokens": max_output_tokens}
    if temperature is not None:
        generation_config["temperature"] = temperature
    if thinking is not None:
        generation_config["thinking_config"] = thinking_config(thinking)
    return {
        "key": key,
        "request": {
            "contents": [{"role": "user", "parts": [{"text": user}]}],
            "system_instruction": {"parts": [{"text": system}]},
            "generation_config": generation_config,
        },
    }


def response_text(response: dict) -> str | None:
    """The answer text of a GenerateContentResponse (thought parts left out)."""
    candidates = response.get("candidates") or []
    if not candidates:
        return None
    parts = (candidates[0].get("content") or {}).get("parts") or []
    text = "".join(p.get("text", "") for p in parts if not p.get("thought"))
    return text or None


def parse_result_line(row: dict) -> dict:
    """{'key', 'text'} for a response, {'key', 'error'} for a failed request."""
    key = row.get("key")
    if key is None:
        raise ValueError(f"batch result line without a key: {str(row)[:200]}")
    if "response" in row:
        text = response_text(row["response"])
        if text is not None:
            return {"key": key, "text": text}
        reason = ((row["response"].get("candidates") or [{}])[0]).get("finishReason", "no candidates")
        return {"key": key, "error": f"empty response ({reason})"}
    error = row.get("error") or row.get("status") or {}
    return {"key": key, "error": error.get("message", json.dumps(error))}


def _state(job) -> str:
    state = job.state
    return getattr(state, "name", None) or str(state)


class BatchRunner:
    """Runs one set of keyed requests through the Batch API, resumably, in `workdir`."""

    def __init__(self, client, model: str, workdir: str | Path, poll_seconds: float, sleep=time.sleep, log=print):
        self.client = client
        self.model = model
        self.workdir = Path(workdir)
        self.poll_seconds = poll_seconds
        self.sleep = sleep
        self.log = log
        self.results_path = self.workdir / "results.jsonl"
        self.job_path = self.workdir / "job.json"

    def results(self) -> dict[str, dict]:
        return {r["key"]: r for r in jsonl.read_log(self.results_path)}

    def run(self, requests: list[dict]) -> dict[str, dict]:
        self.workdir.mkdir(parents=True, exist_ok=True)
        done = self.results()
        pending = [r for r in requests if r["key"] not in done]
        if pending:
            self.log(f"gemini batch: {len(done)} keys done, {len(pending)} to run")
            job_name = self._job_in_flight({r["key"] for r in pending}) or self._submit(pending)
            job = self._wait(job_name)
            self._collect(job, {r["key"] for r in pending})
            self.job_path.unlink(missing_ok=True)
            done = self.results()
        return {r["key"]: done[r["key"]] for r in requests if r["key"] in done}

    def _job_in_flight(self, pending_keys: set[str]) -> str | None:
        if not self.job_path.exists():
            return None
        saved = json.loads(self.job_path.read_text())
        if set(saved["keys"]) <= pending_keys:
            self.log(f"gemini batch: resuming job {saved['job']}")
            return saved["job"]
        return None

    def _submit(self, pending: list[dict]) -> str:
        from google.genai import types

        path = jsonl.write(self.workdir / "requests.jsonl", pending)
        uploaded = self.client.files.upload(file=str(path), config=types.UploadFileConfig(display_name=path.parent.name, mime_type="jsonl"))
        job = self.client.batches.create(model=self.model, src=uploaded.name, config={"display_name": f"specbook-{path.parent.name}"})
        # Saved before polling: a crash from here on resumes this job instead of paying twice.
        self.job_path.write_text(json.dumps({"job": job.name, "input_file": uploaded.name, "keys": [r["key"] for r in pending]}))
        self.log(f"gemini batch: created {job.name} with {len(pending)} requests")
        return job.name

    def _wait(self, name: str):
        wait = self.poll_seconds
        while True:
            job = self.client.batches.get(name=name)
            state = _state(job)
            if state in TERMINAL:
                return job
            self.log(f"gemini batch: {name} is {state}; next check in {wait:.0f} s")
            self.sleep(wait)
            wait = min(wait * 2, self.poll_seconds * 8)

    def _collect(self, job, pending_keys: set[str]) -> None:
        state = _state(job)
        if state != "JOB_STATE_SUCCEEDED":
            self.job_path.unlink(missing_ok=True)
            raise BatchFailed(
                f"batch {job.name} ended in {state}: {getattr(job, 'error', None)}; run again to resubmit the unfinished keys"
            )
        content = self.client.files.download(file=job.dest.file_name)
        rows = [parse_result_line(json.loads(line)) for line in content.decode("utf-8").splitlines() if line.strip()]
        jsonl.append(self.results_path, [r for r in rows if r["key"] in pending_keys])
