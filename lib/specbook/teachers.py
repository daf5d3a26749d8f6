"""Teachers write a Chain of Thought (CoT) and a Chain of Draft (CoD) for every problem.

One interface, `teacher.write(problems) -> {id: Rationales}`, three teachers:
- TemplateTeacher (offline): the rules of `template_rules`, from the gold solution or the metadata.
- GeminiTeacher: the Gemini Batch API writes the CoT, then summarises each correct CoT to a CoD.
- LocalModelTeacher: the same two passes through a local model and the profile's generation engine.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from specbook import prompts, stages
from specbook.answers import extract_answer, is_correct
from specbook.problems import Problem
from specbook.template_rules import Rationales, gsm_rationales, leg_rationales

if TYPE_CHECKING:
    from specbook.profiles import Engine, Teacher


class TemplateTeacher:
    name = "template"

    def write(self, problems: list[Problem]) -> dict[str, Rationales]:
        out = {}
        for p in problems:
            if p.source == "leg_counting":
                out[p.id] = leg_rationales(p.meta["animals"], p.answer)
            elif "####" in p.solution:
                out[p.id] = gsm_rationales(p.solution, p.answer)
            else:
                raise ValueError(
                    f"{p.id}: the template teacher needs a GSM-format gold solution ('... #### answer'); "
                    f"use teacher.kind gemini or local for {p.source}"
                )
        return out


# ------------------------------------------------------------------ model teachers


def _two_pass(problems: list[Problem], generate) -> dict[str, Rationales]:
    """CoT for every problem, then a CoD summary of each CoT whose answer is right.
    `generate(stage, [(key, system, user)]) -> {key: {'text'} | {'error'}}`."""
    by_id = {p.id: p for p in problems}
    cot = generate("cot", [(p.id, prompts.TEACHER_COT_SYSTEM, prompts.teacher_cot_user(p.question)) for p in problems])
    correct = [p for p in problems if "text" in cot.get(p.id, {}) and is_correct(extract_answer(cot[p.id]["text"]), p.answer)]
    cod = generate(
        "cod", [(p.id, prompts.TEACHER_COD_SYSTEM, prompts.teacher_cod_user(p.question, cot[p.id]["text"].strip())) for p in correct]
    )
    out = {}
    for pid in by_id:
        c, d = cot.get(pid, {}), cod.get(pid, {})
        error = c.get("error") or d.get("error") or (None if "text" in c else "no response")
        out[pid] = Rationales(
            cot=c["text"].strip() if "text" in c else None,
            cod=d["text"].strip() if "text" in d else None,
            error=error,
        )
    return out


class GeminiTeacher:
    """CoT then CoD through the Batch API; each pass resumes from its own folder."""

    name = "gemini"

    def __init__(
        self,
        model: str,
        workdir: Path,
        temperature: float,
        max_new_tokens: int,
        poll_seconds: float,
        thinking: str | int | None = None,
        client=None,
        sleep=time.sleep,
    ):
        from specbook import gemini

        self.client = client if client is not None else gemini.make_client()
        self.model, self.workdir = model, Path(workdir)
        self.temperature, self.max_new_tokens = temperature, max_new_tokens
        self.poll_seconds, self.thinking, self.sleep = poll_seconds, thinking, sleep

    def _generate(self, stage, items):
        from specbook import gemini

        requests = [
            gemini.build_request(key, system, user, self.temperature, self.max_new_tokens, self.thinking) for key, system, user in items
        ]
        runner = gemini.BatchRunner(self.client, self.model, self.workdir / stage, self.poll_seconds, sleep=self.sleep)
        return runner.run(requests)

    def write(self, problems: list[Problem]) -> dict[str, Rationales]:
        return _two_pass(problems, self._generate)


class LocalModelTeacher:
    """CoT then CoD from a local model through a generation engine (no API key needed). Each
    answer is appended as it is made (`engines.generate_resumable`), so an interrupted run resumes."""

    name = "local"

    def __init__(self, engine, workdir: Path, max_new_tokens: int, temperature: float = 0.0, seed: int = 0):
        from specbook.engines import Sampling

        self.engine, self.workdir = engine, Path(workdir)
        self.sampling = Sampling(max_new_tokens=max_new_tokens, temperature=temperature, seed=seed)

    def _generate(self, stage, items):
        from specbook.engines import generate_resumable

        keyed = [(key, prompts.chat_prompt(self.engine.tokenizer, system, user)) for key, system, user in items]
        rows = generate_resumable(self.engine, keyed, self.sampling, self.workdir / stage / "results.jsonl", desc=f"local teacher, {stage}")
        return {key: {"text": r["text"]} if r["finish_reason"] == "stop" else {"error": "hit max_new_tokens"} for key, r in rows.items()}

    def write(self, problems: list[Problem]) -> dict[str, Rationales]:
        return _two_pass(problems, self._generate)


def make(cfg: Teacher, engine_cfg: Engine, workdir: Path, seed: int) -> TemplateTeacher | GeminiTeacher | LocalModelTeacher:
    """The profile's teacher (profiles.Teacher); a local model runs on the profile's engine (profiles.Engine).
    A model teacher's finished answers in `workdir` are resumed only when they were written with
    the same model, settings and prompts; otherwise they are cleared."""
    if cfg.kind == "template":
        return TemplateTeacher()
    answers_from = {"model": cfg.model, "temperature": cfg.temperature, "max_new_tokens": cfg.max_new_tokens, "seed": seed}
    if cfg.thinking is not None:  # only where set, so that the folders of answers made before it stay theirs
        answers_from["thinking"] = cfg.thinking
    workdir = stages.work_folder(workdir / cfg.kind, stages.fingerprint({**answers_from, "prompts": stages.file_hash(prompts.__file__)}))
    if cfg.kind == "gemini":
        return GeminiTeacher(cfg.model, workdir, cfg.temperature, cfg.max_new_tokens, cfg.poll_seconds, cfg.thinking)
    from specbook import engines

    return LocalModelTeacher(engines.make(engine_cfg, cfg.model, seed), workdir, cfg.max_new_tokens, cfg.temperature, seed)
