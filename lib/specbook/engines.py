"""Text generation behind one interface: `engine.generate(prompts, sampling) -> [Generation]`.

Prompts are finished strings (a chat template already applied). This module holds the plain
transformers engine; speculative engines share the same records.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from tqdm import tqdm


@dataclass(frozen=True)
class Sampling:
    max_new_tokens: int
    temperature: float = 0.0  # 0: greedy
    top_p: float = 1.0
    seed: int = 0


@dataclass
class Generation:
    text: str
    token_ids: list[int]
    finish_reason: str  # "stop" (end of sequence) or "length" (max_new_tokens reached)
    latency_s: float
    counters: dict = field(default_factory=dict)  # speculative engines add theirs here


def chat_prompt(tokenizer, system: str, user: str) -> str:
    """One chat turn, ready for the assistant to answer. Qwen3's thinking block is switched off:
    the rationale itself is the reasoning."""
    messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, enable_thinking=False)


class TransformersEngine:
    """Plain `model.generate()`, one prompt at a time (batch 1, as the book measures latency)."""

    name = "transformers"

    def __init__(self, model, tokenizer):
        self.model = model.eval()
        self.tokenizer = tokenizer

    @classmethod
    def load(cls, name_or_path: str):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(name_or_path)
        model = AutoModelForCausalLM.from_pretrained(name_or_path, dtype="auto")
        return cls(model.to("cuda") if torch.cuda.is_available() else model, tokenizer)

    def generate(self, prompts: list[str], sampling: Sampling) -> list[Generation]:
        import torch

        results = []
        for prompt in tqdm(prompts, desc=f"{self.name} generate", leave=False):
            inputs = self.tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(self.model.device)
            torch.manual_seed(sampling.seed)
            start = time.perf_counter()
            with torch.inference_mode():
                out = self.model.generate(
                    **inputs,
                    max_new_tokens=sampling.max_new_tokens,
                    do_sample=sampling.temperature > 0,
                    temperature=sampling.temperature if sampling.temperature > 0 else None,
                    top_p=sampling.top_p if sampling.temperature > 0 else None,
                    top_k=None,
                    pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
                )
            latency = time.perf_counter() - start
            new = out[0, inputs["input_ids"].shape[1]:].tolist()
            eos = self.tokenizer.eos_token_id
            finished = eos in new
            if finished:
                new = new[: new.index(eos)]
            results.append(
                Generation(
                    text=self.tokenizer.decode(new, skip_special_tokens=True),
                    token_ids=new,
                    finish_reason="stop" if finished else "length",
                    latency_s=latency,
                )
            )
        return results
