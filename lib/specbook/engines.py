"""Text generation behind one interface, three engines.

    engine.generate(prompts, sampling, speculative=None) -> [Generation]

Prompts are finished strings (a chat template already applied). Every engine decodes at batch 1,
one request after another, because the book measures per-request latency and speculative
decoding is a latency technique; speculative and plain runs of a comparison use one engine.

- `NativeEngine`: the lib's own decoder (`specdec`), plain decoding through the same code path.
- `TransformersEngine`: `model.generate()`, assisted generation with a draft model at a constant
  K (acceptance counted by instrumenting the candidate generator), or prompt lookup (n-gram).
- `VllmEngine` (GPU): `vllm.LLM` with a `speculative_config`; counters from `LLM.get_metrics()`
  read before and after each request and subtracted.
"""
from __future__ import annotations

import gc
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from specbook import specdec

METHODS = ("draft_model", "ngram")


@dataclass(frozen=True)
class Sampling:
    max_new_tokens: int
    temperature: float = 0.0  # 0: greedy
    top_p: float = 1.0
    seed: int = 0  # request i is seeded with seed + i
    stop: tuple[str, ...] = ()  # stop strings: generation ends once one appears; the text ends before it


@dataclass(frozen=True)
class Speculative:
    """How to speculate. `draft_model`: a small model proposes K tokens; `draft` is its path or
    Hub id (the in-process engines also take a loaded model). `ngram`: prompt lookup proposes up
    to K tokens that followed the last n-gram (n <= ngram_max) where it last occurred in the context."""

    method: str
    k: int
    draft: Any = None
    ngram_max: int = 3

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"unknown speculative method {self.method!r}; choose one of {', '.join(METHODS)}")
        if self.k < 1:
            raise ValueError(f"speculative k must be >= 1, got {self.k}; run without `speculative` for plain decoding")
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


def chat_prompt(tokenizer, system: str, user: str) -> str:
    """One chat turn, ready for the assistant to answer. Qwen3's thinking block is switched off:
    the rationale itself is the reasoning."""
    messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, enable_thinking=False)


def eos_token_ids(model, tokenizer) -> set[int]:
    """The tokenizer's end of sequence plus any the model's generation config names (Qwen3 lists two)."""
    ids = {tokenizer.eos_token_id}
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
    """The answer's text: special tokens dropped, cut before the first stop string."""
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
            f"{len(draft_tokenizer)}, and some ids map to different tokens. Train the draft with the target's tokenizer.")


def load_causal_lm(name_or_path: str):
    """A causal LM by path or Hub id, in eval mode, on the GPU when there is one."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(name_or_path, dtype="auto").eval()
    return model.to("cuda") if torch.cuda.is_available() else model


class _InProcess:
    """Shared by the engines that hold a transformers model in this process."""

    name = ""

    def __init__(self, model, tokenizer):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.eos = eos_token_ids(model, tokenizer)
        self.pad_token_id = tokenizer.eos_token_id if tokenizer.pad_token_id is None else tokenizer.pad_token_id
        self._drafts: dict[str, Any] = {}

    @classmethod
    def load(cls, name_or_path: str, **options):
        from transformers import AutoTokenizer

        return cls(load_causal_lm(name_or_path), AutoTokenizer.from_pretrained(name_or_path), **options)

    def draft_model(self, speculative: Speculative):
        draft = speculative.draft
        if isinstance(draft, str):
            if draft not in self._drafts:
                check_draft_tokenizer(self.tokenizer, draft)
                self._drafts[draft] = load_causal_lm(draft)
            draft = self._drafts[draft]
        specdec.check_pair(self.model.config, draft.config)
        return draft

    def generate(self, prompts: list[str], sampling: Sampling, speculative: Speculative | None = None) -> list[Generation]:
        label = f"{self.name} " + (f"{speculative.method} k={speculative.k}" if speculative else "plain")
        results = []
        for i, prompt in enumerate(tqdm(prompts, desc=label, leave=False)):
            prompt_ids = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
            results.append(self._one(prompt_ids, sampling, speculative, sampling.seed + i))
        return results

    def _finish(self, token_ids: list[int], finish_reason: str, sampling: Sampling, **timings_and_counters) -> Generation:
        return Generation(text=decode_text(self.tokenizer, token_ids, sampling.stop), token_ids=token_ids,
                          finish_reason=finish_reason, **timings_and_counters)


class NativeEngine(_InProcess):
    """The lib's speculative decoder; without `speculative`, plain decoding through the same loop.
    `compile=True` runs the target and every draft through `specdec.compiled` (both alike, so that
    plain and speculative runs compare like with like)."""

    name = "native"

    def __init__(self, model, tokenizer, compile: bool = False):
        super().__init__(model, tokenizer)
        self.compile = compile
        self._compiled_drafts: dict[int, tuple] = {}
        if compile:
            self.model = specdec.compiled(self.model)

    def draft_model(self, speculative: Speculative):
        draft = super().draft_model(speculative)
        if not self.compile:
            return draft
        if id(draft) not in self._compiled_drafts:  # the entry holds the draft, so its id stays its own
            self._compiled_drafts[id(draft)] = (draft, specdec.compiled(draft))
        return self._compiled_drafts[id(draft)][1]

    def _one(self, prompt_ids, sampling, speculative, seed) -> Generation:
        if speculative is not None and speculative.method != "draft_model":
            raise ValueError(f"the native engine speculates with a draft model, not {speculative.method!r}; "
                             f"use the transformers or vllm engine for prompt lookup")
        draft = self.draft_model(speculative) if speculative else None
        stop = (lambda ids: stop_string_cut(self.tokenizer, ids, sampling.stop)) if sampling.stop else None
        r = specdec.generate(self.model, draft, prompt_ids, k=speculative.k if speculative else 0,
                             max_new_tokens=sampling.max_new_tokens, temperature=sampling.temperature,
                             top_p=sampling.top_p, eos_token_ids=self.eos, seed=seed, stop=stop)
        return self._finish(r.token_ids, r.finish_reason, sampling, latency_s=r.latency_s, ttft_s=r.ttft_s,
                            steps=r.steps, proposed=r.proposed, accepted=r.accepted, accepted_at=r.accepted_at)


class _FirstTokenClock:
    """A `generate()` streamer that notes when the first new tokens arrive (its first `put` is the prompt)."""

    def __init__(self):
        self.start, self.first, self.puts = time.perf_counter(), None, 0

    def put(self, value):
        self.puts += 1
        if self.puts == 2:
            self.first = time.perf_counter()

    def end(self):
        pass


class _StopStrings:
    """A `generate()` stopping criterion with the same rule as the other engines (decoded text,
    not transformers' token-string matching, which misses byte-level tokens)."""

    def __init__(self, tokenizer, stop: tuple[str, ...], prompt_length: int):
        self.tokenizer, self.stop, self.prompt_length = tokenizer, stop, prompt_length

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        found = stop_string_cut(self.tokenizer, input_ids[0, self.prompt_length:].tolist(), self.stop) is not None
        return torch.tensor([found], device=input_ids.device)


class _CountingCandidates:
    """Wraps transformers' candidate generator to count what assisted generation proposes and keeps."""

    def __init__(self, inner, counts: Generation):
        self.inner, self.counts, self.last = inner, counts, 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def get_candidates(self, input_ids, **kwargs):
        candidate_ids, candidate_logits = self.inner.get_candidates(input_ids, **kwargs)
        self.last = candidate_ids.shape[1] - input_ids.shape[1]
        return candidate_ids, candidate_logits

    def update_candidate_strategy(self, input_ids, scores, num_matches):
        n = int(num_matches)
        c = self.counts
        c.steps, c.proposed, c.accepted = c.steps + 1, c.proposed + self.last, c.accepted + n
        for i in range(n):
            c.accepted_at[i] += 1
        return self.inner.update_candidate_strategy(input_ids, scores, num_matches)


class TransformersEngine(_InProcess):
    """`model.generate()`; with `speculative`, assisted generation (draft model at a constant K,
    lossless speculative sampling when temperature > 0) or prompt lookup."""

    name = "transformers"

    def _one(self, prompt_ids, sampling, speculative, seed) -> Generation:
        import torch

        kwargs = {}
        counts = Generation("", [], "", 0.0, accepted_at=[0] * (speculative.k if speculative else 0))  # counted into
        if speculative is not None and speculative.method == "draft_model":
            draft = self.draft_model(speculative)
            # a fixed K: no heuristic schedule, no early stop on the draft's confidence
            draft.generation_config.num_assistant_tokens = speculative.k
            draft.generation_config.num_assistant_tokens_schedule = "constant"
            draft.generation_config.assistant_confidence_threshold = 0.0
            kwargs["assistant_model"] = draft
        elif speculative is not None:
            kwargs.update(prompt_lookup_num_tokens=speculative.k, max_matching_ngram_size=speculative.ngram_max)
        if speculative is not None:
            original = self.model._get_candidate_generator
            self.model._get_candidate_generator = lambda *a, **kw: _CountingCandidates(original(*a, **kw), counts)
        if sampling.stop:
            kwargs["stopping_criteria"] = [_StopStrings(self.tokenizer, sampling.stop, len(prompt_ids))]
        sample = sampling.temperature > 0
        ids = torch.tensor([prompt_ids], device=self.model.device)
        clock = _FirstTokenClock()
        torch.manual_seed(seed)
        try:
            with torch.inference_mode():
                out = self.model.generate(
                    input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=sampling.max_new_tokens,
                    do_sample=sample, temperature=sampling.temperature if sample else None,
                    top_p=sampling.top_p if sample else None, top_k=None, eos_token_id=sorted(self.eos),
                    pad_token_id=self.pad_token_id, streamer=clock, **kwargs)
        finally:
            if speculative is not None:
                del self.model._get_candidate_generator  # the class's method again
        end = time.perf_counter()
        new = out[0, len(prompt_ids):].tolist()
        keep = stop_string_cut(self.tokenizer, new, sampling.stop)
        if keep is not None:  # an assisted step may have accepted tokens past the stop string
            new = new[:keep]
        finished = keep is not None or (bool(new) and new[-1] in self.eos)
        if speculative is None:
            counts.steps = len(new)
        return self._finish(new, "stop" if finished else "length", sampling, latency_s=end - clock.start,
                            ttft_s=(clock.first - clock.start) if clock.first else None, steps=counts.steps,
                            proposed=counts.proposed, accepted=counts.accepted, accepted_at=counts.accepted_at)


# --- vLLM -------------------------------------------------------------------------------------

def vllm_speculative_config(speculative: Speculative | None) -> dict | None:
    """vLLM's `speculative_config` for a speculation setting (None: plain decoding)."""
    if speculative is None:
        return None
    if speculative.method == "draft_model":
        if not isinstance(speculative.draft, str):
            raise ValueError("vLLM loads the draft itself: give `draft` as a path or Hub id, not a model object")
        return {"method": "draft_model", "model": speculative.draft, "num_speculative_tokens": speculative.k}
    # prompt_lookup_min 1 matches transformers' prompt lookup, which tries n = ngram_max down to 1
    return {"method": "ngram", "num_speculative_tokens": speculative.k,
            "prompt_lookup_max": speculative.ngram_max, "prompt_lookup_min": 1}


def vllm_llm_kwargs(model: str, speculative: Speculative | None, tensor_parallel_size: int,
                    gpu_memory_utilization: float, seed: int) -> dict:
    """Arguments of `vllm.LLM(...)`. Stats logging stays on: `get_metrics()` needs it."""
    return {"model": model, "tensor_parallel_size": tensor_parallel_size, "gpu_memory_utilization": gpu_memory_utilization,
            "seed": seed, "speculative_config": vllm_speculative_config(speculative), "disable_log_stats": False}


def vllm_sampling_kwargs(sampling: Sampling, seed: int) -> dict:
    """Arguments of `vllm.SamplingParams(...)` for one request."""
    return {"max_tokens": sampling.max_new_tokens, "temperature": sampling.temperature, "top_p": sampling.top_p,
            "seed": seed, "stop": list(sampling.stop)}


def _metric_totals(metrics) -> dict:
    """Sums of the metrics the book reads, over label sets (one per engine under data parallelism).
    `metrics` is what `LLM.get_metrics()` returns: objects with name and value, values (Vector) or sum (Histogram)."""
    totals = {"steps": 0, "proposed": 0, "accepted": 0, "accepted_at": [], "ttft_s": 0.0}
    names = {"vllm:spec_decode_num_drafts": "steps", "vllm:spec_decode_num_draft_tokens": "proposed",
             "vllm:spec_decode_num_accepted_tokens": "accepted"}
    for m in metrics:
        if m.name in names:
            totals[names[m.name]] += m.value
        elif m.name == "vllm:spec_decode_num_accepted_tokens_per_pos":
            at = totals["accepted_at"]
            at.extend([0] * (len(m.values) - len(at)))
            for i, v in enumerate(m.values):
                at[i] += v
        elif m.name == "vllm:time_to_first_token_seconds":
            totals["ttft_s"] += m.sum
    return totals


def vllm_counters(before, after) -> dict:
    """Speculative counters and time to first token of what ran between two `get_metrics()` snapshots."""
    b, a = _metric_totals(before), _metric_totals(after)
    at_before = b["accepted_at"] + [0] * (len(a["accepted_at"]) - len(b["accepted_at"]))
    return {"steps": a["steps"] - b["steps"], "proposed": a["proposed"] - b["proposed"],
            "accepted": a["accepted"] - b["accepted"],
            "accepted_at": [x - y for x, y in zip(a["accepted_at"], at_before)], "ttft_s": a["ttft_s"] - b["ttft_s"]}


class VllmEngine:
    """vLLM on a GPU. One `vllm.LLM` per speculation setting (vLLM fixes it at construction); the
    previous one is released first so that a 14B target fits once."""

    name = "vllm"

    def __init__(self, model: str, tensor_parallel_size: int = 1, gpu_memory_utilization: float = 0.85, seed: int = 0):
        from transformers import AutoConfig, AutoTokenizer

        self.model, self.tensor_parallel_size = model, tensor_parallel_size
        self.gpu_memory_utilization, self.seed = gpu_memory_utilization, seed
        self.config = AutoConfig.from_pretrained(model)
        self.tokenizer = AutoTokenizer.from_pretrained(model)
        self._llm, self._llm_for = None, object()

    def _llm_with(self, speculative: Speculative | None):
        if self._llm is None or self._llm_for != speculative:
            import torch
            from transformers import AutoConfig
            from vllm import LLM

            if speculative is not None and speculative.method == "draft_model":
                specdec.check_pair(self.config, AutoConfig.from_pretrained(speculative.draft))
                check_draft_tokenizer(self.tokenizer, speculative.draft)
            self._llm = None
            gc.collect()
            torch.cuda.empty_cache()
            self._llm = LLM(**vllm_llm_kwargs(self.model, speculative, self.tensor_parallel_size,
                                              self.gpu_memory_utilization, self.seed))
            self._llm_for = speculative
        return self._llm

    def generate(self, prompts: list[str], sampling: Sampling, speculative: Speculative | None = None) -> list[Generation]:
        from vllm import SamplingParams

        llm = self._llm_with(speculative)
        label = "vllm " + (f"{speculative.method} k={speculative.k}" if speculative else "plain")
        results = []
        for i, prompt in enumerate(tqdm(prompts, desc=label, leave=False)):
            prompt_ids = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
            params = SamplingParams(**vllm_sampling_kwargs(sampling, sampling.seed + i))
            before = llm.get_metrics()
            start = time.perf_counter()
            out = llm.generate([{"prompt_token_ids": prompt_ids}], params, use_tqdm=False)[0].outputs[0]
            latency = time.perf_counter() - start
            c = vllm_counters(before, llm.get_metrics())
            token_ids = list(out.token_ids)
            results.append(Generation(
                text=out.text, token_ids=token_ids, finish_reason=out.finish_reason, latency_s=latency, ttft_s=c["ttft_s"],
                steps=c["steps"] if speculative else len(token_ids), proposed=c["proposed"], accepted=c["accepted"],
                accepted_at=c["accepted_at"]))
        return results


def make(cfg, model: str, seed: int = 0):
    """The profile's engine (a profiles.Engine) for a model path or Hub id."""
    if cfg.kind == "vllm":
        return VllmEngine(model, cfg.tensor_parallel_size, cfg.gpu_memory_utilization, seed)
    if cfg.kind == "native":
        return NativeEngine.load(model, compile=cfg.compile)
    return TransformersEngine.load(model)
