"""The engines' interface and its types (`Sampling`, `Speculative`, `Generation`), what every engine
shares (prompts to token ids, stop strings, end-of-sequence ids), the base of the two in-process
engines, and `generate_resumable`. It imports no engine: each engine module imports it."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from specbook import jsonl, models, specdec

if TYPE_CHECKING:
    from transformers import PreTrainedModel


METHODS = ("draft_model", "ngram")


@dataclass(frozen=True)
class Sampling:
    max_new_tokens: int
    temperature: float = 0.0  # 0: greedy
    top_p: float = 1.0
    seed: int = 0  # request i is seeded with seed + i
    stop: tuple[str, ...] = ()  # stop strings: generation ends once one appears; the text ends before it

    def __post_init__(self):
        specdec.check_decoding(0, self.max_new_tokens, self.temperature, self.top_p)
        if not specdec.is_whole(self.seed):
            raise ValueError(f"seed is {self.seed!r}; it must be a whole number")
        if isinstance(self.stop, str) or not all(isinstance(s, str) and s for s in self.stop):
            raise ValueError(f"stop is {self.stop!r}; it must be a tuple of non-empty strings, e.g. stop=('\\n\\n',)")
        object.__setattr__(self, "stop", tuple(self.stop))  # a list from a config file is fine too


@dataclass(frozen=True)
class Speculative:
    """How to speculate. `draft_model`: a small model proposes K tokens; `draft` is its path or
    Hub id (the in-process engines also take a loaded model). `ngram`: prompt lookup proposes up
    to K tokens that followed the latest n-gram (n <= ngram_max) where it first occurred in the context."""

    method: str
    k: int
    draft: Any = None
    ngram_max: int = 3

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"unknown speculative method {self.method!r}; choose one of {', '.join(METHODS)}")
        if not specdec.is_whole(self.k) or self.k < 1:
            raise ValueError(f"speculative k is {self.k!r}; it must be a whole number >= 1 (run without `speculative` for plain decoding)")
        if not specdec.is_whole(self.ngram_max) or self.ngram_max < 1:
            raise ValueError(f"ngram_max is {self.ngram_max!r}; it must be a whole number >= 1")
        if (self.method == "draft_model") != (self.draft is not None):
            raise ValueError("method 'draft_model' needs `draft` (a model or its path); 'ngram' takes none")


@dataclass
class Generation:
    text: str
    token_ids: list[int]  # generated tokens, the end-of-sequence token included when one was generated
    finish_reason: str  # "stop" (end of sequence or a stop string) or "length" (max_new_tokens reached)
    latency_s: float
    ttft_s: float | None = None  # time to first token; None where the engine cannot tell
    steps: int = 0  # target forward passes (plain decoding: one per token)
    proposed: int = 0  # draft tokens proposed
    accepted: int = 0  # draft tokens accepted
    accepted_at: list[int] = field(default_factory=list)  # per draft position: steps that accepted it
    # per draft position: steps that proposed it after accepting every one before it; empty where
    # the engine cannot tell (vLLM), and `metrics.estimate_alpha` then assumes every step proposed K
    tested_at: list[int] = field(default_factory=list)
    # per target pass, the draft tokens it accepted; every rejection as (position in the answer, the
    # draft's token, the target's token there); empty where the engine cannot tell (vLLM)
    step_accepts: list[int] = field(default_factory=list)
    rejections: list[tuple[int, int, int]] = field(default_factory=list)
    # a request timed in several rounds (`bench.timed_requests`): each round's latency (the record
    # is its median round's, the faster of the middle two of an even count)
    round_latencies_s: list[float] = field(default_factory=list)
    # after the first step, seconds inside the draft's and the target's forward passes (native engine; None elsewhere)
    draft_s: float | None = None
    target_s: float | None = None


def check_batch_size(batch_size, speculative: Speculative | None, engine: str) -> None:
    if not specdec.is_whole(batch_size) or batch_size < 1:
        raise ValueError(f"batch_size is {batch_size!r}; it must be a whole number >= 1 (1: one request at a time, for latency)")
    if batch_size > 1 and speculative is not None:
        raise ValueError(
            f"the {engine} engine speculates one request at a time (batch_size=1): speculation is measured per request; "
            f"run batched work without `speculative`"
        )


def eos_token_ids(model, tokenizer) -> set[int]:
    """The tokenizer's end of sequence plus any the model's generation config names (Qwen3 lists two)."""
    ids = {tokenizer.eos_token_id if tokenizer is not None else None}
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids.update(configured if isinstance(configured, list) else [configured])
    return {i for i in ids if i is not None}


def stop_string_cut(tokenizer, token_ids: list[int], stop: tuple[str, ...]) -> int | None:
    """How many tokens to keep once a stop string has appeared (up to the token that completes
    it), or None. Text only grows with tokens, so the shortest such prefix is found by bisection."""
    if not stop or not any(s in tokenizer.decode(token_ids) for s in stop):
        return None
    lo, hi = 1, len(token_ids)
    while lo < hi:
        mid = (lo + hi) // 2
        if any(s in tokenizer.decode(token_ids[:mid]) for s in stop):
            hi = mid
        else:
            lo = mid + 1
    return lo


def decode_text(tokenizer, token_ids: list[int], stop: tuple[str, ...]) -> str:
    """The answer's text: special tokens dropped, cut before the first stop string ('' without a tokenizer)."""
    if tokenizer is None:
        return ""
    text = tokenizer.decode(token_ids, skip_special_tokens=True)
    cuts = [text.find(s) for s in stop if s in text]
    return text[: min(cuts)] if cuts else text


def check_draft_tokenizer(tokenizer, draft: str) -> None:
    """A draft saved with its own tokenizer must map every id to the same token as the target's."""
    from transformers import AutoTokenizer

    local = Path(draft)
    if local.is_dir() and not (local / "tokenizer_config.json").exists():
        return  # saved without a tokenizer: the vocabulary size check is all there is
    draft_tokenizer = AutoTokenizer.from_pretrained(draft)
    if draft_tokenizer.get_vocab() != tokenizer.get_vocab():
        raise specdec.VocabularyMismatch(
            f"target and draft tokenizers differ: target has {len(tokenizer)} tokens, draft ({draft}) has "
            f"{len(draft_tokenizer)}, and some ids map to different tokens. Train the draft with the target's tokenizer."
        )


def prompt_token_ids(tokenizer, prompts: list[str] | list[list[int]], max_new_tokens: int, context: int | None) -> list[list[int]]:
    """The prompts as token ids (a string is tokenized as it is: its chat template already
    applied), each checked before any is generated: not empty, and with its answer inside the
    model's context."""
    if isinstance(prompts, str):
        raise ValueError("prompts is a string; pass a list of prompts, e.g. [prompt]")
    if tokenizer is None and any(isinstance(p, str) for p in prompts):
        raise ValueError("text prompts need the engine's tokenizer; this engine was made without one (pass token ids)")
    ids = [tokenizer(p, add_special_tokens=False)["input_ids"] if isinstance(p, str) else list(p) for p in prompts]
    for i, one in enumerate(ids):
        specdec.check_prompt(len(one), max_new_tokens, context, what=f"prompt {i}")
    return ids


class InProcess:
    """Shared by the engines that hold a transformers model in this process."""

    name = ""

    def __init__(self, model, tokenizer=None):
        """tokenizer None: prompts are token ids and generations carry no text (chapter 00's models)."""
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.eos = eos_token_ids(model, tokenizer)
        if tokenizer is None:
            self.pad_token_id = 0
        else:
            self.pad_token_id = tokenizer.eos_token_id if tokenizer.pad_token_id is None else tokenizer.pad_token_id
        self._drafts: dict[str, Any] = {}

    @classmethod
    def load(cls, name_or_path: str, **options) -> InProcess:
        from transformers import AutoTokenizer

        return cls(models.load_causal_lm(name_or_path), AutoTokenizer.from_pretrained(name_or_path), **options)

    def draft_model(self, speculative: Speculative) -> PreTrainedModel:
        draft = speculative.draft
        if isinstance(draft, str):
            if draft not in self._drafts:
                if self.tokenizer is not None:
                    check_draft_tokenizer(self.tokenizer, draft)
                self._drafts[draft] = models.load_causal_lm(draft)
            draft = self._drafts[draft]
        specdec.check_pair(self.model.config, draft.config)
        return draft

    def generate(
        self, prompts: list[str] | list[list[int]], sampling: Sampling, speculative: Speculative | None = None, batch_size: int = 1
    ) -> list[Generation]:
        label = f"{self.name} " + (f"{speculative.method} k={speculative.k}" if speculative else "plain")
        if sampling.stop and self.tokenizer is None:
            raise ValueError("stop strings need the engine's tokenizer; this engine was made without one")
        check_batch_size(batch_size, speculative, self.name)
        ids = prompt_token_ids(self.tokenizer, prompts, sampling.max_new_tokens, specdec.context_length(self.model.config))
        if speculative is not None and speculative.method == "draft_model":
            self.draft_model(speculative)  # loaded before the requests' bar: a loading bar nested in it leaves escape codes
        if batch_size > 1:
            starts = range(0, len(ids), batch_size)
            batches = tqdm(starts, desc=f"{label}, batches of {batch_size}", leave=False, disable=len(starts) < 2)
            return [g for start in batches for g in self._batch(ids[start : start + batch_size], sampling, sampling.seed + start)]
        bar = tqdm(ids, desc=label, leave=False, disable=len(ids) < 2)  # no bar for one request (a caller's loop has its own)
        return [self._one(one, sampling, speculative, sampling.seed + i) for i, one in enumerate(bar)]

    def _batch(self, ids: list[list[int]], sampling: Sampling, seed: int) -> list[Generation]:
        """One left-padded batch through transformers' `generate()`; each row ends on its own (EOS,
        stop string or length). latency_s is the batch's time, the same for each of its rows."""
        import torch

        width = max(map(len, ids))
        input_ids = torch.full((len(ids), width), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(input_ids)
        for row, one in enumerate(ids):
            input_ids[row, width - len(one) :] = torch.tensor(one)
            mask[row, width - len(one) :] = 1
        kwargs = {"stopping_criteria": [StopStrings(self.tokenizer, sampling.stop, width)]} if sampling.stop else {}
        torch.manual_seed(seed)
        start = time.perf_counter()
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=input_ids.to(self.model.device),
                attention_mask=mask.to(self.model.device),
                **self._generate_kwargs(sampling),
                **kwargs,
            )
        latency = time.perf_counter() - start
        results = []
        for row in out[:, width:].tolist():
            end = next((j + 1 for j, t in enumerate(row) if t in self.eos), None)  # finished rows are padded after their EOS
            new = row[:end] if end is not None else row
            keep = stop_string_cut(self.tokenizer, new, sampling.stop)
            new = new[:keep] if keep is not None else new
            finished = keep is not None or end is not None
            results.append(self._finish(new, "stop" if finished else "length", sampling, latency_s=latency, steps=len(new)))
        return results

    def _generate_kwargs(self, sampling: Sampling) -> dict:
        """transformers' `generate()` arguments for `sampling` (at batch 1 and in batches alike)."""
        sample = sampling.temperature > 0
        return {
            "max_new_tokens": sampling.max_new_tokens,
            "do_sample": sample,
            "temperature": sampling.temperature if sample else None,
            "top_p": sampling.top_p if sample else None,
            "top_k": None,
            "eos_token_id": sorted(self.eos),
            "pad_token_id": self.pad_token_id,
        }

    def _finish(self, token_ids: list[int], finish_reason: str, sampling: Sampling, **timings_and_counters) -> Generation:
        return Generation(
            text=decode_text(self.tokenizer, token_ids, sampling.stop),
            token_ids=token_ids,
            finish_reason=finish_reason,
            **timings_and_counters,
        )


class StopStrings:
    """A `generate()` stopping criterion with the same rule as the other engines (decoded text,
    not transformers' token-string matching, which misses byte-level tokens)."""

    def __init__(self, tokenizer, stop: tuple[str, ...], prompt_length: int):
        self.tokenizer, self.stop, self.prompt_length = tokenizer, stop, prompt_length

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        found = [stop_string_cut(self.tokenizer, row, self.stop) is not None for row in input_ids[:, self.prompt_length :].tolist()]
        return torch.tensor(found, device=input_ids.device)  # one per row: each row of a batch stops on its own


def generate_resumable(
    engine, items: list[tuple[str, str]], sampling: Sampling, path: str | Path, desc: str = "generate", batch_size: int = 1
) -> dict[str, dict]:
    """One answer per (key, prompt), appended to the JSONL file `path` as soon as its batch is made:
    a run that is stopped resumes with the keys the file lacks, losing and repeating nothing.
    At batch_size 1, item i is seeded with sampling.seed + i whenever it runs; a batch is seeded
    with the seed of its first item (greedy answers do not depend on seeds or batches). Returns
    {key: row}, rows with key, text, tokens and finish_reason, in the order of `items`."""
    keys = [key for key, _ in items]
    if len(set(keys)) != len(keys):
        raise ValueError(f"{len(keys) - len(set(keys))} duplicate keys: each item needs its own key to resume by")
    done = {row["key"]: row for row in jsonl.read_log(path)}
    todo = [(i, key, prompt) for i, (key, prompt) in enumerate(items) if key not in done]
    with tqdm(desc=desc, initial=len(items) - len(todo), total=len(items)) as bar:
        for start in range(0, len(todo), batch_size):
            chunk = todo[start : start + batch_size]
            seeded = dataclasses.replace(sampling, seed=sampling.seed + chunk[0][0])
            generations = engine.generate([prompt for _, _, prompt in chunk], seeded, batch_size=batch_size)
            rows = [
                {"key": key, "text": g.text, "tokens": len(g.token_ids), "finish_reason": g.finish_reason}
                for (_, key, _), g in zip(chunk, generations, strict=True)
            ]
            jsonl.append(path, rows)
            done.update((row["key"], row) for row in rows)
            bar.update(len(chunk))
    return {key: done[key] for key in keys}
