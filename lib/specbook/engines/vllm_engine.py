"""vLLM on a GPU, behind the engines' interface (`engine.generate(prompts, sampling, speculative)`).

One `vllm.LLM` per speculation setting (vLLM fixes it at construction). A request's speculative
counters come from its own output (`CompletionOutput.spec_decode_metrics`, vLLM's per-request
speculative metrics); its time to first token from `LLM.get_metrics()`, read before and after it and
subtracted. The functions that build vLLM's arguments and read its metrics are pure, and tested
without a GPU.
"""

from __future__ import annotations

import time

from tqdm import tqdm

from specbook import models, specdec
from specbook.engines.base import Generation, Sampling, Speculative, check_batch_size, check_draft_tokenizer, prompt_token_ids

# --- vLLM -------------------------------------------------------------------------------------


def vllm_speculative_config(speculative: Speculative | None) -> dict | None:
    """vLLM's `speculative_config` for a speculation setting (None: plain decoding)."""
    if speculative is None:
        return None
    if speculative.method == "draft_model":
        if not isinstance(speculative.draft, str):
            raise ValueError("vLLM loads the draft itself: give `draft` as a path or Hub id, not a model object")
        # the draft samples its proposals (vLLM's default drafts greedily at any temperature), as the
        # native decoder and Leviathan et al. do: acceptance compares across engines when sampling
        return {
            "method": "draft_model",
            "model": speculative.draft,
            "num_speculative_tokens": speculative.k,
            "draft_sample_method": "probabilistic",
        }
    # prompt_lookup_min 1 matches transformers' prompt lookup, which tries n = ngram_max down to 1
    return {"method": "ngram", "num_speculative_tokens": speculative.k, "prompt_lookup_max": speculative.ngram_max, "prompt_lookup_min": 1}


def vllm_llm_kwargs(
    model: str,
    speculative: Speculative | None,
    tensor_parallel_size: int,
    gpu_memory_utilization: float,
    seed: int,
    lora_rank: int | None = None,
    max_num_seqs: int | None = None,
) -> dict:
    """Arguments of `vllm.LLM(...)`. Stats logging stays on: `get_metrics()` needs it; with
    speculation each request also reports its own counters (vLLM refuses that option without). `lora_rank`:
    the rank of the one LoRA adapter served on top of `model` (None: no adapter). `max_num_seqs`:
    the most requests decoded together (None: vLLM's default), the concurrency of a throughput run."""
    kwargs = {
        "model": model,
        "tensor_parallel_size": tensor_parallel_size,
        "gpu_memory_utilization": gpu_memory_utilization,
        "seed": seed,
        "speculative_config": vllm_speculative_config(speculative),
        "disable_log_stats": False,
    }
    if speculative is not None:
        kwargs["per_request_spec_decode_metrics"] = "summary"
    if lora_rank is not None:
        kwargs.update(enable_lora=True, max_lora_rank=lora_rank, max_loras=1)
    if max_num_seqs is not None:
        kwargs["max_num_seqs"] = max_num_seqs
    return kwargs


def lora_rank(adapter: str) -> int:
    """The rank of a peft adapter folder (vLLM needs `max_lora_rank` >= it at start)."""
    import json
    from pathlib import Path

    config = json.loads((Path(adapter) / "adapter_config.json").read_text())
    return max([config["r"], *config.get("rank_pattern", {}).values()])


def vllm_sampling_kwargs(sampling: Sampling, seed: int) -> dict:
    """Arguments of `vllm.SamplingParams(...)` for one request."""
    return {
        "max_tokens": sampling.max_new_tokens,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "seed": seed,
        "stop": list(sampling.stop),
    }


def vllm_ttft(before, after) -> float:
    """Time to first token of the one request that ran between two `LLM.get_metrics()` snapshots
    (objects with name and value, values (Vector) or sum (Histogram)), summed over label sets: one
    per engine under data parallelism."""

    def total(metrics):
        return sum(m.sum for m in metrics if m.name == "vllm:time_to_first_token_seconds")

    return total(after) - total(before)


def vllm_counters(spec_metrics, n_tokens: int, k: int) -> dict:
    """One request's speculative counters, defined as the native engine defines them, from vLLM's
    per-request metrics (`CompletionOutput.spec_decode_metrics`: `histogram[j]` verify steps that
    accepted exactly j draft tokens, `num_draft_tokens` proposed). vLLM counts only the steps that
    verified drafts; `steps` here counts every target pass, the prompt's included: each pass writes
    one token of its own besides the drafts it accepted, so steps = tokens - accepted."""
    histogram = list(spec_metrics.histogram)
    accepted = sum(j * n for j, n in enumerate(histogram))
    return {
        "steps": n_tokens - accepted,
        "proposed": spec_metrics.num_draft_tokens,
        "accepted": accepted,
        "accepted_at": [sum(histogram[i + 1 :]) for i in range(k)],  # steps that accepted at least i + 1
    }


class VllmEngine:
    """vLLM on a GPU. One `vllm.LLM` per speculation setting (vLLM fixes it at construction); the
    previous one is released first so that a 14B target fits once."""

    name = "vllm"

    def __init__(
        self, model: str, tensor_parallel_size: int = 1, gpu_memory_utilization: float = 0.85, seed: int = 0, lora: str | None = None
    ):
        """lora: a LoRA adapter folder (peft) served on top of `model` with every request, never merged to disk."""
        from transformers import AutoConfig, AutoTokenizer

        self.model, self.tensor_parallel_size = model, tensor_parallel_size
        self.gpu_memory_utilization, self.seed, self.lora = gpu_memory_utilization, seed, lora
        self.config = AutoConfig.from_pretrained(model)
        self.tokenizer = AutoTokenizer.from_pretrained(lora or model)  # an adapter is saved with the tokenizer it was trained with
        self._llm, self._llm_for = None, object()

    def _lora_request(self):
        if self.lora is None:
            return None
        from vllm.lora.request import LoRARequest

        return LoRARequest("target", 1, str(self.lora))

    def _llm_with(self, speculative: Speculative | None, max_num_seqs: int | None = None):
        if self._llm is None or self._llm_for != (speculative, max_num_seqs):
            from transformers import AutoConfig
            from vllm import LLM

            if speculative is not None and speculative.method == "draft_model":
                specdec.check_pair(self.config, AutoConfig.from_pretrained(speculative.draft))
                check_draft_tokenizer(self.tokenizer, speculative.draft)
            self.close()  # the previous engine's memory first: a 14B target fits once
            rank = lora_rank(self.lora) if self.lora else None
            self._llm = LLM(
                **vllm_llm_kwargs(
                    self.model, speculative, self.tensor_parallel_size, self.gpu_memory_utilization, self.seed, rank, max_num_seqs
                )
            )
            self._llm_for = (speculative, max_num_seqs)
        return self._llm

    def close(self) -> None:
        """Shut the running `vllm.LLM` down and hand its GPU memory back (the next one starts on demand)."""
        self._llm, self._llm_for = None, object()
        models.free_memory()

    def generate(
        self, prompts: list[str] | list[list[int]], sampling: Sampling, speculative: Speculative | None = None, batch_size: int = 1
    ) -> list[Generation]:
        from vllm import SamplingParams

        check_batch_size(batch_size, speculative, self.name)
        llm = self._llm_with(speculative)
        label = "vllm " + (f"{speculative.method} k={speculative.k}" if speculative else "plain")
        results = []
        ids = prompt_token_ids(self.tokenizer, prompts, sampling.max_new_tokens, specdec.context_length(self.config))
        if batch_size > 1:  # every prompt in one call: vLLM batches them continuously, whatever batch_size says
            params = [SamplingParams(**vllm_sampling_kwargs(sampling, sampling.seed + i)) for i in range(len(ids))]
            start = time.perf_counter()
            outs = llm.generate([{"prompt_token_ids": one} for one in ids], params, use_tqdm=True, lora_request=self._lora_request())
            latency = time.perf_counter() - start
            return [
                Generation(
                    o.outputs[0].text, list(o.outputs[0].token_ids), o.outputs[0].finish_reason, latency, steps=len(o.outputs[0].token_ids)
                )
                for o in outs
            ]
        for i, prompt_ids in enumerate(tqdm(ids, desc=label, leave=False, disable=len(ids) < 2)):
            params = SamplingParams(**vllm_sampling_kwargs(sampling, sampling.seed + i))
            before = llm.get_metrics()
            start = time.perf_counter()
            out = llm.generate([{"prompt_token_ids": prompt_ids}], params, use_tqdm=False, lora_request=self._lora_request())[0].outputs[0]
            latency = time.perf_counter() - start
            ttft = vllm_ttft(before, llm.get_metrics())
            token_ids = list(out.token_ids)
            counters = vllm_counters(out.spec_decode_metrics, len(token_ids), speculative.k) if speculative else {"steps": len(token_ids)}
            results.append(
                Generation(text=out.text, token_ids=token_ids, finish_reason=out.finish_reason, latency_s=latency, ttft_s=ttft, **counters)
            )
        return results

    def throughput(
        self, prompts: list[str] | list[list[int]], sampling: Sampling, speculative: Speculative | None, max_num_seqs: int
    ) -> dict:
        """All prompts in one call, at most `max_num_seqs` decoded together (vLLM's continuous
        batching): generated tokens per second of wall time, after one warm-up call."""
        from vllm import SamplingParams

        llm = self._llm_with(speculative, max_num_seqs)
        ids = prompt_token_ids(self.tokenizer, prompts, sampling.max_new_tokens, specdec.context_length(self.config))
        requests = [{"prompt_token_ids": one} for one in ids]
        params = [SamplingParams(**vllm_sampling_kwargs(sampling, sampling.seed + i)) for i in range(len(ids))]
        llm.generate(requests[:max_num_seqs], params[:max_num_seqs], use_tqdm=False, lora_request=self._lora_request())  # warm-up
        start = time.perf_counter()
        outs = llm.generate(requests, params, use_tqdm=False, lora_request=self._lora_request())
        seconds = time.perf_counter() - start
        tokens = sum(len(o.outputs[0].token_ids) for o in outs)
        return {"max_num_seqs": max_num_seqs, "requests": len(outs), "tokens": tokens, "seconds": seconds, "tokens_per_s": tokens / seconds}
