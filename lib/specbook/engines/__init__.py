"""Text generation behind one interface, three engines.

    engine.generate(prompts, sampling, speculative=None, batch_size=1) -> [Generation]

Prompts are finished strings (a chat template already applied) or token ids. At batch_size 1 every
engine decodes one request after another: the book measures per-request latency there, and
speculative decoding is a latency technique; speculative and plain runs of a comparison use one
engine. batch_size > 1 is for throughput work (distillation, accuracy): the in-process engines run
transformers' `generate()` on left-padded batches of that size, vLLM takes every prompt in one call
(continuous batching). Greedy batched outputs are the batch-1 outputs; sampled ones come from one
random stream per batch (seeded with the seed of its first request), not one per request.

- `NativeEngine`: the lib's own decoder (`specdec`): a draft model or prompt lookup (n-gram),
  and plain decoding through the same code path.
- `TransformersEngine`: `model.generate()`, assisted generation with a draft model at a constant
  K (acceptance counted by instrumenting the candidate generator), or prompt lookup (n-gram).
- `VllmEngine` (GPU, `engines.vllm_engine`, imported only when asked for): `vllm.LLM` with a `speculative_config`.

`generate_resumable` runs any engine over keyed prompts and appends each answer to a JSONL file
as it is made, so that long generation (teachers, distillation) resumes where it stopped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from specbook.engines.base import (
    METHODS,
    Generation,
    Sampling,
    Speculative,
    check_batch_size,
    check_draft_tokenizer,
    decode_text,
    eos_token_ids,
    generate_resumable,
    prompt_token_ids,
    stop_string_cut,
)
from specbook.engines.native import NativeEngine
from specbook.engines.transformers_engine import TransformersEngine

if TYPE_CHECKING:
    from specbook.engines.vllm_engine import VllmEngine
    from specbook.profiles import Engine

__all__ = [
    "METHODS",
    "Generation",
    "NativeEngine",
    "Sampling",
    "Speculative",
    "TransformersEngine",
    "check_batch_size",
    "check_draft_tokenizer",
    "decode_text",
    "eos_token_ids",
    "generate_resumable",
    "make",
    "prompt_token_ids",
    "stop_string_cut",
]


def make(cfg: Engine, model: str, seed: int = 0, lora: str | None = None) -> NativeEngine | TransformersEngine | VllmEngine:
    """The profile's engine (a profiles.Engine) for a model path or Hub id. `lora`: an adapter
    folder that vLLM serves on top of `model` (the in-process engines take a merged model's path)."""
    if cfg.kind == "vllm":
        from specbook.engines.vllm_engine import VllmEngine

        return VllmEngine(model, cfg.tensor_parallel_size, cfg.gpu_memory_utilization, seed, lora=lora)
    if lora is not None:
        raise ValueError(f"the {cfg.kind} engine takes a merged model's path (training.merge), not an adapter on top of {model}")
    if cfg.kind == "native":
        return NativeEngine.load(model, compile=cfg.compile)
    return TransformersEngine.load(model)
